"""Morningstar: LLM-supervised algorithmic trading — research, backtest, paper and live on one path."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
