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
VENV=${SMTP_VENV:-$repo/target/smtp-venv}
. "$repo/tests/python-venv.sh"
# Only the venv's python on stdout: the caller reads it.
python_venv tests/smtp/venv.sh "$VENV" "$here/requirements.txt" "smtp venv" aiosmtpd >&2
echo "$VENV/bin/python"
