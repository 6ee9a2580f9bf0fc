#!/usr/bin/env python3
"""Simulated fleet for `make bench` (issue 14): N agents (`chatstack-status
run`, one loopback address each, 127.0.1.1 upwards, all on one port, as real
hosts would be) scraped every 5 s by one real Prometheus (the shipped
scrape.yml with file_sd targets and the shipped alerts.yml) for a window of
S seconds. Reports: all targets up for the whole window, scrape duration
p50/p99 (Prometheus's own `scrape_duration_seconds`), agent CPU and RSS while
scraped (/proc), and Prometheus's CPU and RSS; with several N (--agents 10 50),
what grows with N.

Rows are bench.py's rows (bench.row), printed as its Results table; not yet
wired into bench/run.sh (bench.py would call `bench_fleet(w, n, seconds)`).
Every process started here is ended here, by PID; Prometheus sends alerts
nowhere (its Alertmanager is a closed port).

Usage: python3 bench/fleet.py [--agents 50 ...] [--seconds 60] [--scrape 5]
"""

import argparse
import ipaddress
import json
import os
import shutil
import socket
import statistics
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402  (the harness: World, start/stop, row, Stat, /proc readers)

PROMETHEUS = "/usr/bin/prometheus"

# For bench.py's "How each figure is measured" once this is wired in.
METHOD = """\
- **Fleet**: N agents (`run`, 4 services × http + tcp against the bench's
  target, `interval: 5s`), one loopback address each (127.0.1.1 upwards) on
  one shared port, scraped by a real Prometheus using the shipped
  `scrape.yml` (file_sd targets with a `host` label) and `alerts.yml` at a
  5 s scrape and evaluation interval. After all N are `up`: a window of S
  seconds. Up for the whole window = `min_over_time(up[S])`; scrape
  durations = every `scrape_duration_seconds` sample of the window; agent
  CPU = utime + stime from `/proc/PID/stat` over the window, summed over the
  fleet (10 ms ticks), beside the same agents unscraped for S/2 seconds
  before Prometheus starts; RSS = `VmRSS` at the window end; Prometheus's
  CPU the same way, its series from `/api/v1/status/tsdb`. Before the window,
  `chatstack-status fleet --prometheus URL --format json` runs 9 times
  against that Prometheus (wall time of the whole process; every host's rows
  must be there and up); target: median ≤ 200 ms.
"""
SHIPPED = os.path.join(b.ROOT, "packaging", "prometheus")
FIRST_ADDR = ipaddress.IPv4Address("127.0.1.1")


def addresses(n):
    return [str(FIRST_ADDR + i) for i in range(n)]


