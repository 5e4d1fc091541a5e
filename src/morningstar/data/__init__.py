"""Market data: the OHLCV contract, validation, Parquet storage, CSV import, ccxt download, demo data.

The ccxt downloader (:mod:`morningstar.data.download`) and validation
(:mod:`morningstar.data.validation`) are imported from their own modules.
"""

from __future__ import annotations

from morningstar.data.csv_import import ImportedCSV, read_ohlcv_csv
from morningstar.data.ohlcv import INDEX_NAME, OHLCV_COLUMNS, empty_ohlcv, from_arrays, to_contract
from morningstar.data.parquet_store import DatasetInfo, OHLCVStore, WriteResult
from morningstar.data.resample import ResampleResult, resample_ohlcv

__all__ = [
    "INDEX_NAME",
    "OHLCV_COLUMNS",
    "DatasetInfo",
    "ImportedCSV",
    "OHLCVStore",
    "ResampleResult",
    "WriteResult",
    "empty_ohlcv",
    "from_arrays",
    "read_ohlcv_csv",
    "resample_ohlcv",
    "to_contract",
]
