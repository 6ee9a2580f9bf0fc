#!/usr/bin/env python3
"""`make bench`: speed, scale and footprint of chatstack-status, each workload
side by side with its reference in the same run (interleaved), written as a
markdown table to docs/BENCHMARKS.md.

Everything runs on 127.0.0.1 against targets this script starts (bench/target.py),
with a fake `systemctl` first on PATH. Every process started here is ended here,
by PID. Every load loop is bounded in count and in time.

Usage: python3 bench/bench.py [--quick] [--out docs/BENCHMARKS.md] [--only NAME ...]
(NAME: oneshot callgrind pool scale hostile serving tls fleet push idle procscan idle2000 cost leak
why history history_check history_serve history_report history_idle history_size;
e.g. `--only push` runs the push row alone and prints it without touching docs/BENCHMARKS.md)
`BENCH_BIN=/path/to/chatstack-status` benches that build instead of target/release's;
`BENCH_BASELINE_BIN` names an older build for the `cost` rows to pair with.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import ssl
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

# bench/fleet.py and bench/cost.py `import bench`: let that be this running
# module (with its ROWS and STARTED), not a second copy of it.
sys.modules.setdefault("bench", sys.modules[__name__])

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
BIN = os.environ.get("BENCH_BIN") or os.path.join(ROOT, "target", "release", "chatstack-status")
PLUGINS = "/usr/lib/nagios/plugins"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SHOW = "LoadState,ActiveState,SubState,Result,NRestarts,Id,ExecMainCode,ExecMainStatus,ExecMainPID,InvocationID,MemoryCurrent"

# ------------------------------------------------------------------ plumbing

STARTED = []  # Popen objects we own: ended by PID at exit


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def end_process(p, grace=3.0):
    """SIGTERM, then SIGKILL after `grace`, of one process we started."""
    if p.poll() is not None:
        return
    try:
        os.kill(p.pid, signal.SIGTERM)
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=5)
    except ProcessLookupError:
        pass


def end_all():
    while STARTED:
        p = STARTED.pop()
        try:
            end_process(p)
        except Exception as e:  # keep ending the others
            log(f"could not end pid {p.pid}: {e}")


def start(argv, **kw):
    p = subprocess.Popen(argv, **kw)
    STARTED.append(p)
    return p


def stop(p):
    end_process(p)
    if p in STARTED:
        STARTED.remove(p)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, within, what, step=0.02):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise RuntimeError(f"timed out after {within}s waiting for {what}")


def http_get(url, timeout=5):
    # Bench certificates are self-signed: over https, no verification.
    ctx = ssl._create_unverified_context() if url.startswith("https:") else None
    with urllib.request.urlopen(url, timeout=timeout, context=ctx) as r:
        return r.status, r.read()


class Run:
    """One measured run of a command."""

    def __init__(self, wall, rss_kb, rc, cpu):
        self.wall, self.rss_kb, self.rc, self.cpu = wall, rss_kb, rc, cpu


GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
TIME_OUT = os.path.join(tempfile.gettempdir(), f"chatstack-bench-time.{os.getpid()}")


def measure(argv, env, timeout=120, stderr=None, rss=True):
    """Wall time, peak RSS and CPU time (user + sys, children included) of one run.

    Peak RSS comes from GNU time's %M: a child forked by this (big) Python
    process inherits Python's RSS high-water mark in its own ru_maxrss
    through exec, so wait4's figure from here would be Python's, not the
    program's. CPU comes from wait4 (microseconds, not time's 10 ms).
    GNU time adds a fork + exec (~4 ms here) to the wall time: runs whose wall
    time is the figure use rss=False and get their RSS from a separate run."""
    if GNU_TIME and rss:
        argv = [GNU_TIME, "-f", "%M", "-o", TIME_OUT] + list(argv)
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=stderr or subprocess.DEVNULL)
    STARTED.append(p)
    killer = threading.Timer(timeout, lambda: p.poll() is None and p.kill())
    killer.start()
    try:
        _, status, ru = os.wait4(p.pid, 0)
    finally:
        killer.cancel()
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    STARTED.remove(p)
    rss_kb = float("nan")
    if GNU_TIME and rss:
        with open(TIME_OUT) as f:
            # "Command exited with non-zero status N" may come first.
            rss_kb = int(f.read().split()[-1])
        os.unlink(TIME_OUT)
    return Run(wall, rss_kb, p.returncode, ru.ru_utime + ru.ru_stime)


class Stat:
    def __init__(self, values, unit, fmt="{:.1f}"):
        self.values = list(values)
        self.unit, self.fmt = unit, fmt

    @property
    def median(self):
        return statistics.median(self.values)

    def missing(self):
        return any(math.isnan(v) for v in self.values)

    def cell(self):
        if self.missing():
            return "n/a: needs GNU time (`apt-get install time`)"
        f = self.fmt
        if len(self.values) == 1:
            return f"{f.format(self.values[0])} {self.unit}"
        return (f"**{f.format(self.median)}** {self.unit} "
                f"({f.format(min(self.values))}–{f.format(max(self.values))})")


ROWS = []
NOTES = []


def row(workload, metric, ours, ref=None, ratio=None, target="", ok=None, runs=""):
    if isinstance(ours, Stat) and ours.missing():
        ok, ratio = None, None
    verdict = "—" if ok is None else ("✅ met" if ok else "❌ **missed**")
    ROWS.append({
        "workload": workload, "metric": metric,
        "ours": ours.cell() if isinstance(ours, Stat) else ours,
        "ref": "" if ref is None else (ref.cell() if isinstance(ref, Stat) else ref),
        "ratio": "" if ratio is None else f"{ratio:.2f}×",
        "target": target, "verdict": verdict, "runs": runs,
    })
    r = ROWS[-1]
    log(f"{workload} | {metric} | {r['ours']} | {r['ref']} | {r['ratio']} | {target} | {verdict}")


# ------------------------------------------------------------ environment

class World:
    """A temp dir with fake programs, configs and files, and the target server."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="chatstack-bench.")
        os.chmod(self.dir, 0o755)
        self.bin = os.path.join(self.dir, "bin")
        os.makedirs(self.bin)
        self.systemctl_log = os.path.join(self.dir, "systemctl.log")
        fake = os.path.join(self.bin, "systemctl")
        with open(fake, "w") as f:
            f.write(
                "#!/bin/sh\n"
                "# fake systemctl: every unit is active (one block each, as systemd answers); calls other than show are logged\n"
                'case "$1" in\n'
                "  show) shift 3; first=1\n"
                "    for u; do [ $first = 1 ] || echo; first=0\n"
                "      printf 'LoadState=loaded\\nActiveState=active\\nSubState=running\\n"
                "Result=success\\nNRestarts=0\\n'; done ;;\n"
                f'  *) echo "$*" >> "{self.systemctl_log}" ;;\n'
                "esac\n")
        os.chmod(fake, 0o755)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSTACK_")}
        self.env["PATH"] = self.bin + ":" + os.environ.get("PATH", "/usr/bin:/bin")
        self.env.pop("NOTIFY_SOCKET", None)
        self.env.pop("JOURNAL_STREAM", None)
        self.stderr = open(os.path.join(self.dir, "stderr.log"), "ab")
        # systemd's D-Bus as the daemon asks it on a real host (fake_systemd_bus.py);
        # the fake systemctl above still answers Monit, the plugins script and
        # a daemon told there is no bus (the `units, no bus` part).
        self.bus = os.path.join(self.dir, "systemd-bus")
        self.fake_bus = start([sys.executable, os.path.join(BENCH, "fake_systemd_bus.py"), self.bus],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        if self.fake_bus.stdout.readline().strip() != b"ready":
            raise RuntimeError("fake_systemd_bus.py did not start")
        self.env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=" + self.bus
        self.target = start([sys.executable, os.path.join(BENCH, "target.py")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        info = json.loads(self.target.stdout.readline())
        self.http, self.hang = info["http"], info["hang"]
        wait_for(lambda: http_get(f"http://127.0.0.1:{self.http}/ok")[0] == 200, 10,
                 "the target server")

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def config(self, name, services, **top):
        """Writes a config; `services` is YAML text of the list items."""
        lines = [f"status_file: {self.path(name + '.status.json')}",
                 f"state_file: {self.path(name + '.state.json')}"]
        # The history too stays in the bench's directory (the default is
        # /var/lib/chatstack/history.db); `history_db="off"` turns it off.
        top.setdefault("history_db", self.path(name + ".history.db"))
        for k, v in top.items():
            lines.append(f"{k}: {v}")
        lines.append("services:")
        lines.append(services.rstrip("\n"))
        path = self.path(name + ".yml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        for suffix in (".status.json", ".state.json", ".history.db", ".history.db-wal",
                       ".history.db-shm"):
            try:
                os.unlink(self.path(name + suffix))
            except FileNotFoundError:
                pass
        return path

    def status(self, name):
        with open(self.path(name + ".status.json")) as f:
            return json.load(f)

    def close(self):
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def four_services(w, name=lambda i: f"svc{i}"):
    """The one-shot workload: 4 healthy services, http + tcp + systemd + process each."""
    out = []
    for i in range(1, 5):
        out.append(f"""  - name: {name(i)}
    url: http://127.0.0.1:{w.http}/ok
    port: {w.http}
    unit: svc{i}.service
    process: "bench/target.py\"""")
    return "\n".join(out)


def plugin_script(w):
    """The same 16 checks as monitoring-plugins calls, sequential, in sh."""
    path = w.path("plugins.sh")
    lines = ["#!/bin/sh", "# the 16 checks of the one-shot workload as Nagios plugin calls"]
    for i in range(1, 5):
        lines += [
            f"{PLUGINS}/check_http -H 127.0.0.1 -p {w.http} -u /ok >&2 || exit 1",
            f"{PLUGINS}/check_tcp -H 127.0.0.1 -p {w.http} >&2 || exit 1",
            f"{PLUGINS}/check_procs -c 1: -a bench/target.py >&2 || exit 1",
            f"systemctl show -p {SHOW} svc{i}.service >/dev/null || exit 1",
        ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o755)
    return path


# --------------------------------------------------------------- workloads

def interleaved(cmds, runs, env, warmup=1):
    """Runs each command of `cmds` (name -> argv) in turn, `runs` times: one
    run timed directly (wall, CPU), one under GNU time (peak RSS)."""
    res = {k: [] for k in cmds}
    for i in range(warmup + runs):
        for name, argv in cmds.items():
            r = measure(argv, env, rss=False)
            if r.rc != 0:
                raise RuntimeError(f"{name}: {argv} exited {r.rc}")
            r.rss_kb = measure(argv, env).rss_kb
            if i >= warmup:
                res[name].append(r)
    return res


def bench_oneshot(w, runs):
    cfg = w.config("oneshot", four_services(w))
    script = plugin_script(w)
    cmds = {"ours": [BIN, "check", "-c", cfg], "true": ["/bin/true"]}
    have_plugins = os.access(f"{PLUGINS}/check_http", os.X_OK)
    if have_plugins:
        cmds["plugins"] = ["sh", script]
    res = interleaved(cmds, runs, w.env)

    def ref_of(values, unit, fmt="{:.1f}"):
        if not have_plugins:
            return "monitoring-plugins-basic not installed"
        return Stat(values, unit, fmt)

    ours = Stat([r.wall * 1000 for r in res["ours"]], "ms")
    ref = ref_of([r.wall * 1000 for r in res.get("plugins", [])], "ms")
    ratio = ours.median / ref.median if have_plugins else None
    row("one-shot `check`, 4 services × (http+tcp+systemd+process)", "wall time",
        ours, ref, ratio, "≤ 15 ms", ours.median <= 15, f"{runs}+{runs}")
    rss = Stat([r.rss_kb / 1024 for r in res["ours"]], "MB", "{:.2f}")
    rref = ref_of([r.rss_kb / 1024 for r in res.get("plugins", [])], "MB", "{:.2f}")
    row("", "peak RSS", rss, rref, None, "≤ 8 MB", rss.median <= 8)
    cpu = Stat([r.cpu * 1000 for r in res["ours"]], "ms")
    cref = ref_of([r.cpu * 1000 for r in res.get("plugins", [])], "ms")
    ratio = cpu.median / cref.median if have_plugins else None
    row("", "CPU time (user+sys, incl. children)", cpu, cref, ratio, "", None)
    true = Stat([r.wall * 1000 for r in res["true"]], "ms")
    row("", "harness floor: spawn + wait of `/bin/true`", true, None, None,
        "included in both wall times", None, f"{runs}")
    return cfg, script


def callgrind_total(outdir, prefix):
    total = own = 0
    for name in os.listdir(outdir):
        if not name.startswith(prefix):
            continue
        with open(os.path.join(outdir, name), errors="replace") as f:
            text = f.read()
        m = re.search(r"^(?:totals|summary):\s+(\d+)", text, re.M)
        if not m:
            continue
        n = int(m.group(1))
        total += n
        if re.search(r"^cmd:.*chatstack-status", text, re.M):
            own += n
    return total, own


def bench_callgrind(w, cfg, script):
    if not shutil.which("valgrind"):
        row("one-shot, instructions (callgrind)", "", "valgrind not installed", target="", ok=None)
        return
    outdir = w.path("callgrind")
    os.makedirs(outdir, exist_ok=True)
    runs = [("ours", [BIN, "check", "-c", cfg])]
    if os.access(f"{PLUGINS}/check_http", os.X_OK):
        runs.append(("plugins", ["sh", script]))
    for name, argv in runs:
        # Valgrind's own messages go to files: check_procs fails when the
        # `ps` it runs writes anything to stderr.
        vg = ["valgrind", "--tool=callgrind", "--trace-children=yes",
              f"--log-file={outdir}/valgrind-{name}.%p.log",
              f"--callgrind-out-file={outdir}/{name}.%p"]
        errlog = w.path(f"callgrind-{name}.log")
        with open(errlog, "wb") as err:
            r = measure(vg + argv, w.env, timeout=300, stderr=err, rss=False)
        if r.rc != 0:
            with open(errlog, errors="replace") as f:
                tail = f.read()[-2000:]
            raise RuntimeError(f"callgrind {name} exited {r.rc}:\n{tail}")
    ours, own = callgrind_total(outdir, "ours.")
    ref, _ = callgrind_total(outdir, "plugins.")
    row("", "instructions (callgrind, incl. child processes)",
        f"**{ours / 1e6:.1f} M** (binary alone {own / 1e6:.1f} M)",
        f"{ref / 1e6:.1f} M" if ref else "monitoring-plugins-basic not installed",
        ours / ref if ref else None, "", None, "1+1")


def cycle_runs(w, name, runs, check=None):
    """`check` runs of one config: wall, status duration_ms, RSS, CPU."""
    cfg = w.path(name + ".yml")
    out = []
    for _ in range(runs):
        r = measure([BIN, "check", "-c", cfg], w.env, stderr=w.stderr)
        st = w.status(name)
        if check:
            check(st)
        out.append((r, st["duration_ms"]))
    return out


def http_services(urls, extra=""):
    return "\n".join(f"  - name: t{i}\n    url: {u}{extra}" for i, u in enumerate(urls))


def bench_pool(w, runs):
    urls = [f"http://127.0.0.1:{w.http}/delay/200/{i}" for i in range(50)]
    w.config("pool", http_services(urls), workers=16)
    urls_file = w.path("pool.urls")
    with open(urls_file, "w") as f:
        f.write("\n".join(urls) + "\n")
    ours, ref = [], []
    for i in range(runs + 1):
        r = cycle_runs(w, "pool", 1)[0]
        out = subprocess.run([sys.executable, os.path.join(BENCH, "pyref.py"), "--workers", "16",
                              urls_file], capture_output=True, text=True, timeout=60, check=True)
        if i:
            ours.append(r[1])
            ref.append(json.loads(out.stdout)["elapsed_ms"])
    s, rs = Stat(ours, "ms", "{:.0f}"), Stat(ref, "ms", "{:.0f}")
    row("pool: 50 HTTP targets × 200 ms, `workers: 16` (ideal 800 ms)",
        "cycle (`duration_ms`)", s, rs, s.median / rs.median, "≤ 900 ms", s.median <= 900,
        f"{runs}+{runs}")
    NOTES.append("Pool reference: the Python design's pattern, `concurrent.futures."
                 "ThreadPoolExecutor(16)` + `urllib.request` (bench/pyref.py), timed inside Python "
                 "(interpreter start-up excluded).")


def bench_scale(w, runs):
    prev = None
    for n in (10, 100, 1000):
        urls = [f"http://127.0.0.1:{w.http}/delay/200/{i}" for i in range(n)]
        name = f"scale{n}"
        w.config(name, http_services(urls), workers=64)

        def all_up(st, n=n):
            up = sum(1 for s in st["services"] if s["status"] == "up")
            if up != n:
                raise RuntimeError(f"scale {n}: only {up} targets up")

        res = cycle_runs(w, name, runs, all_up)
        ideal = math.ceil(n / 64) * 200
        cyc = Stat([d for _, d in res], "ms", "{:.0f}")
        rss = Stat([r.rss_kb / 1024 for r, _ in res], "MB", "{:.1f}")
        cpu = Stat([r.cpu * 1e6 / n for r, _ in res], "µs/target", "{:.0f}")
        row(f"scale: N = {n} targets × 200 ms, `workers: 64` (ideal {ideal} ms)",
            "cycle (`duration_ms`)", cyc, f"ideal {ideal} ms", cyc.median / ideal,
            f"≤ 1.15 × ideal = {ideal * 1.15:.0f} ms", cyc.median <= ideal * 1.15, f"{runs}")
        per = ""
        if prev:
            per = (f"{(rss.median - prev[1]) * 1024 / (n - prev[0]):+.1f} KiB per target "
                   f"vs N = {prev[0]}")
            if prev[0] < 64:
                per += f" (probe threads {prev[0]} → {min(n, 64)})"
        prev = (n, rss.median)
        row("", "peak RSS", rss, per, None, "flat per target", None)
        row("", "CPU per target", cpu, None, None, "", None)


def bench_hostile(w, runs):
    urls = [f"http://127.0.0.1:{w.http}/ok/{i}" for i in range(100)]
    urls += [f"http://127.0.0.1:{w.hang}/hang/{i}" for i in range(20)]
    for workers, target in ((64, 1300), (16, None)):
        name = f"hostile{workers}"
        w.config(name, http_services(urls), workers=workers, timeout="1s")

        def shape(st):
            down = [s for s in st["services"] if s["status"] == "down"]
            reasons = {s["checks"][0]["reason"] for s in down}
            if len(down) != 20 or reasons != {"timeout"}:
                raise RuntimeError(f"hostile: {len(down)} down, reasons {reasons}")

        res = cycle_runs(w, name, runs, shape)
        cyc = Stat([d for _, d in res], "ms", "{:.0f}")
        if target:
            row("hostile: 100 healthy + 20 hang-after-accept (timeout 1 s), `workers: 64`",
                "cycle (`duration_ms`)", cyc, "ideal 1000 ms", cyc.median / 1000,
                "≤ 1300 ms", cyc.median <= target, f"{runs}")
        else:
            row("same, `workers: 16` (default): 20 hung > 16 workers",
                "cycle (`duration_ms`)", cyc, "ideal ⌈20/16⌉ × 1 s = 2000 ms",
                cyc.median / 2000, "informational", None, f"{runs}")


class Sleepers:
    """N extra `sleep` processes, ended by PID."""

    def __init__(self, n):
        self.procs = []
        t0 = time.monotonic()
        try:
            for _ in range(n):
                self.procs.append(subprocess.Popen(["sleep", "900"], stdin=subprocess.DEVNULL,
                                                   stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL))
                if time.monotonic() - t0 > 120:
                    raise RuntimeError("spawning sleepers took over 120 s")
        except BaseException:
            self.close()
            raise
        log(f"started {n} sleep processes in {time.monotonic() - t0:.1f} s")

    def close(self):
        for p in self.procs:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.procs:
            p.wait()
        self.procs = []


def bench_procscan(w, runs):
    svc = """  - name: procs
    checks:
      - { type: process, match: "bench/target\\\\.py" }
      - { type: process, match: "no-such-program-[0-9]+", min: 0, max: 0 }
      - { type: process, match: "^sleep 9[0-9]+$", min: 1 }
      - { type: process, match: "nginx: (master|worker)", min: 0 }"""
    cfg = w.config("procscan", svc)
    res = interleaved({"ours": [BIN, "check", "-c", cfg],
                       "pgrep": ["pgrep", "-f", "bench/target\\.py"]}, runs, w.env)
    st = w.status("procscan")
    if st["overall"] != "up":
        raise RuntimeError(f"procscan: {st['overall']}: {st['services'][0]['checks']}")
    ours = Stat([r.wall * 1000 for r in res["ours"]], "ms")
    ref = Stat([r.wall * 1000 for r in res["pgrep"]], "ms")
    nproc = len([d for d in os.listdir("/proc") if d.isdigit()])
    row(f"process scan: 4 process checks, {nproc} processes on the host",
        "wall of `check` vs `pgrep -f` (1 match)", ours, ref, ours.median / ref.median,
        "≤ 0.5 × pgrep", ours.median <= 0.5 * ref.median, f"{runs}+{runs}")
    rss = Stat([r.rss_kb / 1024 for r in res["ours"]], "MB", "{:.2f}")
    row("", "peak RSS", rss, None, None, "", None)


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, (int(fields[13]) + int(fields[14])) / CLK_TCK


def smaps_rollup(pid):
    """PSS and USS (private pages) in KiB."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if v.strip().endswith("kB"):
                out[k] = int(v.split()[0])
    return {"pss_kb": out.get("Pss", 0),
            "uss_kb": out.get("Private_Clean", 0) + out.get("Private_Dirty", 0)}


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return {
        "rss_kb": int(out["VmRSS"].split()[0]),
        "anon_kb": int(out["RssAnon"].split()[0]),
        "file_kb": int(out["RssFile"].split()[0]),
        "hwm_kb": int(out["VmHWM"].split()[0]),
        "threads": int(out["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


class Daemon:
    def __init__(self, w, cfg, port, https=False):
        self.port = port
        self.scheme = "https" if https else "http"
        self.p = start([BIN, "run", "-c", cfg, "--listen", f"127.0.0.1:{port}"], env=w.env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=w.stderr)

    def wait_ready(self, within=30):
        def ready():
            if self.p.poll() is not None:
                raise RuntimeError(f"daemon exited {self.p.returncode}")
            try:
                return http_get(f"{self.scheme}://127.0.0.1:{self.port}/api/status", 2)[0] == 200
            except OSError:
                return False
        wait_for(ready, within, "the daemon's first cycle", 0.05)

    def close(self):
        stop(self.p)


def bench_idle(w, seconds, sleepers_label="", name="idle", **top):
    port = free_port()
    cfg = w.config(name, four_services(w), interval="5s", **top)
    seed_history(w, name)
    d = Daemon(w, cfg, port)
    try:
        d.wait_ready()
        # Sample mid-interval, in windows of two cycles each.
        window = 10.0
        time.sleep(2.5)
        samples = [(time.monotonic(), proc_stat(d.p.pid), proc_status(d.p.pid))]
        n = max(1, int(seconds // window))
        for i in range(n):
            time.sleep(max(0.0, samples[0][0] + (i + 1) * window - time.monotonic()))
            samples.append((time.monotonic(), proc_stat(d.p.pid), proc_status(d.p.pid)))
        own, kids = [], []
        for (t0, c0, _), (t1, c1, _) in zip(samples, samples[1:]):
            own.append((c1[0] - c0[0]) / (t1 - t0) * 100)
            kids.append((c1[1] - c0[1]) / (t1 - t0) * 100)
        total = samples[-1][0] - samples[0][0]
        own_all = (samples[-1][1][0] - samples[0][1][0]) / total * 100
        kids_all = (samples[-1][1][1] - samples[0][1][1]) / total * 100
        rss = Stat([s[2]["rss_kb"] / 1024 for s in samples[1:]], "MB", "{:.2f}")
        hwm = samples[-1][2]["hwm_kb"] / 1024
        last = dict(samples[-1][2], **smaps_rollup(d.p.pid))
        return own, own_all, kids_all, rss, hwm, n, window, last
    finally:
        d.close()


def report_idle(res, label, cpu_target, seconds):
    own, own_all, kids_all, rss, hwm, n, window, last = res
    s = Stat(own, "% of a core", "{:.3f}")
    monit = "Monit (FIELD-NOTES, not this run): 0.24 %" if not label else \
        "Monit (FIELD-NOTES, not this run): 4.2 %"
    row(f"idle daemon: `run`, 4 services, 5 s interval{label}",
        f"CPU over {seconds:.0f} s ({n} windows of {window:.0f} s)", s,
        f"overall {own_all:.3f} %; + child processes (fake systemctl) {kids_all:.3f} %; {monit}",
        None, f"≤ {cpu_target} %", own_all <= cpu_target, f"{n}")
    row("", "RSS (VmRSS at each window end)", rss,
        f"of which file-backed (binary, libc) {last['file_kb'] / 1024:.2f} MB, anonymous "
        f"{last['anon_kb'] / 1024:.2f} MB; PSS {last['pss_kb'] / 1024:.2f} MB, USS "
        f"{last['uss_kb'] / 1024:.2f} MB; peak VmHWM {hwm:.2f} MB; {last['threads']} threads, "
        f"{last['fds']} fds; Monit (FIELD-NOTES): 8 MB", None, "≤ 5 MB", rss.median <= 5)


def seed_history(w, name, n=60):
    """Runs `check` n times so that the daemon starts from a steady state:
    a full history ring (60 entries per service), as in production."""
    cfg = w.path(name + ".yml")
    for _ in range(n):
        r = subprocess.run([BIN, "check", "-c", cfg], env=w.env, stdout=subprocess.DEVNULL,
                           stderr=w.stderr, timeout=60)
        # 1 or 2 is the host's verdict (a `/` over 80 % warns), not a failure
        if r.returncode not in (0, 1, 2):
            raise RuntimeError(f"seeding {name}: check exited {r.returncode}")


def bench_serving(w, runs, seconds):
    if not shutil.which("wrk") or not shutil.which("nginx"):
        row("serving `/api/status`", "", "wrk or nginx not installed", ok=None)
        return
    port = free_port()
    cfg = w.config("serve", four_services(w), interval="5s")
    seed_history(w, "serve")
    d = Daemon(w, cfg, port)
    ngx = None
    try:
        d.wait_ready()
        _, body = http_get(f"http://127.0.0.1:{port}/api/status")
        nport = free_port()
        ngx = start_nginx(w, "nginx", body, f"listen 127.0.0.1:{nport};")
        wait_for(lambda: _get_ok(f"http://127.0.0.1:{nport}/api/status"), 10, "nginx")
        urls = {"ours": f"http://127.0.0.1:{port}/api/status",
                "nginx": f"http://127.0.0.1:{nport}/api/status"}
        res = {"ours": [], "nginx": []}
        for _ in range(runs):
            for name, url in urls.items():
                res[name].append(wrk(url, seconds))
        st = proc_status(d.p.pid)
    finally:
        if ngx:
            stop(ngx)
        d.close()
    rps = Stat([r["rps"] for r in res["ours"]], "req/s", "{:.0f}")
    nrps = Stat([r["rps"] for r in res["nginx"]], "req/s", "{:.0f}")
    p99 = Stat([r["p99_ms"] for r in res["ours"]], "ms", "{:.2f}")
    np99 = Stat([r["p99_ms"] for r in res["nginx"]], "ms", "{:.2f}")
    errs = sum(r["errors"] for r in res["ours"])
    nerrs = sum(r["errors"] for r in res["nginx"])
    label = (f"serving: `wrk -t2 -c64 -d{seconds}s` on `/api/status` ({len(body)} B, "
             "4 services with full history) vs nginx (1 worker, same bytes)")
    row(label, "requests/s", rps, nrps, rps.median / nrps.median, "≥ 0.5 × nginx",
        rps.median >= 0.5 * nrps.median, f"{runs}+{runs}")
    row("", "p99 latency", p99, np99, p99.median / np99.median, "< 10 ms", p99.median < 10)
    row("", "errors (socket errors + non-2xx), all runs", f"{errs}", f"{nerrs}", None, "0",
        errs == 0)
    row("", "daemon after the load", f"RSS {st['rss_kb'] / 1024:.2f} MB, peak "
        f"{st['hwm_kb'] / 1024:.2f} MB, {st['threads']} threads, {st['fds']} fds", None,
        None, "", None)


def start_nginx(w, name, body, listen):
    """nginx (1 worker) serving `body` as `/api/status`, `listen` its server's
    listen (and TLS) directives; the process, to `stop`."""
    ndir = w.path(name)
    os.makedirs(os.path.join(ndir, "html", "api"), exist_ok=True)
    for d in (ndir, os.path.join(ndir, "html"), os.path.join(ndir, "html", "api")):
        os.chmod(d, 0o755)
    with open(os.path.join(ndir, "html", "api", "status"), "wb") as f:
        f.write(body)
    os.chmod(os.path.join(ndir, "html", "api", "status"), 0o644)
    conf = os.path.join(ndir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
worker_processes 1;
pid {ndir}/nginx.pid;
error_log {ndir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {ndir}/tmp;
  proxy_temp_path {ndir}/tmp;
  fastcgi_temp_path {ndir}/tmp;
  uwsgi_temp_path {ndir}/tmp;
  scgi_temp_path {ndir}/tmp;
  server {{
    {listen}
    root {ndir}/html;
    location = /api/status {{
      default_type application/json;
      add_header Cache-Control no-store;
    }}
  }}
}}
""")
    return start(["nginx", "-e", f"{ndir}/error.log", "-p", ndir, "-c", conf],
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=w.stderr)


def make_cert(w):
    """A self-signed certificate for 127.0.0.1 (openssl CLI); (cert, key) paths."""
    cert, key = w.path("tls-cert.pem"), w.path("tls-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    os.chmod(key, 0o644)
    return cert, key


def bench_tls_serving(w, runs, seconds):
    """`/api/status` over HTTPS (`tls:`) vs the same daemon over plain HTTP
    and vs nginx with TLS on the same certificate, interleaved."""
    if not shutil.which("wrk") or not shutil.which("nginx") or not shutil.which("openssl"):
        row("serving over TLS", "", "wrk, nginx or openssl not installed", ok=None)
        return
    cert, key = make_cert(w)
    plain_port, tls_port, nport = free_port(), free_port(), free_port()
    cfg_plain = w.config("tlsplain", four_services(w), interval="5s")
    seed_history(w, "tlsplain")
    cfg_tls = w.config("tls", four_services(w), interval="5s",
                       tls=f'{{ cert_file: "{cert}", key_file: "{key}" }}')
    seed_history(w, "tls")
    plain = Daemon(w, cfg_plain, plain_port)
    tls = Daemon(w, cfg_tls, tls_port, https=True)
    ngx = None
    try:
        plain.wait_ready()
        tls.wait_ready()
        _, body = http_get(f"http://127.0.0.1:{plain_port}/api/status")
        ngx = start_nginx(w, "nginx-tls", body,
                          f"listen 127.0.0.1:{nport} ssl; ssl_certificate {cert}; "
                          f"ssl_certificate_key {key}; ssl_protocols TLSv1.3;")
        wait_for(lambda: _get_ok(f"https://127.0.0.1:{nport}/api/status"), 10, "nginx (TLS)")
        urls = {"tls": f"https://127.0.0.1:{tls_port}/api/status",
                "plain": f"http://127.0.0.1:{plain_port}/api/status",
                "nginx": f"https://127.0.0.1:{nport}/api/status"}
        res = {k: [] for k in urls}
        for _ in range(runs):
            for name, url in urls.items():
                res[name].append(wrk(url, seconds))
        st = proc_status(tls.p.pid)
    finally:
        if ngx:
            stop(ngx)
        plain.close()
        tls.close()
    stat = {k: Stat([r["rps"] for r in v], "req/s", "{:.0f}") for k, v in res.items()}
    p99 = {k: Stat([r["p99_ms"] for r in v], "ms", "{:.2f}") for k, v in res.items()}
    label = (f"serving over TLS: `wrk -t2 -c64 -d{seconds}s` on `/api/status` ({len(body)} B) "
             "with `tls:` (rustls, TLS 1.3) vs the same daemon over plain HTTP")
    r = stat["tls"].median / stat["plain"].median
    row(label, "requests/s", stat["tls"], stat["plain"], r, "(what TLS costs)", None,
        f"{runs}+{runs}")
    r = stat["tls"].median / stat["nginx"].median
    row("… vs nginx with TLS (1 worker, TLS 1.3, same certificate and bytes)", "requests/s",
        stat["tls"], stat["nginx"], r, "≥ 0.5 × nginx", r >= 0.5, f"{runs}+{runs}")
    row("", "p99 latency (ours over TLS vs nginx over TLS)", p99["tls"], p99["nginx"],
        p99["tls"].median / p99["nginx"].median, "< 10 ms", p99["tls"].median < 10)
    errs = sum(x["errors"] for x in res["tls"])
    row("", "errors over TLS, all runs", f"{errs}", None, None, "0", errs == 0)
    row("", "daemon after the load", f"RSS {st['rss_kb'] / 1024:.2f} MB, peak "
        f"{st['hwm_kb'] / 1024:.2f} MB, {st['threads']} threads, {st['fds']} fds", None,
        None, "", None)


def _get_ok(url):
    try:
        return http_get(url, 2)[0] == 200
    except OSError:
        return False


def wrk(url, seconds, conns=64):
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    p99, p50 = pct(99), pct(50)
    errors = timeouts = 0
    kinds = {}
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
        timeouts = int(m.group(4))
        kinds = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), m.groups())
                 if int(v)}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
        kinds["non-2xx"] = int(m.group(1))
    m = re.search(r"^\s*(\d+) requests in", out, re.M)
    requests = int(m.group(1)) if m else 0
    return {"rps": rps, "p99_ms": p99, "p50_ms": p50, "errors": errors, "timeouts": timeouts,
            "kinds": kinds, "requests": requests}


