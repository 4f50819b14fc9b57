"""The admin dashboard at ``/dashboard``: a page that polls one document of the extender's state."""

from dashboard.routes import dashboard_router

__all__ = ["dashboard_router"]
