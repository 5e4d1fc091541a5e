"""A local stand-in for Binance's spot REST API, for tests that point ccxt at 127.0.0.1.

:class:`FakeBinance` is a threaded HTTP server on an ephemeral port that speaks the parts of the
Binance spot API that market-data code and paper trading need, with Binance's real semantics:

* ``GET /api/v3/ping`` → ``{}``; ``GET /api/v3/time`` → ``{"serverTime": ms}``;
* ``GET /api/v3/exchangeInfo`` → rate limits and one symbol per served market (``status``,
  ``baseAsset``, ``quoteAsset``, precisions, ``PRICE_FILTER``/``LOT_SIZE``/``NOTIONAL``… filters,
  ``permissionSets``);
* ``GET /_fake/clock`` (not Binance: the stand-in's own control) → ``{"serverTime": ms}``; with
  ``set=<ms>`` it first moves a set clock forward to that instant (never backward), so a client in
  another process (a paper run under test) can advance the exchange's time as it "sleeps";
* ``GET /api/v3/klines`` → ``symbol``, ``interval``, ``startTime``, ``endTime`` (both inclusive on
  the open time), ``limit`` (default 500, max 1000); without ``startTime`` the latest bars up to
  ``endTime`` (or "now"). Rows are ``[openTime, "open", "high", "low", "close", "volume", closeTime,
  "quoteVolume", trades, "takerBase", "takerQuote", "0"]``. Errors are Binance's: HTTP 400 with
  ``{"code": -1121, "msg": "Invalid symbol."}``, ``-1120`` for an invalid interval, ``-1130`` for a
  bad limit.

Bars come from bar frames (the OHLCV contract) given per ``(pair, interval)``. The server's clock
(:attr:`FakeBinance.now_ms`) is settable: bars opening after it are not served yet, and the bar open
at that instant is served as the still-open candle (partial close and volume), as Binance does.

Faults are scripted: :meth:`FakeBinance.inject` queues :class:`Fault` responses (429 with
``Retry-After``, 418, 500, 503, a dropped connection) that are served, in order, before normal
answers to the path they name. Every request is counted per path and logged with its parameters.

The server never outlives its test: it stops when its ``with`` block ends, after ``max_lifetime_s``
in any case, and answers 503 once ``max_requests`` requests have been served.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

__all__ = [
    "CLOCK",
    "EXCHANGE_INFO",
    "INTERVALS",
    "KLINES",
    "FakeBinance",
    "Fault",
    "RecordedRequest",
    "SymbolSpec",
    "make_bars",
]

log = logging.getLogger(__name__)

KLINES = "/api/v3/klines"
EXCHANGE_INFO = "/api/v3/exchangeInfo"
#: The stand-in's clock control (not a Binance endpoint): read, or move forward with ``set=<ms>``.
CLOCK = "/_fake/clock"

#: Binance spot intervals with a fixed length, in milliseconds (``1M`` is valid but never served).
INTERVALS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
_VARIABLE_INTERVALS = {"1M"}
_DEFAULT_LIMIT = 500
_MAX_LIMIT = 1000


@dataclass(frozen=True)
class Fault:
    """One scripted response served instead of the normal answer.

    Args:
        status: HTTP status; 0 closes the connection without answering.
        body: response body (JSON text or plain text).
        headers: extra response headers (e.g. ``Retry-After``).
        path: the request path it applies to; None applies to the next request of any path.
    """

    status: int
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    path: str | None = KLINES

    @classmethod
    def rate_limited(cls, retry_after_s: int = 1, *, path: str | None = KLINES) -> Fault:
        """HTTP 429, as Binance answers when the request weight limit is exceeded."""
        body = json.dumps(
            {
                "code": -1003,
                "msg": "Too much request weight used; current limit is 6000 request weight per "
                "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
            }
        )
        return cls(429, body, {"Retry-After": str(retry_after_s)}, path)

    @classmethod
    def banned(cls, retry_after_s: int = 60, *, path: str | None = KLINES) -> Fault:
        """HTTP 418: the IP is auto-banned for continuing to send requests after 429s."""
        body = json.dumps({"code": -1003, "msg": "Way too much request weight used; IP banned."})
        return cls(418, body, {"Retry-After": str(retry_after_s)}, path)

    @classmethod
    def server_error(cls, *, path: str | None = KLINES) -> Fault:
        """HTTP 500 with Binance's "unknown error" body."""
        body = json.dumps(
            {"code": -1000, "msg": "An unknown error occurred while processing the request."}
        )
        return cls(500, body, {}, path)

    @classmethod
    def unavailable(cls, *, path: str | None = KLINES) -> Fault:
        """HTTP 503 with a plain-text body, as a load balancer in front of the API sends."""
        return cls(503, "Service Unavailable", {"Content-Type": "text/plain"}, path)

    @classmethod
    def drop(cls, *, path: str | None = KLINES) -> Fault:
        """Close the connection after reading the request, without any answer."""
        return cls(0, "", {}, path)