class FileWrites:
    """Counts renames onto chosen names in one directory (inotify IN_MOVED_TO,
    through libc with ctypes): every atomic write of the state or status file
    is one, so nothing is missed the way polling an inode could miss one."""

    IN_MOVED_TO, IN_NONBLOCK = 0x80, 0o4000

    def __init__(self, directory, names):
        import ctypes
        import ctypes.util
        self.libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = self.libc.inotify_init1(self.IN_NONBLOCK)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if self.libc.inotify_add_watch(self.fd, directory.encode(), self.IN_MOVED_TO) < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {directory}")
        self.counts = {n: 0 for n in names}
        self.counting = False
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import select
        import struct
        while not self.done.is_set():
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if not r:
                continue
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            i = 0
            while i + 16 <= len(buf):
                _, mask, _, n = struct.unpack_from("iIII", buf, i)
                name = buf[i + 16:i + 16 + n].rstrip(b"\0").decode(errors="replace")
                i += 16 + n
                if self.counting and mask & self.IN_MOVED_TO and name in self.counts:
                    self.counts[name] += 1

    def start(self):
        for n in self.counts:
            self.counts[n] = 0
        self.counting = True

    def stop(self):
        time.sleep(0.2)  # let the last events in
        self.counting = False
        return dict(self.counts)

    def close(self):
        self.done.set()
        self.thread.join(timeout=5)
        os.close(self.fd)


