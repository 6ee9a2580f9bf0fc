#!/usr/bin/env python3
"""The OpenAPI document (src/server/openapi.json) against the live agent.

1. openapi-spec-validator: the document is valid OpenAPI 3.1.
2. schemathesis, every check, all phases (the documented examples, coverage,
   fuzzing), against three live agents started here:
   - `run` with history, a service down (incidents), a push check;
   - `run` behind basic auth over TLS (a self-signed certificate made with
     openssl), with a push check that takes a token;
   - `serve` of the status file and history the first one wrote.
   It fails on any 5xx, any answer the document does not describe (status,
   Content-Type, headers, body schema), a schema-valid request refused, an
   invalid one accepted, and any request slower than --request-timeout (a
   hang). Each variant is bounded by FUZZ_SECONDS, the whole by 3 minutes.

Every process started here is ended here, by PID. Run through
tests/openapi/run.sh (the venv); exit 0 when all passed.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import ssl
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(ROOT, "src", "server", "openapi.json")
BIN = os.environ.get("CHATSTACK_STATUS_BIN", os.path.join(ROOT, "target", "debug", "chatstack-status"))
VENV_BIN = os.path.dirname(sys.executable)
FUZZ_SECONDS = int(os.environ.get("FUZZ_SECONDS", "35"))
# A hang: any answer slower than this fails the run.
REQUEST_TIMEOUT = 5
# The whole script (three variants and their start-up).
TOTAL_BUDGET = 180

# Per-operation settings. The history endpoints' `since`/`step` bounds depend
# on the agent's config (retention.rollups), /api/resources's on the 48 h its
# figures are kept, and all on the duration parser's 10-year cap, which a
# schema cannot say: a pattern-valid duration out of range is a documented
# 400, not a refused valid request.
CONFIG = """\
[[operations]]
include-path-regex = "^/api/(history|incidents|resources)$"
checks.positive_data_acceptance.expected-statuses = ["2XX", "400", "401", "404"]
"""

PROCS = []
# The whole run's hard deadline (set in main): each schemathesis run is cut
# there, and a run cut short fails (a hang, or a machine too slow to tell).
DEADLINE = [0.0]


def start(args, log):
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    PROCS.append(p)
    return p


def stop(p):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NotReady(Exception):
    pass


def wait_for(what, cond, within=30):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise NotReady(f"fuzz: not within {within}s: {what}")


def answers(url, auth=None, ca=None, want=200):
    req = urllib.request.Request(url)
    if auth:
        import base64
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    try:
        with urllib.request.urlopen(req, timeout=2, context=ctx) as r:
            return r.status == want
    except urllib.error.HTTPError as e:
        return e.code == want
    except OSError:
        return False


def agent(d, name, mode, extra, port_up, log):
    """`run`/`serve` on its own port with `extra` top-level YAML; returns (proc, port)."""
    port = free_port()
    cfg = os.path.join(d, f"{name}.yml")
    with open(cfg, "w") as f:
        f.write(f"""\
