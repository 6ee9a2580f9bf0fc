"""What the daemon costs its host, paired against Monit in one run (issue 21).

Goals, each printed as a ratio with its verdict:
  - idle daemon CPU <= 0.5x Monit's, and <= 2 ms per cycle;
  - idle PSS <= Monit's;
  - `check` of the 4 services + 3 resource checks <= 1.1x `check` of the 4
    services alone (by default with this binary; `BENCH_BASELINE_BIN` names
    an older build to compare with instead);
  - `check` with the history on disk <= 0.2x the plugins script.

Both daemons watch the same 4 services (http + tcp + process + the unit
through the bench's fake `systemctl`), `/` and memory, every 5 s, at the
same time, so the machine's noise hits both. CPU per cycle is exact, not
clock ticks: each daemon runs twice, once stopped after its first cycle and
once after K cycles; `wait4` gives each run's user + sys time (children it
reaped included) in microseconds, and (long - short) / (K - 1) is the cost
of a cycle with start-up and shutdown cancelled out.
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402  (the harness: World, row, Stat, /proc readers)

MONIT = shutil.which("monit")
BASELINE = os.environ.get("BENCH_BASELINE_BIN")
INTERVAL = 5

METHOD = """\
- **Cost against Monit** (`--only cost`, bench/cost.py): our `run` and Monit
  (`monit -I`, `set daemon 5`) watch the same 4 services (http, tcp, the
  process, the unit through the fake `systemctl`: Monit runs it as a `check
  program`), `/` and memory, side by side. CPU per cycle = (CPU of a run of
  K cycles − CPU of a run of 1 cycle) / (K − 1), each from `wait4` (user +
  sys of the daemon and the children it reaped, in µs); PSS from
  `/proc/PID/smaps_rollup` at the end of the long run. `check` ratios are
  interleaved pairs (A, B, A, B …), median of the wall times.
"""


def host_checks():
    return """  - name: host
    checks:
      - {type: disk, path: /}
      - {type: memory}
      - {type: load, warn: 50, crit: 100}"""


def our_config(w, name, resources=True, **top):
    # Monit's `set daemon 5`: without it ours ran at the default 30 s, so a
    # "13-cycle" run had 3 cycles and CPU per cycle read ~4x too low.
    top.setdefault("interval", f"{INTERVAL}s")
    services = b.four_services(w) + ("\n" + host_checks() if resources else "")
    return w.config(name, services, **top)


def monit_config(w):
    """Monit's control file for the same checks (0600, as Monit demands)."""
    d = w.path("monit")
    os.makedirs(d, exist_ok=True)
    lines = [f"set daemon {INTERVAL}", f"set logfile {d}/monit.log", f"set pidfile {d}/monit.pid",
             f"set idfile {d}/monit.id", f"set statefile {d}/monit.state"]
    for i in range(1, 5):
        lines += [
            f'check process svc{i} matching "bench/target.py"',
            f'  if failed host 127.0.0.1 port {w.http} protocol http request "/ok" then alert',
            f"  if failed host 127.0.0.1 port {w.http} type tcp then alert",
            f'check program svc{i}-unit with path "{w.bin}/systemctl show -p {b.SHOW} svc{i}.service"',
            "  if status != 0 then alert",
        ]
    lines += ["check filesystem root with path /", "  if space usage > 90% then alert",
              "check system localhost", "  if memory usage > 95% then alert",
              "  if loadavg (5min) > 3 then alert"]
    path = os.path.join(d, "monitrc")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


def our_daemon(w, cfg, binary=None, env=None):
    return b.start([binary or b.BIN, "run", "-c", cfg, "--listen", f"127.0.0.1:{b.free_port()}"],
                   env=dict(w.env, **(env or {})), stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=w.stderr)


def monit_daemon(w, rc):
    return b.start([MONIT, "-I", "-c", rc], env=w.env, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=w.stderr)


def reap(p):
    """SIGTERM, then the run's CPU (s, children included) from wait4."""
    os.kill(p.pid, signal.SIGTERM)
    _, _, ru = os.wait4(p.pid, 0)
    p.returncode = 0
    if p in b.STARTED:
        b.STARTED.remove(p)
    return ru.ru_utime + ru.ru_stime


def paired_runs(w, cfgs, rc, cycles):
    """The daemons side by side for `cycles` cycles (stopped mid-interval
    after the last): ours, Monit, and with `BENCH_BASELINE_BIN` an older
    build of ours (its own copy of the config and files); each one's CPU,
    and its memory before it stops."""
    procs = {"ours": our_daemon(w, cfgs["ours"]), "monit": monit_daemon(w, rc)}
    if BASELINE:
        procs["before"] = our_daemon(w, cfgs["before"], BASELINE)
    time.sleep(INTERVAL * (cycles - 1) + INTERVAL / 2)
    mem = {k: dict(b.smaps_rollup(p.pid), **b.proc_status(p.pid)) for k, p in procs.items()}
    return {k: reap(p) for k, p in procs.items()}, mem