class Poller:
    """GETs `url` at `rate` per second (a dashboard's polling), recording each
    answer's latency; bounded by `seconds`."""

    def __init__(self, url, rate, seconds, headers=None):
        self.url, self.period, self.seconds = url, 1.0 / rate, seconds
        self.headers = headers or {}
        self.lat_ms, self.errors = [], 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < self.seconds:
            due = t0 + n * self.period
            time.sleep(max(0.0, due - time.monotonic()))
            n += 1
            s = time.perf_counter()
            try:
                req = urllib.request.Request(self.url, headers=self.headers)
                with urllib.request.urlopen(req, timeout=5) as r:
                    r.read()
                    ok = r.status == 200
            except OSError:
                ok = False
            if ok:
                self.lat_ms.append((time.perf_counter() - s) * 1000)
            else:
                self.errors += 1
        self.elapsed = time.monotonic() - t0

    def run(self):
        self.thread.start()
        return self

    def join(self):
        self.thread.join(timeout=self.seconds + 30)
        return self

    def p(self, q):
        v = sorted(self.lat_ms)
        return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def bench_push(w, runs, seconds, interval="1s", rate=10):
    """`wrk` on /api/push/NAME while a poller reads /api/status at a dashboard's
    rate; the state and status files' writes counted (inotify) meanwhile; the
    pings recorded against the pushes answered."""
    if not shutil.which("wrk"):
        row("push: `wrk` on `/api/push/NAME`", "", "wrk not installed", ok=None)
        return
    port = free_port()
    token = w.path("backup.token")
    with open(token, "w") as f:
        f.write("bench-token-0123456\n")
    svc = four_services(w) + f"""
  - name: backup
    checks:
      - {{ type: push, period: 1d, grace: 1h, token_file: {token} }}"""
    cfg = w.config("push", svc, interval=interval)
    d = Daemon(w, cfg, port)
    status_url = f"http://127.0.0.1:{port}/api/status"
    push_url = f"http://127.0.0.1:{port}/api/push/backup?token=bench-token-0123456&msg=bench"
    writes = FileWrites(w.dir, ["push.state.json", "push.status.json"])

    def pings():
        with open(w.path("push.state.json")) as f:
            push = json.load(f)["services"].get("backup", {}).get("push") or {}
        return push.get("pings", 0)

    res = {"push": [], "status": [], "quiet": [], "loaded": [], "writes": [], "pings": []}
    try:
        d.wait_ready()
        wrk(status_url, 2)  # warm-up
        for _ in range(runs):
            # The same poller without the load, then with it.
            res["quiet"].append(Poller(status_url, rate, seconds).run().join())
            before = pings()
            poller = Poller(status_url, rate, seconds).run()
            writes.start()
            r = wrk(push_url, seconds)
            counts = writes.stop()
            res["loaded"].append(poller.join())
            res["push"].append(r)
            res["writes"].append(counts)
            # Recorded by the next cycle: wait for it, then count.
            answered = r["requests"] - r["errors"]
            wait_for(lambda: pings() - before >= answered, 30, "the pushes recorded", 0.1)
            res["pings"].append((pings() - before, answered))
            res["status"].append(wrk(status_url, seconds))
        st = proc_status(d.p.pid)
    finally:
        writes.close()
        d.close()
    rps = Stat([r["rps"] for r in res["push"]], "req/s", "{:.0f}")
    srps = Stat([r["rps"] for r in res["status"]], "req/s", "{:.0f}")
    p99 = Stat([r["p99_ms"] for r in res["push"]], "ms", "{:.2f}")
    errs = sum(r["errors"] for r in res["push"])
    def kinds(rs):
        total = {}
        for r in rs:
            for k, v in r["kinds"].items():
                total[k] = total.get(k, 0) + v
        return ", ".join(f"{k} {v}" for k, v in total.items()) or "none"
    serrs = sum(r["errors"] for r in res["status"])
    label = (f"push: `wrk -t2 -c64 -d{seconds}s` on `/api/push/NAME?token=…&msg=…` against "
             f"`run` (4 services + 1 push check, `interval: {interval}`)")
    row(label, "requests/s (ref: `/api/status` the same way, same run)", rps, srps,
        rps.median / srps.median, "≥ 0.5 × `/api/status`", rps.median >= 0.5 * srps.median,
        f"{runs}+{runs}")
    row("", "p99 latency of a push", p99, None, None, "< 10 ms", p99.median < 10)
    row("", "errors (socket errors + non-2xx), all runs (ref: `/api/status`)",
        f"{errs} ({kinds(res['push'])})", f"{serrs} ({kinds(res['status'])})", None, "0",
        errs == 0)
    q99 = Stat([p.p(0.99) for p in res["quiet"]], "ms", "{:.2f}")
    l99 = Stat([p.p(0.99) for p in res["loaded"]], "ms", "{:.2f}")
    l50 = Stat([p.p(0.5) for p in res["loaded"]], "ms", "{:.2f}")
    # Answered against the slots due in the time it ran (it starts at slot 0).
    held = [len(p.lat_ms) / (int(p.elapsed * rate) + 1) for p in res["loaded"]]
    lerrs = sum(p.errors for p in res["loaded"])
    row(f"`/api/status` meanwhile, polled at {rate}/s (a dashboard's rate)",
        "p99 under the push load (ref: the same poller, no load)", l99, q99,
        l99.median / q99.median, "rate held, 0 errors", min(held) >= 0.95 and lerrs == 0,
        f"{runs}+{runs}")
    row("", "p50 under the load; rate achieved; errors",
        f"{l50.cell()}; {min(held) * 100:.0f}–{max(held) * 100:.0f} % of {rate}/s; {lerrs} errors",
        None, None, "", None)
    state_w = [c["push.state.json"] for c in res["writes"]]
    cycles = [c["push.status.json"] for c in res["writes"]]
    pushes = [r["requests"] for r in res["push"]]
    row("state file writes during the load (inotify `IN_MOVED_TO`)",
        "writes vs cycles (status file writes) vs pushes",
        "; ".join(f"**{s}** writes, {c} cycles, {n} pushes" for s, c, n in
                  zip(state_w, cycles, pushes)),
        None, None, "≤ 1 per cycle", all(s <= c + 1 for s, c in zip(state_w, cycles)),
        f"{runs}")
    row("", "pings recorded vs pushes answered 200 (wrk's count)",
        "; ".join(f"{got} vs {n}" for got, n in res["pings"]), None, None,
        "none lost (≥)", all(got >= n for got, n in res["pings"]), f"{runs}")
    row("", "daemon after the load", f"RSS {st['rss_kb'] / 1024:.2f} MB, peak "
        f"{st['hwm_kb'] / 1024:.2f} MB, {st['threads']} threads, {st['fds']} fds", None,
        None, "", None)
    NOTES.append("Push: the poller is a Python thread (urllib, a new connection per request), "
                 "so its latencies include Python's own; compare the loaded and quiet columns, "
                 "not the absolute figures. A push that wrk sent but abandoned at its deadline "
                 "may still be recorded, hence ≥.")


