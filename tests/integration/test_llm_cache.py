"""The replay cache on SQLite, PostgreSQL and in memory: keys, record/replay/off, first
recording wins, concurrent stores, export and import."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from morningstar.errors import LLMCacheMiss, StorageError, UserInputError
from morningstar.llm.cache import CachedAnswer, CacheMode, ReplayCache, cache_key
from morningstar.llm.schemas import MarketAssessment
from morningstar.llm.structured import json_schema_for
from morningstar.llm.types import Message, Usage
from morningstar.store import open_database

MESSAGES = (
    Message("system", "You are the risk supervisor."),
    Message("user", "Proposed trade on BTC/USDT…\n- RSI: 61.2"),
)
KEY_FIELDS: dict[str, Any] = {
    "template_id": "market_assessment",
    "template_version": 1,
    "provider": "openai",
    "model": "gpt-4o-mini",
    "messages": MESSAGES,
    "json_schema": {"type": "object", "properties": {"x": {"type": "number", "maximum": 1.0}}},
    "temperature": 0.0,
    "seed": 0,
}
# Odd bytes on purpose: they must come back exactly.
RAW = '  {"verdict": "reduce", "reasons": ["tendance haussière ✓ — 🚀", "a\\tb"]}\n\n  trailing  '
PARSED = {
    "verdict": "reduce",
    "confidence": 0.1,
    "coherence": 1e-07,
    "size_multiplier": 0.30000000000000004,
    "reasons": ["tendance haussière ✓ — 🚀"],
    "z_first_key_order": True,
    "a_kept_as_recorded": None,
}


def _answer(raw_text: str = RAW, **changes: Any) -> CachedAnswer:
    fields = {**KEY_FIELDS, **changes}
    request = {
        "messages": [m.to_dict() for m in fields["messages"]],
        "schema": fields["json_schema"],
        "temperature": fields["temperature"],
        "seed": fields["seed"],
    }
    return CachedAnswer(
        key=cache_key(**fields),
        template_id=fields["template_id"],
        template_version=fields["template_version"],
        provider=fields["provider"],
        model=fields["model"],
        request=request,
        raw_text=raw_text,
        parsed=PARSED,
        usage=Usage(input_tokens=321, output_tokens=45, cached_input_tokens=None),
        latency_s=1.234567,
        created_at=datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
    )


# -- cache_key -----------------------------------------------------------------------------------


def test_cache_key_is_sha256_of_canonical_json() -> None:
    canonical = (
        '{"json_schema":{"properties":{"x":{"maximum":1.0,"type":"number"}},"type":"object"},'
        '"messages":[{"content":"You are the risk supervisor.","role":"system"},'
        '{"content":"Proposed trade on BTC/USDT…\\n- RSI: 61.2","role":"user"}],'
        '"model":"gpt-4o-mini","provider":"openai","seed":0,"temperature":0.0,'
        '"template_id":"market_assessment","template_version":1}'
    )
    assert cache_key(**KEY_FIELDS) == hashlib.sha256(canonical.encode()).hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        {"template_id": "ask"},
        {"template_version": 2},
        {"provider": "ollama"},
        {"model": "gpt-4o"},
        {"messages": MESSAGES[::-1]},
        {"messages": (*MESSAGES[:1], Message("user", "Proposed trade on BTC/USDT…\n- RSI: 61.3"))},
        {"json_schema": None},
        {"temperature": 0.2},
        {"seed": None},
        {"seed": 1},
    ],
    ids=lambda c: next(iter(c)),
)
def test_every_field_changes_the_key(change: dict[str, Any]) -> None:
    assert cache_key(**{**KEY_FIELDS, **change}) != cache_key(**KEY_FIELDS)


def test_equivalent_requests_share_a_key() -> None:
    assert cache_key(**{**KEY_FIELDS, "temperature": 0}) == cache_key(**KEY_FIELDS)
    reordered = {"properties": {"x": {"maximum": 1.0, "type": "number"}}, "type": "object"}
    assert cache_key(**{**KEY_FIELDS, "json_schema": reordered}) == cache_key(**KEY_FIELDS)
    assert cache_key(**{**KEY_FIELDS, "messages": list(MESSAGES)}) == cache_key(**KEY_FIELDS)
    real = {**KEY_FIELDS, "json_schema": json_schema_for(MarketAssessment)}
    assert cache_key(**real) == cache_key(
        **{**real, "json_schema": json_schema_for(MarketAssessment)}
    )


def test_answer_key_integrity() -> None:
    answer = _answer()
    assert answer.expected_key() == answer.key
    assert CachedAnswer.from_dict(answer.to_dict()) == answer


# -- the cache on each back-end ------------------------------------------------------------------

MakeCache = Callable[[CacheMode], ReplayCache]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory"])
def make_cache(request: pytest.FixtureRequest) -> Iterator[MakeCache]:
    """Caches sharing one store: SQLite, the real PostgreSQL (as ``db_url``), or memory."""
    if request.param == "memory":
        shared = ReplayCache(None, "record")

        def memory(mode: CacheMode) -> ReplayCache:
            cache = ReplayCache(None, mode)
            cache._memo = shared._memo  # same process, same store
            return cache

        yield memory
        return
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    db = open_database(url)
    try:
        yield lambda mode: ReplayCache(db, mode)
    finally:
        db.dispose()


def test_store_lookup_round_trip_is_byte_identical(make_cache: MakeCache) -> None:
    answer = _answer()
    assert make_cache("record").store(answer) is True
    found = make_cache("replay").lookup(answer.key)  # a fresh instance: read from the store
    assert found == answer
    assert found is not None
    assert found.raw_text == RAW
    assert json.dumps(found.parsed) == json.dumps(PARSED)  # values and key order
    assert found.usage == Usage(321, 45, None)
    assert found.created_at == answer.created_at
    assert found.created_at.utcoffset() is not None


def test_first_recording_wins(make_cache: MakeCache) -> None:
    first, second = _answer("first"), _answer("second")
    cache = make_cache("record")
    assert cache.store(first) is True
    assert cache.store(second) is False
    other_process = make_cache("record")
    assert other_process.store(second) is False
    assert other_process.lookup(first.key) == first
    assert make_cache("replay").lookup(first.key) == first
    assert len(make_cache("replay")) == 1


def test_threads_storing_the_same_key(make_cache: MakeCache) -> None:
    caches = [make_cache("record") for _ in range(2)]  # two "processes", four threads each
    start = threading.Barrier(8)
    results: list[bool] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        start.wait()
        try:
            results.append(caches[i % 2].store(_answer(f"answer {i}")))
        except BaseException as exc:  # pragma: no cover - the test fails below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [False] * 7 + [True]
    winner = make_cache("replay").lookup(_answer().key)
    assert winner is not None
    assert all(c.lookup(winner.key) == winner for c in caches)
    assert len(make_cache("replay")) == 1


def test_replay_mode(make_cache: MakeCache) -> None:
    answer = _answer()
    replay = make_cache("replay")
    assert replay.lookup(answer.key) is None
    assert replay.store(answer) is False  # replay never records
    assert len(replay) == 0
    make_cache("record").store(answer)
    assert replay.lookup(answer.key) == answer
    miss = replay.miss("0" * 64, "supervisor: market_assessment@1")
    assert isinstance(miss, LLMCacheMiss)
    assert miss.status == "cache_miss"
    assert str(miss).startswith(
        "supervisor: market_assessment@1: replay mode and no recorded answer"
    )
    assert "llm.cache_mode: record" in str(miss)
    assert "\n" not in str(miss)


def test_off_mode(make_cache: MakeCache) -> None:
    answer = _answer()
    make_cache("record").store(answer)
    off = make_cache("off")
    assert off.lookup(answer.key) is None
    assert off.store(_answer("other", seed=5)) is False
    assert len(make_cache("replay")) == 1


def test_export_import_round_trip(make_cache: MakeCache, tmp_path: Path) -> None:
    answers = [_answer(f"answer {i}", seed=i) for i in range(5)]
    recorder = make_cache("record")
    for answer in answers:
        recorder.store(answer)
    path = tmp_path / "session.jsonl"
    assert recorder.export_jsonl(path) == 5
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["key"] for line in lines] == sorted(a.key for a in answers)

    ci = ReplayCache(None, "replay")  # CI: replay from the published file, no database
    assert ci.import_jsonl(path) == 5
    assert ci.import_jsonl(path) == 0  # already there
    for answer in answers:
        found = ci.lookup(answer.key)
        assert found == answer
        assert found is not None and json.dumps(found.parsed) == json.dumps(PARSED)
    again = tmp_path / "again.jsonl"
    ci.export_jsonl(again)
    assert again.read_bytes() == path.read_bytes()  # export → import → export is stable


def test_import_keeps_first_recording(make_cache: MakeCache, tmp_path: Path) -> None:
    mine = _answer("mine")
    cache = make_cache("record")
    cache.store(mine)
    theirs = ReplayCache(None, "record")
    theirs.store(_answer("theirs"))
    path = tmp_path / "theirs.jsonl"
    theirs.export_jsonl(path)
    assert cache.import_jsonl(path) == 0
    assert cache.lookup(mine.key) == mine


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not a recorded LLM answer"),
        ('{"key": "x"}', "not a recorded LLM answer: missing field 'created_at'"),
        ("[1, 2]", "not a recorded LLM answer"),
    ],
)
def test_import_rejects_bad_lines(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps(_answer().to_dict())
    path.write_text(f"{good}\n\n{line}\n", encoding="utf-8")
    cache = ReplayCache(None, "replay")
    with pytest.raises(UserInputError, match=f"^{path}:3: {message}"):
        cache.import_jsonl(path)
    assert len(cache) == 0  # nothing is added from a bad file


def test_import_rejects_an_edited_answer(tmp_path: Path) -> None:
    edited = _answer().to_dict()
    edited["request"]["temperature"] = 0.7  # the key no longer matches
    path = tmp_path / "edited.jsonl"
    path.write_text(json.dumps(edited) + "\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="key does not match the recorded request"):
        ReplayCache(None, "replay").import_jsonl(path)


def test_import_missing_file_and_export_to_bad_path(tmp_path: Path) -> None:
    cache = ReplayCache(None, "record")
    with pytest.raises(UserInputError, match="cannot read the replay-cache file"):
        cache.import_jsonl(tmp_path / "absent.jsonl")
    with pytest.raises(StorageError, match="cannot write the replay cache"):
        cache.export_jsonl(tmp_path / "no" / "such" / "dir.jsonl")


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="cache mode must be one of record, replay, off"):
        ReplayCache(None, "replay-all")  # type: ignore[arg-type]


def test_recordings_survive_reopening(db_url: str) -> None:
    answer = replace(_answer(), latency_s=0.5)
    db = open_database(db_url)
    try:
        ReplayCache(db, "record").store(answer)
    finally:
        db.dispose()
    db = open_database(db_url)
    try:
        assert ReplayCache(db, "replay").lookup(answer.key) == answer
    finally:
        db.dispose()


RECORDER = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from morningstar.llm.cache import ReplayCache
from morningstar.store import open_database
from test_llm_cache import _answer

url, tag, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
db = open_database(url)
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("recorder " + tag + ": no start signal")
    time.sleep(0.002)
cache = ReplayCache(db, "record")
won = sum(cache.store(_answer(tag + " " + str(i), seed=i)) for i in range(40))
db.dispose()
print(won)
"""


def test_two_processes_record_the_same_keys(db_url: str, tmp_path: Path) -> None:
    open_database(db_url).dispose()  # migrate once, before the race
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    here = str(Path(__file__).resolve().parent)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RECORDER, db_url, tag, str(go), here],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for tag in ("a", "b")
    ]
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    assert sum(int(out) for out, _ in outputs) == 40  # every key recorded exactly once
    db = open_database(db_url)
    try:
        cache = ReplayCache(db, "replay")
        assert len(cache) == 40
        for i in range(40):
            found = cache.lookup(_answer(seed=i).key)
            assert found is not None and found.raw_text in {f"a {i}", f"b {i}"}
    finally:
        db.dispose()


def test_store_refuses_an_answer_whose_key_does_not_match() -> None:
    answer = replace(_answer(), model="gpt-4o-mini-2024-07-18")  # the reported snapshot name
    with pytest.raises(ValueError, match="the key is not cache_key"):
        ReplayCache(None, "record").store(answer)
