"""The HTTP side: the FastAPI app, thin, calling into bot/."""