interval: 300ms
timeout: 1s
heal: {{ enabled: false }}
status_file: {d}/status.json
state_file: {d}/{name}-state.json
history_db: {d}/history.db
{extra}services:
  - name: Web
    port: {port_up}
  - name: Down
    url: http://127.0.0.1:{free_port()}/health
  - name: Disk
    checks:
      - {{ type: disk, path: /, warn: 100, crit: 100, read_only_ok: true }}
  - name: Job
    checks:
      - type: push
        period: 1h
        grace: 1h
{"        token_file: " + d + "/token" if "tls" in extra else ""}
""")
    p = start([BIN, mode, "-c", cfg, "--listen", f"127.0.0.1:{port}"], log)
    return p, port


def schemathesis(label, base, d, extra_args):
    cmd = [os.path.join(VENV_BIN, "schemathesis"), "--config-file", os.path.join(d, "st.toml"),
           "run", DOC, "--url", base, "--checks", "all", "--max-time", str(FUZZ_SECONDS),
           "--request-timeout", str(REQUEST_TIMEOUT), "--max-response-time", str(REQUEST_TIMEOUT),
           "--workers", "2", "--seed", os.environ.get("FUZZ_SEED", "23"),
           "--suppress-health-check", "all", "--no-color"] + extra_args
    print(f"fuzz: {label}: {' '.join(cmd[1:])}", flush=True)
    started = time.monotonic()
    limit = min(FUZZ_SECONDS + 60, DEADLINE[0] - started)
    try:
        # In the temp dir: schemathesis keeps a cache (.schemathesis/) in its cwd.
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=max(1, limit), cwd=d)
    except subprocess.TimeoutExpired:
        print(f"fuzz: {label}: schemathesis did not finish within {limit:.0f}s (a hang, or "
              f"past the {TOTAL_BUDGET}s deadline)")
        return False
    took = time.monotonic() - started
    tail = out.stdout.strip().splitlines()
    if out.returncode != 0:
        print(out.stdout, out.stderr, sep="\n")
        print(f"fuzz: {label}: FAILED (exit {out.returncode}) in {took:.0f}s")
        return False
    summary = [l for l in tail if "generated" in l or "passed" in l]
    print(f"fuzz: {label}: passed in {took:.0f}s: {' / '.join(s.strip() for s in summary[-2:])}")
    return True


def main():
    began = time.monotonic()
    DEADLINE[0] = began + TOTAL_BUDGET
    if not os.access(BIN, os.X_OK):
        sys.exit(f"fuzz: {BIN} missing: cargo build first")
    v = subprocess.run([os.path.join(VENV_BIN, "openapi-spec-validator"), DOC],
                       capture_output=True, text=True)
    print(f"fuzz: openapi-spec-validator: {v.stdout.strip()}{v.stderr.strip()}")
    if v.returncode != 0:
        return 1
    d = tempfile.mkdtemp(prefix="chatstack-openapi.")
    log = open(os.path.join(d, "agents.log"), "ab")
    ok = True
    try:
        with open(os.path.join(d, "st.toml"), "w") as f:
            f.write(CONFIG)
        up = socket.socket()
        up.bind(("127.0.0.1", 0))
        up.listen(64)
        port_up = up.getsockname()[1]
        # The `Web` service's target: accepts and closes (a full backlog
        # would time its check out).
        def accept_all():
            while True:
                try:
                    c, _ = up.accept()
                    c.close()
                except OSError:
                    return
        threading.Thread(target=accept_all, daemon=True).start()
        with open(os.path.join(d, "password"), "w") as f:
            f.write("s3cret\n")
        with open(os.path.join(d, "token"), "w") as f:
            f.write("0123456789abcdef0123456789abcdef\n")  # 16+ characters, as required
        key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True,
                       stdin=subprocess.DEVNULL, capture_output=True)

        # 1. `run`: history, incidents, a push check open to anyone.
        plain, port = agent(d, "plain", "run", "", port_up, log)
        base = f"http://127.0.0.1:{port}"
        wait_for("run answering /api/incidents", lambda: answers(base + "/api/incidents"))
        ok &= schemathesis("run (history, push)", base, d, [])
        stop(plain)

        # 2. `run` behind basic auth over TLS; the push check takes a token.
        tls = (f"basic_auth: {{ user: admin, password_file: {d}/password }}\n"
               f"tls: {{ cert_file: {cert}, key_file: {key} }}\n")
        secure, port = agent(d, "secure", "run", tls, port_up, log)
        base = f"https://127.0.0.1:{port}"
        wait_for("run over TLS answering /api/uptime",
                 lambda: answers(base + "/api/uptime", "admin:s3cret", cert))
        ok &= schemathesis("run (basic auth, TLS)", base, d,
                           ["--auth", "admin:s3cret", "--tls-verify", cert])
        stop(secure)

        # 3. `serve`: the status file and history the daemons left; no pushes.
        served, port = agent(d, "served", "serve", "", port_up, log)
        base = f"http://127.0.0.1:{port}"
        wait_for("serve answering /api/status", lambda: answers(base + "/api/status"))
        ok &= schemathesis("serve", base, d, [])
        stop(served)
        up.close()
    except NotReady as e:
        ok = False
        print(e)
        log.flush()
        with open(os.path.join(d, "agents.log"), errors="replace") as f:
            print("fuzz: agents.log, last lines:\n" + "".join(f.readlines()[-15:]))
    finally:
        for p in PROCS:
            stop(p)
        log.close()
        if ok:
            shutil.rmtree(d, ignore_errors=True)
        else:
            print(f"fuzz: kept {d} (agents.log)")
    took = time.monotonic() - began
    print(f"fuzz: {'all passed' if ok else 'FAILED'} in {took:.0f}s (deadline {TOTAL_BUDGET}s)")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        for p in PROCS:
            stop(p)
