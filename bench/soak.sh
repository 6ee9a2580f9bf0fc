#!/bin/bash
# `make soak`: ~3.5 minutes of the daemon at a 100 ms interval against
# flipping targets, with healing, reloads and concurrent readers
# (bench/soak.py). Exits non-zero, saying why, on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x target/release/chatstack-status ]; then
    cargo build --locked --release
fi
exec python3 bench/soak.py "$@"
