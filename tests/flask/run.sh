#!/bin/bash
# The Flask blueprint's tests, behind `make test-flask`:
#
#   bash tests/flask/run.sh [PYTEST ARGS...]
#
# Makes (once) a venv in target/flask-venv with the pinned Flask and pytest of
# tests/flask/requirements.txt from the package index, remakes it when that file
# or the Python changes, then runs pytest on tests/flask against the debug binary
# (target/debug/chatstack-status; `make test-flask` builds it first).
#
#   PYTHON               the interpreter for the venv (default python3; 3.10+ for the tests,
#                        the blueprint itself needs 3.9+)
#   FLASK_VENV           where the venv lives (default target/flask-venv)
#   CHATSTACK_STATUS_BIN the agent binary to compare against
#   CHROMIUM             the browser of the widget test (default /usr/bin/chromium)
#
# Needs python3 and python3-venv (Debian), network to the package index for a cold venv.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
VENV=${FLASK_VENV:-$repo/target/flask-venv}
. "$repo/tests/python-venv.sh"
python_venv tests/flask/run.sh "$VENV" "$here/requirements.txt" test-flask "Flask and pytest"

export CHATSTACK_STATUS_BIN=${CHATSTACK_STATUS_BIN:-$repo/target/debug/chatstack-status}
# No __pycache__ in the source tree (the blueprint is packaged from it), no .pytest_cache.
export PYTHONDONTWRITEBYTECODE=1
cd "$repo"
exec "$VENV/bin/python" -m pytest -p no:cacheprovider -q "$here" "$@"
