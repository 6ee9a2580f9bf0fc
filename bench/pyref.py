#!/usr/bin/env python3
"""Reference for the pool workload: the Python design's probe pool
(ThreadPoolExecutor + urllib), timed inside Python so that interpreter
start-up is not counted. Prints {"elapsed_ms": ..., "ok": ..., "failed": ...}."""

import argparse
import concurrent.futures
import json
import time
import urllib.request


def probe(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            r.read()
            return 200 <= r.status < 300
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("urls_file")
    args = ap.parse_args()
    with open(args.urls_file) as f:
        urls = [u.strip() for u in f if u.strip()]
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(probe, urls))
    elapsed = (time.perf_counter() - t0) * 1000
    print(json.dumps({"elapsed_ms": elapsed, "ok": sum(results),
                      "failed": len(results) - sum(results)}))


if __name__ == "__main__":
    main()