def bench_leak(w, cycles_lo, cycles_mid, cycles_hi, interval="50ms"):
    """Daemon RSS after `cycles_hi` cycles of config/demo.yml vs after `cycles_lo`."""
    port = free_port()
    counter = w.path("leak.cycles")
    open(counter, "w").close()
    with open(os.path.join(ROOT, "config", "demo.yml")) as f:
        demo = f.read()
    demo = re.sub(r"^interval: .*$", f"interval: {interval}", demo, flags=re.M)
    demo = re.sub(r"^status_file: .*$", f"status_file: {w.path('leak.status.json')}", demo,
                  flags=re.M)
    demo = re.sub(r"^state_file: .*$", f"state_file: {w.path('leak.state.json')}", demo, flags=re.M)
    demo = re.sub(r"^history_db: .*$", f"history_db: {w.path('leak.history.db')}", demo,
                  flags=re.M)
    demo = demo.replace("127.0.0.1:8095", f"127.0.0.1:{port}")
    demo += f"""
  # added by the bench: counts cycles
  - name: Cycles
    checks:
      - type: command
        argv: [sh, -c, "echo >> {counter}"]
"""
    cfg = w.path("leak.yml")
    with open(cfg, "w") as f:
        f.write(demo)
    d = Daemon(w, cfg, port)

    def count():
        with open(counter) as f:
            return sum(1 for _ in f)

    try:
        t0 = time.monotonic()
        wait_for(lambda: count() >= cycles_lo, 60, f"{cycles_lo} cycles", 0.005)
        lo = proc_status(d.p.pid)
        wait_for(lambda: count() >= cycles_mid, 60, f"{cycles_mid} cycles", 0.005)
        mid = proc_status(d.p.pid)
        wait_for(lambda: count() >= cycles_hi, cycles_hi * 0.2 + 60, f"{cycles_hi} cycles", 0.01)
        hi = proc_status(d.p.pid)
        took = time.monotonic() - t0
        if d.p.poll() is not None:
            raise RuntimeError("daemon died in the leak test")
    finally:
        d.close()
    growth = hi["rss_kb"] - lo["rss_kb"]
    row(f"daemon memory: config/demo.yml at a {interval} interval",
        f"RSS after {cycles_hi} cycles vs after {cycles_lo}",
        f"**{hi['rss_kb']} KiB** vs {lo['rss_kb']} KiB: {growth:+d} KiB "
        f"({took:.0f} s; threads {lo['threads']}→{hi['threads']}, fds {lo['fds']}→{hi['fds']})",
        None, None, "growth ≤ 512 KiB", growth <= 512, "1")
    growth = hi["rss_kb"] - mid["rss_kb"]
    row("", f"RSS after {cycles_hi} cycles vs after {cycles_mid} (history ring of 60 full)",
        f"**{hi['rss_kb']} KiB** vs {mid['rss_kb']} KiB: {growth:+d} KiB", None, None,
        "no leak: flat once warm", None, "1")


