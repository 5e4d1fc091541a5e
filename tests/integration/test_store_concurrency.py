"""Two OS processes migrate and write the same database at the same time, on both engines.

Each writer is a separate Python process: it waits for a start signal, opens the database with
migrations (so both race for the migration lock on a fresh database), then writes
:data:`ROWS_PER_WRITER` CLI runs and data imports in small transactions (start a run; finish it and
record an import). Afterwards every row of both writers must be there exactly once.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from morningstar.store import open_database
from morningstar.store.models import CliRunRow, DataImportRow

ROWS_PER_WRITER = 200
TIMEOUT_S = 90

WRITER = """
import sys, time
from pathlib import Path
from morningstar.store import DataImportRepository, RunRepository, open_database

url, tag, rows, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("writer " + tag + ": no start signal")
    time.sleep(0.002)
db = open_database(url)  # both writers migrate at once: the migration lock serialises them
for i in range(rows):
    with db.session() as s:
        run_id = RunRepository(s).start("writer", [tag, str(i)], "test")
    with db.session() as s:
        RunRepository(s).finish(run_id, "ok")
        DataImportRepository(s).record(
            kind="demo", source=tag + "-" + str(i), venue=tag, pair="BTC/USDT", timeframe="1m",
            rows_read=i, rows_stored=i, rows_added=i, run_id=run_id,
        )
    time.sleep(0.001)
db.dispose()
print("done", tag, rows)
"""


def _run_two_writers(url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, tag, str(ROWS_PER_WRITER), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for tag in ("writer-a", "writer-b")
    ]
    try:
        time.sleep(0.2)
        go.touch()
        deadline = time.monotonic() + TIMEOUT_S
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for code, out, err in results:
        assert code == 0, f"writer failed ({code}): {err[-3000:]}"
        assert out.startswith("done"), out


def test_two_processes_write_concurrently(db_url: str, tmp_path: Path) -> None:
    _run_two_writers(db_url, tmp_path)

    db = open_database(db_url, migrate=False)
    try:
        assert db.current_revision() == db.head_revision()
        with db.session(readonly=True) as s:
            runs = s.execute(sa.select(CliRunRow.argv, CliRunRow.status)).all()
            imports = s.execute(
                sa.select(DataImportRow.venue, DataImportRow.source, DataImportRow.run_id).order_by(
                    DataImportRow.id
                )
            ).all()
    finally:
        db.dispose()

    total = 2 * ROWS_PER_WRITER
    assert len(runs) == total
    assert {status for _, status in runs} == {"ok"}
    assert sorted((a[0], int(a[1])) for a, _ in runs) == sorted(
        (tag, i) for tag in ("writer-a", "writer-b") for i in range(ROWS_PER_WRITER)
    )
    assert len(imports) == total
    assert len({source for _, source, _ in imports}) == total  # no lost and no doubled row
    assert all(run_id is not None for _, _, run_id in imports)
    # The writers really ran at the same time: their rows interleave in insertion order.
    venues = [venue for venue, _, _ in imports]
    switches = sum(1 for a, b in itertools.pairwise(venues) if a != b)
    assert switches > 1, f"writers did not overlap (switches={switches})"
