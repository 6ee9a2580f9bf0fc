"""Fixtures of the Flask blueprint's tests (run by tests/flask/run.sh, `make test-flask`).

Everything is real: a Flask app served by Werkzeug on a 127.0.0.1 ephemeral port and spoken
to over HTTP, the real `chatstack-status` binary (`check` writes the status files, `serve`
answers for comparison), real files, FIFOs and devices. Nothing sleeps to synchronise.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from flask import Flask
from werkzeug.serving import make_server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WWW = os.path.join(ROOT, "www")
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "status-mixed.json")
sys.path.insert(0, os.path.join(ROOT, "integrations", "flask"))

import chatstack_status_flask as csf  # noqa: E402  (needs the path above)

BIN = os.environ.get("CHATSTACK_STATUS_BIN") or os.path.join(ROOT, "target", "debug",
                                                               "chatstack-status")


# --------------------------------------------------------------------------- HTTP

class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Resp(%s, %r, %r)" % (self.status, self.headers, self.body[:300])


def request(port, method, path, timeout=5):
    """One request on a fresh connection, bounded by `timeout` seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers={"Connection": "close"})
        r = conn.getresponse()
        body = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, body)
    finally:
        conn.close()


def split_age(body):
    """(the document and "stale", age_s as a float) of an /api/status body."""
    m = re.fullmatch(rb'(.*,"stale":(?:true|false)),"age_s":(\d+\.\d)\}', body, re.S)
    assert m, "no trailing stale/age_s in %r" % body[-120:]
    return m.group(1), float(m.group(2))


@pytest.fixture
def serve_app():
    """serve_app(app) -> port: the app on 127.0.0.1, threaded, stopped after the test."""
    servers = []

    def start(app):
        srv = make_server("127.0.0.1", 0, app, threaded=True)
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                             daemon=True)
        t.start()
        servers.append((srv, t))
        return srv.server_port

    yield start
    for srv, t in servers:
        srv.shutdown()
        t.join(5)
        srv.server_close()


class Panel:
    """A Flask admin panel with the blueprint registered, on a loopback port."""

    def __init__(self, port, app):
        self.port, self.app = port, app

    def get(self, path="/api/status", method="GET"):
        return request(self.port, method, path)


@pytest.fixture
def panel(tmp_path, serve_app):
    """panel(**status_blueprint kwargs) -> Panel; status_file defaults to tmp/status.json,
    www_dir to this checkout's www/."""

    def make(register=None, **kwargs):
        kwargs.setdefault("status_file", str(tmp_path / "status.json"))
        kwargs.setdefault("www_dir", WWW)
        app = Flask("admin_panel")
        app.register_blueprint(csf.status_blueprint(**kwargs), **(register or {}))
        return Panel(serve_app(app), app)

    return make


# --------------------------------------------------------------------------- status files

def iso(epoch_s):
    """RFC 3339 UTC as the agent writes it (milliseconds only when there are some)."""
    ms = int(round(epoch_s * 1000))
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000))
    return base + ("Z" if ms % 1000 == 0 else ".%03dZ" % (ms % 1000))


def write_file(path, data):
    """Atomically, as the agent does: a new file renamed over the old one."""
    path = str(path)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    os.replace(tmp, path)


def write_status(path, doc):
    write_file(path, json.dumps(doc, indent=2) + "\n")


def fixture_doc(age_s=5.0):
    with open(FIXTURE) as f:
        doc = json.load(f)
    # The fixture is also an /api/status answer (tests/browser): the file has no stale/age_s.
    doc.pop("stale", None)
    doc.pop("age_s", None)
    doc["generated_at"] = iso(time.time() - age_s)
    return doc


# --------------------------------------------------------------------------- the agent

def agent_env():
    """The environment without our variables (they would override the test's config)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CHATSTACK_") and k != "NOTIFY_SOCKET"}
    env["NO_COLOR"] = "1"
    # systemd is the fake systemctl's, never the host's: no bus at this address.
    env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/nonexistent/chatstack-status-test-bus"
    return env


@pytest.fixture(scope="session")
def binary():
    if not os.access(BIN, os.X_OK):
        pytest.fail("no chatstack-status binary at %s: run `cargo build` (or set "
                    "CHATSTACK_STATUS_BIN)" % BIN, pytrace=False)
    return BIN


def config_text(status_file, state_file, services, stale_after="90s"):
    history_db = os.path.join(os.path.dirname(str(state_file)), "history.db")
    lines = ["status_file: %s" % json.dumps(str(status_file)),
             "state_file: %s" % json.dumps(str(state_file)),
             # Never the system's /var/lib/chatstack.
             "history_db: %s" % json.dumps(history_db),
             "stale_after: %s" % stale_after,
             "timeout: 1s",
             "heal: { enabled: false }",
             "services:"]
    for name, port, critical in services:
        lines += ["  - name: %s" % name, "    port: 127.0.0.1:%d" % port,
                  "    critical: %s" % ("true" if critical else "false")]
    return "\n".join(lines) + "\n"


class Agent:
    """`chatstack-status serve` on 127.0.0.1:0, stopped (by its PID) at the end of the test."""

    def __init__(self, binary, config):
        self.log = []
        self.proc = subprocess.Popen([binary, "serve", "-c", str(config), "--listen", "127.0.0.1:0"],
                                     env=agent_env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + 10
        self.port = None
        while self.port is None:
            for line in list(self.log):
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
            if self.port is None:
                assert self.proc.poll() is None, "serve exited %s: %s" % (self.proc.returncode,
                                                                          self.log)
                assert time.monotonic() < deadline, "serve did not listen in 10 s: %s" % self.log
                time.sleep(0.01)

    def _drain(self):
        for raw in self.proc.stderr:
            self.log.append(raw.decode("utf-8", "replace"))

    def get(self, path="/api/status", method="GET"):
        return request(self.port, method, path)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def agent(binary, tmp_path):
    """agent(status_file) -> Agent serving that file (a config of its own per call)."""
    started = []

    def start(status_file, stale_after="90s"):
        n = len(started)
        cfg = tmp_path / ("agent-%d.yml" % n)
        cfg.write_text(config_text(status_file, tmp_path / ("agent-state-%d.json" % n),
                                   [("Idle", 1, True)], stale_after))
        a = Agent(binary, cfg)
        started.append(a)
        return a

    yield start
    for a in started:
        a.stop()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="session")
def checked(binary, tmp_path_factory):
    """A status file written by two real `check` runs: Web up (a listening port), Backup
    (not critical) down on a closed port. Returns its path; copy it before changing it."""
    d = tmp_path_factory.mktemp("checked")
    up = socket.socket()
    up.bind(("127.0.0.1", 0))
    up.listen(16)
    try:
        cfg = d / "monitor.yml"
        cfg.write_text(config_text(d / "status.json", d / "state.json",
                                   [("Web", up.getsockname()[1], True),
                                    ("Backup", closed_port(), False)]))
        for _ in range(2):
            r = subprocess.run([binary, "check", "-c", str(cfg), "--no-restart"], env=agent_env(),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
            assert r.returncode == 1, "check: exit %s (want 1, WARNING): %s" % (
                r.returncode, r.stdout + r.stderr)
    finally:
        up.close()
    return d / "status.json"


def copy_checked(checked, dest):
    shutil.copyfile(str(checked), str(dest))
    return dest