# ------------------------------------------------------------------ history

def seeded_name(i):
    """The seeder's service names (svc-00, svc-01, ...)."""
    return f"svc-{i:02d}"


def seed_store(w, name, services=10, days=None):
    """A history database as a year of a 30 s cycle leaves it (`__seed-history`)."""
    db = w.path(name + ".history.db")
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(db + suffix)
        except FileNotFoundError:
            pass
    argv = [BIN, "__seed-history", "--db", db, "--services", str(services)]
    if days:
        argv += ["--days", str(days)]
    out = subprocess.run(argv, env=w.env, capture_output=True, text=True, timeout=300, check=True)
    log(out.stdout.strip())
    return db


def bench_history_check(w, runs):
    """`check` recording into a year of history (4 services) vs `history_db: off`."""
    named = lambda i: seeded_name(i - 1)  # noqa: E731
    db = seed_store(w, "hcheck-seeded", services=4)
    on = w.config("hcheck", four_services(w, named), history_db=db)
    off = w.config("hcheck-off", four_services(w, named), history_db="off")
    res = interleaved({"store": [BIN, "check", "-c", on], "off": [BIN, "check", "-c", off]},
                      runs, w.env)
    up = w.status("hcheck")["services"][0].get("uptime") or {}
    if up.get("30d") is None:
        raise RuntimeError(f"history check: no uptime in the status: {up}")
    ours = Stat([r.wall * 1000 for r in res["store"]], "ms")
    ref = Stat([r.wall * 1000 for r in res["off"]], "ms")
    ratio = ours.median / ref.median
    row("history: one-shot `check` (the one-shot's 4 services) recording into a seeded year "
        "vs the same with `history_db: off`", "wall time", ours, ref, ratio, "≤ 1.15×",
        ratio <= 1.15, f"{runs}+{runs}")
    rss = Stat([r.rss_kb / 1024 for r in res["store"]], "MB", "{:.2f}")
    rref = Stat([r.rss_kb / 1024 for r in res["off"]], "MB", "{:.2f}")
    diff = rss.median - rref.median
    row("", f"peak RSS (difference {diff:+.2f} MB)", rss, rref, None, "same ± 1 MB",
        None if rss.missing() else abs(diff) <= 1)
    cpu = Stat([r.cpu * 1000 for r in res["store"]], "ms")
    cref = Stat([r.cpu * 1000 for r in res["off"]], "ms")
    row("", "CPU time (user+sys, incl. children)", cpu, cref, cpu.median / cref.median, "", None)