def common_port(addrs, tries=50):
    """A port free on every address (bind-tested on each)."""
    for _ in range(tries):
        socks = []
        try:
            s = socket.socket()
            s.bind((addrs[0], 0))
            socks.append(s)
            port = s.getsockname()[1]
            for a in addrs[1:]:
                t = socket.socket()
                socks.append(t)
                t.bind((a, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no port free on all of {addrs[0]}..{addrs[-1]}")


def replace_once(name, text, old, new):
    if text.count(old) != 1:
        raise RuntimeError(f"the shipped {name} has {text.count(old)} x {old!r}: update bench/fleet.py")
    return text.replace(old, new)


def prometheus_files(d, scrape_s, targets):
    """The shipped scrape config and rules in `d`, at `scrape_s` intervals,
    with the targets file listing `targets` [(addr, host)]."""
    with open(os.path.join(SHIPPED, "scrape.yml")) as f:
        text = f.read()
    text = replace_once("scrape.yml", text, "scrape_interval: 30s", f"scrape_interval: {scrape_s}s")
    text = replace_once("scrape.yml", text, "evaluation_interval: 30s",
                        f"evaluation_interval: {scrape_s}s")
    text = replace_once("scrape.yml", text, 'targets: ["localhost:9093"]',
                        f'targets: ["127.0.0.1:{b.free_port()}"]')
    os.makedirs(os.path.join(d, "chatstack-targets"))
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        f.write(text)
    shutil.copy(os.path.join(SHIPPED, "alerts.yml"), os.path.join(d, "alerts.yml"))
    shutil.copy(os.path.join(SHIPPED, "rules.yml"), os.path.join(d, "rules.yml"))
    with open(os.path.join(d, "chatstack-targets", "fleet.yml"), "w") as f:
        for addr, host in targets:
            f.write(f'- targets: ["{addr}"]\n  labels:\n    host: {host}\n')
    return os.path.join(d, "prometheus.yml")


class Prometheus:
    def __init__(self, w, d, config):
        self.port = b.free_port()
        self.log = open(os.path.join(d, "prometheus.log"), "ab")
        self.p = b.start([PROMETHEUS, f"--config.file={config}",
                          f"--storage.tsdb.path={os.path.join(d, 'tsdb')}",
                          f"--web.listen-address=127.0.0.1:{self.port}"],
                         stdin=b.subprocess.DEVNULL, stdout=self.log, stderr=self.log)

        def ready():
            if self.p.poll() is not None:
                raise RuntimeError(f"prometheus exited {self.p.returncode}: see {self.log.name}")
            try:
                return b.http_get(f"http://127.0.0.1:{self.port}/-/ready", 2)[0] == 200
            except OSError:
                return False
        b.wait_for(ready, 30, "prometheus ready", 0.05)

    def head_series(self):
        url = f"http://127.0.0.1:{self.port}/api/v1/status/tsdb"
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)["data"]["headStats"]["numSeries"]

    def query(self, promql):
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": promql}))
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)["data"]["result"]

    def close(self):
        b.stop(self.p)
        self.log.close()


def agent_config(w, name, host, services):
    """`services` x (http + tcp) against the bench's target, 5 s cycle."""
    lines = []
    for i in range(1, services + 1):
        lines += [f"  - name: svc{i}",
                  f"    url: http://127.0.0.1:{w.http}/ok",
                  f"    port: {w.http}"]
    return w.config(name, "\n".join(lines), host=host, interval="5s",
                    heal="{ enabled: false }")


def cpu_s(pid):
    return b.proc_stat(pid)[0]


def percentile(values, p):
    v = sorted(values)
    k = max(0, min(len(v) - 1, round(p / 100 * (len(v) - 1))))
    return v[k]


def agents_cpu(agents):
    """CPU seconds of each agent (utime + stime, 10 ms ticks: summed over the
    fleet the resolution is fine, per agent over a minute it is coarse)."""
    return {p.pid: cpu_s(p.pid) for p, _, _ in agents}


def fleet_command(prom, n, runs=9):
    """`chatstack-status fleet --prometheus URL --format json` against the
    fleet's Prometheus: wall time of each run (ms) and the rows of the last.
    Every row must be up (the bench's services all are)."""
    url = f"http://127.0.0.1:{prom.port}"
    times, rows = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = b.subprocess.run([b.BIN, "fleet", "--prometheus", url, "--format", "json"],
                               capture_output=True, text=True, timeout=30)
        times.append((time.perf_counter() - t0) * 1000)
        if out.returncode != 0:
            raise RuntimeError(f"fleet exited {out.returncode}: {out.stderr}{out.stdout[:500]}")
        rows = json.loads(out.stdout)["rows"]
    hosts = {r["host"] for r in rows}
    if len(hosts) != n or any(r["status"] != "up" for r in rows):
        raise RuntimeError(f"fleet: {len(hosts)} hosts, not all up: {rows[:3]}")
    return times, rows


