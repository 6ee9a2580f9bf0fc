# shellcheck shell=bash
# The one way the Python test tools get their venv. Sourced (not run) by
# tests/flask/run.sh, tests/openapi/run.sh and tests/smtp/venv.sh:
#
#   . "$repo/tests/python-venv.sh"
#   python_venv CALLER VENV REQUIREMENTS WHO WHAT
#
# Makes VENV (once) with the pinned packages of REQUIREMENTS from the package
# index, and makes it anew when that file or the Python changes (a stamp in
# the venv holds their hash). One maker at a time, by a lock beside VENV (the
# integration tests may ask from several threads at once). CALLER names the
# script in errors (which exit 2), WHO and WHAT the progress line
# ("WHO: making VENV (WHAT from the package index)", on stdout). The
# interpreter is $PYTHON (default python3).
#
# Needs python3, python3-venv and flock (Debian), network to the package index
# for a cold venv.

python_venv() {
    local caller=$1 venv=$2 req=$3 who=$4 what=$5
    local python=${PYTHON:-python3}
    die() { echo "$caller: error: $*" >&2; exit 2; }
    command -v "$python" >/dev/null 2>&1 || die "no $python: apt-get install python3 python3-venv (make deps)"
    mkdir -p "$(dirname "$venv")"
    # Held while the venv is checked or made (fd 9 is closed again below, so
    # the tools the caller then runs do not inherit it).
    exec 9>"$venv.lock"
    flock 9
    local want stamp=$venv/.chatstack-requirements
    want=$( { cat "$req"; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "$who: making $venv ($what from the package index)"
        rm -rf "$venv"
        "$python" -m venv "$venv" || die "$python -m venv failed: apt-get install python3-venv (make deps)"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" ||
            die "pip install -r $req failed (is the package index reachable?)"
        echo "$want" >"$stamp"
    fi
    exec 9>&-
}
