"""One router per resource: health, status, llm (active, history, metrics), Prometheus."""

from morningstar.api.routes.health import router as health_router
from morningstar.api.routes.llm import router as llm_router
from morningstar.api.routes.prometheus import router as prometheus_router
from morningstar.api.routes.status import router as status_router

__all__ = ["health_router", "llm_router", "prometheus_router", "status_router"]
