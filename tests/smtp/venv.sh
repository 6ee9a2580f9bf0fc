#!/bin/bash
# Makes (once) the venv of the email tests' SMTP server: aiosmtpd from the
# package index, pinned in tests/smtp/requirements.txt, in target/smtp-venv
# (remade when that file or the Python changes). Prints the venv's python.
#
#   bash tests/smtp/venv.sh        (the tests run it; `make deps` too)
#
#   PYTHON      the interpreter for the venv (default python3)
#   SMTP_VENV   where the venv lives (default target/smtp-venv)
#
# Needs python3 and python3-venv (Debian), network to the package index for a cold venv.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
PYTHON=${PYTHON:-python3}
VENV=${SMTP_VENV:-$repo/target/smtp-venv}
req=$here/requirements.txt

die() { echo "tests/smtp/venv.sh: error: $*" >&2; exit 2; }

command -v "$PYTHON" >/dev/null 2>&1 || die "no $PYTHON: apt-get install python3 python3-venv (make deps)"
mkdir -p "$(dirname "$VENV")"
# One maker at a time: the test binary may ask from several threads.
exec 9>"$VENV.lock"
flock 9
want=$( { cat "$req"; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
stamp=$VENV/.chatstack-requirements
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "smtp venv: making $VENV (aiosmtpd from the package index)" >&2
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || die "$PYTHON -m venv failed: apt-get install python3-venv (make deps)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2 ||
        die "pip install -r $req failed (is the package index reachable?)"
    echo "$want" >"$stamp"
fi
echo "$VENV/bin/python"
