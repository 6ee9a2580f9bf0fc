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
PYTHON=${PYTHON:-python3}
VENV=${OPENAPI_VENV:-$repo/target/openapi-venv}
req=$here/requirements.txt

die() { echo "tests/openapi/run.sh: error: $*" >&2; exit 2; }

command -v "$PYTHON" >/dev/null 2>&1 || die "no $PYTHON: apt-get install python3 python3-venv (make deps)"
want=$( { cat "$req"; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
stamp=$VENV/.chatstack-requirements
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "test-openapi: making $VENV (schemathesis and openapi-spec-validator from the package index)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || die "$PYTHON -m venv failed: apt-get install python3-venv (make deps)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" ||
        die "pip install -r $req failed (is the package index reachable?)"
    echo "$want" >"$stamp"
fi

export CHATSTACK_STATUS_BIN=${CHATSTACK_STATUS_BIN:-$repo/target/debug/chatstack-status}
export PYTHONDONTWRITEBYTECODE=1
cd "$repo"
exec "$VENV/bin/python" "$here/fuzz.py" "$@"