def history_serve_config(w, name, db):
    svcs = "\n".join(f"  - name: {seeded_name(i)}\n    port: {w.http}" for i in range(10))
    cfg = w.config(name, svcs, history_db=db)
    # The status file for /api/status, from a cycle that leaves the seeded
    # history alone.
    env = dict(w.env, CHATSTACK_HISTORY_DB="off")
    subprocess.run([BIN, "check", "-c", cfg], env=env, stdout=subprocess.DEVNULL,
                   stderr=w.stderr, timeout=60, check=True)
    return cfg


def bench_history_serve(w, db, runs, seconds):
    """`/api/uptime` and `/api/history?since=90d&step=1d` on a seeded 10-service
    year under `wrk -c16`, served by `serve`; `/api/status` of the same server
    alongside."""
    if not shutil.which("wrk"):
        row("history endpoints", "", "wrk not installed", ok=None)
        return
    cfg = history_serve_config(w, "hserve", db)
    port = free_port()
    p = start([BIN, "serve", "-c", cfg, "--listen", f"127.0.0.1:{port}"], env=w.env,
              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=w.stderr)
    base = f"http://127.0.0.1:{port}"
    urls = {"uptime": f"{base}/api/uptime",
            "history": f"{base}/api/history?service={seeded_name(3)}&since=90d&step=1d",
            "status": f"{base}/api/status"}
    try:
        wait_for(lambda: _get_ok(urls["status"]), 10, "serve")
        for name, url in urls.items():
            status, body = http_get(url)
            doc = json.loads(body)
            if name == "uptime" and len(doc["services"]) != 10:
                raise RuntimeError(f"uptime: {len(doc['services'])} services")
            if name == "history" and len(doc["buckets"]) != 91:
                raise RuntimeError(f"history: {len(doc['buckets'])} buckets")
        res = {k: [] for k in urls}
        for _ in range(runs):
            for name, url in urls.items():
                res[name].append(wrk(url, seconds, conns=16))
        st = proc_status(p.pid)
    finally:
        stop(p)
    ref50 = Stat([r["p50_ms"] for r in res["status"]], "ms", "{:.2f}")
    ref99 = Stat([r["p99_ms"] for r in res["status"]], "ms", "{:.2f}")
    for name, label in (("uptime", "`GET /api/uptime` (10 services × 6 windows)"),
                        ("history", f"`GET /api/history?service={seeded_name(3)}&since=90d"
                                    "&step=1d` (91 buckets)")):
        p50 = Stat([r["p50_ms"] for r in res[name]], "ms", "{:.2f}")
        p99 = Stat([r["p99_ms"] for r in res[name]], "ms", "{:.2f}")
        rps = Stat([r["rps"] for r in res[name]], "req/s", "{:.0f}")
        errs = sum(r["errors"] for r in res[name])
        row(f"history: {label} on a seeded 10-service year, `serve`, `wrk -t2 -c16 "
            f"-d{seconds}s`; reference: `/api/status` of the same server",
            "median latency", p50, ref50, None, "≤ 5 ms", p50.median <= 5, f"{runs}+{runs}")
        row("", "p99 latency", p99, ref99, None, "≤ 20 ms", p99.median <= 20)
        row("", f"requests/s (errors, all runs: {errs})", rps,
            Stat([r["rps"] for r in res["status"]], "req/s", "{:.0f}"), None, "0 errors",
            errs == 0)
    row("", "server after the load", f"RSS {st['rss_kb'] / 1024:.2f} MB, peak "
        f"{st['hwm_kb'] / 1024:.2f} MB, {st['threads']} threads, {st['fds']} fds", None,
        None, "", None)


