#!/usr/bin/env python3
"""Idle CPU per cycle of several builds, side by side (a quick `cost` row).

    K=40 I=1 python3 bench/idle_pair.py BIN_A BIN_B ...

Each binary runs the idle row's config (bench/cost.py: 4 services + `/`,
memory, load; history seeded) twice at once: stopped after 1 cycle and
after K cycles, at an interval of I seconds. CPU per cycle =
(CPU of the K-cycle run - CPU of the 1-cycle run) / (K - 1), each from
`wait4` (user + sys, children included), so start-up and shutdown cancel
out. All of them run at the same time, so the machine's noise hits every
build alike; compare the builds of one run, not runs. `make bench`'s
`cost` row is the reference figure (5 s interval, against Monit).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402
import cost  # noqa: E402


def main():
    k = int(os.environ.get("K", "30"))
    interval = float(os.environ.get("I", "1"))
    bins = sys.argv[1:]
    if not bins or k < 2:
        sys.exit(__doc__)
    cost.INTERVAL = interval
    w = b.World()
    try:
        run(w, bins, k, interval)
    finally:
        b.end_all()  # the daemons left, the fake bus and the target: by PID
        w.close()


def run(w, bins, k, interval):
    procs = {}
    for i, binary in enumerate(bins):
        for n in (1, k):
            name = f"pair{i}_{n}"
            cfg = cost.our_config(w, name, interval=f"{interval}s")
            b.seed_history(w, name, 20)
            procs[(i, n)] = cost.our_daemon(w, cfg, binary=binary)
    started = time.monotonic()
    cpu = {}
    for n in (1, k):
        time.sleep(max(0.0, started + interval * (n - 1) + interval / 2 - time.monotonic()))
        for i in range(len(bins)):
            cpu[(i, n)] = cost.reap(procs[(i, n)])
    for i, binary in enumerate(bins):
        print(f"{binary}: {(cpu[(i, k)] - cpu[(i, 1)]) / (k - 1) * 1000:.2f} ms per cycle")


if __name__ == "__main__":
    main()
