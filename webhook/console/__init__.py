"""The web console for volunteers and coordinators, under /console (issue 5, item 7)."""

from webhook.console.routes import router

__all__ = ["router"]
