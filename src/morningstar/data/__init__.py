"""Market data: the OHLCV contract, validation, Parquet storage, CSV import, ccxt download, demo data."""

from __future__ import annotations

from morningstar.data.ohlcv import INDEX_NAME, OHLCV_COLUMNS, empty_ohlcv, from_arrays, to_contract

__all__ = ["INDEX_NAME", "OHLCV_COLUMNS", "empty_ohlcv", "from_arrays", "to_contract"]
