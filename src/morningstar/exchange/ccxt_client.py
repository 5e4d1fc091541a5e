"""The ccxt client: build a ccxt exchange and translate its errors into the project's.

This is the adapter boundary for ccxt: :func:`make_exchange` builds a synchronous exchange with
its rate limiter on (optionally re-pointed at another base URL, or its testnet), and
:func:`translate_ccxt_error` maps every ccxt exception onto :mod:`morningstar.errors` with a
one-line message naming the exchange, the URL and the fix, so no ``ccxt.*`` exception leaks
upward. Callers raise the translation ``from`` the ccxt exception::

    try:
        bars = exchange.fetch_ohlcv("BTC/USDT", "5m")
    except ccxt.BaseError as exc:
        raise translate_ccxt_error(exc, exchange, action="fetching BTC/USDT 5m bars") from exc
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import ccxt

from morningstar.errors import (
    AuthenticationError,
    BadSymbolError,
    ConfigError,
    ExchangeError,
    ExchangeUnavailableError,
    MorningstarError,
    NetworkError,
    RateLimitedError,
    TemporaryError,
    UserInputError,
)
from morningstar.retry import RetryPolicy, retry_call

__all__ = [
    "EXCHANGE_DEFAULT_OPTIONS",
    "api_base",
    "call_ccxt",
    "make_exchange",
    "retry_after_s",
    "translate_ccxt_error",
]

#: Per-exchange ccxt options applied by :func:`make_exchange` (the caller's ``options`` win).
#: Binance: load spot markets only (one ``GET /api/v3/exchangeInfo``, no futures/margin endpoints).
EXCHANGE_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False},
}

_MAX_DETAIL = 160


# --------------------------------------------------------------------------- exchange factory
def make_exchange(
    exchange_id: str,
    *,
    api_base_url: str | None = None,
    api_key: str | None = None,
    secret: str | None = None,
    password: str | None = None,
    sandbox: bool = False,
    timeout_ms: int = 10_000,
    rate_limit_ms: int | None = None,
    options: Mapping[str, Any] | None = None,
) -> ccxt.Exchange:
    """Build a synchronous ccxt exchange with its rate limiter on.

    Args:
        exchange_id: a ccxt id (``binance``, ``kraken``…), case-insensitive.
        api_base_url: replaces scheme and host (``https://api.binance.com``) of every REST URL of
            the exchange, keeping each path (a path in ``api_base_url`` is prepended): for proxies,
            mirrors and local stand-ins.
        api_key: API key (only private endpoints need one; downloads do not).
        secret: API secret.
        password: API passphrase, for the exchanges that have one (OKX, KuCoin…).
        sandbox: use the exchange's testnet URLs (applied before ``api_base_url``).
        timeout_ms: per-request timeout in milliseconds.
        rate_limit_ms: minimum milliseconds between requests (scaled by each endpoint's cost);
            None keeps ccxt's value for the exchange.
        options: ccxt ``options`` merged over :data:`EXCHANGE_DEFAULT_OPTIONS`.

    Raises:
        UserInputError: unknown exchange id (with a close-match hint).
        ConfigError: ``api_base_url`` is not an ``http(s)://host[:port][/path]`` URL, or
            ``sandbox`` is asked of an exchange without a testnet in ccxt.
    """
    eid = exchange_id.strip().lower()
    if eid not in ccxt.exchanges:
        close = difflib.get_close_matches(eid, ccxt.exchanges, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}?" if close else "see ccxt's list of exchange ids"
        raise UserInputError(
            f"unknown exchange {exchange_id!r} ({len(ccxt.exchanges)} ccxt exchanges known)",
            where="exchange id",
            hint=hint,
        )
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": int(timeout_ms)}
    if api_key:
        config["apiKey"] = api_key
    if secret:
        config["secret"] = secret
    if password:
        config["password"] = password
    if rate_limit_ms is not None:
        config["rateLimit"] = rate_limit_ms
    merged = {**EXCHANGE_DEFAULT_OPTIONS.get(eid, {}), **(options or {})}
    if merged:
        config["options"] = merged
    exchange = getattr(ccxt, eid)(config)
    if sandbox:
        if not exchange.urls.get("test"):
            raise ConfigError(
                f"{eid} has no sandbox (testnet) in ccxt",
                where=f"exchanges.{eid}.sandbox",
                hint="set sandbox: false, or point api_base_url at a test server",
            )
        exchange.set_sandbox_mode(True)
    if api_base_url is not None:
        base = urlsplit(api_base_url.strip())
        if base.scheme not in {"http", "https"} or not base.netloc:
            raise ConfigError(
                f"invalid api_base_url {api_base_url!r}",
                where=f"exchanges.{eid}.api_base_url",
                hint="use http(s)://host[:port], e.g. https://api.binance.com",
            )
        exchange.urls["api"] = _rebase(exchange.urls["api"], base.scheme, base.netloc, base.path)
    return exchange


def _rebase(value: Any, scheme: str, netloc: str, prefix: str) -> Any:
    """Rewrite scheme and host of every URL string in a nested dict/list, keeping paths."""
    if isinstance(value, str):
        parts = urlsplit(value)
        if not parts.scheme or not parts.netloc:
            return value
        path = prefix.rstrip("/") + parts.path
        return urlunsplit((scheme, netloc, path, parts.query, parts.fragment))
    if isinstance(value, dict):
        return {k: _rebase(v, scheme, netloc, prefix) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebase(v, scheme, netloc, prefix) for v in value]
    return value


def api_base(exchange: ccxt.Exchange) -> str:
    """``scheme://host`` of the exchange's public REST API (the first URL found)."""
    urls = exchange.urls.get("api")
    stack: list[Any] = [urls]
    if isinstance(urls, dict) and "public" in urls:
        stack.insert(0, urls["public"])
    while stack:
        item = stack.pop(0)
        if isinstance(item, str) and "://" in item:
            parts = urlsplit(item)
            return f"{parts.scheme}://{parts.netloc}"
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return f"{exchange.id} API"


# --------------------------------------------------------------------------- error translation
def translate_ccxt_error(
    exc: BaseException, exchange: ccxt.Exchange, *, action: str | None = None
) -> MorningstarError:
    """Map a ccxt exception to the project's error tree, with a one-line message.

    The caller raises the result ``from exc``. URLs in messages never carry their query string
    (where signed requests put their signature).

    Args:
        exc: the exception ccxt raised.
        exchange: the exchange that raised it (for its id, base URL and last request).
        action: what was being done, e.g. ``"fetching BTC/USDT 5m bars"``.
    """
    eid = str(exchange.id)
    base = api_base(exchange)
    url = _strip_query(getattr(exchange, "last_request_url", None)) or base
    doing = f" while {action}" if action else ""
    detail = _detail(exc, eid)
    config_key = f"exchanges.{eid}.api_base_url"
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        after = retry_after_s(exchange)
        wait = f" (server asks to wait {after:g} s)" if after is not None else ""
        return RateLimitedError(
            f"{eid} rate limit hit{doing}: {detail}{wait}",
            where=url,
            hint="wait and rerun (downloads resume where they stopped); "
            "lower the request rate if it persists",
            retry_after_s=after,
        )
    if isinstance(exc, ccxt.ExchangeNotAvailable):  # includes OnMaintenance
        return ExchangeUnavailableError(
            f"{eid} unavailable{doing}: {detail}",
            where=url,
            hint="the exchange is down or in maintenance; rerun later "
            "(downloads resume where they stopped)",
        )
    if isinstance(exc, ccxt.RequestTimeout):
        return NetworkError(
            f"{eid} did not answer within {exchange.timeout} ms at {base}{doing}",
            hint=f"check your network, raise the timeout, or check {config_key}",
        )
    if isinstance(exc, ccxt.NetworkError):
        return NetworkError(
            f"{eid} unreachable at {base}{doing}: {_network_reason(exc)}",
            hint=f"check your network or {config_key}",
        )
    if isinstance(exc, ccxt.OperationFailed):  # BadResponse, Binance -1000/-1001 …: temporary
        return ExchangeUnavailableError(
            f"{eid} failed to process the request{doing}: {detail}",
            where=url,
            hint="a temporary exchange-side failure; rerun later",
        )
    if isinstance(exc, ccxt.AuthenticationError):  # includes PermissionDenied
        return AuthenticationError(
            f"{eid} rejected the credentials{doing}: {detail}",
            where=url,
            hint=f"check the API key and secret of {eid} (exchanges.{eid}.api_key) "
            "and their permissions",
        )
    if isinstance(exc, ccxt.BadSymbol):
        return BadSymbolError(
            f"{eid} does not know this market{doing}: {detail}",
            where=url,
            hint="check the pair, written BASE/QUOTE as the exchange lists it (e.g. BTC/USDT)",
        )
    return ExchangeError(
        f"{eid} refused the request{doing}: {detail}",
        where=url,
        hint="check the pair, timeframe and dates; retrying will not help",
    )


def _strip_query(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


_URL = re.compile(r"https?://[^\s?]+(\?\S*)?")


def _detail(exc: BaseException, eid: str) -> str:
    """The useful part of a ccxt message: the exchange's ``msg``/``code``, else cleaned text."""
    text = str(exc)
    match = re.search(r"\{.*\}", text, flags=re.DOTALL)
    if match:
        with contextlib.suppress(ValueError):
            body = json.loads(match.group(0))
            if isinstance(body, dict) and "msg" in body:
                msg, code = _clip(str(body["msg"]), 100), body.get("code")
                return f"{msg} (code {code})" if code is not None else msg
    text = _URL.sub(lambda m: m.group(0).split("?", 1)[0], text)
    text = re.sub(rf"^{re.escape(eid)}\s+", "", text.strip())
    text = re.sub(r"^(GET|POST|PUT|DELETE)\s+\S+\s*", "", text)
    return _clip(text or type(exc).__name__)


def _clip(text: str, size: int = _MAX_DETAIL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1] + "…"


def _network_reason(exc: BaseException) -> str:
    """A few words on why a connection failed, from the exception chain."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 12:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "Connection refused" in text:
        return "connection refused"
    if any(isinstance(e, TimeoutError) for e in chain) or "timed out" in text:
        return "timed out"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host name"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "connection closed without a response"
    if any(isinstance(e, ConnectionResetError) for e in chain):
        return "connection reset"
    return type(chain[-1]).__name__


def retry_after_s(exchange: ccxt.Exchange) -> float | None:
    """Seconds the last response asked to wait (its ``Retry-After`` header), or None."""
    headers = getattr(exchange, "last_response_headers", None) or {}
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        value = headers.get("Retry-After") or headers.get("retry-after")
        return float(value) if value is not None else None
    return None


T = TypeVar("T")


def call_ccxt(
    exchange: ccxt.Exchange,
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    action: str,
    on_retry: Callable[[int, TemporaryError, float], None] | None = None,
) -> T:
    """Call ccxt under the retry policy, translating its exceptions at the boundary
    (:func:`translate_ccxt_error`; temporary ones are retried, Retry-After honoured)."""

    def attempt() -> T:
        try:
            return fn()
        except ccxt.BaseError as exc:
            raise translate_ccxt_error(exc, exchange, action=action) from exc

    return retry_call(attempt, policy, what=f"{exchange.id} {action}", on_retry=on_retry)
