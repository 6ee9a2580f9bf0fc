#!/usr/bin/env python3
"""`make soak`: the daemon at a 100 ms interval for 2,000 cycles against
targets that flip between up, slow, down and hanging, with healing on (a fake
`systemctl` first on PATH logs every restart) and a SIGHUP reload every 200
cycles, while concurrent readers parse the status file and /api/status.

From cycle 300 to half way, the attacks of the hardening issue run beside
the readers (`Attacks`, each in a process of its own): 200 clients at a time asking for a
year of history at one-minute steps (1.6 MB each, from a seeded service) and
never reading, and 520 clients at a time pipelining requests for the 83 KB
widget and never reading, to hold every connection place; each wave is held
5 s, then closed, and the next one comes. A prober asks for /healthz every
250 ms meanwhile. The leak verdicts compare the second half with itself.

Fails (exit 1, saying why) on: a daemon crash, RSS at the end more than 1 MiB
above RSS 100 cycles after the attacks, RSS ever at 64 MiB or more (VmHWM), a
/healthz not answered within 1 s (or refused by the front) during the attacks, open fds or threads growing, any
unparseable read of the status file or the API, no restart or no reload
observed, a SIGTERM not ending the daemon with 0 within 5 s, or the run not
finishing within its time bound. Every process it starts it ends, by PID.

Usage: python3 bench/soak.py [--cycles 2000] [--interval-ms 100]
"""

import argparse
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # no bench/__pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402  (shared plumbing: processes, target server, /proc readers)


FAKE_SYSTEMCTL = r"""#!/bin/sh
# fake systemctl for the soak: logs everything but `show`; `flaky*` units
# cycle through systemd states every second, the others are active.
case "$1" in
  show)
    for unit; do :; done
    state=active sub=running result=success
    case "$unit" in
      flaky*)
        case $(( $(date +%s) % 4 )) in
          1) state=activating sub=auto-restart result=exit-code ;;
          2) state=failed sub=failed result=exit-code ;;
          3) state=failed sub=failed result=start-limit-hit ;;
        esac ;;
    esac
    printf 'LoadState=loaded\nActiveState=%s\nSubState=%s\nResult=%s\nNRestarts=1\n' \
      "$state" "$sub" "$result" ;;
  *) echo "$*" >> "__LOG__" ;;
esac
"""


def config_text(w, variant, counter, interval_ms, port, notify=True):
    h = w.http
    hook = (f"""notify:
  - type: webhook
    url: http://127.0.0.1:{h}/hook
    timeout: 1s
""" if notify else "")
    extra = (f"""  - name: Gamma
    url: http://127.0.0.1:{h}/flip/gamma
    unit: gamma.service
""" if variant else f"""  - name: Echo
    checks:
      - type: command
        argv: [sh, -c, "test $(( $(date +%s) % 3 )) -ne 0"]
""")
    return f"""# soak config, variant {variant}
interval: {interval_ms}ms
timeout: 80ms
workers: 8
history: 60
stale_after: 30s
status_file: {w.path('soak.status.json')}
state_file: {w.path('soak.state.json')}
history_db: {w.path('soak.history.db')}
listen: 127.0.0.1:{port}
heal:
  enabled: true
  after_failures: 2
  grace: 0s
  max_restarts: 5
  window: 5s
  stable_after: 2s
  reset_failed: true
  timeout: 2s
{hook}services:
  - name: Alpha
    url: http://127.0.0.1:{h}/flip/alpha
    port: {h}
    unit: alpha.service
    checks:
      - {{ type: http, url: "http://127.0.0.1:{h}/flip/alpha-slow", degraded_after: 30ms }}
  - name: Beta
    unit: flaky-beta.service
    depends_on: [Alpha]
    checks:
      - {{ type: http, url: "http://127.0.0.1:{h}/flip/beta", body_contains: "ok" }}
      - {{ type: process, match: "bench/target\\\\.py", min: 1 }}
  - name: svc-00
    critical: false
    port: {h}
  - name: Delta
    critical: false
    checks:
      - {{ type: tcp, address: "127.0.0.1:{w.hang}" }}
      - {{ type: http, url: "http://127.0.0.1:{w.hang}/hang" }}
      - {{ type: command, argv: [sh, -c, "echo >> {counter}"] }}
{extra}"""


