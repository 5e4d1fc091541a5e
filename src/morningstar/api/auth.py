"""Bearer-token authentication of the REST API.

Rules: when ``api.host`` is not a loopback address a token is required and :func:`api_token`
refuses to start without one; when a token is configured it is required on any host. Clients
send ``Authorization: Bearer <token>`` or ``X-API-Key: <token>``; the comparison is constant-time
(:func:`secrets.compare_digest`). Everything but ``/health`` is protected.
"""

from __future__ import annotations

import ipaddress
import secrets

from fastapi import HTTPException, Request, status

from morningstar.config import ApiSettings
from morningstar.errors import ConfigError

__all__ = ["api_token", "is_loopback", "require_token"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``127.0.0.0/8``, ``::1``) or ``localhost``."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def api_token(api: ApiSettings) -> bytes | None:
    """The token requests must present, or None when the API is open (loopback, no token).

    Raises:
        ConfigError: the API binds a non-loopback address and no token is configured.
    """
    token = api.token.get_secret_value() if api.token is not None else ""
    if token:
        return token.encode("utf-8")
    if not is_loopback(api.host):
        raise ConfigError(
            f"a token is required when the API binds the non-loopback address {api.host!r}",
            where="api.token",
            hint="set MORNINGSTAR_API__TOKEN (or api.token in the secrets file), "
            "or bind api.host to 127.0.0.1",
        )
    return None


def _presented(request: Request) -> list[str]:
    found: list[str] = []
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            found.append(credentials.strip())
    api_key = request.headers.get("x-api-key")
    if api_key:
        found.append(api_key.strip())
    return found


async def require_token(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries the configured token.

    Raises:
        HTTPException: 401 with ``WWW-Authenticate: Bearer`` when the token is missing or wrong.
    """
    expected: bytes | None = request.app.state.api_token
    if expected is None:
        return
    if any(secrets.compare_digest(c.encode("utf-8"), expected) for c in _presented(request)):
        return
    raise HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="missing or invalid token: send 'Authorization: Bearer <token>' or 'X-API-Key'",
        headers={"WWW-Authenticate": "Bearer"},
    )