def link_order_found(binary):
    """How many of the functions `link-order.txt` lays out first the binary
    has. Their names carry hashes that change with a dependency's version or
    features (a rustix feature moved in Cargo.toml renamed 40 % of them: the
    idle daemon's PSS went 3.9 -> 5.6 MB, side by side): a stale file costs
    memory silently, so the bench says it."""
    path = os.path.join(b.ROOT, "link-order.txt")
    if not os.path.isfile(path):
        return 0, 0
    with open(path) as f:
        listed = {line.strip() for line in f if line.strip()}
    try:
        out = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0, len(listed)
    names = {parts[2] for parts in (line.split() for line in out.splitlines()) if len(parts) == 3}
    return len(listed & names), len(listed)


def bench_idle_vs_monit(w, cycles, reps):
    if not MONIT:
        b.row("idle daemon vs Monit", "CPU per cycle", "Monit not installed "
              "(`apt-get install monit`)", None, None, "≤ 0.5× Monit, ≤ 2 ms", None)
        return
    cfgs = {"ours": our_config(w, "cost_idle")}
    b.seed_history(w, "cost_idle", 20)
    if BASELINE:
        cfgs["before"] = our_config(w, "cost_before")
        b.seed_history(w, "cost_before", 20)
    rc = monit_config(w)
    short, long_, mem = ({k: [] for k in ("ours", "monit", "before")} for _ in range(3))
    for _ in range(reps):
        cpu, _ = paired_runs(w, cfgs, rc, 1)
        for k, v in cpu.items():
            short[k].append(v)
        cpu, m = paired_runs(w, cfgs, rc, cycles)
        for k, v in cpu.items():
            long_[k].append(v)
            mem[k].append(m[k])

    def per_cycle(k):
        return b.Stat([(lo - sh) / (cycles - 1) * 1000 for lo, sh in zip(long_[k], short[k])],
                      "ms", "{:.2f}")

    def mb(k, field):
        return b.Stat([x[field] / 1024 for x in mem[k]], "MB", "{:.2f}")

    ours, monit = per_cycle("ours"), per_cycle("monit")
    ratio = ours.median / monit.median if monit.median > 0 else float("inf")
    label = f"idle daemon vs Monit, side by side: 4 services + `/` + memory, {INTERVAL} s interval"
    runs = f"{reps}×({cycles}+1 cycles)"
    b.row(label, "CPU per cycle (user+sys, children incl.)", ours, monit, ratio,
          "≤ 0.5× Monit", ratio <= 0.5, runs)
    b.row("", "CPU per cycle, absolute", ours, None, None, "≤ 2 ms", ours.median <= 2.0, runs)
    pss, mpss = mb("ours", "pss_kb"), mb("monit", "pss_kb")
    b.row("", "PSS (smaps_rollup)", pss, mpss, pss.median / mpss.median, "≤ Monit's",
          pss.median <= mpss.median, f"{reps}")
    found, listed = link_order_found(b.BIN)
    if listed:
        b.row("", "`link-order.txt`: its functions found in the binary", f"**{found}** of {listed}",
              None, None, "≥ 95 % (else `bench/link_order.py`)", found >= 0.95 * listed)
    last = mem["ours"][-1]
    b.row("", "RSS (VmRSS)", mb("ours", "rss_kb"), mb("monit", "rss_kb"),
          mb("ours", "rss_kb").median / mb("monit", "rss_kb").median, "", None, f"{reps}")
    b.row("", "of which", f"anonymous {last['anon_kb'] / 1024:.2f} MB, file-backed "
          f"{last['file_kb'] / 1024:.2f} MB; {last['threads']} threads", None, None, "", None)
    if BASELINE:
        before = per_cycle("before")
        b.row(f"the same, the build before (`{BASELINE}`), in the same run",
              "CPU per cycle", ours, before, ours.median / before.median, "", None, runs)
        b.row("", "PSS", pss, mb("before", "pss_kb"),
              pss.median / mb("before", "pss_kb").median, "", None, f"{reps}")
        b.row("", "threads at rest", f"{last['threads']}",
              f"{mem['before'][-1]['threads']}", None, "", None)


PARTS = [
    ("nothing probed (4 push checks): the cycle itself", "floor"),
    ("the 4 units: over D-Bus (the fake systemd, `fake_systemd_bus.py`)", "unit"),
    ("the 4 units, no bus: one `systemctl show` (the fake, a `sh` script)", "unit-nobus"),
    ("4 HTTP checks", "http"),
    ("4 TCP checks", "tcp"),
    ("4 process checks (one scan of /proc)", "process"),
    ("disk `/`, memory, load (1 service)", "host"),
    ("all of the above (the idle row's config)", "all"),
    ("all, history on (the idle row itself)", "all+history"),
]