def bench_fleet(w, n, seconds, scrape_s=5, services=4, baseline_s=None):
    """`baseline_s` (default: half the window): the same agents measured
    first without Prometheus, as the reference."""
    baseline_s = seconds / 2 if baseline_s is None else baseline_s
    addrs = addresses(n)
    port = common_port(addrs)
    agents = []
    d = w.path(f"fleet-{n}")
    os.makedirs(d)
    prom = None
    try:
        for i, a in enumerate(addrs):
            host = f"fleet-{i + 1:02d}"
            cfg = agent_config(w, f"fleet-{n}-{i + 1}", host, services)
            p = b.start([b.BIN, "run", "-c", cfg, "--listen", f"{a}:{port}"], env=w.env,
                        stdin=b.subprocess.DEVNULL, stdout=b.subprocess.DEVNULL, stderr=w.stderr)
            agents.append((p, a, host))
        for p, a, host in agents:
            def ready(p=p, a=a):
                if p.poll() is not None:
                    raise RuntimeError(f"agent on {a} exited {p.returncode}")
                try:
                    return b.http_get(f"http://{a}:{port}/api/status", 2)[0] == 200
                except OSError:
                    return False
            b.wait_for(ready, 60, f"agent {host} on {a}:{port}", 0.05)
        base_cpu = None
        if baseline_s > 0:
            # The reference: the same agents, nobody scraping them.
            time.sleep(1)  # past the first cycles' start-up work
            b0, t0 = agents_cpu(agents), time.monotonic()
            time.sleep(baseline_s)
            b1, t1 = agents_cpu(agents), time.monotonic()
            base_cpu = sum(b1[k] - b0[k] for k in b0) / (t1 - t0) * 100
        config = prometheus_files(d, scrape_s, [(f"{a}:{port}", h) for _, a, h in agents])
        prom = Prometheus(w, d, config)
        # Discovery delivers targets in 5 s batches; then a scrape each.
        b.wait_for(lambda: int(float((prom.query('count(up{job="chatstack-status"} == 1)')
                                      or [{"value": [0, "0"]}])[0]["value"][1])) == n,
                   60, f"all {n} agents up", 0.2)
        fleet_ms, fleet_rows = fleet_command(prom, n)
        t0 = time.monotonic()
        a0 = agents_cpu(agents)
        p0 = cpu_s(prom.p.pid)
        time.sleep(seconds)
        t1 = time.monotonic()
        a1 = agents_cpu(agents)
        p1 = cpu_s(prom.p.pid)
        rss = [b.proc_status(p.pid)["rss_kb"] / 1024 for p, _, _ in agents]
        prom_st = b.proc_status(prom.p.pid)
        wall = t1 - t0
        window = f"{int(seconds)}s"
        stayed_up = prom.query(f'count(min_over_time(up{{job="chatstack-status"}}[{window}]) == 1)')
        stayed_up = int(float(stayed_up[0]["value"][1])) if stayed_up else 0
        durations = [float(v) * 1000 for s in
                     prom.query(f'scrape_duration_seconds{{job="chatstack-status"}}[{window}]')
                     for _, v in s["values"]]
        samples = prom.query('max(scrape_samples_scraped{job="chatstack-status"})')
        samples = int(float(samples[0]["value"][1])) if samples else 0
        series = prom.head_series()
    finally:
        if prom:
            prom.close()
        for p, _, _ in agents:
            b.stop(p)

    agent_cpu = [(a1[pid] - a0[pid]) / wall * 100 for pid in a0]
    fleet_cpu = sum(agent_cpu)
    prom_cpu = (p1 - p0) / wall * 100
    label = (f"fleet: {n} agents (`run`, {services} services × http+tcp, 5 s cycle) on "
             f"{addrs[0]}–{addrs[-1]}, scraped every {scrape_s} s by Prometheus for {seconds:.0f} s")
    b.row(label, "targets up for the whole window", f"**{stayed_up}** / {n}", None, None,
          f"{n} / {n}", stayed_up == n, "1")
    b.row("", f"scrape duration p50 / p99 ({len(durations)} scrapes)",
          f"**{statistics.median(durations):.2f}** / {percentile(durations, 99):.2f} ms "
          f"(max {max(durations):.2f})", f"{samples} samples per scrape", None, "p99 < 100 ms",
          percentile(durations, 99) < 100, f"{len(durations)}")
    ref = (f"not scraped ({baseline_s:.0f} s before): {base_cpu / n:.3f} % per agent"
           if base_cpu is not None else None)
    ratio = fleet_cpu / base_cpu if base_cpu else None
    b.row("", "agent CPU while scraped (utime+stime, mean of the fleet)",
          f"**{fleet_cpu / n:.3f}** % of a core per agent (max {max(agent_cpu):.3f}; "
          f"all {n}: {fleet_cpu:.2f} %)", ref, ratio, "", None, f"{n}")
    b.row("", "agent RSS (VmRSS at the window end)", b.Stat(rss, "MB", "{:.2f}"),
          f"all {n}: {sum(rss):.0f} MB", None, "", None, f"{n}")
    b.row("", f"`fleet --prometheus` (wall, {len(fleet_ms)} runs, {len(fleet_rows)} rows)",
          b.Stat(fleet_ms, "ms", "{:.1f}"), f"{n} agents' series, six queries", None,
          "≤ 200 ms", statistics.median(fleet_ms) <= 200 and max(fleet_ms) <= 400, f"{len(fleet_ms)}")
    b.row("", "Prometheus CPU, RSS", f"**{prom_cpu:.2f}** % of a core, "
          f"{prom_st['rss_kb'] / 1024:.0f} MB RSS",
          f"{prom_cpu / n:.3f} % per agent; {series} head series", None, "", None, "1")
    return {"n": n, "up": stayed_up, "p50": statistics.median(durations),
            "p99": percentile(durations, 99), "agent_cpu": fleet_cpu / n,
            "agent_rss": statistics.median(rss), "prom_cpu": prom_cpu,
            "prom_rss": prom_st["rss_kb"] / 1024, "series": series}


