#!/bin/bash
# The OpenAPI document against the live agent, behind `make test-openapi`:
#
#   bash tests/openapi/run.sh
#
# Makes (once) a venv in target/openapi-venv with the pinned schemathesis and
# openapi-spec-validator of tests/openapi/requirements.txt from the package
# index, remakes it when that file or the Python changes, then runs
# tests/openapi/fuzz.py: the document validates, and schemathesis (every
# check, the documented examples, coverage and fuzzing) finds no 5xx, no
# answer that contradicts the document and no hang in `run` (history, push
# checks), `run` behind basic auth over TLS, and `serve`. Bounded: under 3
# minutes.
#
#   PYTHON               the interpreter for the venv (default python3, 3.9+)
#   OPENAPI_VENV         where the venv lives (default target/openapi-venv)
#   CHATSTACK_STATUS_BIN the agent binary (default target/debug/chatstack-status)
#   FUZZ_SECONDS         schemathesis's time per variant (default 35)
#
# Needs python3, python3-venv and openssl (Debian), network to the package
# index for a cold venv.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
VENV=${OPENAPI_VENV:-$repo/target/openapi-venv}
. "$repo/tests/python-venv.sh"
python_venv tests/openapi/run.sh "$VENV" "$here/requirements.txt" test-openapi \
    "schemathesis and openapi-spec-validator"

export CHATSTACK_STATUS_BIN=${CHATSTACK_STATUS_BIN:-$repo/target/debug/chatstack-status}
export PYTHONDONTWRITEBYTECODE=1
cd "$repo"
exec "$VENV/bin/python" "$here/fuzz.py" "$@"
