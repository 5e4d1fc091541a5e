"""The price table: dated entries, snapshots, free and unknown prices, cost of a call."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from morningstar.errors import ConfigError
from morningstar.llm.pricing import DEFAULT_PRICES, Price, PriceTable
from morningstar.llm.types import Usage

TABLE = """\
version: 1
updated: 2026-01-01
providers:
  acme:
    big:
      - {effective_from: 2025-06-01, input: 4.0, cached_input: null, output: 16.0}
      - {effective_from: 2025-01-01, input: 2.0, cached_input: 0.5, output: 8.0}
    big-2025-03-01:
      - {effective_from: 2025-01-01, input: 9.0, output: 9.0}
  local: free
"""

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
USAGE = Usage(input_tokens=1_000, output_tokens=500, cached_input_tokens=200)


@pytest.fixture
def table() -> PriceTable:
    return PriceTable.parse(TABLE, source="prices.yaml")


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "expected_input"),
    [
        ("2024-12-31", None),  # before the first entry: unknown, never guessed
        ("2025-01-01", 2.0),  # the first day of an entry applies
        ("2025-05-31", 2.0),
        ("2025-06-01", 4.0),
        ("2030-01-01", 4.0),
    ],
)
def test_dated_entries(table: PriceTable, day: str, expected_input: float | None) -> None:
    price = table.price("acme", "big", _at(day))
    assert (price.input if price else None) == expected_input


def test_entries_are_sorted_by_date(table: PriceTable) -> None:
    dates = [p.effective_from for p in table.models["acme"]["big"]]
    assert dates == [date(2025, 1, 1), date(2025, 6, 1)]
    assert (table.version, table.updated) == (1, date(2026, 1, 1))


def test_day_is_taken_in_utc(table: PriceTable) -> None:
    # 01:00 at +02:00 is still 31 May in UTC: the old price
    at = datetime(2025, 6, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert table.price("acme", "big", at) == table.models["acme"]["big"][0]
    with pytest.raises(ValueError, match="aware"):
        table.price("acme", "big", datetime(2025, 6, 1))  # naive on purpose


@pytest.mark.parametrize(
    ("model", "resolved"),
    [
        ("big", "big"),
        ("big-2025-07-01", "big"),  # a dated snapshot takes the listed model's price
        ("big-2025-03-01", "big-2025-03-01"),  # unless the snapshot is listed itself
        ("big-latest", None),
        ("bigger-2025-07-01", None),
        ("big-2025-7-1", None),
        ("other", None),
    ],
)
def test_model_resolution(table: PriceTable, model: str, resolved: str | None) -> None:
    assert table.resolve_model("acme", model) == resolved


COSTS: list[tuple[str, str, str, Usage, bool, float | None, str]] = [
    # (id, provider, model, usage, local, usd, status)
    (
        "cached rate",
        "acme",
        "big-2025-02-02",
        USAGE,
        False,
        (800 * 2 + 200 * 0.5 + 500 * 8) / 1e6,
        "priced",
    ),
    (
        "no cache rate: input rate",
        "acme",
        "big",
        USAGE,
        False,
        (1000 * 4 + 500 * 16) / 1e6,
        "priced",
    ),
    (
        "no cached tokens",
        "acme",
        "big",
        Usage(1000, 500),
        False,
        (1000 * 4 + 500 * 16) / 1e6,
        "priced",
    ),
    ("local provider", "acme", "big", USAGE, True, 0.0, "free"),
    ("free provider", "local", "llama3", USAGE, False, 0.0, "free"),
    ("free even without usage", "local", "llama3", Usage(), False, 0.0, "free"),
    ("unknown model", "acme", "huge", USAGE, False, None, "unknown"),
    ("unknown provider", "other", "big", USAGE, False, None, "unknown"),
    ("usage absent", "acme", "big", Usage(), False, None, "unknown"),
    ("output absent", "acme", "big", Usage(input_tokens=10), False, None, "unknown"),
    ("zero tokens", "acme", "big", Usage(0, 0), False, 0.0, "priced"),
]


@pytest.mark.parametrize(
    ("provider", "model", "usage", "local", "usd", "status"),
    [c[1:] for c in COSTS],
    ids=[c[0] for c in COSTS],
)
def test_cost(
    table: PriceTable,
    provider: str,
    model: str,
    usage: Usage,
    local: bool,
    usd: float | None,
    status: str,
) -> None:
    day = _at("2025-02-02") if model == "big-2025-02-02" else NOW
    got, got_status = table.cost(provider, model, usage, day, local=local)
    assert got_status == status
    if usd is None:
        assert got is None
    else:
        assert got == pytest.approx(usd, rel=1e-12)


def test_cost_before_first_price_is_unknown(table: PriceTable) -> None:
    assert table.cost("acme", "big", USAGE, _at("2020-01-01"), local=False) == (None, "unknown")


def test_cached_tokens_are_clamped_to_input() -> None:
    price = Price(date(2025, 1, 1), input=2.0, cached_input=1.0, output=0.0)
    assert price.cost(Usage(100, 0, 500)) == pytest.approx(100 * 1.0 / 1e6)


def test_shipped_table() -> None:
    table = PriceTable.load()
    assert PriceTable.load(DEFAULT_PRICES) == table
    assert {"ollama", "offline"} <= table.free
    expected = {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o4-mini"}
    assert expected <= set(table.models["openai"])
    # golden: 800 uncached input at 2.50, 200 cached at 1.25, 500 output at 10.00 per 1M
    assert table.cost("openai", "gpt-4o-2024-08-06", USAGE, NOW, local=False) == (
        pytest.approx(0.00725),
        "priced",
    )
    assert table.cost("openai", "gpt-4o-2024-05-13", USAGE, NOW, local=False)[0] == pytest.approx(
        (1000 * 5 + 500 * 15) / 1e6
    )
    assert table.cost("openai", "gpt-9-turbo", USAGE, NOW, local=False) == (None, "unknown")
    assert table.cost("ollama", "llama3.1", USAGE, NOW, local=True) == (0.0, "free")


BAD_TABLES: list[tuple[str, str, str, str]] = [
    ("version", "version: 1", "version: one", "prices.yaml: version: must be an integer >= 1"),
    ("updated", "updated: 2026-01-01", "updated: soon", "prices.yaml: updated: must be a date"),
    ("top key", "version: 1", "version: 1\ncurrency: EUR", "prices.yaml: currency: unknown key"),
    (
        "provider",
        "  local: free",
        "  local: gratis",
        "prices.yaml: providers.local: must be 'free'",
    ),
    (
        "entry key",
        "output: 9.0}",
        "output: 9.0, batch: 1}",
        "providers.acme.big-2025-03-01[0].batch: unknown key",
    ),
    (
        "missing output",
        "input: 9.0, output: 9.0}",
        "input: 9.0}",
        "providers.acme.big-2025-03-01[0].output: is missing",
    ),
    ("negative", "input: 4.0", "input: -4.0", "providers.acme.big[0].input: must be a number"),
    (
        "text rate",
        "output: 16.0",
        "output: cheap",
        "providers.acme.big[0].output: must be a number",
    ),
    (
        "date",
        "effective_from: 2025-06-01",
        "effective_from: June",
        "providers.acme.big[0].effective_from: must be a date",
    ),
    (
        "duplicate date",
        "effective_from: 2025-06-01",
        "effective_from: 2025-01-01",
        "providers.acme.big: two entries take effect on 2025-01-01",
    ),
    (
        "empty list",
        "    big-2025-03-01:\n      - {effective_from: 2025-01-01, input: 9.0, output: 9.0}\n",
        "    big-2025-03-01: []\n",
        "providers.acme.big-2025-03-01: must be a non-empty list",
    ),
    ("yaml", "providers:", "providers: [", "not valid YAML"),
]


@pytest.mark.parametrize(
    ("old", "new", "message"), [c[1:] for c in BAD_TABLES], ids=[c[0] for c in BAD_TABLES]
)
def test_bad_tables(old: str, new: str, message: str) -> None:
    assert old in TABLE
    with pytest.raises(ConfigError) as info:
        PriceTable.parse(TABLE.replace(old, new, 1), source="prices.yaml")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the price table"):
        PriceTable.load(tmp_path / "absent.yaml")