def grows(results):
    """A note on what grows with N, from two or more fleet sizes."""
    lo, hi = results[0], results[-1]
    k = hi["n"] / lo["n"]

    def ratio(key):
        return hi[key] / lo[key] if lo[key] else float("nan")
    return (f"N {lo['n']} → {hi['n']} (×{k:.0f}): Prometheus CPU ×{ratio('prom_cpu'):.1f}, "
            f"its RSS ×{ratio('prom_rss'):.1f}, head series ×{ratio('series'):.1f}; per agent: "
            f"CPU ×{ratio('agent_cpu'):.2f}, RSS ×{ratio('agent_rss'):.2f}, scrape p50 "
            f"×{ratio('p50'):.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, nargs="+", default=[50])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--scrape", type=int, default=5)
    ap.add_argument("--baseline", type=float, default=None,
                    help="seconds of the unscraped reference window (default: half of --seconds; 0: none)")
    args = ap.parse_args()
    if not os.access(b.BIN, os.X_OK):
        sys.exit(f"fleet: {b.BIN} missing: run `make release` first")
    if not os.access(PROMETHEUS, os.X_OK):
        sys.exit(f"fleet: {PROMETHEUS} missing: apt-get install prometheus")
    b.signal.signal(b.signal.SIGTERM, lambda *_: sys.exit(143))
    w = b.World()
    results = []
    try:
        for n in args.agents:
            results.append(bench_fleet(w, n, args.seconds, args.scrape, baseline_s=args.baseline))
    finally:
        b.end_all()
        w.close()
    print("| Workload | Metric | chatstack-status | Reference (same run) | Ratio | Target "
          "| Verdict | Runs |")
    print("|---|---|---|---|---|---|---|---|")
    for r in b.ROWS:
        print(f"| {r['workload']} | {r['metric']} | {r['ours']} | {r['ref']} | "
              f"{r['ratio']} | {r['target']} | {r['verdict']} | {r['runs']} |")
    if len(results) > 1:
        print(f"\n- {grows(results)}")
    return 1 if any("missed" in r["verdict"] for r in b.ROWS) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        b.end_all()
