#!/usr/bin/env python3
"""Regenerates `link-order.txt`: the functions the daemon runs at rest, first.

Why: the kernel maps a binary's code in 64 KiB blocks around each page it
touches, and an idle cycle touches code spread over the whole 8 MB of text
(config, YAML, regex, SQLite, ureq, serde_json, the server), so the idle
daemon had 6.5 MB of its text mapped, which PSS counts whole. lld lays out the
functions named in `link-order.txt` first and in that order (build.rs passes
it on release builds), so the code of a resting daemon is one contiguous
stretch of 1-2 MB and the rest is never mapped (bench/NOTES.md, "cost").

How: each workload runs under callgrind (`--demangle=no`) on the release
binary, which keeps its symbol table for this (`strip = "debuginfo"`; the
.deb strips its copy). Every function of the binary that ran is listed once,
in workload order: the idle cycles of `run` (those called every cycle
first), its HTTP answers, its start-up, its shutdown, a `check`. So the code
a running daemon runs again and again comes first and together, and since
`run` drops start-up's pages after its first cycle (src/resident.rs), what
stays mapped at rest is the start of the text. Symbol names carry a hash
that changes with the toolchain, the profile or a dependency's version;
functions missing from the file are laid out after it, so a stale file
costs memory, not correctness. Run it after such a change:

    make release && python3 bench/link_order.py && make release

Needs valgrind. Takes ~3 minutes.
"""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402
import cost  # noqa: E402

OUT = os.path.join(b.ROOT, "link-order.txt")
CYCLES = 14  # past a minute: the per-minute rollup runs too


def defined_symbols(binary):
    """Names of the functions the binary defines (its symbol table)."""
    out = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True,
                         check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            names.add(parts[2])
    if not names:
        sys.exit(f"{binary} has no symbol table: build it with strip = \"debuginfo\"")
    return names


def ran(callgrind_out, ours):
    """Functions of `ours` that callgrind saw run, in order of first mention."""
    seen, names = {}, {}
    with open(callgrind_out, errors="replace") as f:
        for line in f:
            m = re.match(r"^c?fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if not m:
                continue
            fid, name = m.group(1), m.group(2)
            if name is not None:
                names[fid] = name
            name = names.get(fid)
            if name in ours and name not in seen:
                seen[name] = True
    return list(seen)


def calls(callgrind_out):
    """How many times each function was called, by name."""
    names, total, callee = {}, {}, None
    with open(callgrind_out, errors="replace") as f:
        for line in f:
            m = re.match(r"^cfn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                if m.group(2) is not None:
                    names[m.group(1)] = m.group(2)
                callee = names.get(m.group(1))
                continue
            m = re.match(r"^fn=\((\d+)\) (.*)$", line.rstrip("\n"))
            if m:
                names[m.group(1)] = m.group(2)
            m = re.match(r"^calls=(\d+) ", line)
            if m and callee:
                total[callee] = total.get(callee, 0) + int(m.group(1))
    return total


def callgrind(w, argv, out, during=None):
    p = b.start(["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}",
                 "--dump-line=no", "--compress-pos=no"] + argv,
                # what `run` re-executes itself with (src/arena.rs): callgrind
                # does not follow an exec
                env=dict(w.env, MALLOC_ARENA_MAX="2", MALLOC_MMAP_THRESHOLD_="131072"),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=w.stderr)
    if during is not None:
        during(p)
        p.send_signal(signal.SIGTERM)
    p.wait(timeout=300)
    if p in b.STARTED:
        b.STARTED.remove(p)


def main():
    binary = b.BIN
    ours = defined_symbols(binary)
    w = b.World()
    try:
        cfg = cost.our_config(w, "order")
        b.seed_history(w, "order", 20)
        port = b.free_port()
        daemon = [binary, "run", "-c", cfg, "--listen", f"127.0.0.1:{port}"]
        idle, served = w.path("idle.cg"), w.path("served.cg")

        def dump(p, out, n):
            """What ran since the last dump goes to `out`.n."""
            subprocess.run(["callgrind_control", "--dump", str(p.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=w.env)
            b.wait_for(lambda: os.path.exists(f"{out}.{n}"), 30, "callgrind's dump", step=0.2)

        def after_start_up(p, out):
            """Start-up and the first cycle go to `out`.1."""
            status = w.path("order.status.json")
            b.wait_for(lambda: os.path.exists(status), 120, "the first cycle under callgrind",
                       step=0.2)
            time.sleep(1)
            dump(p, out, 1)

        def rest(p):
            after_start_up(p, idle)
            time.sleep(5 * CYCLES)
            dump(p, idle, 2)  # the cycles; then shutdown goes to `idle`

        b.log(f"callgrind: `run`, start-up, {CYCLES} idle cycles, shutdown")
        callgrind(w, daemon, idle, rest)
        os.unlink(w.path("order.status.json"))

        def serve(p):
            after_start_up(p, served)
            for path in ("/healthz", "/metrics", "/api/status", "/", "/static/js/status.js",
                         "/api/uptime", "/api/history?service=svc1&since=1h", "/api/incidents",
                         "/api/resources", "/badge/svc1/status.svg"):
                for _ in range(2):
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30).read()
                    except OSError as e:
                        b.log(f"{path}: {e}")
            dump(p, served, 2)  # the answers (and a cycle or two)

        b.log("callgrind: `run` answering HTTP")
        callgrind(w, daemon, served, serve)

        check = w.path("check.cg")
        b.log("callgrind: `check`")
        callgrind(w, [binary, "check", "-c", cfg], check)

        order = {}  # insertion-ordered: each function once, where it first ran
        # the idle cycles, the answers, start-up (`run`'s), shutdown, `check`
        parts = (idle + ".2", served + ".2", idle + ".1", served + ".1", idle, served, check)
        # First what every idle cycle runs (called at least once a cycle),
        # then what some cycles run (the minute's rollup, a checkpoint).
        cycles = ran(parts[0], ours)
        count = calls(parts[0])
        order.update((n, None) for n in cycles if count.get(n, 0) >= CYCLES - 1)
        for out in parts:
            order.update((n, None) for n in ran(out, ours) if n not in order)
        with open(OUT, "w") as f:
            f.write("\n".join(order) + "\n")
        b.log(f"{OUT}: {len(order)} functions")
        if os.environ.get("LINK_ORDER_KEEP"):  # the callgrind files, to study
            for out in parts:
                os.replace(out, os.path.join(os.environ["LINK_ORDER_KEEP"], os.path.basename(out)))
    finally:
        b.end_all()
        w.close()


if __name__ == "__main__":
    main()