def bench_history_report(w, db, runs):
    """`report --since 365d` on the seeded 10-service year vs `validate` (the
    process + config floor)."""
    cfg = history_serve_config(w, "hreport", db)
    res = interleaved({"report": [BIN, "report", "--since", "365d", "-c", cfg],
                       "json": [BIN, "report", "--since", "365d", "--format", "json", "-c", cfg],
                       "floor": [BIN, "validate", "-c", cfg]}, runs, w.env)
    ours = Stat([r.wall * 1000 for r in res["report"]], "ms")
    floor = Stat([r.wall * 1000 for r in res["floor"]], "ms")
    row("history: `report --since 365d` on the seeded 10-service year (1,090 incidents); "
        "reference: `validate` of the same config", "wall time", ours, floor, None,
        "≤ 100 ms", ours.median <= 100, f"{runs}+{runs}")
    js = Stat([r.wall * 1000 for r in res["json"]], "ms")
    row("", "wall time, `--format json`", js, None, None, "", None)
    rss = Stat([r.rss_kb / 1024 for r in res["report"]], "MB", "{:.2f}")
    row("", "peak RSS", rss, None, None, "", None)


def bench_history_idle(w, seconds, reps=2):
    """The idle daemon with the history store vs `history_db: off`, alternating."""
    arms = {"store": {}, "off": {"history_db": "off"}}
    got = {k: {"own": [], "rss": [], "anon": [], "t_own": 0.0, "t": 0.0} for k in arms}
    for _ in range(reps):
        for arm, top in arms.items():
            own, own_all, _, rss, _, n, window, last = bench_idle(
                w, seconds, name=f"hidle-{arm}", **top)
            g = got[arm]
            g["own"] += own
            g["rss"] += rss.values
            g["anon"].append(last["anon_kb"] / 1024)
            g["t_own"] += own_all * n * window
            g["t"] += n * window
    cpu = {k: Stat(g["own"], "% of a core", "{:.3f}") for k, g in got.items()}
    overall = {k: g["t_own"] / g["t"] for k, g in got.items()}
    diff = overall["store"] - overall["off"]
    row(f"history: idle daemon (`run`, the one-shot's 4 services, 5 s interval) with the "
        f"store vs `history_db: off`, {reps} × {seconds} s each, alternating",
        f"CPU (overall {overall['store']:.3f} % vs {overall['off']:.3f} %: {diff:+.3f} %)",
        cpu["store"], cpu["off"], None, "within 0.05 %", abs(diff) <= 0.05,
        f"{len(got['store']['own'])}+{len(got['off']['own'])}")
    rss = {k: Stat(g["rss"], "MB", "{:.2f}") for k, g in got.items()}
    rdiff = rss["store"].median - rss["off"].median
    anon = {k: statistics.median(g["anon"]) for k, g in got.items()}
    row("", f"RSS (VmRSS at each window end; difference {rdiff:+.2f} MB; anonymous "
        f"{anon['store']:.2f} vs {anon['off']:.2f} MB)", rss["store"], rss["off"], None,
        "within 1 MB", abs(rdiff) <= 1)


def bench_history_size(w):
    """The database file once the default retention is full (simulated)."""
    import sqlite3
    db = seed_store(w, "hsize", services=10, days=400)
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("results", "rollups", "incidents", "restarts")}
    con.close()
    size = os.path.getsize(db)
    row("history: database after the default retention is full (10 services, 30 s cycle: "
        "results 14 d, rollups and incidents 400 d; seeded, WAL checkpointed)",
        "file size per service", f"**{size / 10 / 1e6:.2f} MB** ({size / 1e6:.1f} MB for 10)",
        f"{counts['results']} results, {counts['rollups']} rollup rows, "
        f"{counts['incidents']} incidents, {counts['restarts']} restarts", None,
        "bounded by retention", None, "1")


def bench_history(w, runs, want, quick):
    if want("history_check"):
        bench_history_check(w, runs + 4)
    if want("history_serve") or want("history_report"):
        db = seed_store(w, "hyear")
        if want("history_serve"):
            bench_history_serve(w, db, 3 if not quick else 1, 10 if not quick else 3)
        if want("history_report"):
            bench_history_report(w, db, runs)
    if want("history_idle"):
        bench_history_idle(w, 30 if not quick else 10)
    if want("history_size"):
        bench_history_size(w)


def bench_binary():
    """The binary's size as the .deb ships it: stripped (target/release keeps
    its symbol table for bench/link_order.py)."""
    size = os.path.getsize(BIN)
    note = ""
    if shutil.which("strip"):
        with tempfile.TemporaryDirectory() as d:
            copy = os.path.join(d, "chatstack-status")
            subprocess.run(["strip", "-o", copy, BIN], check=True)
            note = f"; {size / 1024 / 1024:.2f} MB with its symbol table"
            size = os.path.getsize(copy)
    row("binary", "size of target/release/chatstack-status, stripped as the .deb ships it",
        f"**{size / 1024 / 1024:.2f} MB** ({size} B{note})", None, None, "", None, "")


# -------------------------------------------------------------- reporting

def machine():
    def cmd(*a):
        try:
            return subprocess.run(a, capture_output=True, text=True, cwd=ROOT).stdout.strip()
        except OSError:
            return "?"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    commit = cmd("git", "rev-parse", "--short", "HEAD")
    if cmd("git", "status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    osname = "?"
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release") as f:
            m = re.search(r'^PRETTY_NAME="?([^"\n]*)', f.read(), re.M)
            osname = m.group(1) if m else "?"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "nproc": os.cpu_count(), "mem": mem,
        "kernel": platform.release(), "os": osname, "commit": commit,
        "rustc": cmd("rustc", "--version"),
        "load": " ".join(open("/proc/loadavg").read().split()[:3]),
        "rustc_running": cmd("pgrep", "-c", "rustc") or "0",
        "tools": "; ".join(filter(None, [
            cmd("sh", "-c", "wrk -v 2>&1 | head -1 | cut -d' ' -f1,2"),
            cmd("sh", "-c", "nginx -v 2>&1"),
            cmd("sh", "-c", "valgrind --version"),
            cmd("sh", "-c", "dpkg-query -W -f='monitoring-plugins-basic ${Version}' "
                "monitoring-plugins-basic 2>/dev/null"),
        ])),
    }


def render(m, elapsed, quick):
    out = []
    out.append("# Benchmarks\n")
    out.append("Generated by `make bench` (`bench/run.sh` → `bench/bench.py`): every workload "
               "runs here against loopback targets the script starts itself, side by side with "
               "its reference **in the same run, interleaved**; cells are **median** "
               "(min–max) of the runs counted in the last column. This machine is a noisy "
               "shared VM: read ratios, not absolute figures, and re-run before drawing "
               "conclusions from a single cell.\n")
    if quick:
        out.append("> ⚠ `--quick` run: fewer repetitions and shorter windows than the "
                   "full bench. Not for the record.\n")
    out.append("## Machine\n")
    out.append(f"- date: {m['date']}; commit `{m['commit']}`")
    out.append(f"- CPU: {m['cpu']}, {m['nproc']} vCPU (nproc); memory {m['mem']}")
    out.append(f"- kernel {m['kernel']}; {m['os']}; {m['rustc']}")
    out.append(f"- load average at start {m['load']}; rustc processes at start: "
               f"{m['rustc_running']}")
    out.append(f"- references: {m['tools']}")
    out.append(f"- bench wall time: {elapsed / 60:.1f} min\n")
    out.append("## Results\n")
    out.append("| Workload | Metric | chatstack-status | Reference (same run) | Ratio | Target "
               "| Verdict | Runs |")
    out.append("|---|---|---|---|---|---|---|---|")
    for r in ROWS:
        out.append(f"| {r['workload']} | {r['metric']} | {r['ours']} | {r['ref']} | "
                   f"{r['ratio']} | {r['target']} | {r['verdict']} | {r['runs']} |")
    missed = [r for r in ROWS if "missed" in r["verdict"]]
    out.append("")
    out.append(f"**{len(missed)} target(s) missed.**" if missed else "**All targets met.**")
    out.append("")
    out.append("## How each figure is measured\n")
    out.append(METHOD)
    for n in NOTES:
        out.append(f"- {n}")
    notes = os.path.join(BENCH, "NOTES.md")
    if os.path.exists(notes):
        with open(notes) as f:
            out.append("\n" + f.read().rstrip() + "\n")
    return "\n".join(out) + "\n"