@dataclass(frozen=True)
class SymbolSpec:
    """Trading rules published for one symbol in ``exchangeInfo`` (strings, as Binance sends)."""

    tick_size: str = "0.01000000"
    min_price: str = "0.01000000"
    max_price: str = "1000000.00000000"
    step_size: str = "0.00001000"
    min_qty: str = "0.00001000"
    max_qty: str = "9000.00000000"
    min_notional: str = "5.00000000"
    status: str = "TRADING"


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received: path, query parameters (last value wins), arrival time."""

    path: str
    params: dict[str, str]
    monotonic_s: float


@dataclass
class _Series:
    open_ms: np.ndarray
    values: np.ndarray  # (n, 5): open, high, low, close, volume
    interval_ms: int


def make_bars(
    n: int,
    timeframe: str = "5m",
    *,
    start: str | pd.Timestamp = "2024-01-01",
    seed: int = 0,
    price: float = 100.0,
) -> pd.DataFrame:
    """Generate ``n`` plausible bars (contract frame) with prices rounded to cents.

    Args:
        n: number of bars.
        timeframe: a key of :data:`INTERVALS`.
        start: open time of the first bar (UTC).
        seed: random seed; the same arguments give the same bars.
        price: first open price.
    """
    step_ms = INTERVALS[timeframe]
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
    index = pd.date_range(t0, periods=n, freq=pd.Timedelta(milliseconds=step_ms), name="timestamp")
    index = index.as_unit("ns")
    close = np.round(price * np.exp(np.cumsum(rng.normal(0.0, 0.002, n))), 2)
    open_ = np.round(np.concatenate([[price], close[:-1]]), 2)
    spread = np.round(np.abs(rng.normal(0.0, 0.001, n)) * close, 2)
    high = np.round(np.maximum(open_, close) + spread, 2)
    low = np.round(np.maximum(np.minimum(open_, close) - spread, 0.01), 2)
    volume = np.round(rng.lognormal(3.0, 1.0, n), 5)
    frame = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )
    return frame.astype("float64")


def _fmt(x: float) -> str:
    """Binance's 8-decimal strings when exact, else the shortest exact positional form."""
    text = f"{x:.8f}"
    if float(text) != x:
        text = np.format_float_positional(x, unique=True, trim="-")
    return text


def _symbol_id(pair: str) -> tuple[str, str, str]:
    base, quote = pair.upper().replace("_", "/").replace("-", "/").split("/")
    return base + quote, base, quote


