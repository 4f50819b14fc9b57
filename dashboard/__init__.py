"""The admin dashboard at ``/dashboard`` and the read-only API the CLI shares with it."""

from dashboard.routes import admin_router

__all__ = ["admin_router"]
