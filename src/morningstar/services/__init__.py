"""Application services: what the CLI, the API, the dashboard and the agents call."""

from __future__ import annotations

__all__: list[str] = []
