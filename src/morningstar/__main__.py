"""``python -m morningstar`` runs the command line."""

from __future__ import annotations

import sys

from morningstar.cli import main

sys.exit(main())