def part_config(w, name, part):
    services = []
    for i in range(1, 5):
        head = f"  - name: svc{i}\n"
        body = {
            "floor": "    checks:\n      - {type: push, period: 1d, grace: 1h}",
            "unit": f"    unit: svc{i}.service",
            "unit-nobus": f"    unit: svc{i}.service",
            "http": f"    url: http://127.0.0.1:{w.http}/ok",
            "tcp": f"    port: {w.http}",
            "process": '    process: "bench/target.py"',
        }.get(part)
        if body:
            services.append(head + body)
    if part == "host":
        services.append(host_checks())
    if part.startswith("all"):
        return our_config(w, name, history_db=w.path(name + ".history.db")
                          if part.endswith("history") else "off")
    return w.config(name, "\n".join(services), interval=f"{INTERVAL}s", history_db="off")


def bench_cost_parts(w, cycles):
    """What each kind of check adds to an idle cycle: every part's daemon
    runs twice (1 cycle and `cycles` cycles), all of them side by side."""
    procs = {}
    for _, part in PARTS:
        for n in (1, cycles):
            name = f"part_{part.replace('+', '_')}_{n}"
            cfg = part_config(w, name, part)
            if part.endswith("history"):
                b.seed_history(w, name, 20)
            nobus = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + w.path("no-bus")}
            procs[(part, n)] = our_daemon(w, cfg, env=nobus if part == "unit-nobus" else None)
    started = time.monotonic()
    cpu = {}
    for n in (1, cycles):
        time.sleep(max(0.0, started + INTERVAL * (n - 1) + INTERVAL / 2 - time.monotonic()))
        for part, _ in ((p, n) for _, p in PARTS):
            cpu[(part, n)] = reap(procs[(part, n)])
    per = {p: (cpu[(p, cycles)] - cpu[(p, 1)]) / (cycles - 1) * 1000 for _, p in PARTS}
    for i, (label, part) in enumerate(PARTS):
        extra = "" if part in ("floor", "all", "all+history") else \
            f"; {per[part] - per['floor']:+.2f} ms against nothing probed"
        b.row("idle cycle, by what it probes (one run, all side by side; history off but the last)"
              if i == 0 else "", label, f"**{per[part]:.2f}** ms per cycle{extra}", None, None,
              "", None, f"1×({cycles}+1 cycles)")


def pairs(a, b_, runs, env):
    """Interleaved A, B, A, B …: each command's wall and CPU times (ms)."""
    out = {"a": [], "b": []}
    for i in range(runs + 2):
        order = (("a", a), ("b", b_)) if i % 2 == 0 else (("b", b_), ("a", a))
        for k, argv in order:
            r = b.measure(argv, env, rss=False)
            if r.rc not in (0, 1, 2):  # the verdict is not the figure here
                raise RuntimeError(f"{argv} exited {r.rc}")
            if i >= 2:
                out[k].append((r.wall * 1000, r.cpu * 1000))
    return out


def bench_check_costs(w, runs):
    baseline = BASELINE or b.BIN
    alone = our_config(w, "cost_alone", resources=False, history_db="off")
    more = our_config(w, "cost_more", history_db="off")
    r = pairs([baseline, "check", "-c", alone], [b.BIN, "check", "-c", more], runs, w.env)
    wall_a = b.Stat([x[0] for x in r["a"]], "ms")
    wall_b = b.Stat([x[0] for x in r["b"]], "ms")
    which = "this build" if baseline == b.BIN else f"`{baseline}`"
    ratio = wall_b.median / wall_a.median
    b.row("`check`: 4 services + disk `/`, memory, load vs the 4 services alone "
          f"(reference: {which}; history off)", "wall time", wall_b, wall_a, ratio, "≤ 1.1×",
          ratio <= 1.1, f"{runs}+{runs}")
    cpu_a = b.Stat([x[1] for x in r["a"]], "ms")
    cpu_b = b.Stat([x[1] for x in r["b"]], "ms")
    b.row("", "CPU time", cpu_b, cpu_a, cpu_b.median / cpu_a.median, "", None)

    script = b.plugin_script(w)
    if not os.access(f"{b.PLUGINS}/check_http", os.X_OK):
        b.row("`check` with history on disk vs the plugins script", "wall time", "n/a",
              "monitoring-plugins-basic not installed", None, "≤ 0.2×", None)
        return
    hist = our_config(w, "cost_hist", resources=False)  # history_db in the bench dir, on disk
    b.seed_history(w, "cost_hist", 10)
    r = pairs(["sh", script], [b.BIN, "check", "-c", hist], runs, w.env)
    ours = b.Stat([x[0] for x in r["b"]], "ms")
    ref = b.Stat([x[0] for x in r["a"]], "ms")
    ratio = ours.median / ref.median
    b.row("`check` of the 4 services, history on disk, vs the same 16 checks as plugins",
          "wall time", ours, ref, ratio, "≤ 0.2×", ratio <= 0.2, f"{runs}+{runs}")


def bench_cost(w, runs, quick):
    bench_check_costs(w, runs)
    bench_idle_vs_monit(w, 4 if quick else 13, 1 if quick else 3)
