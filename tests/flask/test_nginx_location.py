"""The nginx `location`s of docs/EMBEDDING.md (integrations/nginx/status-location.conf) in a real nginx in
front of the real agent: the panel's origin answers as the agent does."""

import os
import re
import socket
import subprocess
import time

import pytest

from conftest import ROOT, WWW, closed_port, copy_checked, split_age

NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
SNIPPET = os.path.join(ROOT, "integrations", "nginx", "status-location.conf")


def readme_nginx_block():
    with open(os.path.join(ROOT, "docs", "EMBEDDING.md")) as f:
        doc = f.read()
    section = doc.split("## nginx in front of the agent", 1)[1].split("\n## ", 1)[0]
    m = re.search(r"```nginx\n(.*?)```", section, re.S)
    assert m, "no ```nginx block in docs/EMBEDDING.md's nginx section"
    return m.group(1)


def test_the_readme_shows_the_tested_snippet():
    with open(SNIPPET) as f:
        assert readme_nginx_block() == f.read()


class Nginx:
    """nginx in the foreground (no master, no workers to change user), on a loopback port."""

    def __init__(self, tmp_path, server_body):
        self.log = tmp_path / "nginx-error.log"
        for attempt in range(5):
            self.port = closed_port()
            conf = tmp_path / "nginx.conf"
            temp = tmp_path / "nginx-temp"
            temp.mkdir(exist_ok=True)
            conf.write_text(
                "daemon off; master_process off; worker_processes 1;\n"
                "pid %(t)s/nginx.pid; error_log %(log)s;\n"
                "events { worker_connections 64; }\n"
                "http {\n access_log off; include /etc/nginx/mime.types;\n"
                " client_body_temp_path %(t)s/body; proxy_temp_path %(t)s/proxy;\n"
                " fastcgi_temp_path %(t)s/fastcgi; uwsgi_temp_path %(t)s/uwsgi;"
                " scgi_temp_path %(t)s/scgi;\n"
                " server {\n  listen 127.0.0.1:%(port)d;\n%(body)s\n }\n}\n"
                % {"t": temp, "log": self.log, "port": self.port, "body": server_body})
            self.proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.STDOUT)
            if self._wait_listening():
                return
            self.stop()
            if "Address already in use" not in self.log.read_text():
                break
        pytest.fail("nginx did not start: %s" % self.log.read_text(), pytrace=False)

    def _wait_listening(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def get(self, path="/api/status", method="GET"):
        from conftest import request
        return request(self.port, method, path)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


@pytest.fixture
def nginx_for(tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.fail("no nginx at %s: `make deps` installs nginx-light (or set NGINX)" % NGINX,
                    pytrace=False)
    started = []

    def start(agent_port):
        with open(SNIPPET) as f:
            body = f.read()
        body = body.replace("http://127.0.0.1:8095", "http://127.0.0.1:%d" % agent_port)
        body = body.replace("/usr/share/chatstack-status/www", WWW)
        n = Nginx(tmp_path, body)
        started.append(n)
        return n

    yield start
    for n in started:
        n.stop()


def test_nginx_passes_the_agents_answers_through(agent, nginx_for, checked, tmp_path):
    path = copy_checked(checked, tmp_path / "status.json")
    a = agent(str(path))
    n = nginx_for(a.port)
    for method in ("GET", "HEAD"):
        ra, rn = a.get(method=method), n.get(method=method)
        assert rn.status == ra.status == 200
        for h in ("Content-Type", "Cache-Control"):
            assert rn.header(h) == ra.header(h), h
    body_a, age_a = split_age(a.get().body)
    body_n, age_n = split_age(n.get().body)
    assert body_n == body_a and abs(age_n - age_a) <= 0.5
    os.unlink(str(path))
    ra, rn = a.get(), n.get()
    assert rn.status == 503 and rn.body == ra.body, "the agent's 503 reaches the page"
    assert rn.header("Cache-Control") == "no-store"


def test_nginx_serves_the_installed_widget_as_the_agent_does(agent, nginx_for, tmp_path):
    a = agent(str(tmp_path / "status.json"))
    n = nginx_for(a.port)
    ra, rn = a.get("/static/js/status.js"), n.get("/static/js/status.js")
    assert rn.status == ra.status == 200
    assert rn.body == ra.body
    for h in ("Content-Type", "Cache-Control"):
        assert rn.header(h) == ra.header(h), h


def test_nginx_proxies_the_history_and_the_badges(agent, nginx_for, checked, tmp_path):
    a = agent(str(copy_checked(checked, tmp_path / "status.json")))
    n = nginx_for(a.port)
    # No history recorded for this agent yet: its 503 and 404 pass through unchanged, and a
    # badge (SVG) too: every path under /api/ and /badge/ reaches the agent.
    for path in ("/api/uptime", "/api/incidents?since=7d", "/api/history?service=nope",
                 "/badge/Idle/status.svg", "/badge/nope/status.svg"):
        ra, rn = a.get(path), n.get(path)
        assert (rn.status, rn.body, rn.header("Content-Type")) == \
            (ra.status, ra.body, ra.header("Content-Type")), path
    assert a.get("/badge/Idle/status.svg").status == 200
    assert n.get("/api/uptime").status == 503
