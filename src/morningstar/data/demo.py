"""Offline demo data: real market data shipped by a permissively licensed PyPI package.

The repository carries no copied data files. The demo dataset is the EUR/USD 1-hour series of 2017
(6,225 bars, ask prices, Dukascopy-style export) that the ``gym-anytrading`` package ships under the
MIT licence (``gym_anytrading/datasets/data/FOREX_EURUSD_1H_ASK.csv``). It is installed by the
``demo`` extra (``pip install 'morningstar[demo]'``) and read from the installed distribution's
files, without importing the package (which would import gymnasium).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from morningstar.core.timeframe import Timeframe, parse_timeframe
from morningstar.core.types import Pair, parse_pair
from morningstar.errors import DataNotFoundError

__all__ = ["DEMO_DATASETS", "DemoDataset", "demo_dataset", "locate_demo_file"]


@dataclass(frozen=True)
class DemoDataset:
    """One real dataset shipped inside a PyPI distribution."""

    name: str
    distribution: str
    relative_path: str
    venue: str
    pair: Pair
    timeframe: Timeframe
    calendar: str
    description: str
    licence: str


DEMO_DATASETS: dict[str, DemoDataset] = {
    "eurusd-1h-2017": DemoDataset(
        name="eurusd-1h-2017",
        distribution="gym-anytrading",
        relative_path="gym_anytrading/datasets/data/FOREX_EURUSD_1H_ASK.csv",
        venue="demo",
        pair=parse_pair("EUR/USD"),
        timeframe=parse_timeframe("1h"),
        calendar="forex",
        description="real EUR/USD 1h ask prices, 2017 (shipped by gym-anytrading)",
        licence="MIT (gym-anytrading)",
    ),
    "googl-1d": DemoDataset(
        name="googl-1d",
        distribution="gym-anytrading",
        relative_path="gym_anytrading/datasets/data/STOCKS_GOOGL.csv",
        venue="demo",
        pair=parse_pair("GOOGL/USD"),
        timeframe=parse_timeframe("1d"),
        calendar="equity",
        description="real GOOGL daily prices, 2009-2018 (shipped by gym-anytrading)",
        licence="MIT (gym-anytrading)",
    ),
}


def demo_dataset(name: str = "eurusd-1h-2017") -> DemoDataset:
    """The demo dataset called ``name``.

    Raises:
        DataNotFoundError: unknown name.
    """
    try:
        return DEMO_DATASETS[name]
    except KeyError:
        raise DataNotFoundError(
            f"unknown demo dataset {name!r}", hint=f"choose one of {', '.join(DEMO_DATASETS)}"
        ) from None


def locate_demo_file(dataset: DemoDataset) -> Path:
    """Path of the dataset's CSV inside its installed distribution.

    Raises:
        DataNotFoundError: the distribution is not installed (with the install command).
    """
    try:
        dist = metadata.distribution(dataset.distribution)
    except metadata.PackageNotFoundError:
        raise DataNotFoundError(
            f"demo data package {dataset.distribution!r} is not installed",
            hint="pip install 'morningstar[demo]' (or use your own data: `morningstar data import`)",
        ) from None
    path = Path(str(dist.locate_file(dataset.relative_path)))
    if not path.is_file():
        raise DataNotFoundError(
            f"{dataset.relative_path} is missing from {dataset.distribution} {dist.version}",
            hint="reinstall it: pip install --force-reinstall 'gym-anytrading>=2,<3'",
        )
    return path
