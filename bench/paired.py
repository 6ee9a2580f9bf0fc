#!/usr/bin/env python3
"""Interleaved paired timing: A, B, A, B ... so machine noise hits both alike.
Reports median wall and CPU (user+sys, children) per command and the median
of the per-pair wall ratios."""
import os, subprocess, sys, time, statistics, shlex

def run(cmd, env):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"{cmd} failed: {status}")
    return wall * 1000, (ru.ru_utime + ru.ru_stime) * 1000

def main():
    n = int(sys.argv[1])
    a = shlex.split(sys.argv[2]); b = shlex.split(sys.argv[3])
    env = dict(os.environ)
    for _ in range(10):
        run(a, env); run(b, env)
    wa, wb, ca, cb, ratios = [], [], [], [], []
    for i in range(n):
        first, second = (a, b) if i % 2 == 0 else (b, a)
        r1 = run(first, env); r2 = run(second, env)
        ra, rb = (r1, r2) if i % 2 == 0 else (r2, r1)
        wa.append(ra[0]); wb.append(rb[0]); ca.append(ra[1]); cb.append(rb[1])
        ratios.append(rb[0] / ra[0])
    med = statistics.median
    print(f"A: wall median {med(wa):.2f} ms, cpu median {med(ca):.2f} ms  ({sys.argv[2]})")
    print(f"B: wall median {med(wb):.2f} ms, cpu median {med(cb):.2f} ms  ({sys.argv[3]})")
    print(f"B/A: median of paired wall ratios {med(ratios):.3f}; ratio of wall medians {med(wb)/med(wa):.3f}; cpu {med(cb)/med(ca):.3f}")

main()