METHOD = """\
- **Wall time and CPU** of a command: spawned directly and reaped with
  `os.wait4` (CPU = user + sys of the process and the children it waited
  for). **Peak RSS**: GNU time's `%M`, in a separate run of the same command
  (a child of the Python harness would inherit Python's RSS high-water mark
  in `ru_maxrss`, and GNU time adds a fork + exec to the wall time). One
  warm-up run of each command is discarded.
- **One-shot**: `chatstack-status check` on 4 services, each `url` + `port` +
  `unit` + `process` (16 checks), against the bench's loopback target, with a
  fake `systemctl` (a `/bin/sh` script) first on `PATH`. Reference: the same 16
  checks as `check_http`, `check_tcp`, `check_procs -a` and `systemctl show` run
  one after another by `sh`. Includes writing the status and state files (the state fsynced).
- **Instructions**: `valgrind --tool=callgrind --trace-children=yes`, summed
  over every process of the run (the fake `systemctl` shells included on both
  sides); noise-free, unlike the wall times.
- **Pool, scale, hostile**: `check` on N services with one HTTP check each; the
  target answers after 200 ms (`/delay/200`), or accepts and never answers
  (hang port). The cycle is the status file's `duration_ms` (probe start to
  report); ideal = ⌈N / workers⌉ × 200 ms.
- **Process scan**: 2,000 extra `sleep` processes started by the bench (ended
  by PID afterwards); `check` with 4 `process` checks (regexes) vs
  `pgrep -f` matching one process, interleaved.
- **Serving**: `chatstack-status run` (the real daemon, with its bounded front)
  vs nginx with one worker serving a copy of the same `/api/status` bytes,
  `wrk -t2 -c64 -d10s --latency`, alternating. The state is seeded by 60
  `check` runs first, so the document has its steady-state size (full
  history), as in production.
- **Idle daemon**: `run` with the one-shot's 4 services at `interval: 5s`,
  state seeded as for serving;
  CPU = utime + stime from `/proc/PID/stat` over windows of 10 s (2 cycles
  each) starting mid-interval; children (the fake `systemctl`) are reported
  beside it, not in the target. RSS = `VmRSS` at each window end.
- **Push**: `run` on the one-shot's 4 services plus a push check (token),
  `interval: 1s`; `wrk -t2 -c64 --latency` on `/api/push/NAME?token=…&msg=…`
  while a poller GETs `/api/status` 10 times a second; then the same poller
  without the load, and `wrk` on `/api/status` as the reference rate. The
  state and status files' atomic writes are counted by inotify (`IN_MOVED_TO`
  on their directory) during the load; the state file's `pings` counter
  against wrk's count of answered pushes.
- **Memory over cycles**: `config/demo.yml` with a short interval and one added
  command check that counts cycles; `VmRSS` after 10 and after 1,000 cycles.
- **Serving over TLS**: the serving workload against a daemon with `tls:` (a
  self-signed P-256 certificate made by openssl, TLS 1.3 via rustls), the same
  daemon config without it, and nginx (1 worker, `ssl_protocols TLSv1.3`, the
  same certificate and bytes), interleaved; wrk keeps its connections, so this
  is the cost of encryption, not of handshakes.
- **History** (`--only history`, or one of `history_check`, `history_serve`,
  `history_report`, `history_idle`, `history_size`): every config of the bench
  keeps its history database in the bench's directory. A *seeded year* is
  `chatstack-status __seed-history` (src/store/seed.rs: a year of rollups, two
  weeks of raw results, incidents and restarts of a 30 s cycle, as the writer
  leaves them). `check` with the store records into a seeded year of its 4
  services, interleaved with the same config at `history_db: off`. The
  endpoints are served by `serve` (readers only) from the seeded 10-service
  year and loaded with `wrk -t2 -c16 --latency`, alternating with `/api/status`
  of the same server; latency figures are wrk's percentiles. `report` is timed
  as a process, beside `validate` (process start + config). The idle daemon
  runs the idle row's config with the store and with `history_db: off`,
  alternately, twice each. The size is a 400-day seed (the default retention
  full) after a WAL checkpoint.
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer runs, shorter windows")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "BENCHMARKS.md"))
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    if not os.access(BIN, os.X_OK):
        sys.exit(f"bench: {BIN} missing: run `make release` first")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runs = 3 if args.quick else 7
    started = time.monotonic()
    m = machine()
    w = World()
    want = (lambda n: args.only is None or n in args.only)
    try:
        if want("oneshot"):
            cfg, script = bench_oneshot(w, runs + 4)
            if want("callgrind") or args.only is None:
                bench_callgrind(w, cfg, script)
        if want("pool"):
            bench_pool(w, runs)
        if want("scale"):
            bench_scale(w, 5 if not args.quick else 3)
        if want("hostile"):
            bench_hostile(w, 5 if not args.quick else 3)
        if want("serving"):
            bench_serving(w, 5 if not args.quick else 2, 10 if not args.quick else 3)
        if want("tls"):
            bench_tls_serving(w, 3 if not args.quick else 2, 10 if not args.quick else 3)
        if want("fleet"):
            import fleet  # bench/fleet.py: 10 then 50 agents scraped by a real Prometheus
            global METHOD
            METHOD += fleet.METHOD
            sizes = [10, 50] if not args.quick else [5, 20]
            results = [fleet.bench_fleet(w, n, 60 if not args.quick else 20) for n in sizes]
            NOTES.append("Fleet: " + fleet.grows(results) + ".")
        if want("push"):
            bench_push(w, 3 if not args.quick else 1, 10 if not args.quick else 3)
        idle_s = 60 if not args.quick else 20
        if want("idle"):
            report_idle(bench_idle(w, idle_s), "", 0.1, idle_s)
        if want("procscan") or want("idle2000"):
            sleepers = Sleepers(2000)
            try:
                if want("procscan"):
                    bench_procscan(w, runs)
                if want("idle2000"):
                    report_idle(bench_idle(w, idle_s), " + 2,000 extra processes", 1, idle_s)
            finally:
                sleepers.close()
        if want("cost"):
            import cost  # bench/cost.py: the daemon against Monit, side by side
            METHOD += cost.METHOD
            cost.bench_cost(w, 20 if not args.quick else 6, args.quick)
        if want("cost_parts"):
            import cost
            cost.bench_cost_parts(w, 13 if not args.quick else 4)
        if want("leak"):
            bench_leak(w, 10, 100, 1000 if not args.quick else 300)
        if want("why"):
            import why  # bench/why.py: what the diagnosis (issue 20) costs
            METHOD += why.METHOD  # (declared global in the fleet branch above)
            why.bench_why(w, runs + 4)
        # `--only history` runs every history row; `--only history_serve` one of them.
        bench_history(w, runs, lambda n: want("history") or want(n), args.quick)
        bench_binary()
    finally:
        end_all()
        w.close()
    elapsed = time.monotonic() - started
    text = render(m, elapsed, args.quick)
    print(text)
    if args.only is None or args.out != ap.get_default("out"):
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
        log(f"wrote {os.path.relpath(args.out, ROOT)} in {elapsed / 60:.1f} min")
    missed = [r for r in ROWS if "missed" in r["verdict"]]
    return 1 if missed and os.environ.get("BENCH_STRICT") else 0


if __name__ == "__main__":
    # bench/fleet.py and bench/why.py `import bench`: the same module (its
    # ROWS, METHOD), not a second copy whose rows would never be printed.
    sys.modules.setdefault("bench", sys.modules[__name__])
    try:
        sys.exit(main())
    finally:
        end_all()
