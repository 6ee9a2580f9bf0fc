#!/bin/bash
# `make bench`: builds the release binary if needed, then runs every workload
# (bench/bench.py) and writes docs/BENCHMARKS.md. Extra arguments go to
# bench.py (e.g. --quick, --only oneshot pool). Takes about 6-8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x target/release/chatstack-status ]; then
    cargo build --locked --release
fi
missing=()
for tool in python3 wrk nginx valgrind /usr/lib/nagios/plugins/check_http pgrep /usr/bin/time monit; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: missing ${missing[*]}: the rows that need them say so" >&2
    echo "bench: (Debian: apt-get install wrk nginx-light valgrind monitoring-plugins-basic procps time monit)" >&2
fi
if [ "$(pgrep -c rustc || true)" != "0" ]; then
    echo "bench: warning: rustc is running; figures will be noisier (ratios still hold)" >&2
fi
exec python3 bench/bench.py "$@"
