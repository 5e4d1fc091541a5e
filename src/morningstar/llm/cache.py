"""The replay cache of LLM answers (architecture principle 4).

Every LLM call goes through the gateway, which looks the request up here by
:func:`cache_key`: the SHA-256 of the canonical JSON of (prompt template id and version,
provider, model, messages, JSON schema, temperature, seed). Modes (``llm.cache_mode``):

* ``record``: answers are looked up, and new ones stored. The first recording of a key wins:
  storing the same key again keeps the first answer, so replays stay byte-identical.
* ``replay``: answers are only looked up; a miss is an error (:meth:`ReplayCache.miss`), for CI
  and published backtests.
* ``off``: nothing is looked up or stored.

The cache lives in the ``llm_cache`` table of the database (SQLite or PostgreSQL; two processes
recording the same key at once is safe: ``INSERT ... ON CONFLICT DO NOTHING``), or in memory
when no database is given. A recorded session is published as JSON lines
(:meth:`ReplayCache.export_jsonl`) and replayed elsewhere after :meth:`ReplayCache.import_jsonl`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from morningstar.errors import LLMCacheMiss, StorageError, UserInputError
from morningstar.llm.types import Message, Usage
from morningstar.store.db import Database
from morningstar.store.models import LLMCacheRow

__all__ = ["CacheMode", "CachedAnswer", "ReplayCache", "cache_key", "canonical_json"]

logger = logging.getLogger(__name__)

CacheMode = Literal["record", "replay", "off"]
_MODES = ("record", "replay", "off")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no whitespace, floats by ``repr``, non-ASCII kept; NaN refused."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def cache_key(
    *,
    template_id: str,
    template_version: int,
    provider: str,
    model: str,
    messages: Sequence[Message],
    json_schema: Mapping[str, Any] | None,
    temperature: float,
    seed: int | None,
) -> str:
    """The replay-cache key of a request: SHA-256 hex of the canonical JSON of these fields.

    ``temperature`` is taken as a float (``0`` and ``0.0`` give the same key); ``messages`` as
    ``{"role", "content"}`` objects in order. Nothing else (timeouts, max_tokens, the caller,
    the inputs) is part of the key: the messages already carry the rendered inputs.
    """
    rest = {
        "template_id": template_id,
        "template_version": int(template_version),
        "provider": provider,
        "model": model,
        "messages": [m.to_dict() for m in messages],
        "temperature": float(temperature),
        "seed": seed,
    }
    # "json_schema" sorts first: splicing its (memoised) canonical text in front of the other
    # fields gives exactly canonical_json() of the whole mapping, without re-serialising the
    # same schema on every call
    schema = "null" if json_schema is None else _schema_json(json_schema)
    text = '{"json_schema":' + schema + "," + canonical_json(rest)[1:]
    return _sha256_hex(text.encode("utf-8"))


#: hashlib releases the GIL for inputs of 2,048 bytes and more; re-acquiring it then waits
#: behind any busy thread (the monitor's writer), which costs a call far more than the hash.
_GIL_FREE_CHUNK = 2_047


def _sha256_hex(data: bytes) -> str:
    """SHA-256 hex digest, fed in chunks small enough that hashlib keeps the GIL."""
    digest = hashlib.sha256()
    view = memoryview(data)
    for start in range(0, len(view), _GIL_FREE_CHUNK):
        digest.update(view[start : start + _GIL_FREE_CHUNK])
    return digest.hexdigest()


_SCHEMA_TEXT: dict[int, tuple[Mapping[str, Any], str]] = {}
_SCHEMA_MEMO_SIZE = 64


def _schema_json(json_schema: Mapping[str, Any]) -> str:
    """``canonical_json`` of a schema, memoised by identity.

    The gateway passes the same (never mutated) schema object for every request of a schema
    class; the memo holds a reference to it, so its ``id`` cannot be reused by another object
    while memoised. Callers must not mutate a schema mapping after passing it.
    """
    hit = _SCHEMA_TEXT.get(id(json_schema))
    if hit is not None and hit[0] is json_schema:
        return hit[1]
    text = canonical_json(dict(json_schema))
    if len(_SCHEMA_TEXT) >= _SCHEMA_MEMO_SIZE:
        _SCHEMA_TEXT.clear()
    _SCHEMA_TEXT[id(json_schema)] = (json_schema, text)
    return text


@dataclass(frozen=True)
class CachedAnswer:
    """One recorded answer.

    Args:
        key: :func:`cache_key` of the request.
        template_id, template_version, provider, model: as in the key.
        request: ``{"messages": [{"role", "content"}...], "schema": <json schema> | None,
            "temperature": float, "seed": int | None}``: what the key was computed from.
        raw_text: the answer exactly as the provider sent it.
        parsed: the validated structured answer (``model_dump(mode="json")``), or None.
        usage: the tokens of the recorded call.
        latency_s: the recorded call's latency, in seconds.
        created_at: when it was recorded (aware UTC).
    """

    key: str
    template_id: str
    template_version: int
    provider: str
    model: str
    request: Mapping[str, Any]
    raw_text: str
    parsed: Mapping[str, Any] | None
    usage: Usage
    latency_s: float
    created_at: datetime

    def expected_key(self) -> str:
        """Recompute the key from ``request`` and the names (an integrity check)."""
        return cache_key(
            template_id=self.template_id,
            template_version=self.template_version,
            provider=self.provider,
            model=self.model,
            messages=[Message(m["role"], m["content"]) for m in self.request["messages"]],
            json_schema=self.request.get("schema"),
            temperature=self.request["temperature"],
            seed=self.request.get("seed"),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping (``created_at`` in ISO 8601)."""
        return {
            "key": self.key,
            "template_id": self.template_id,
            "template_version": self.template_version,
            "provider": self.provider,
            "model": self.model,
            "request": dict(self.request),
            "raw_text": self.raw_text,
            "parsed": dict(self.parsed) if self.parsed is not None else None,
            "usage": self.usage.to_dict(),
            "latency_s": self.latency_s,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CachedAnswer:
        """The inverse of :meth:`to_dict`.

        Raises:
            ValueError: a field is missing or has the wrong type.
        """
        try:
            created = datetime.fromisoformat(data["created_at"])
            request = data["request"]
            if created.utcoffset() is None:
                raise ValueError("created_at has no UTC offset")
            if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
                raise ValueError("request must hold a messages list")
            parsed = data["parsed"]
            if parsed is not None and not isinstance(parsed, dict):
                raise ValueError("parsed must be an object or null")
            return cls(
                key=str(data["key"]),
                template_id=str(data["template_id"]),
                template_version=int(data["template_version"]),
                provider=str(data["provider"]),
                model=str(data["model"]),
                request=request,
                raw_text=_text(data["raw_text"]),
                parsed=parsed,
                usage=Usage.from_dict(data["usage"]),
                latency_s=float(data["latency_s"]),
                created_at=created,
            )
        except KeyError as exc:
            raise ValueError(f"missing field {exc.args[0]!r}") from exc
        except TypeError as exc:
            raise ValueError(str(exc)) from exc


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("raw_text must be a string")
    return value


def _from_row(row: LLMCacheRow) -> CachedAnswer:
    return CachedAnswer(
        key=row.key,
        template_id=row.template_id,
        template_version=row.template_version,
        provider=row.provider,
        model=row.model,
        request=row.request,
        raw_text=row.raw_text,
        parsed=row.parsed,
        usage=Usage.from_dict(row.usage),
        latency_s=row.latency_s,
        created_at=row.created_at,
    )


def _row_values(answer: CachedAnswer) -> dict[str, Any]:
    return {
        "key": answer.key,
        "template_id": answer.template_id,
        "template_version": answer.template_version,
        "provider": answer.provider,
        "model": answer.model,
        "request": dict(answer.request),
        "raw_text": answer.raw_text,
        "parsed": dict(answer.parsed) if answer.parsed is not None else None,
        "usage": answer.usage.to_dict(),
        "latency_s": answer.latency_s,
        "created_at": answer.created_at,
    }


#: Recorded answers kept in memory per cache when a database holds them all.
MEMO_SIZE = 1_024


class ReplayCache:
    """The replay cache: in the database, or in memory when ``db`` is None. Thread-safe.

    Args:
        db: the database holding the ``llm_cache`` table (migrated), or None for memory only.
        mode: ``record``, ``replay`` or ``off`` (see the module docstring).

    Raises:
        ValueError: an unknown mode.
    """

    def __init__(self, db: Database | None, mode: CacheMode) -> None:
        if mode not in _MODES:
            raise ValueError(f"cache mode must be one of {', '.join(_MODES)}, got {mode!r}")
        self.db = db
        self.mode: CacheMode = mode
        self._lock = threading.Lock()
        # Answers are immutable once recorded (first recording wins), so memoising is safe.
        # With a database it is a bounded LRU (the table is the store); without one, the store.
        self._memo: OrderedDict[str, CachedAnswer] = OrderedDict()

    def lookup(self, key: str) -> CachedAnswer | None:
        """The recorded answer of ``key``, or None (always None in ``off`` mode).

        Raises:
            StorageError: the database failed.
        """
        if self.mode == "off":
            return None
        with self._lock:
            found = self._memo.get(key)
        if found is not None or self.db is None:
            return found
        with self.db.session(readonly=True) as s:
            row = s.get(LLMCacheRow, key)
            found = _from_row(row) if row is not None else None
        if found is not None:
            found = self._remember(found)
        return found

    def _remember(self, answer: CachedAnswer) -> CachedAnswer:
        """Memoise ``answer`` (the one already memoised wins); evict the least recent."""
        with self._lock:
            known = self._memo.get(answer.key)
            if known is not None:
                self._memo.move_to_end(answer.key)
                return known
            self._memo[answer.key] = answer
            if self.db is not None and len(self._memo) > MEMO_SIZE:
                self._memo.popitem(last=False)
            return answer

    def store(self, answer: CachedAnswer) -> bool:
        """Record ``answer`` (``record`` mode only; a no-op otherwise).

        The first recording of a key wins: when the key is already recorded (by this process or
        another one) the stored answer is kept and this one dropped.

        Returns:
            True when this call recorded the answer.

        Raises:
            ValueError: ``answer.key`` is not the key of its own request and names (a caller
                bug: such a recording could never be replayed or imported).
            StorageError: the database failed.
        """
        if answer.expected_key() != answer.key:
            raise ValueError(
                f"answer {answer.key[:12]}: the key is not cache_key() of its template, provider, "
                "model and request (store the model name the key was computed with)"
            )
        if self.mode != "record":
            logger.debug("cache mode %s: answer %s not recorded", self.mode, answer.key[:12])
            return False
        return self._insert(answer)

    def _insert(self, answer: CachedAnswer) -> bool:
        with self._lock:
            if answer.key in self._memo:
                return False
            if self.db is None:
                self._memo[answer.key] = answer
                return True
        inserted = self._insert_row(self.db, answer)
        if not inserted:
            # Another process recorded it first; lookup() will return (and memoise) theirs.
            logger.debug("answer %s already recorded: the first recording is kept", answer.key[:12])
            return False
        self._remember(answer)
        return True

    @staticmethod
    def _insert_row(db: Database, answer: CachedAnswer) -> bool:
        """``INSERT ... ON CONFLICT (key) DO NOTHING``; True when the row was inserted.

        PostgreSQL: ``RETURNING key`` tells (psycopg reports no row count here). SQLite: the
        driver's row count (no ``RETURNING``, which needs SQLite 3.35).
        """
        values = _row_values(answer)
        with db.session() as s:
            conn = s.connection()
            if db.backend == "postgresql":
                pg = (
                    postgresql.insert(LLMCacheRow)
                    .values(**values)
                    .on_conflict_do_nothing(index_elements=["key"])
                )
                return conn.execute(pg.returning(LLMCacheRow.key)).first() is not None
            lite = (
                sqlite.insert(LLMCacheRow)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            return conn.execute(lite).rowcount == 1

    def miss(self, key: str, where: str) -> LLMCacheMiss:
        """The error of a replay-mode miss for ``key`` (the gateway raises it)."""
        return LLMCacheMiss(
            f"replay mode and no recorded answer for this request (key {key[:16]}…)",
            where=where,
            hint="record first: run once with llm.cache_mode: record, or import a recorded "
            "session file; a changed prompt, template version, model, schema, temperature or "
            "seed is a new key",
        )

    def __len__(self) -> int:
        """Number of recorded answers.

        Raises:
            StorageError: the database failed.
        """
        if self.db is None:
            with self._lock:
                return len(self._memo)
        with self.db.session(readonly=True) as s:
            return int(s.scalar(sa.select(sa.func.count()).select_from(LLMCacheRow)) or 0)

    def _all(self) -> list[CachedAnswer]:
        if self.db is None:
            with self._lock:
                return [self._memo[k] for k in sorted(self._memo)]
        with self.db.session(readonly=True) as s:
            rows = s.scalars(sa.select(LLMCacheRow).order_by(LLMCacheRow.key)).all()
            return [_from_row(row) for row in rows]

    def export_jsonl(self, path: Path) -> int:
        """Write every recorded answer to ``path``, one JSON object per line, sorted by key.

        Returns:
            The number of answers written.

        Raises:
            StorageError: the database failed or the file cannot be written.
        """
        answers = self._all()
        try:
            with path.open("w", encoding="utf-8", newline="\n") as fh:
                for answer in answers:
                    # Not sorted: the order of ``parsed`` and ``request`` is kept as recorded.
                    line = json.dumps(answer.to_dict(), ensure_ascii=False, separators=(",", ":"))
                    fh.write(line + "\n")
        except OSError as exc:
            raise StorageError(
                f"cannot write the replay cache to {path}: {exc.strerror or type(exc).__name__}",
                hint="choose a writable path",
            ) from exc
        logger.info("exported %d recorded LLM answers to %s", len(answers), path)
        return len(answers)

    def import_jsonl(self, path: Path) -> int:
        """Add the answers of a file written by :meth:`export_jsonl` (in any mode).

        Each line's key is checked against its request; already recorded keys keep their first
        recording. The whole file is checked before anything is added.

        Returns:
            The number of answers added (already recorded ones are not counted).

        Raises:
            UserInputError: the file cannot be read, or a line is not a valid recorded answer
                (named ``path:line``).
            StorageError: the database failed.
        """
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise UserInputError(
                f"cannot read the replay-cache file: {reason or type(exc).__name__}",
                where=str(path),
            ) from exc
        answers: list[CachedAnswer] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                answer = CachedAnswer.from_dict(json.loads(line))
                expected = answer.expected_key()
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise UserInputError(
                    f"not a recorded LLM answer: {exc}",
                    where=where,
                    hint="the file must come from ReplayCache.export_jsonl",
                ) from exc
            if expected != answer.key:
                raise UserInputError(
                    "the key does not match the recorded request (the line was edited?)",
                    where=where,
                    hint="re-export the session from the recording database",
                )
            answers.append(answer)
        added = sum(1 for answer in answers if self._insert(answer))
        logger.info("imported %d of %d LLM answers from %s", added, len(answers), path)
        return added
