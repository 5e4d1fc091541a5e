# Shared by scripts/demo and scripts/test: create .venv (Python >= 3.11) and install the project.
# Usage: source scripts/_venv.sh EXTRAS
# The install runs only when .venv is new or pyproject.toml changed since the last install for
# these extras (a stamp file in .venv), so later runs need no network at all.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: Morningstar needs Python >= 3.11 (found $("$PYTHON" --version 2>&1)); set PYTHON=python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
fi
stamp=".venv/.installed-$1"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$1]"
  echo "$want" > "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
