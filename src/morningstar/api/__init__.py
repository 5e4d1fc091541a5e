"""Morningstar's REST API (FastAPI): ``create_app(settings)``, ``serve(settings)``.

See ``docs/llm_monitor.md`` for the routes and authentication.
"""

from morningstar.api.app import create_app
from morningstar.api.server import BackgroundServer, serve

__all__ = ["BackgroundServer", "create_app", "serve"]
