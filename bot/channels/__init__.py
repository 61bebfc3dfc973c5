"""Channels: one module a messenger, the only code that speaks a messenger's protocol."""