class Readers:
    """Concurrent readers of the status file and the API, counting failures."""

    def __init__(self, status_path, port, stop):
        self.status_path, self.port, self.stop = status_path, port, stop
        self.file_ok = self.file_bad = 0
        self.api_ok = self.api_bad = 0
        self.metrics_ok = self.metrics_bad = 0
        self.errors = []
        self.threads = [threading.Thread(target=self.file_loop, daemon=True),
                        threading.Thread(target=self.api_loop, daemon=True)]
        for t in self.threads:
            t.start()

    def note(self, what):
        if len(self.errors) < 10:
            self.errors.append(what)

    def file_loop(self):
        while not self.stop.is_set():
            try:
                with open(self.status_path, "rb") as f:
                    data = f.read()
                doc = json.loads(data)
                if not isinstance(doc.get("services"), list):
                    raise ValueError("no services list")
                self.file_ok += 1
            except FileNotFoundError:
                pass  # before the first cycle
            except (ValueError, OSError) as e:
                self.file_bad += 1
                self.note(f"status file: {e}")
            time.sleep(0.002)

    def api_loop(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            path = "/metrics" if n % 20 == 0 else "/api/status"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}",
                                            timeout=5) as r:
                    body = r.read()
                    if path == "/metrics":
                        if b"chatstack_build_info" not in body:
                            raise ValueError("metrics without build_info")
                        self.metrics_ok += 1
                    else:
                        json.loads(body)
                        self.api_ok += 1
            except urllib.error.HTTPError as e:
                # 503 "no status yet" is the contract until the first cycle is published.
                if not (e.code == 503 and self.api_ok == 0):
                    self.api_bad += 1
                    self.note(f"GET {path}: {e}")
            except (ValueError, OSError) as e:
                if path == "/metrics":
                    self.metrics_bad += 1
                else:
                    self.api_bad += 1
                self.note(f"GET {path}: {e}")
            time.sleep(0.02)


def attack_wave(port, request, n, stop, clients, refused):
    """One attacker process: waves of `n` clients that send `request` and
    never read, each wave held 5 s, until `stop`."""
    while not stop.is_set():
        socks = []
        for _ in range(n):
            if stop.is_set():
                break
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                s.sendall(request)
                socks.append(s)
            except OSError:
                with refused.get_lock():
                    refused.value += 1
        with clients.get_lock():
            clients.value += len(socks)
        stop.wait(5)
        for s in socks:
            s.close()


def health_probe(port, stop, ok, bad, worst_ms, notes):
    """/healthz every 250 ms, 1 s allowed: an answer is any HTTP status the
    daemon itself gave (a 503 saying a cycle is late is an answer); no answer
    within 1 s, or the front's "too many connections", is not."""
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                r.read()
                what = r.status
        except urllib.error.HTTPError as e:
            body = e.read()
            what = "refused by the front" if b"too many connections" in body else e.code
        except OSError as e:
            what = str(e)
        took = time.monotonic() - t0
        with worst_ms.get_lock():
            worst_ms.value = max(worst_ms.value, int(took * 1000))
        if isinstance(what, int) and took <= 1.0:
            with ok.get_lock():
                ok.value += 1
        else:
            with bad.get_lock():
                bad.value += 1
                if bad.value <= 5:
                    notes.put(f"{what} after {took:.2f} s")
        stop.wait(0.25)


