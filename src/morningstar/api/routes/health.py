"""``GET /health``: open to everyone; says the process answers and whether the database does."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends

from morningstar.api.deps import get_db
from morningstar.api.schemas import HealthOut
from morningstar.errors import StorageError
from morningstar.store.db import Database

__all__ = ["router"]

logger = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut)
def health(db: Annotated[Database | None, Depends(get_db)]) -> HealthOut:
    """Liveness and a database ping (no details on this unauthenticated route)."""
    if db is None:
        return HealthOut(database="absent")
    try:
        db.ping()
    except StorageError as exc:
        logger.warning("health check: %s", exc.one_line())
        return HealthOut(database="error")
    return HealthOut(database="ok")
