"""The flow language: models, loader and linter, the pure engine, conversation tests."""