def _series(frame: pd.DataFrame, interval: str) -> _Series:
    if interval not in INTERVALS:
        raise ValueError(f"interval {interval!r} is not served; use one of {', '.join(INTERVALS)}")
    df = frame
    if not isinstance(df.index, pd.DatetimeIndex):
        df = df.set_index("timestamp")
    index = pd.DatetimeIndex(df.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    open_ms = index.as_unit("ms").asi8.astype(np.int64)
    if len(open_ms) > 1 and not bool(np.all(np.diff(open_ms) > 0)):
        raise ValueError("bars must have strictly increasing timestamps")
    cols = [df[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")]
    return _Series(open_ms, np.column_stack(cols), INTERVALS[interval])


class FakeBinance:
    """Threaded local Binance spot REST stand-in; use it as a context manager.

    Args:
        bars: bar frames keyed by ``(pair, interval)``, e.g. ``{("BTC/USDT", "5m"): frame}``.
        extra_symbols: pairs listed in ``exchangeInfo`` without bars (their klines are empty).
        specs: per-pair trading rules for ``exchangeInfo`` (default :class:`SymbolSpec`).
        now_ms: the server clock in epoch ms; None follows the real clock.
        min_klines_interval_s: when set, a klines request arriving sooner than this after the
            previous one gets HTTP 429, like an exchange enforcing its request rate.
        max_requests: requests served normally before every answer becomes 503 (a runaway
            client stops instead of spinning).
        max_lifetime_s: the server shuts itself down after this many seconds in any case.
    """

    def __init__(
        self,
        bars: Mapping[tuple[str, str], pd.DataFrame] | None = None,
        *,
        extra_symbols: Iterable[str] = (),
        specs: Mapping[str, SymbolSpec] | None = None,
        now_ms: int | None = None,
        min_klines_interval_s: float | None = None,
        max_requests: int = 10_000,
        max_lifetime_s: float = 120.0,
    ) -> None:
        self.now_ms = now_ms
        self.min_klines_interval_s = min_klines_interval_s
        self.max_requests = max_requests
        self.max_lifetime_s = max_lifetime_s
        self.requests: Counter[str] = Counter()
        self.log: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._last_klines_at: float | None = None
        self._series: dict[tuple[str, str], _Series] = {}
        self._symbols: dict[str, tuple[str, str, SymbolSpec]] = {}
        self._specs = dict(specs or {})
        for (pair, interval), frame in (bars or {}).items():
            self.set_bars(pair, interval, frame)
        for pair in extra_symbols:
            self._add_symbol(pair)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # ----------------------------------------------------------------- configuration
    def set_bars(self, pair: str, interval: str, frame: pd.DataFrame) -> None:
        """Serve ``frame`` (contract frame or ``timestamp`` column) for ``pair`` at ``interval``."""
        symbol = self._add_symbol(pair)
        series = _series(frame, interval)
        with self._lock:
            self._series[(symbol, interval)] = series

    def _add_symbol(self, pair: str) -> str:
        symbol, base, quote = _symbol_id(pair)
        spec = self._specs.get(pair, SymbolSpec())
        with self._lock:
            self._symbols[symbol] = (base, quote, spec)
        return symbol

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each is served once, in order, to the next request matching its path."""
        with self._lock:
            self._faults.extend(faults)

    @property
    def pending_faults(self) -> int:
        """Faults queued and not yet served."""
        with self._lock:
            return len(self._faults)

    def klines_requests(self) -> list[dict[str, str]]:
        """Parameters of every klines request received, in order."""
        with self._lock:
            return [r.params for r in self.log if r.path == KLINES]

    def clock_ms(self) -> int:
        """The server clock: :attr:`now_ms` when set, else the real time."""
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def advance_to(self, ms: int) -> int:
        """Move a set clock forward to ``ms`` (never backward); returns the clock.

        Raises:
            RuntimeError: the clock follows the real time (``now_ms`` is None).
        """
        with self._lock:
            if self.now_ms is None:
                raise RuntimeError("the clock follows the real time; set now_ms to control it")
            self.now_ms = max(self.now_ms, int(ms))
            return self.now_ms

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        if self._server is None:
            raise RuntimeError("the server is not running: use it in a `with` block")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> FakeBinance:
        """Bind 127.0.0.1 on an ephemeral port and serve in a background thread."""
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._timer = threading.Timer(self.max_lifetime_s, self._expire)
        self._timer.daemon = True
        self._timer.start()
        log.debug("fake binance serving at %s", self.base_url)
        return self

    def _expire(self) -> None:
        log.warning(
            "fake binance reached its lifetime of %.0fs: shutting down", self.max_lifetime_s
        )
        if self._server is not None:
            self._server.shutdown()

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeBinance:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- request handling
    def _record(self, path: str, params: dict[str, str]) -> tuple[Fault | None, bool]:
        """Count the request; return the fault to serve (if any) and whether the budget is spent."""
        now = time.monotonic()
        with self._lock:
            self.requests[path] += 1
            self.log.append(RecordedRequest(path, params, now))
            spent = len(self.log) > self.max_requests
            for i, fault in enumerate(self._faults):
                if fault.path is None or fault.path == path:
                    del self._faults[i]
                    return fault, spent
            if path == KLINES and self.min_klines_interval_s is not None:
                last, self._last_klines_at = self._last_klines_at, now
                if last is not None and now - last < self.min_klines_interval_s:
                    return Fault.rate_limited(1), spent
            return None, spent

    def respond(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        """The normal answer to ``path`` with ``params``: (HTTP status, JSON-able body)."""
        if path == "/api/v3/ping":
            return 200, {}
        if path == "/api/v3/time":
            return 200, {"serverTime": self.clock_ms()}
        if path == EXCHANGE_INFO:
            return 200, self._exchange_info()
        if path == KLINES:
            return self._klines(params)
        if path == CLOCK:
            return self._clock(params)
        return 404, None

    def _clock(self, params: dict[str, str]) -> tuple[int, Any]:
        if "set" in params:
            try:
                target = int(params["set"])
            except ValueError:
                return 400, _err(-1100, "Illegal characters found in parameter 'set'.")
            if self.now_ms is None:
                return 400, _err(-1000, "the stand-in's clock follows the real time")
            self.advance_to(target)
        return 200, {"serverTime": self.clock_ms()}

    def _exchange_info(self) -> dict[str, Any]:
        with self._lock:
            symbols = sorted(self._symbols.items())
        return {
            "timezone": "UTC",
            "serverTime": self.clock_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],
            "exchangeFilters": [],
            "symbols": [
                _symbol_info(sym, base, quote, spec) for sym, (base, quote, spec) in symbols
            ],
        }

    def _klines(self, params: dict[str, str]) -> tuple[int, Any]:
        symbol = params.get("symbol", "")
        interval = params.get("interval", "")
        if not symbol:
            return 400, _err(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null.")
        if not interval:
            return 400, _err(-1102, "Mandatory parameter 'interval' was not sent.")
        with self._lock:
            known = symbol in self._symbols
            series = self._series.get((symbol, interval))
        if not known:
            return 400, _err(-1121, "Invalid symbol.")
        if interval not in INTERVALS and interval not in _VARIABLE_INTERVALS:
            return 400, _err(-1120, "Invalid interval.")
        try:
            limit = int(params.get("limit", _DEFAULT_LIMIT))
            start = int(params["startTime"]) if "startTime" in params else None
            end = int(params["endTime"]) if "endTime" in params else None
        except ValueError:
            return 400, _err(-1100, "Illegal characters found in a parameter.")
        if not 1 <= limit <= _MAX_LIMIT:
            return 400, _err(-1130, "Data sent for parameter 'limit' is not valid.")
        if start is not None and end is not None and start > end:
            return 400, _err(-1023, "Start time is greater than end time.")
        if series is None:
            return 200, []
        now = self.clock_ms()
        t = series.open_ms
        hi = int(np.searchsorted(t, now, side="right"))  # nothing opening after now
        if end is not None:
            hi = min(hi, int(np.searchsorted(t, end, side="right")))
        if start is not None:
            lo = int(np.searchsorted(t, start, side="left"))
            hi = min(hi, lo + limit)
        else:
            lo = max(0, hi - limit)
        rows = [
            _kline_row(int(t[i]), series.values[i], series.interval_ms, now) for i in range(lo, hi)
        ]
        return 200, rows


def _err(code: int, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg}


def _kline_row(open_ms: int, v: np.ndarray, interval_ms: int, now: int) -> list[Any]:
    o, h, low, c, vol = (float(x) for x in v)
    if open_ms + interval_ms > now:  # still open: partial close/volume so far
        frac = (now - open_ms + 1) / interval_ms
        c = round(o + (c - o) * frac, 8)
        vol = round(vol * frac, 8)
        h, low = max(o, c), min(o, c)
    trades = max(1, int(vol * 7))
    return [
        open_ms,
        _fmt(o),
        _fmt(h),
        _fmt(low),
        _fmt(c),
        _fmt(vol),
        open_ms + interval_ms - 1,
        _fmt(round(vol * c, 8)),
        trades,
        _fmt(round(vol / 2, 8)),
        _fmt(round(vol * c / 2, 8)),
        "0",
    ]


def _symbol_info(symbol: str, base: str, quote: str, spec: SymbolSpec) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "status": spec.status,
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": [
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
        ],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": spec.min_price,
                "maxPrice": spec.max_price,
                "tickSize": spec.tick_size,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": spec.min_qty,
                "maxQty": spec.max_qty,
                "stepSize": spec.step_size,
            },
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": spec.max_qty,
                "stepSize": "0.00000000",
            },
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": 10,
                "maxTrailingAboveDelta": 2000,
                "minTrailingBelowDelta": 10,
                "maxTrailingBelowDelta": 2000,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": "5",
                "bidMultiplierDown": "0.2",
                "askMultiplierUp": "5",
                "askMultiplierDown": "0.2",
                "avgPriceMins": 5,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": spec.min_notional,
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN", "TRD_GRP_004", "TRD_GRP_005", "TRD_GRP_006"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": [
            "EXPIRE_TAKER",
            "EXPIRE_MAKER",
            "EXPIRE_BOTH",
            "DECREMENT",
        ],
    }


class _Handler(BaseHTTPRequestHandler):
    """Routes GET requests to the owning :class:`FakeBinance` (set as a class attribute)."""

    fake: FakeBinance
    protocol_version = "HTTP/1.1"
    server_version = "FakeBinance/1.0"
    timeout = 10  # a stuck client never pins a handler thread for long

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(split.query).items()}
        fault, spent = self.fake._record(split.path, params)
        if fault is not None:
            if fault.status == 0:
                self.close_connection = True  # read, never answer: the client sees a reset
                return
            self._send(fault.status, fault.body.encode(), fault.headers)
            return
        if spent:
            self._send(503, b"stand-in request budget exhausted", {"Content-Type": "text/plain"})
            return
        status, body = self.fake.respond(split.path, params)
        if body is None:
            self._send(status, b"Not Found", {"Content-Type": "text/plain"})
        else:
            self._send(status, json.dumps(body, separators=(",", ":")).encode(), {})

    def _send(self, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        if not any(k.lower() == "content-type" for k in headers):
            self.send_header("Content-Type", "application/json;charset=UTF-8")
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("fake binance: %s", format % args)