class Attacks:
    """The hardening issue's findings 3 and 4 beside the readers, each in its
    own process (so Python's lock never slows the prober): 200 clients at a
    time asking for a year of history at 1 min steps, 520 pipelining the
    widget, none reading; and the /healthz prober."""

    HISTORY = b"GET /api/history?service=svc-00&since=400d&step=1m HTTP/1.1\r\nHost: x\r\n\r\n"
    WIDGET = b"GET /static/js/status.js HTTP/1.1\r\nHost: x\r\n\r\n" * 8

    def __init__(self, port):
        mp = multiprocessing.get_context("fork")
        self.stop = mp.Event()
        self.history_clients, self.lockout_clients = mp.Value("q", 0), mp.Value("q", 0)
        self.refused = mp.Value("q", 0)
        self.ok, self.bad, self.worst_ms = mp.Value("q", 0), mp.Value("q", 0), mp.Value("q", 0)
        self.notes = mp.Queue()
        self.procs = [
            mp.Process(target=attack_wave, daemon=True,
                       args=(port, self.HISTORY, 200, self.stop, self.history_clients,
                             self.refused)),
            mp.Process(target=attack_wave, daemon=True,
                       args=(port, self.WIDGET, 520, self.stop, self.lockout_clients,
                             self.refused)),
            mp.Process(target=health_probe, daemon=True,
                       args=(port, self.stop, self.ok, self.bad, self.worst_ms, self.notes)),
        ]
        for p in self.procs:
            p.start()

    def end(self):
        """Stops and reaps the processes it started (by PID if they linger)."""
        self.stop.set()
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
                p.join(timeout=5)

    def failures(self):
        out = []
        while len(out) < 5:
            try:
                out.append(self.notes.get_nowait())
            except Exception:  # queue.Empty
                break
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=2000)
    ap.add_argument("--interval-ms", type=int, default=100)
    ap.add_argument("--reload-every", type=int, default=200)
    ap.add_argument("--no-notify", action="store_true", help="(diagnosis) no webhook notifier")
    ap.add_argument("--env", action="append", default=[], metavar="K=V",
                    help="(diagnosis) extra environment for the daemon")
    args = ap.parse_args()
    if not os.access(B.BIN, os.X_OK):
        sys.exit(f"soak: {B.BIN} missing: run `make release` first")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    limit = args.cycles * args.interval_ms / 1000 * 1.5 + 60  # hard bound on the run
    started = time.monotonic()
    w = B.World()
    stop = threading.Event()
    failures = []
    try:
        with open(os.path.join(w.bin, "systemctl"), "w") as f:
            f.write(FAKE_SYSTEMCTL.replace("__LOG__", w.systemctl_log))
        # the flaky units are this fake systemctl's: no bus (World's fake says all is well)
        w.env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=" + w.path("no-bus")
        # the target server flips every 0.7 s: ~7 cycles per state
        B.stop(w.target)
        w.target = B.start([sys.executable, os.path.join(B.BENCH, "target.py"),
                            "--flip-period", "0.7", "--slow-ms", "50"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        info = json.loads(w.target.stdout.readline())
        w.http, w.hang = info["http"], info["hang"]
        port = B.free_port()
        counter = w.path("soak.cycles")
        open(counter, "w").close()
        cfg = w.path("soak.yml")
        variant = 0

        def write_config(v):
            tmp = cfg + ".tmp"
            with open(tmp, "w") as f:
                f.write(config_text(w, v, counter, args.interval_ms, port, not args.no_notify))
            os.replace(tmp, cfg)

        write_config(variant)
        # A year of history for svc-00: the history attack's answers are 1.6 MB.
        subprocess.run([B.BIN, "__seed-history", "--db", w.path("soak.history.db"),
                        "--services", "1", "--days", "400"], check=True,
                       stdout=subprocess.DEVNULL, env=w.env)
        errlog = w.path("soak.stderr")
        err = open(errlog, "wb")
        env = dict(w.env)
        for kv in args.env:
            k, _, v = kv.partition("=")
            env[k] = v
        daemon = B.start([B.BIN, "run", "-c", cfg], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=err)
        pid = daemon.pid

        def cycles():
            with open(counter, "rb") as f:
                return f.read().count(b"\n")

        B.wait_for(lambda: cycles() >= 1, 30, "the first cycle")
        readers = Readers(w.path("soak.status.json"), port, stop)
        attacks = None
        # The attacks run from cycle 300 to half way; the leak verdicts below
        # compare the second half with itself (caches the attacks warmed —
        # glibc's thread stacks, the history readers — are not leaks).
        attack_end = args.cycles // 2
        samples = []  # (cycle, rss_kb, threads, fds)
        reloads_sent = 0
        next_reload = args.reload_every
        last_print = 0
        while True:
            n = cycles()
            if daemon.poll() is not None:
                failures.append(f"the daemon exited with {daemon.returncode} at cycle {n}")
                break
            try:
                st = B.proc_status(pid)
                samples.append((n, st["rss_kb"], st["threads"], st["fds"]))
            except (OSError, ValueError):
                pass
            if n >= next_reload and n < args.cycles:
                variant ^= 1
                write_config(variant)
                os.kill(pid, signal.SIGHUP)
                reloads_sent += 1
                next_reload += args.reload_every
            if attacks is None and 300 <= n < attack_end:
                attacks = Attacks(port)
            if attacks is not None and n >= attack_end:
                attacks.end()
            if n >= args.cycles:
                break
            if time.monotonic() - started > limit:
                failures.append(f"only {n} of {args.cycles} cycles within {limit:.0f} s")
                break
            if n - last_print >= 250:
                last_print = n
                B.log(f"soak: cycle {n}, RSS {samples[-1][1]} KiB, threads {samples[-1][2]}, "
                      f"fds {samples[-1][3]}, {time.monotonic() - started:.0f} s")
            time.sleep(0.05)
        final_cycles = cycles()
        try:
            hwm_kb = B.proc_status(pid)["hwm_kb"]
        except (OSError, ValueError):
            hwm_kb = None
        stop.set()
        if attacks is not None:
            attacks.end()
        for t in readers.threads:
            t.join(timeout=10)
        # graceful stop
        t0 = time.monotonic()
        exit_code = None
        if daemon.poll() is None:
            os.kill(pid, signal.SIGTERM)
            try:
                exit_code = daemon.wait(timeout=5)
            except subprocess.TimeoutExpired:
                failures.append("SIGTERM did not stop the daemon within 5 s")
        else:
            exit_code = daemon.returncode
        stop_s = time.monotonic() - t0
        if exit_code not in (0, None):
            failures.append(f"daemon exit code {exit_code} after SIGTERM")
        B.stop(daemon)
        err.close()

        # ---- verdicts
        def window(lo, hi):
            return [s for s in samples if lo <= s[0] < hi]

        base = window(attack_end + 100, attack_end + 200)
        end = window(final_cycles - 100, final_cycles + 1)
        summary = {}
        if not base or not end:
            failures.append("too few samples to judge memory, fds and threads")
        else:
            rss_base = statistics.median(s[1] for s in base)
            rss_end = statistics.median(s[1] for s in end)
            summary["rss"] = (f"RSS {rss_base:.0f} KiB after cycles {attack_end + 100}-{attack_end + 200}, {rss_end:.0f} KiB in "
                              f"the last 100 cycles: {rss_end - rss_base:+.0f} KiB (limit +1024)")
            if rss_end - rss_base > 1024:
                failures.append(summary["rss"])
            fd_base, fd_end = min(s[3] for s in base), min(s[3] for s in end)
            fdmax_base, fdmax_end = max(s[3] for s in base), max(s[3] for s in end)
            summary["fds"] = (f"open fds (min/max) {fd_base}/{fdmax_base} after cycles 100-200, "
                              f"{fd_end}/{fdmax_end} in the last 100")
            if fd_end > fd_base + 2 or fdmax_end > fdmax_base + 8:
                failures.append("fd growth: " + summary["fds"])
            th_base, th_end = min(s[2] for s in base), min(s[2] for s in end)
            thmax_base, thmax_end = max(s[2] for s in base), max(s[2] for s in end)
            summary["threads"] = (f"threads (min/max) {th_base}/{thmax_base} after cycles "
                                  f"100-200, {th_end}/{thmax_end} in the last 100")
            if th_end > th_base or thmax_end > thmax_base + 8:
                failures.append("thread growth: " + summary["threads"])
        if hwm_kb is None or hwm_kb >= 64 * 1024:
            failures.append(f"peak RSS (VmHWM) {hwm_kb} KiB: the limit is 64 MiB")
        if (attacks is None or attacks.history_clients.value == 0
                or attacks.lockout_clients.value == 0):
            failures.append("the attacks did not run")
        elif attacks.bad.value or attacks.ok.value < 100:
            failures.append(f"/healthz: {attacks.bad.value} of "
                            f"{attacks.bad.value + attacks.ok.value} not answered within 1 s: "
                            f"{attacks.failures()}")
        if readers.file_bad:
            failures.append(f"{readers.file_bad} unparseable reads of the status file: "
                            f"{readers.errors[:3]}")
        if readers.api_bad or readers.metrics_bad:
            failures.append(f"{readers.api_bad} failed /api/status and {readers.metrics_bad} "
                            f"failed /metrics requests: {readers.errors[:3]}")
        if readers.file_ok < 100 or readers.api_ok < 100:
            failures.append(f"readers barely ran ({readers.file_ok} file, {readers.api_ok} API)")
        restarts = 0
        if os.path.exists(w.systemctl_log):
            with open(w.systemctl_log) as f:
                restarts = sum(1 for line in f if line.startswith("restart"))
        if restarts == 0:
            failures.append("no restart was run: healing was not exercised")
        with open(errlog, errors="replace") as f:
            log_lines = f.read().splitlines()
        reloaded = sum(1 for line in log_lines if "reloaded" in line)
        if reloads_sent and reloaded < reloads_sent:
            failures.append(f"{reloads_sent} SIGHUPs sent, {reloaded} reloads logged")
        panics = [line for line in log_lines if "panick" in line]
        if panics:
            failures.append(f"panic in the log: {panics[0]}")
        elapsed = time.monotonic() - started
        print("## soak summary")
        print(f"- {final_cycles} cycles at {args.interval_ms} ms in {elapsed:.0f} s; "
              f"daemon exit {exit_code} {stop_s:.1f} s after SIGTERM")
        for k in ("rss", "fds", "threads"):
            if k in summary:
                print(f"- {summary[k]}")
        print(f"- concurrent readers: status file {readers.file_ok} parsed / {readers.file_bad} "
              f"failed; /api/status {readers.api_ok} / {readers.api_bad}; /metrics "
              f"{readers.metrics_ok} / {readers.metrics_bad}")
        print(f"- peak RSS (VmHWM) {hwm_kb} KiB (limit 65536), max sampled "
              f"{max((x[1] for x in samples), default=0)} KiB")
        if attacks is not None:
            print(f"- attacks (cycles 300-{attack_end}): {attacks.history_clients.value} history "
                  f"clients and {attacks.lockout_clients.value} pipelining widget clients that "
                  f"never read ({attacks.refused.value} connects refused); /healthz "
                  f"{attacks.ok.value} answered within 1 s, {attacks.bad.value} not; slowest "
                  f"{attacks.worst_ms.value} ms")
        print(f"- healing: {restarts} restarts run (fake systemctl); reloads: {reloads_sent} "
              f"SIGHUP sent, {reloaded} logged; {len(log_lines)} log lines")
        if failures:
            print("\nSOAK FAILED:")
            for f in failures:
                print(f"- {f}")
            return 1
        print("\nsoak passed")
        return 0
    finally:
        stop.set()
        B.end_all()
        w.close()


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        B.end_all()
