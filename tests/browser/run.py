#!/usr/bin/env python3
"""Browser test of the chatstack-status dashboard (www/) in headless Chromium. Stdlib only.

Usage:
  python3 tests/browser/run.py [--base-url URL] [--fixture FILE] [--chromium PATH]
                               [--timeout SECONDS] [--screenshots DIR] [--dump-dir DIR] [-v]

  (no --base-url)   Fixture mode. Serves this checkout's www/ on 127.0.0.1:<ephemeral> with the
                    daemon's URL layout (/ and /static/admin_status.html -> www/admin_status.html,
                    /static/<path> -> www/<path>), FILE (default tests/fixtures/status-mixed.json)
                    at /api/status with the per-service `uptime` an agent with history adds, and
                    /api/uptime, /api/history, /api/incidents computed by history_model.py from
                    the timeline in --history-fixture (default tests/fixtures/history-mixed.json).
                    Scenarios:
                      page, page-static  the fixture as served (fresh data), the history included
                      history-uptime     24 h / 7 d / 30 d / 90 d per service, as /api/uptime said
                      history-bar        90 daily cells per service (a no-data day, bad, maintenance)
                      history-incidents  the 30-day incidents: cause, restarts ok/FAILED, muted, open
                      history-latency    the 24 h chart of hourly avg and max
                      stale              the fixture with "stale": true
                      error              503 {"error": ...} before any data (no history asked)
                      lost               good data first, then HTTP 502: last data stays, greyed
                      twice              tests/fixtures/widget-twice.html (two widgets, two URLs)
                      history-tooltip    tests/fixtures/history-focus.html: focus, ArrowLeft, a
                                         re-render and a mouse over a no-data day, recorded
                      history-off        no `uptime` in the status (older agent, history_db: off):
                                         no history request, no history section, no note
                      history-404        `uptime` in the status but /api/* 404: live view and the
                                         status's own three figures only, no note
                      history-503        no history yet: one quiet note, live view untouched
                      history-down       /api/uptime 502: one quiet note, nothing else asked
                      history-error      /api/history 500, /api/incidents not JSON: notes per part
                      history-cadence    365 s of virtual time: requests per refresh and how often
                      credentials        a page on one origin, the agent on another with basic auth:
                                         credentials 'include' sends the login, the default does not
                      host               the host panel (every check in it has the `system` block,
                                         resource checks on AI-Memory and `resources` per unit): a
                                         disk over warn with "full in 3 days", up since, per service
                                         memory/CPU and the 24 h charts from /api/resources
                      host-hostile       a disk path that is markup, read-only: text, flagged
                      host-none          no system block, no resource checks: no panel, no error
                      host-system-only   the system block alone: memory and load tiles, up since
                      host-no-system     resource checks, no system block (an older status file)
                      resources-failing  /api/resources 500 (and resources-404): no chart, no note
                      host-desktop       1280x900 and 390x844 (host-phone, in a frame): no
                                         horizontal scroll, the panel above the cards, in the window
  --base-url URL    Daemon mode, e.g. --base-url http://127.0.0.1:8095 against a running
                    `chatstack-status run|serve`. A loopback proxy forwards every request to URL
                    (so the pages, /static/js/status.js and /api/status come from the daemon) and
                    also serves /__test__/widget-twice.html. Scenarios: page, page-static, twice.
                    Assertions are driven by the JSON the daemon actually sent to the browser
                    (recorded by the proxy, history answers too), so any config works; stale or
                    error answers are checked for their warning. Waits up to --timeout for
                    /api/status to answer 200. With --expect-history: page must show history,
                    reported as history-daemon-uptime, -bar, -incidents, -latency (for a daemon on
                    a seeded database: figures, 90 cells per service, an incident's cause).
  --ca-file FILE    Daemon mode over https (--base-url https://...): the proxy trusts this CA, and
                    one more scenario, page-tls-direct, has Chromium load the page from the daemon
                    itself over TLS (the widget is over 64 KiB): every service must render.
  --screenshots DIR Fixture mode only: also write DIR/dashboard-desktop.png (1280x1600, one day's
                    tooltip open) and DIR/dashboard-phone.png (390x2600, laid out at 390 px in a
                    frame) of the page with the fixtures, the down card with a diagnosis first.
  --expect-clean    Daemon mode: no error or warning text anywhere on the page, and every
                    history request answered 200 (the shipped demo on a fresh start).
  --expect-resources SERVICE  Daemon mode: SERVICE's card shows its unit's memory and CPU and
                    their 24 h charts, /api/resources answered 200.
  --dump-dir DIR    Save each scenario's rendered DOM and Chromium's stderr there.
  --chromium PATH   Browser binary (default $CHROMIUM or /usr/bin/chromium).
  --timeout S       How long to wait for the daemon to answer (default 120).
  --browser-timeout S  Limit for one Chromium run (default 45); a hang counts as a failure.

Exit status: 0 all passed; 1 an assertion failed (each failure is printed as "FAIL <scenario>:
<what>"); 2 set-up problem (no Chromium, daemon unreachable, bad arguments).
Network: binds 127.0.0.1 port 0 only; Chromium is started with background networking off.
"""

import argparse
import base64
import copy
import decimal
import html.parser
import http.server
import json
import math
import mimetypes
import os
import re
import shutil
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from history_model import HistoryModel, iso, ts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WWW = os.path.join(ROOT, "www")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
TWICE_PATH = "/__test__/widget-twice.html"
FOCUS_PATH = "/__test__/history-focus.html"
CROSS_PATH = "/__test__/widget-cross-origin.html"
HOVER_PATH = "/__test__/dashboard-hover.html"
HOVER_SCRIPT = b"""<script>
(function () {
  var q = new URLSearchParams(location.search), t = setInterval(function () {
    var cs = document.querySelectorAll('.css-ss-day');
    for (var i = 0; i < cs.length; i++) {
      var k = cs[i].getAttribute('data-ss-key').split('\u001f');
      if (k[1] === q.get('service') && k[2] === q.get('day') && document.querySelector('.css-ss-inc')) {
        cs[i].focus({ preventScroll: true });
        clearInterval(t);
      }
    }
  }, 50);
})();
</script>
"""
TEST_PAGES = {TWICE_PATH: "widget-twice.html", FOCUS_PATH: "history-focus.html",
              CROSS_PATH: "widget-cross-origin.html"}
STATES = {"up": "UP", "degraded": "DEGRADED", "down": "DOWN", "unknown": "UNKNOWN"}
XSS = "<img src=x onerror=alert(1)>"
VERBOSE = False


# The SSL context for a daemon served over https (--ca-file), else None.
TLS_CONTEXT = None


class SetupError(Exception):
    pass


class BrowserHang(Exception):
    def __init__(self, msg, stderr):
        super().__init__(msg)
        self.stderr = stderr


def log(*a):
    if VERBOSE:
        print("  ..", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- a tiny DOM from --dump-dom

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children = tag, dict(attrs), parent, []

    def text(self):
        out = []
        for c in self.children:
            out.append(c if isinstance(c, str) else c.text())
        return "".join(out)

    def classes(self):
        return (self.attrs.get("class") or "").split()

    def has_class(self, c):
        return c in self.classes()

    def walk(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.walk()

    def find_all(self, tag=None, cls=None, **attrs):
        res = []
        for n in self.walk():
            if tag and n.tag != tag:
                continue
            if cls and not n.has_class(cls):
                continue
            if any(n.attrs.get(k.replace("_", "-")) != v for k, v in attrs.items()):
                continue
            res.append(n)
        return res

    def find(self, tag=None, cls=None, **attrs):
        r = self.find_all(tag, cls, **attrs)
        return r[0] if r else None


class DomBuilder(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        n = Node(tag, [(k, v if v is not None else "") for k, v in attrs], self.cur)
        self.cur.children.append(n)
        if tag not in VOID:
            self.cur = n

    def handle_startendtag(self, tag, attrs):
        n = Node(tag, [(k, v if v is not None else "") for k, v in attrs], self.cur)
        self.cur.children.append(n)

    def handle_endtag(self, tag):
        n = self.cur
        while n is not self.root and n.tag != tag:
            n = n.parent
        if n is not self.root:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse_dom(text):
    b = DomBuilder()
    b.feed(text)
    b.close()
    return b.root


# ---------------------------------------------------------------- local server (fixture or proxy)

class Scenario:
    """What /api/status answers in fixture mode: a list of (code, body) used in turn, last repeats."""

    def __init__(self, answers):
        self.answers = answers
        self.count = 0
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            a = self.answers[min(self.count, len(self.answers) - 1)]
            self.count += 1
            return a


HISTORY_PATHS = ("/api/uptime", "/api/history", "/api/incidents", "/api/resources")
HISTORY_OFF = (404, {"error": "history is off (history_db: off in the config)"})


class State:
    def __init__(self, base_url):
        self.base_url = base_url.rstrip("/") if base_url else None
        self.scenario = None
        self.history = None  # fixture mode: f(path, params) -> (code, body); None: history off
        self.lock = threading.Lock()
        self.api_log = []  # (path_with_query, code, parsed body or None) in order served
        self.requests = []
        self.auth_log = []  # credentials scenario: (path, sent the login) per request

    def reset(self, scenario=None, history=None):
        with self.lock:
            self.scenario = scenario
            self.history = history
            self.api_log = []
            self.requests = []
            self.auth_log = []

    def answers(self, path):
        """[(query params, code, body)] recorded for one API path, in order served."""
        with self.lock:
            log_ = list(self.api_log)
        out = []
        for p, code, body in log_:
            u = urllib.parse.urlsplit(p)
            if u.path == path:
                out.append((urllib.parse.parse_qs(u.query), code, body))
        return out

    def last_answer(self, path, **params):
        """The last (code, body) for `path` whose query has these parameters, or None."""
        for q, code, body in reversed(self.answers(path)):
            if all(q.get(k, [None])[-1] == v for k, v in params.items()):
                return code, body
        return None

    def count(self, path):
        with self.lock:
            return sum(1 for r in self.requests if urllib.parse.urlsplit(r).path == path)

    def record(self, path, code, body):
        try:
            parsed = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            parsed = None
        with self.lock:
            self.api_log.append((path, code, parsed))

    def last_api(self, path):
        with self.lock:
            for p, code, body in reversed(self.api_log):
                if p == path:
                    return code, body
        return None


def make_handler(state, agent=None):
    """`agent`: {"auth": "Basic ...", "origin": "http://127.0.0.1:N", "next": URL} makes this the
    'other origin' of the credentials scenario: every /api/ answer needs that Authorization and
    carries CORS headers for `origin` (as the agent's cors_origins + basic_auth do), and
    /__test__/login answers 401 until the browser sends the login, then redirects to `next`."""
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            log("http:", fmt % args)

        def send(self, code, body, ctype, extra=None):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            headers = dict(extra or {})
            # Like the agent: CORS headers on what it answers after auth, none on its 401.
            if agent and code != 401 and self.headers.get("Origin") == agent["origin"]:
                headers.update({"Access-Control-Allow-Origin": agent["origin"], "Vary": "Origin",
                                "Access-Control-Allow-Credentials": "true"})
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self):
            self.do_GET()

        def do_OPTIONS(self):
            self.send(204, b"", "text/plain", {"Access-Control-Allow-Methods": "GET, HEAD",
                                               "Access-Control-Allow-Headers": "Authorization"})

        def do_GET(self):
            with state.lock:
                state.requests.append(self.path)
                if agent:
                    state.auth_log.append((self.path, self.headers.get("Authorization") == agent["auth"]))
            path = urllib.parse.urlsplit(self.path).path
            if agent and self.headers.get("Authorization") != agent["auth"]:
                return self.send(401, b'{"error": "authentication required"}', "application/json",
                                 {"WWW-Authenticate": 'Basic realm="chatstack-status", charset="UTF-8"'})
            if agent and path == "/__test__/login":
                return self.send(302, b"", "text/plain", {"Location": agent["next"]})
            if path == HOVER_PATH:
                # The dashboard page as shipped, plus a script that puts keyboard focus on one day
                # of the 90-day bar (its tooltip open), for the README's screenshot.
                with open(os.path.join(WWW, "admin_status.html"), "rb") as f:
                    page_ = f.read().replace(b"</body>", HOVER_SCRIPT + b"</body>")
                return self.send(200, page_, "text/html; charset=utf-8")
            if path == FRAME_PATH:
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                src = q.get("src", ["/"])[-1]
                if not src.startswith("/") or src.startswith("//"):
                    return self.send(400, b"src: a path on this server\n", "text/plain")
                page_ = FRAME_PAGE % (int(q["w"][-1]), int(q["h"][-1]), html.escape(src, quote=True))
                return self.send(200, page_.encode(), "text/html; charset=utf-8")
            if path == LAYOUT_PATH:
                # The dashboard page as shipped, plus a script that records its layout.
                with open(os.path.join(WWW, "admin_status.html"), "rb") as f:
                    page_ = f.read().replace(b"</body>", LAYOUT_SCRIPT + b"</body>")
                return self.send(200, page_, "text/html; charset=utf-8")
            page = TEST_PAGES.get(path)
            if page:
                with open(os.path.join(FIXTURES, page), "rb") as f:
                    return self.send(200, f.read(), "text/html; charset=utf-8")
            if state.base_url:
                return self.proxy(path)
            if path in HISTORY_PATHS:
                params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                code, body = state.history(path, params) if state.history else HISTORY_OFF
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                state.record(self.path, code, data)
                ctype = "application/json" if not isinstance(body, bytes) else "text/html"
                return self.send(code, data, ctype)
            if path == "/api/status":
                if state.scenario is None:
                    return self.send(503, b'{"error": "no scenario"}', "application/json")
                code, body = state.scenario.next()
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                state.record(self.path, code, data)
                return self.send(code, data, "application/json")
            if path in ("/", "/static/admin_status.html"):
                rel = "admin_status.html"
            elif path.startswith("/static/"):
                rel = urllib.parse.unquote(path[len("/static/"):])
            else:
                return self.send(404, b"not found\n", "text/plain; charset=utf-8")
            full = os.path.realpath(os.path.join(WWW, rel))
            if not full.startswith(os.path.realpath(WWW) + os.sep) or not os.path.isfile(full):
                return self.send(404, b"not found\n", "text/plain; charset=utf-8")
            ctype = mimetypes.guess_type(full)[0] or "application/octet-stream"
            if ctype.startswith("text/") or ctype.endswith("javascript"):
                ctype += "; charset=utf-8"
            with open(full, "rb") as f:
                self.send(200, f.read(), ctype)

        def proxy(self, path):
            req = urllib.request.Request(state.base_url + self.path, method="GET")
            for h in ("Accept", "Authorization"):
                if self.headers.get(h):
                    req.add_header(h, self.headers[h])
            try:
                with urllib.request.urlopen(req, timeout=30, context=TLS_CONTEXT) as r:
                    code, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
            except urllib.error.HTTPError as e:
                code, body, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
            except OSError as e:
                code, body, ctype = 502, ("proxy: %s" % e).encode(), "text/plain"
            if path == "/api/status" or path in HISTORY_PATHS:
                state.record(self.path, code, body)
            self.send(code, body, ctype or "application/octet-stream")

    return Handler


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# ---------------------------------------------------------------- chromium

def wait_for_chromium(path, deadline):
    """The browser must be installed (scripts/test-deps.sh does it)."""
    if not os.access(path, os.X_OK):
        raise SetupError("no browser at %s (install Debian's `chromium`, or pass --chromium PATH)" % path)


def chromium(args, url, budget_ms=5000, extra=(), timeout=120, dump=True):
    tmp = tempfile.mkdtemp(prefix="cs-browser-")
    cmd = [args.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--user-data-dir=" + tmp, "--virtual-time-budget=%d" % budget_ms,
           "--enable-logging=stderr", "--v=0"] + list(extra) + (["--dump-dom"] if dump else []) + [url]
    log("run:", " ".join(cmd))
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        # subprocess.run kills the browser. A page that opens an alert() dialog (markup injected
        # from status data, e.g. <img onerror=alert(1)>) blocks headless Chromium forever.
        raise BrowserHang("chromium did not finish within %ss for %s (a JavaScript alert() dialog, "
                          "e.g. from injected markup, blocks headless Chromium)" % (timeout, url),
                          (e.stderr or b"").decode("utf-8", "replace"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def console_lines(stderr):
    return [l for l in stderr.splitlines() if ":CONSOLE" in l]


# ---------------------------------------------------------------- assertions

class Checker:
    def __init__(self, name):
        self.name, self.failures = name, []

    def ok(self, cond, msg):
        if not cond:
            self.failures.append(msg)
        return cond


def services_of(body):
    if isinstance(body, dict) and isinstance(body.get("services"), list):
        return [s for s in body["services"] if isinstance(s, dict)]
    return None


def server_now(body):
    """Server 'now' as the widget computes it: generated_at + age_s (seconds since epoch)."""
    from datetime import datetime
    try:
        gen = datetime.fromisoformat(body["generated_at"].replace("Z", "+00:00")).timestamp()
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    age = body.get("age_s")
    return gen + (age if isinstance(age, (int, float)) else 0)


def parse_ts(s):
    from datetime import datetime
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except (TypeError, ValueError, AttributeError):
        return None


def check_widget(c, root, code, body, label, expect_error=False, expect_data=None):
    """Assert one rendered widget root (.css-ss) against the (code, body) the browser received."""
    warn = root.find(cls="css-ss-warn")
    live = [n for n in root.walk() if n.attrs.get("aria-live") == "polite"]
    c.ok(len(live) == 1, "%s: expected one aria-live=polite region, found %d" % (label, len(live)))
    if live:
        c.ok(live[0].text().strip() != "", "%s: the aria-live region announced nothing" % label)
    c.ok(warn is not None, "%s: no .css-ss-warn element" % label)
    services = services_of(body) if code == 200 else None
    is_error = code != 200 or services is None or expect_error
    data = expect_data if expect_data is not None else body
    data_services = services_of(data) if (expect_data is not None or not is_error) else None

    if is_error:
        if warn is not None:
            c.ok("hidden" not in warn.attrs, "%s: HTTP %s / error answer but the warning is hidden"
                 % (label, code))
            txt = warn.text()
            c.ok("Cannot" in txt, "%s: warning does not say it cannot load/refresh: %r" % (label, txt))
            c.ok("since" in txt, "%s: warning does not say since when: %r" % (label, txt))
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                c.ok(body["error"] in txt, "%s: warning lacks the server's error %r: %r"
                     % (label, body["error"], txt))
            c.ok(warn.find("time") is not None,
                 "%s: warning has no <time> for 'since when'" % label)
        if data_services is None:
            c.ok("No status data yet" in root.text(), "%s: no 'No status data yet' placeholder" % label)
            return
        c.ok(root.has_class("css-ss-dim"), "%s: last data is not greyed (css-ss-dim) after an error"
             % label)
    else:
        stale = bool(body.get("stale"))
        if stale:
            c.ok(warn is not None and "hidden" not in warn.attrs,
                 "%s: stale: true but the stale warning is hidden" % label)
            if warn is not None:
                c.ok("Stale" in warn.text(), "%s: warning does not say 'Stale': %r" % (label, warn.text()))
                c.ok(warn.find("time") is not None, "%s: stale warning has no <time>" % label)
            c.ok(root.has_class("css-ss-dim"), "%s: stale data is not greyed (css-ss-dim)" % label)
        else:
            c.ok(warn is not None and "hidden" in warn.attrs,
                 "%s: fresh data but a warning is shown: %r" % (label, warn.text() if warn else ""))
            c.ok(not root.has_class("css-ss-dim"), "%s: fresh data is greyed" % label)

    # banner
    overall = data.get("overall") if isinstance(data, dict) else None
    bstate = root.find(cls="css-ss-bstate")
    if c.ok(bstate is not None, "%s: no overall state banner" % label):
        c.ok(bstate.text() == STATES.get(overall, "UNKNOWN"), "%s: banner says %r, JSON overall is %r"
             % (label, bstate.text(), overall))
        banner = root.find(cls="css-ss-banner")
        c.ok(banner is not None and banner.has_class("css-ss-s-" + (overall if overall in STATES else "unknown")),
             "%s: banner colour class does not match overall %r" % (label, overall))
    host = data.get("host")
    if isinstance(host, str) and host:
        hn = root.find(cls="css-ss-host")
        c.ok(hn is not None and hn.text() == host, "%s: host %r not shown in the banner" % (label, host))
    gen = root.find(cls="css-ss-generated")
    c.ok(gen is not None and gen.attrs.get("title"), "%s: generated time missing or has no title" % label)

    cards = root.find_all("li", cls="css-ss-card")
    c.ok(len(cards) == len(data_services), "%s: %d service cards for %d services"
         % (label, len(cards), len(data_services)))
    now = server_now(data)
    for svc, card in zip(data_services, cards):
        name = str(svc.get("name"))
        status = svc.get("status") if svc.get("status") in STATES else "unknown"
        where = "%s: service %r" % (label, name)
        nm = card.find(cls="css-ss-name")
        c.ok(nm is not None and nm.text() == name, "%s: card shows name %r"
             % (where, nm.text() if nm else None))
        pill = card.find(cls="css-ss-status")
        c.ok(pill is not None and pill.text().endswith(STATES[status]),
             "%s: status text %r, expected %s" % (where, pill.text() if pill else None, STATES[status]))
        c.ok(card.has_class("css-ss-s-" + status), "%s: card colour class is not css-ss-s-%s"
             % (where, status))
        badges = " | ".join(b.text() for b in card.find_all(cls="css-ss-badge"))
        crit = svc.get("critical") is not False
        c.ok(("Critical" if crit else "Non-critical") in badges, "%s: critical badge wrong: %r"
             % (where, badges))
        if svc.get("heal_suspended") is True:
            c.ok("Auto-heal suspended" in badges, "%s: heal_suspended but no warning badge" % where)
        else:
            c.ok("Auto-heal suspended" not in badges, "%s: heal-suspended badge shown wrongly" % where)
        mu = parse_ts(svc.get("muted_until"))
        if mu is not None and now is not None and mu > now + 10:
            c.ok("Muted" in badges, "%s: muted_until in the future but no Muted badge" % where)
            if svc.get("mute_reason"):
                c.ok(svc["mute_reason"] in badges, "%s: mute_reason %r not on the Muted badge: %r"
                     % (where, svc["mute_reason"], badges))
        elif svc.get("muted_until") is None:
            c.ok("Muted" not in badges, "%s: Muted badge without muted_until" % where)
        stats = card.find(cls="css-ss-stats")
        st_text = stats.text() if stats else ""
        c.ok("Latency" in st_text and "Failures in a row" in st_text and "Restarts" in st_text,
             "%s: stats row incomplete: %r" % (where, st_text))
        restarts = svc.get("restarts") if isinstance(svc.get("restarts"), list) else []
        cf = svc.get("consecutive_failures") or 0
        dds = [d.text() for d in stats.find_all("dd")] if stats else []
        c.ok(str(len(restarts)) in dds and str(cf) in dds,
             "%s: restarts (%d) or consecutive failures (%s) not shown: %r" % (where, len(restarts), cf, dds))
        if svc.get("since"):
            c.ok(stats is not None and any(t.attrs.get("title") for t in stats.find_all("time")),
                 "%s: 'since' duration missing or without an absolute-time title" % where)
        # history strip
        hist = [h for h in (svc.get("history") or []) if isinstance(h, dict)]
        ticks = card.find_all(cls="css-ss-tick")
        c.ok(len(ticks) == len(hist), "%s: %d history ticks for %d history entries"
             % (where, len(ticks), len(hist)))
        want = [h.get("status") if h.get("status") in STATES else "unknown" for h in hist]
        got = [t.attrs.get("data-status") for t in ticks]
        c.ok(got == want, "%s: tick statuses (oldest first) %s != history %s" % (where, got, want))
        c.ok(all(t.has_class("css-ss-t-" + s) for t, s in zip(ticks, want)),
             "%s: tick colour classes do not match statuses" % where)
        c.ok(all(t.attrs.get("title") for t in ticks), "%s: a history tick has no title tooltip" % where)
        if hist:
            c.ok("Uptime" in st_text, "%s: no uptime percentage" % where)
            c.ok(re.search(r"\d%", st_text) is not None, "%s: uptime is not a percentage: %r"
                 % (where, st_text))
        lat = [h.get("latency_ms") for h in hist if isinstance(h.get("latency_ms"), (int, float))]
        if len(lat) >= 2:
            c.ok(card.find("svg") is not None and card.find("polyline") is not None,
                 "%s: no latency sparkline (inline SVG)" % where)
        # a card not up says why, unfolded: every check not up, its reason and detail
        why = card.find(cls="css-ss-why")
        bad = [x for x in (svc.get("checks") or []) if isinstance(x, dict) and x.get("status") != "up"]
        if status == "up" or not bad:
            c.ok(why is None, "%s: a 'why' block on a card that is up" % where)
        elif c.ok(why is not None and why.parent is not None and why.parent is card,
                  "%s: %s card without its failing checks unfolded (.css-ss-why outside <details>)"
                  % (where, status)):
            rows = why.find_all("li", cls="css-ss-check")
            c.ok(len(rows) == len(bad), "%s: %d rows in the why block for %d checks not up" % (where, len(rows), len(bad)))
            for ck, row in zip(bad, rows):
                rt = row.text()
                for field in ("reason", "target"):
                    if ck.get(field) is not None:
                        c.ok(str(ck[field]) in rt, "%s: why block lacks the %s %r" % (where, field, ck[field]))
                summary = str(ck.get("detail") or "").split("\n")[0]
                c.ok(summary in rt, "%s: why block lacks the detail %r" % (where, summary))
        # checks in <details>
        det = card.find("details")
        if c.ok(det is not None and det.find("summary") is not None, "%s: no <details>/<summary>" % where):
            rows = det.find_all("li", cls="css-ss-check")
            checks = [x for x in (svc.get("checks") or []) if isinstance(x, dict)]
            c.ok(len(rows) == len(checks), "%s: %d check rows for %d checks" % (where, len(rows), len(checks)))
            for ck, row in zip(checks, rows):
                rt = row.text()
                cs = ck.get("status") if ck.get("status") in STATES else "unknown"
                for field, val in (("type", ck.get("type")), ("target", ck.get("target")),
                                   ("reason", ck.get("reason"))):
                    if val is not None:
                        c.ok(str(val) in rt, "%s: check %s %r not shown" % (where, field, val))
                c.ok(STATES[cs] in rt, "%s: check status %s not shown" % (where, STATES[cs]))
                exp = parse_ts(ck.get("cert_expires_at"))
                cert = row.find(cls="css-ss-cert")
                if exp is None:
                    c.ok(cert is None, "%s: certificate shown for a check without cert_expires_at" % where)
                elif c.ok(cert is not None, "%s: check with cert_expires_at shows no certificate" % where):
                    left = exp - now if now is not None else None
                    if left is not None and left >= 2 * 86400:
                        c.ok(cert.text() == "certificate: %d d left" % (left // 86400),
                             "%s: certificate text %r for %.1f days left" % (where, cert.text(), left / 86400))
                    warn = ck.get("cert_warn_s")
                    within = left is not None and isinstance(warn, (int, float)) and 0 <= left < warn
                    c.ok(cert.has_class("css-ss-cert-warn") == within,
                         "%s: certificate warning colour %s, within cert_warn %s"
                         % (where, cert.has_class("css-ss-cert-warn"), within))
                    c.ok(bool(cert.attrs.get("title")), "%s: certificate has no expiry title" % where)
                ping = row.find(cls="css-ss-ping")
                if ck.get("type") != "push":
                    c.ok(ping is None, "%s: a ping shown for a %s check" % (where, ck.get("type")))
                elif c.ok(ping is not None, "%s: push check shows no last ping" % where):
                    lp = ck.get("last_ping") if isinstance(ck.get("last_ping"), dict) else None
                    if lp is None:
                        c.ok("no ping yet" in ping.text(), "%s: ping text %r" % (where, ping.text()))
                    else:
                        c.ok(ping.text().startswith("last ping "), "%s: ping text %r" % (where, ping.text()))
                        if lp.get("message"):
                            c.ok(str(lp["message"]) in ping.text(),
                                 "%s: ping message not shown as text in %r" % (where, ping.text()))
                        due = parse_ts(ck.get("ping_due_by"))
                        bad = lp.get("ok") is False or (due is not None and now is not None and due < now)
                        c.ok(ping.has_class("css-ss-cert-bad") == bad,
                             "%s: ping bad colour %s, expected %s" % (where, ping.has_class("css-ss-cert-bad"), bad))
                if ck.get("detail"):
                    dn = row.find(cls="css-ss-cdetail")
                    c.ok(dn is not None and dn.text() == str(ck["detail"]),
                         "%s: check detail shown as %r, expected text %r"
                         % (where, dn.text() if dn else None, ck["detail"]))


def check_no_injection(c, dom, raw, label):
    imgs = dom.find_all("img")
    c.ok(not imgs, "%s: %d <img> element(s) in the page (XSS?): %s"
         % (label, len(imgs), [i.attrs for i in imgs]))
    c.ok('<img src="x"' not in raw and "<img src=x" not in raw,
         "%s: raw '<img src=x' markup in the serialized DOM" % label)
    bad = [n.tag for n in dom.walk() if any(k.startswith("on") for k in n.attrs)]
    c.ok(not bad, "%s: elements with inline on* handlers: %s" % (label, bad))


def check_console(c, stderr, label, allow=()):
    lines = [l for l in console_lines(stderr) if not any(a in l for a in allow)]
    c.ok(not lines, "%s: console output (errors?):\n      %s" % (label, "\n      ".join(lines)))


# ---------------------------------------------------------------- history assertions

def js_round(x):
    return math.floor(x + 0.5)


def to_fixed(x, n):
    """JavaScript's Number.prototype.toFixed (half up on the exact binary value)."""
    return str(decimal.Decimal(x).quantize(decimal.Decimal(1).scaleb(-n), rounding=decimal.ROUND_HALF_UP))


def js_num(v):
    """String(v) for a JSON number, as JavaScript prints it."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def fmt_dur(ms):
    s = max(0, js_round(ms / 1000))
    if s < 60:
        return "%d s" % s
    m = s // 60
    if m < 60:
        return "%d min" % m
    hr = m // 60
    if hr < 24:
        return "%d h" % hr + (" %d min" % (m % 60) if m % 60 else "")
    d = hr // 24
    return "%d d" % d + (" %d h" % (hr % 24) if hr % 24 else "")


def num_or_none(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def fmt_secs(v):
    v = num_or_none(v)
    return fmt_dur((v if v and v > 0 else 0) * 1000)


def fmt_uptime(p):
    if p is None:
        return "\u2014"
    if p >= 100:
        return "100%"
    return to_fixed(math.floor(p * 100 + 1e-6) / 100, 2) + "%"


def fmt_lat(ms):
    if ms is None:
        return "\u2014"
    if ms >= 1000:
        return to_fixed(ms / 1000, 1 if ms >= 10000 else 2) + " s"
    if ms >= 100:
        return "%d ms" % js_round(ms)
    return to_fixed(ms, 1) + " ms"


def uptime_class(p):
    return "css-ss-u-none" if p is None else None if p >= 99.9 else "css-ss-u-warn" if p >= 99 else "css-ss-u-bad"


def day_kind(b):
    covered = sum(max(0, num_or_none(b.get(k)) or 0) for k in ("up_s", "degraded_s", "down_s", "maintenance_s"))
    if not covered > 0:
        return "nodata"
    u = num_or_none(b.get("uptime"))
    if u is None:
        return "maint"
    return "ok" if u >= 99.9 else "minor" if u >= 99 else "major" if u >= 95 else "bad"


def cards_by_service(c, root, services, label):
    cards = root.find_all("li", cls="css-ss-card")
    c.ok(len(cards) == len(services), "%s: %d cards for %d services" % (label, len(cards), len(services)))
    return list(zip(services, cards))


def kept_days(body):
    """Days of history the status says the agent keeps (`history.retention_s`), or None."""
    h = body.get("history") if isinstance(body, dict) else None
    r = num_or_none(h.get("retention_s")) if isinstance(h, dict) else None
    return r / 86400.0 if r else None


def bar_days(body):
    """The days the daily bar asks for: 90, or what the agent keeps when that is less."""
    k = kept_days(body)
    return 90 if k is None else min(90, int(math.floor(k)))


WINDOW_DAYS = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}


def check_uptime(c, pairs, answer, label, body=None):
    """Per card: 24 h / 7 d / 30 d / 90 d uptime as /api/uptime said (else the status's `uptime`);
    windows longer than the agent keeps are not shown, and the card says why."""
    kept = kept_days(body)
    windows = {}
    if answer and answer[0] == 200 and isinstance(answer[1], dict):
        windows = {str(s.get("name")): s.get("windows") or {} for s in answer[1].get("services", [])
                   if isinstance(s, dict)}
    shown = []
    for svc, card in pairs:
        name, where = str(svc.get("name")), "%s: service %r" % (label, svc.get("name"))
        win = windows.get(name)
        live = svc.get("uptime") if isinstance(svc.get("uptime"), dict) else None
        row = card.find(cls="css-ss-uptime")
        if not win and not live:
            c.ok(row is None, "%s: an uptime row without uptime data" % where)
            continue
        if not c.ok(row is not None, "%s: no uptime row (.css-ss-uptime)" % where):
            continue
        if kept is not None and kept < 90:
            head = card.find(cls="css-ss-kept")
            c.ok(head is not None and "history kept" in head.text(),
                 "%s: windows beyond the agent's %.0f days hidden without a word why" % (where, kept))
        for w in ("24h", "7d", "30d", "90d"):
            cell = row.find(data_window=w)
            if kept is not None and WINDOW_DAYS[w] > kept + 1e-9:
                c.ok(cell is None, "%s: a %s uptime tile, but the agent keeps %.1f days" % (where, w, kept))
                continue
            if not c.ok(cell is not None, "%s: no %s uptime" % (where, w)):
                continue
            if win is not None:
                p = num_or_none((win.get(w) or {}).get("uptime"))
            else:
                p = num_or_none(live.get(w))
            val = cell.find(cls="css-ss-uval")
            got = val.text() if val else None
            c.ok(got == fmt_uptime(p), "%s: %s uptime shown as %r, the agent said %r (expected %r)"
                 % (where, w, got, p, fmt_uptime(p)))
            want_cls = uptime_class(p)
            classes = set(val.classes()) if val else set()
            c.ok((want_cls in classes) if want_cls else not classes & {"css-ss-u-none", "css-ss-u-warn", "css-ss-u-bad"},
                 "%s: %s uptime %r has colour classes %s, expected %s" % (where, w, p, sorted(classes), want_cls))
            c.ok(bool(cell.attrs.get("title")), "%s: %s uptime has no title with its figures" % (where, w))
            shown.append((name, w, got))
    return shown


def incidents_known(state, days=90):
    """The incidents the widget was given (90-day list merged with the fresher 30-day one)."""
    by_id = {}
    for params in ({"since": "%dd" % days, "limit": "1000"}, {"since": "30d", "limit": "50"}):
        a = state.last_answer("/api/incidents", **params)
        if a and a[0] == 200 and isinstance(a[1], dict):
            for i in a[1].get("incidents", []):
                if isinstance(i, dict):
                    by_id[str(i.get("id"))] = i
    return list(by_id.values())


def check_bars(c, pairs, state, now, label, body=None):
    """Per card: one cell per daily bucket of the last 90 (or as many days as the agent keeps),
    in order, coloured by that day's uptime; never a longer `since` than the agent keeps."""
    ndays = bar_days(body)
    incs = incidents_known(state, ndays)
    kinds = {}
    kept = kept_days(body)
    if kept is not None:
        for q, _, _ in state.answers("/api/history") + state.answers("/api/incidents"):
            since = (q.get("since") or ["24h"])[-1]
            m = re.match(r"^(\d+)([hdm])$", since)
            n = int(m.group(1)) / {"d": 1.0, "h": 24.0, "m": 1440.0}[m.group(2)] if m else None
            c.ok(n is not None and n <= kept + 1e-9, "%s: asked since=%s, the agent keeps %.1f days" % (label, since, kept))
    for svc, card in pairs:
        name, where = str(svc.get("name")), "%s: service %r" % (label, svc.get("name"))
        ans = state.last_answer("/api/history", service=name, since="%dd" % ndays, step="1d")
        cells = card.find_all(cls="css-ss-day")
        if ans is None or ans[0] != 200 or not isinstance(ans[1], dict):
            c.ok(not cells, "%s: day cells without a %d-day answer" % (where, ndays))
            continue
        step = num_or_none(ans[1].get("step_s")) or 86400
        buckets = [b for b in ans[1].get("buckets", []) if isinstance(b, dict) and parse_ts(b.get("at")) is not None][-max(1, ndays):]
        if not c.ok(len(cells) == len(buckets), "%s: %d day cells for %d daily buckets (of the last 90)"
                    % (where, len(cells), len(buckets))):
            continue
        for b, cell in zip(buckets, cells):
            t = parse_ts(b["at"])
            day = iso(t)[:10]
            k = day_kind(b)
            kinds[(name, day)] = k
            got = (cell.attrs.get("data-day"), cell.attrs.get("data-kind"))
            c.ok(got == (day, k), "%s: cell %r is %r, the bucket at %s is %r" % (where, got[0], got[1], b["at"], k))
            c.ok(cell.has_class("css-ss-d-" + k), "%s: cell %s lacks colour class css-ss-d-%s" % (where, day, k))
            u = num_or_none(b.get("uptime"))
            c.ok(cell.attrs.get("data-uptime") == (js_num(u) if u is not None else ""),
                 "%s: cell %s data-uptime %r, bucket uptime %r" % (where, day, cell.attrs.get("data-uptime"), u))
            n = sum(1 for i in incs if i.get("service") == name and parse_ts(i.get("started_at")) is not None
                    and parse_ts(i["started_at"]) < t + step
                    and (parse_ts(i.get("ended_at")) if i.get("ended_at") else now) > t)
            c.ok(cell.attrs.get("data-incidents") == str(n), "%s: cell %s counts %s incidents, expected %d"
                 % (where, day, cell.attrs.get("data-incidents"), n))
            c.ok(bool(cell.attrs.get("aria-label")), "%s: cell %s has no aria-label" % (where, day))
        stops = [x for x in cells if x.attrs.get("tabindex") == "0"]
        c.ok(len(stops) == 1, "%s: %d keyboard tab stops in the bar, expected 1" % (where, len(stops)))
        days = card.find(cls="css-ss-days")
        axis = days.find(cls="css-ss-axis") if days else None
        c.ok(axis is not None and "days ago" in axis.text() and "today" in axis.text(),
             "%s: the 90-day bar has no axis ('N days ago' ... 'today')" % where)
    return kinds


def check_incidents(c, root, state, label):
    """The incidents section: every incident of the 30-day answer, newest first, all its facts."""
    ans = state.last_answer("/api/incidents", since="30d", limit="50")
    sec = root.find(cls="css-ss-inc")
    if ans is None:
        c.ok(sec is None, "%s: an incidents section without an /api/incidents answer" % label)
        return []
    if not c.ok(sec is not None, "%s: no incidents section (.css-ss-inc)" % label):
        return []
    if ans[0] != 200 or not isinstance(ans[1], dict) or not isinstance(ans[1].get("incidents"), list):
        c.ok("could not be loaded" in sec.text(), "%s: failed /api/incidents (HTTP %s) but no note: %r"
             % (label, ans[0], sec.text()[:200]))
        return []
    incs = [i for i in ans[1]["incidents"] if isinstance(i, dict)]
    items = sec.find_all("li", cls="css-ss-incident")
    c.ok(len(items) == len(incs), "%s: %d incidents shown, the agent sent %d" % (label, len(items), len(incs)))
    if not incs:
        c.ok("No incidents in the last 30 days" in sec.text(), "%s: no 'No incidents' line" % label)
    for inc, li in zip(incs, items):
        where = "%s: incident %s (%s)" % (label, inc.get("id"), inc.get("service"))
        t = li.text()
        c.ok(li.attrs.get("data-id") == str(inc.get("id")), "%s: shown in the wrong order (found id %s)"
             % (where, li.attrs.get("data-id")))
        nm = li.find(cls="css-ss-iname")
        c.ok(nm is not None and nm.text() == str(inc.get("service")), "%s: service name not shown" % where)
        ongoing = inc.get("ended_at") is None
        c.ok(li.attrs.get("data-open") == str(ongoing).lower() and (("Ongoing" in t) == ongoing)
             and (("Resolved" in t) != ongoing), "%s: open/ended not shown right (ended_at %r)"
             % (where, inc.get("ended_at")))
        muted = inc.get("muted") is True
        c.ok(("Muted (maintenance)" in t) == muted, "%s: muted %s but the badge says otherwise" % (where, muted))
        c.ok(("Alert sent" in t) == (inc.get("alerted") is True) and ("No alert" in t) != (inc.get("alerted") is True),
             "%s: alerted %r not shown" % (where, inc.get("alerted")))
        st_ = li.find("time", cls="css-ss-istart")
        c.ok(st_ is not None and parse_ts(st_.attrs.get("datetime")) == parse_ts(inc.get("started_at")),
             "%s: start time %r not shown" % (where, inc.get("started_at")))
        if not ongoing:
            d = li.find(cls="css-ss-iduration")
            c.ok(d is not None and d.text() == fmt_secs(inc.get("duration_s")),
                 "%s: duration shown as %r, expected %r" % (where, d.text() if d else None, fmt_secs(inc.get("duration_s"))))
        else:
            c.ok("still open" in t, "%s: an open incident does not say it is still open" % where)
        cause = inc.get("cause") if isinstance(inc.get("cause"), dict) else None
        if cause:
            for cls, val in (("css-ss-icause-type", cause.get("type")), ("css-ss-icause-target", cause.get("target")),
                             ("css-ss-icause-detail", cause.get("detail") or None)):
                if val is not None:
                    n = li.find(cls=cls)
                    c.ok(n is not None and n.text() == str(val), "%s: cause %s shown as %r, expected %r"
                         % (where, cls[len("css-ss-icause-"):], n.text() if n else None, val))
            if cause.get("reason") is not None:
                n = li.find(cls="css-ss-icause-reason")
                c.ok(n is not None and str(cause["reason"]) in n.text(), "%s: cause reason %r not shown"
                     % (where, cause["reason"]))
        else:
            c.ok("Cause not recorded" in t, "%s: no cause and no 'Cause not recorded'" % where)
        restarts = [r for r in inc.get("restarts") or [] if isinstance(r, dict)]
        shown = li.find_all(cls="css-ss-irestart")
        c.ok(len(shown) == len(restarts), "%s: %d restarts shown for %d" % (where, len(shown), len(restarts)))
        for r, n in zip(restarts, shown):
            failed = r.get("ok") is False
            c.ok(n.attrs.get("data-ok") == str(not failed).lower() and (("FAILED" in n.text()) == failed)
                 and (("ok" in n.text()) != failed), "%s: restart at %s (ok %r) shown as %r"
                 % (where, r.get("at"), r.get("ok"), n.text()))
        if not restarts:
            c.ok("no restart" in t, "%s: no restarts and no 'no restart'" % where)
    return list(zip(incs, items))


def check_latency(c, pairs, state, label):
    """Per card: the 24 h chart of hourly avg and max, one hover column per hour."""
    charts = 0
    for svc, card in pairs:
        name, where = str(svc.get("name")), "%s: service %r" % (label, svc.get("name"))
        ans = state.last_answer("/api/history", service=name, since="24h", step="1h")
        block = card.find(cls="css-ss-latency")
        if ans is None or ans[0] != 200 or not isinstance(ans[1], dict):
            c.ok(block is None, "%s: a latency chart without a 24 h answer" % where)
            continue
        if not c.ok(block is not None, "%s: no 24 h latency block" % where):
            continue
        buckets = [b for b in ans[1].get("buckets", []) if isinstance(b, dict) and parse_ts(b.get("at")) is not None]
        lat = [b.get("latency_ms") if isinstance(b.get("latency_ms"), dict) else {} for b in buckets]
        avgs = [num_or_none(l.get("avg")) for l in lat if num_or_none(l.get("avg")) is not None]
        chart = block.find("svg", cls="css-ss-lat")
        if not avgs:
            c.ok(chart is None and "No latency recorded" in block.text(), "%s: no latency data, but no 'No latency' line"
                 % where)
            continue
        if not c.ok(chart is not None, "%s: no latency chart (inline SVG .css-ss-lat)" % where):
            continue
        charts += 1
        c.ok(chart.attrs.get("data-points") == str(len(avgs)), "%s: chart plots %s hours, %d have latency"
             % (where, chart.attrs.get("data-points"), len(avgs)))
        c.ok(chart.find("polyline", cls="css-ss-lat-avg") is not None, "%s: no avg line" % where)
        c.ok(chart.find("polyline", cls="css-ss-lat-max") is not None, "%s: no max line" % where)
        hours = chart.find_all("rect", cls="css-ss-lat-hour")
        c.ok(len(hours) == len(buckets), "%s: %d hover columns for %d hours" % (where, len(hours), len(buckets)))
        c.ok(all(h.find("title") is not None and h.find("title").text() for h in hours),
             "%s: an hour column has no <title>" % where)
        peak = max((num_or_none(l.get("max")) if num_or_none(l.get("max")) is not None else num_or_none(l.get("avg")))
                   for l in lat if num_or_none(l.get("avg")) is not None)
        head = block.find(cls="css-ss-hhead")
        c.ok(head is not None and ("max " + fmt_lat(peak)) in head.text(), "%s: header %r lacks the peak 'max %s'"
             % (where, head.text() if head else None, fmt_lat(peak)))
        top = float(chart.attrs.get("data-top") or 0)
        c.ok(top >= peak, "%s: chart scale %s below the peak %s" % (where, top, peak))
    return charts


def history_checks(root, state, data, label, prefix):
    """Checkers for the four history aspects of one rendered widget; `data` the status shown."""
    services = services_of(data) or []
    now = server_now(data) or time.time()
    out = {}
    for aspect in ("uptime", "bar", "incidents", "latency"):
        out[aspect] = Checker("%s-%s" % (prefix, aspect))
    pairs = cards_by_service(out["uptime"], root, services, label)
    out["uptime_shown"] = check_uptime(out["uptime"], pairs, state.last_answer("/api/uptime"), label, data)
    out["kinds"] = check_bars(out["bar"], pairs, state, now, label, data)
    out["incidents_shown"] = check_incidents(out["incidents"], root, state, label)
    out["charts"] = check_latency(out["latency"], pairs, state, label)
    tip = root.find(cls="css-ss-tip")
    out["bar"].ok(tip is not None and "hidden" in tip.attrs, "%s: the day tooltip is shown without hover/focus" % label)
    return out


def no_history(c, root, state, label, requests=None):
    """Nothing of the history on the page (and, with `requests`, at most that many asked for)."""
    for cls, what in (("css-ss-day", "90-day cells"), ("css-ss-inc", "an incidents section"),
                      ("css-ss-latency", "a latency chart"), ("css-ss-hnote", "a history note")):
        c.ok(root.find(cls=cls) is None, "%s: %s shown with history off" % (label, what))
    if requests is not None:
        n = sum(state.count(p) for p in HISTORY_PATHS)
        c.ok(n <= requests, "%s: %d history requests, expected at most %d" % (label, n, requests))


# ---------------------------------------------------------------- scenarios

def run_page(args, state, base, path, label, budget=5000, allow=(), slow=1):
    c = Checker(label)
    try:
        rc, dom_text, err = chromium(args, base + path, budget, timeout=args.browser_timeout * slow)
    except BrowserHang as e:
        c.ok(False, "%s: %s" % (label, e))
        return c, None
    save(args, label, dom_text, err)
    c.ok(rc == 0, "%s: chromium exited %s" % (label, rc))
    dom = parse_dom(dom_text)
    check_console(c, err, label, allow)
    check_no_injection(c, dom, dom_text, label)
    roots = dom.find_all("div", cls="css-ss")
    if not c.ok(len(roots) == 1, "%s: expected 1 widget (.css-ss), found %d" % (label, len(roots))):
        return c, dom
    rec = state.last_api("/api/status")
    if not c.ok(rec is not None, "%s: the page never requested /api/status" % label):
        return c, dom
    code, body = rec
    return c, (dom, roots[0], code, body)


def scenario_page(args, state, base, fixture, path, label, history_prefix=None, expect_history=False):
    """The dashboard page; with `history_prefix`, also the four history aspects as their own
    results (`<prefix>-uptime`, `-bar`, `-incidents`, `-latency`), else folded into this one."""
    c, res = run_page(args, state, base, path, label)
    extra = []
    if isinstance(res, tuple):
        dom, root, code, body = res
        check_widget(c, root, code, body, label)
        if code == 200 and isinstance(body, dict):
            check_host_panel(c, root, state, body, label)
        if getattr(args, "expect_clean", False):
            check_no_error_text(c, root, label)
            # the shipped demo watches the host: its panel with / and memory, and up since
            hp = root.find(cls="css-ss-hostp")
            kinds = [t.attrs.get("data-kind") for t in hp.find_all("li", cls="css-ss-res")] if hp else []
            c.ok("disk" in kinds and "memory" in kinds and hp.find(cls="css-ss-upsince") is not None,
                 "%s: the demo shows no host panel with a disk, memory and up since: %r" % (label, kinds))
            for q, code_, ans in state.answers("/api/history") + state.answers("/api/incidents") + \
                    state.answers("/api/uptime"):
                c.ok(code_ == 200, "%s: a history request answered %s: %r" % (label, code_, ans))
        want_res = getattr(args, "expect_resources", None)
        if want_res and code == 200:
            ans = state.last_answer("/api/resources")
            c.ok(ans is not None and ans[0] == 200, "%s: /api/resources answered %s" % (label, ans[0] if ans else "nothing"))
            cards = [card for svc, card in cards_by_service(c, root, services_of(body) or [], label)
                     if svc.get("name") == want_res]
            card = cards[0] if cards else None
            stats = card.find(cls="css-ss-stats").text() if card and card.find(cls="css-ss-stats") else ""
            c.ok("Memory" in stats and " MB" in stats and "CPU" in stats,
                 "%s: %s's card does not show its memory and CPU: %r" % (label, want_res, stats))
            n = len(card.find_all(cls="css-ss-rchart")) if card else 0
            c.ok(n == 2, "%s: %s's card has %d memory/CPU charts, expected 2" % (label, want_res, n))
        up = state.last_answer("/api/uptime")
        if expect_history:
            c.ok(up is not None and up[0] == 200, "%s: expected history, but /api/uptime answered %s"
                 % (label, up[0] if up else "nothing (never asked)"))
        if code == 200 and up is not None and up[0] == 200:
            hc = history_checks(root, state, body, label, history_prefix or label)
            if history_prefix:
                extra = [hc["uptime"], hc["bar"], hc["incidents"], hc["latency"]]
                if fixture is not None:
                    fixture_history_expectations(hc, root)
                elif expect_history:
                    seeded_history_expectations(hc, root, body)
            else:
                for k in ("uptime", "bar", "incidents", "latency"):
                    c.failures.extend(hc[k].failures)
        title = dom.find("title")
        h1 = dom.find("h1")
        c.ok(h1 is not None, "%s: page has no <h1>" % label)
        c.ok(dom.find("main") is not None, "%s: page has no <main>" % label)
        if code == 200 and isinstance(body, dict) and body.get("host"):
            c.ok(h1 is not None and body["host"] in h1.text(), "%s: host %r not in <h1> %r"
                 % (label, body["host"], h1.text() if h1 else None))
            c.ok(title is not None and body["host"] in title.text(), "%s: <title> lacks the host" % label)
        if fixture is not None and code == 200:
            # the fixture carries the XSS string in a check detail: it must be visible as text
            details = [n.text() for n in root.find_all(cls="css-ss-cdetail")]
            c.ok(XSS in details, "%s: XSS probe detail not rendered as text (details: %r)"
                 % (label, details))
            # the down card's diagnosis, unfolded: result, exit, OOM, and the journal as text
            # in a scrolling monospace block (a line that is HTML stays text)
            diags = root.find_all(cls="css-ss-diag")
            c.ok(len(diags) == 1, "%s: %d diagnosis blocks, the fixture has one" % (label, len(diags)))
            if diags:
                text = diags[0].text()
                for want in ("result", "oom-kill", "killed by SIGKILL", "out-of-memory", "disks over warn: /var"):
                    c.ok(want in text, "%s: diagnosis lacks %r: %r" % (label, want, text[:400]))
                pres = diags[0].find_all("pre", cls="css-ss-journal")
                c.ok(len(pres) == 1 and XSS in pres[0].text() and "Failed with result 'oom-kill'" in pres[0].text(),
                     "%s: the journal lines are not shown as text: %r" % (label, [p.text() for p in pres]))
                c.ok(not diags[0].find_all("img"), "%s: a journal line became an <img>" % label)
            outcomes = [n.text() for n in root.find_all(cls="css-ss-outcome")]
            c.ok("still down" in outcomes and "pending" in outcomes,
                 "%s: restart outcomes not shown: %r" % (label, outcomes))
    return [c] + extra


def fixture_history_expectations(hc, root):
    """What tests/fixtures/history-mixed.json must show, so the generic checks are not vacuous."""
    u, b, i, l = hc["uptime"], hc["bar"], hc["incidents"], hc["latency"]
    shown = {(n, w): v for n, w, v in hc["uptime_shown"]}
    u.ok(len(shown) == 16, "uptime: %d window figures shown, expected 4 services x 4 windows" % len(shown))
    u.ok(shown.get(("ChatStack", "90d")) == "99.99%", "uptime: ChatStack 90 d shown as %r, expected 99.99%%"
         % shown.get(("ChatStack", "90d")))
    u.ok(shown.get(("NeuroSphere SendText", "24h")) == "99.26%", "uptime: NeuroSphere 24 h shown as %r"
         % shown.get(("NeuroSphere SendText", "24h")))
    k = hc["kinds"]
    for key, want in ((("ChatStack", "2026-10-19"), "nodata"), (("NeuroSphere SendText", "2026-11-20"), "bad"),
                      (("NeuroSphere SendText", "2026-11-19"), "major"), (("ChatStack", "2026-11-25"), "minor"),
                      (("AI-Memory", "2026-11-08"), "maint"), (("LeadFlowTracker", "2026-09-01"), "nodata"),
                      (("ChatStack", "2026-11-16"), "ok")):
        b.ok(k.get(key) == want, "bar: %s on %s is %r, expected %r" % (key[0], key[1], k.get(key), want))
    b.ok(len(k) == 4 * 90, "bar: %d day cells, expected 4 x 90" % len(k))
    items = [li for _, li in hc["incidents_shown"]]
    i.ok(len(items) == 9, "incidents: %d shown, the fixture has 9 in 30 days" % len(items))
    i.ok(any(li.attrs.get("data-open") == "true" for li in items), "incidents: no ongoing one shown")
    i.ok(any(li.attrs.get("data-muted") == "true" for li in items), "incidents: no muted one shown")
    i.ok(any(r.attrs.get("data-ok") == "false" for li in items for r in li.find_all(cls="css-ss-irestart")),
         "incidents: no failed restart shown")
    i.ok(any(n.text() == XSS for li in items for n in li.find_all(cls="css-ss-icause-detail")),
         "incidents: the cause detail with markup is not shown as text")
    l.ok(hc["charts"] == 4, "latency: %d charts, expected 4" % hc["charts"])
    cs = root.find_all("li", cls="css-ss-card")[0].find(cls="css-ss-latency")
    l.ok(cs is not None and "max 48.0 ms" in cs.text(), "latency: ChatStack's peak hour (48 ms) not shown")


def seeded_history_expectations(hc, root, body):
    """Against a daemon on a seeded database: figures, full bars and an incident's cause present."""
    services = services_of(body) or []
    numbers = [v for _, _, v in hc["uptime_shown"] if v != "\u2014"]
    hc["uptime"].ok(len(numbers) >= 3 * len(services),
                    "seeded: only %d uptime figures with a value for %d services" % (len(numbers), len(services)))
    cells = root.find_all(cls="css-ss-day")
    hc["bar"].ok(len(cells) == 90 * len(services), "seeded: %d day cells for %d services" % (len(cells), len(services)))
    hc["bar"].ok(any(c.attrs.get("data-kind") not in ("ok", "nodata") for c in cells),
                 "seeded: no day with downtime, degraded or maintenance in 90 days of a seeded history")
    causes = [n.text() for n in root.find_all(cls="css-ss-icause-target")]
    hc["incidents"].ok(bool(causes), "seeded: no incident cause shown")
    hc["incidents"].ok(bool(root.find_all(cls="css-ss-irestart")), "seeded: no incident restart shown")


def scenario_fixture_variant(args, state, base, label, answers, budget=5000, expect_error=False,
                             expect_data=None, history=None):
    state.reset(Scenario(answers), history)
    c, res = run_page(args, state, base, "/", label, budget)
    if isinstance(res, tuple):
        dom, root, code, body = res
        check_widget(c, root, code, body, label, expect_error=expect_error, expect_data=expect_data)
        if label == "lost":
            c.ok(state.scenario.count >= 2, "%s: the page did not poll again (%d requests)"
                 % (label, state.scenario.count))
        if not services_of(expect_data if expect_data is not None else body) or code != 200 and expect_data is None:
            # never a status document: nothing to ask the history about
            no_history(c, root, state, label, requests=0)
    return c


def scenario_twice(args, state, base, label="twice"):
    c = Checker(label)
    try:
        rc, dom_text, err = chromium(args, base + TWICE_PATH, 5000, timeout=args.browser_timeout)
    except BrowserHang as e:
        c.ok(False, "%s: %s" % (label, e))
        return c
    save(args, label, dom_text, err)
    c.ok(rc == 0, "%s: chromium exited %s" % (label, rc))
    dom = parse_dom(dom_text)
    check_console(c, err, label)
    check_no_injection(c, dom, dom_text, label)
    html_el = dom.find("html")
    attrs = html_el.attrs if html_el else {}
    c.ok("data-js-error" not in attrs, "%s: JavaScript error: %s" % (label, attrs.get("data-js-error")))
    c.ok(attrs.get("data-new-globals") == "SystemStatus",
         "%s: status.js added globals %r, expected only SystemStatus" % (label, attrs.get("data-new-globals")))
    c.ok(attrs.get("data-handles") == "function,function", "%s: mount() handles lack stop()" % label)
    styles = dom.find_all("style", data_css_ss="")
    c.ok(len(styles) == 1, "%s: widget CSS injected %d times, expected once" % (label, len(styles)))
    codes = {}
    for sel, url in (("first-widget", "/api/status"), ("second-widget", "/api/status?x=2")):
        host = dom.find(cls=sel)
        roots = host.find_all("div", cls="css-ss") if host else []
        if not c.ok(len(roots) == 1, "%s: %s holds %d widgets, expected 1" % (label, sel, len(roots))):
            continue
        ids = [n.attrs["id"] for n in [roots[0]] + list(roots[0].walk()) if "id" in n.attrs]
        c.ok(not ids, "%s: widget uses element ids %s (clash when embedded twice)" % (label, ids))
        rec = state.last_api(url)
        if c.ok(rec is not None, "%s: %s never requested %s" % (label, sel, url)):
            codes[url] = rec[0]
            check_widget(c, roots[0], rec[0], rec[1], "%s/%s" % (label, sel))
            c.ok(bool(roots[0].find_all("li", cls="css-ss-card")) or rec[0] != 200,
                 "%s: %s shows no service cards" % (label, sel))
            up = state.last_answer("/api/uptime")
            if rec[0] == 200 and up is not None and up[0] == 200:
                if not state.base_url:
                    # Fixture answers do not change: each widget shows exactly the recorded ones.
                    hc = history_checks(roots[0], state, rec[1], "%s/%s" % (label, sel), label)
                    for k in ("uptime", "bar", "incidents", "latency"):
                        c.failures.extend(hc[k].failures)
                # (A live daemon's figures move between the two widgets' requests: presence only.)
                n = len(services_of(rec[1]) or [])
                c.ok(len(roots[0].find_all(cls="css-ss-uptime")) == n, "%s: %s lacks uptime rows" % (label, sel))
                nd = bar_days(rec[1])
                c.ok(len(roots[0].find_all(cls="css-ss-day")) == nd * n, "%s: %s shows no %d-day bars" % (label, sel, nd))
    third = dom.find(cls="third-widget")
    troot = third.find("div", cls="css-ss") if third else None
    if c.ok(troot is not None, "%s: the third widget (history: false) is missing" % label):
        c.ok(bool(troot.find_all("li", cls="css-ss-card")) or codes.get("/api/status") != 200,
             "%s: the third widget shows no service cards" % label)
        c.ok(troot.find(cls="css-ss-uptime") is None and troot.find(cls="css-ss-day") is None
             and troot.find(cls="css-ss-inc") is None and troot.find(cls="css-ss-hnote") is None,
             "%s: the widget mounted with history: false shows history" % label)
    if codes.get("/api/status") == 200:
        c.ok(codes.get("/api/status?x=2") == 200,
             "%s: /api/status answered 200 but /api/status?x=2 answered %s (the server must ignore "
             "the query string), so the second widget shows no data" % (label, codes.get("/api/status?x=2")))
    return c


def scenario_history_variant(args, state, base, label, status, history, expect):
    """The dashboard with the history API answering `history` (None: 404, history off).
    expect: 'off' (no uptime in the status: not even asked), '404', '503', 'error', 'down'."""
    state.reset(Scenario([(200, status)]), history)
    c, res = run_page(args, state, base, "/", label)
    if not isinstance(res, tuple):
        return c
    dom, root, code, body = res
    check_widget(c, root, code, body, label)
    pairs = cards_by_service(c, root, services_of(body) or [], label)
    note = root.find(cls="css-ss-hnote")
    note_text = note.text() if note else ""
    c.ok(root.find(cls="css-ss-warn") is not None and "hidden" in root.find(cls="css-ss-warn").attrs,
         "%s: a history problem raised the live view's warning" % label)
    if expect == "off":
        no_history(c, root, state, label, requests=0)
        c.ok(root.find(cls="css-ss-uptime") is None, "%s: uptime row without history" % label)
    elif expect == "404":
        no_history(c, root, state, label, requests=1)
        check_uptime(c, pairs, None, label)  # the status's own 24 h / 7 d / 30 d, 90 d a dash
        c.ok(all(card.find(data_window="90d").find(cls="css-ss-uval").text() == "\u2014" for _, card in pairs),
             "%s: a 90 d figure without /api/uptime" % label)
    elif expect == "503":
        c.ok("No history recorded yet" in note_text and "HTTP 503" in note_text,
             "%s: no quiet 'No history recorded yet' note: %r" % (label, note_text))
        c.ok(root.find(cls="css-ss-day") is None and root.find(cls="css-ss-inc") is None,
             "%s: bars or incidents without history" % label)
        check_uptime(c, pairs, None, label)
    elif expect == "down":
        c.ok("History unavailable" in note_text and "HTTP 502" in note_text,
             "%s: no quiet 'History unavailable (HTTP 502 ...)' note: %r" % (label, note_text))
        c.ok(root.find(cls="css-ss-day") is None, "%s: bars without history" % label)
        c.ok(state.count("/api/history") == 0, "%s: asked for buckets after /api/uptime failed" % label)
    elif expect == "error":
        check_uptime(c, pairs, state.last_answer("/api/uptime"), label)
        cards_text = [card.text() for _, card in pairs]
        c.ok(all("Daily history unavailable: HTTP 500" in t for t in cards_text),
             "%s: a card does not say its daily history failed" % label)
        c.ok(all("24 h latency unavailable: HTTP 500" in t for t in cards_text),
             "%s: a card does not say its latency history failed" % label)
        check_incidents(c, root, state, label)
        c.ok(root.find(cls="css-ss-day") is None, "%s: day cells from a failed answer" % label)
    return c


def scenario_retention(args, state, base, status, model, label="history-retention"):
    """An agent that keeps 30 days (`history.retention_s`, as config/demo.yml): the dashboard
    asks for no more (the model answers 400 beyond, as the agent does), shows no 90 d tile but
    says why, and a 30-day bar; no error text anywhere."""
    kept = 30 * 86400
    doc = copy.deepcopy(status)
    doc["history"] = {"retention_s": kept}

    def answer(path, params):
        since = (params.get("since") or ["24h"])[-1]
        m = re.match(r"^(\d+)d$", since)
        if path == "/api/history" and m and int(m.group(1)) * 86400 > kept:
            return 400, {"error": "since %s: expected more than 0 and at most retention.rollups (30d)" % since}
        return model.answer(path, params)

    state.reset(Scenario([(200, doc)]), answer)
    c, res = run_page(args, state, base, "/", label)
    if not isinstance(res, tuple):
        return c
    dom, root, code, body = res
    check_widget(c, root, code, body, label)
    hc = history_checks(root, state, body, label, label)
    for k in ("uptime", "bar", "incidents", "latency"):
        c.failures.extend(hc[k].failures)
    check_no_error_text(c, root, label)
    n = len(root.find_all(cls="css-ss-day"))
    c.ok(n == 30 * len(services_of(body)), "%s: %d day cells, expected 30 per service" % (label, n))
    return c


#: What the widget says when something failed; a clean page has none of it.
ERROR_WORDS = ("unavailable", "could not", "HTTP 4", "HTTP 5", "retention.rollups (", "not loaded")


def check_no_error_text(c, root, label):
    """No error or warning text on the page: no note, no '... unavailable: HTTP 400'."""
    warn = root.find(cls="css-ss-warn")
    c.ok(warn is None or "hidden" in warn.attrs, "%s: the live view's warning is shown: %r"
         % (label, warn.text() if warn else ""))
    for n in root.find_all(cls="css-ss-hnote"):
        c.ok(False, "%s: a history note is shown: %r" % (label, n.text()))
    for n in root.find_all(cls="css-ss-empty"):
        t = n.text()
        c.ok(not any(w in t for w in ERROR_WORDS), "%s: error text on the page: %r" % (label, t))


def history_failing(model):
    """/api/uptime answers; /api/history is an HTML 500; /api/incidents is not JSON."""
    def answer(path, params):
        if path == "/api/history":
            return 500, b"<html><body>Internal Server Error</body></html>"
        if path == "/api/incidents":
            return 200, b"incidents: none"
        return model.answer(path, params)
    return answer


def scenario_tooltip(args, state, base, status, model, label="history-tooltip"):
    """Keyboard focus on a bad day shows its figures and incidents; ArrowLeft moves a day; a
    status re-render keeps focus and tooltip; a mouse over a no-data day shows that."""
    c = Checker(label)
    state.reset(Scenario([(200, status)]), model.answer)
    q = urllib.parse.urlencode({"service": "NeuroSphere SendText", "day": "2026-11-20",
                                "hover": "ChatStack", "hoverDay": "2026-10-19", "ok": "ChatStack",
                                "okDay": "2026-10-18"})
    try:
        rc, dom_text, err = chromium(args, base + FOCUS_PATH + "?" + q, 5000, timeout=args.browser_timeout)
    except BrowserHang as e:
        c.ok(False, "%s: %s" % (label, e))
        return c
    save(args, label, dom_text, err)
    c.ok(rc == 0, "%s: chromium exited %s" % (label, rc))
    check_console(c, err, label)
    dom = parse_dom(dom_text)
    a = (dom.find("html") or Node("html", {}, None)).attrs
    c.ok("data-js-error" not in a, "%s: JavaScript error: %s" % (label, a.get("data-js-error")))
    if not c.ok(a.get("data-steps") == "done", "%s: the page did not get through its steps (bars never shown?)"
                % label):
        return c
    days = {b["at"][:10]: b for b in model.history_doc("NeuroSphere SendText", 90 * 86400, 86400)["buckets"]}
    focus, left = a.get("data-tip-focus", ""), a.get("data-tip-left", "")
    bad = days["2026-11-20"]
    c.ok(a.get("data-tip-focus-day") == "2026-11-20", "%s: focus showed the tooltip of %r"
         % (label, a.get("data-tip-focus-day")))
    for want in (fmt_uptime(bad["uptime"]) + " uptime", "Down" + fmt_secs(bad["down_s"]), "No data0 s",
                 "09:00\u201312:00 UTC", "systemd neurosphere-sendtext.service: unit_failed",
                 "3 restarts (1 ok, 2 failed)"):
        c.ok(want in focus, "%s: the bad day's tooltip lacks %r: %r" % (label, want, focus))
    c.ok(a.get("data-after-left") == "2026-11-19", "%s: ArrowLeft moved focus to %r, expected 2026-11-19"
         % (label, a.get("data-after-left")))
    c.ok("22:50\u201323:30 UTC" in left and fmt_uptime(days["2026-11-19"]["uptime"]) in left,
         "%s: after ArrowLeft the tooltip does not show 19 Nov and its incident: %r" % (label, left))
    c.ok(a.get("data-tabstops") == "4/4", "%s: tab stops per bar %r, expected one in each of 4 bars"
         % (label, a.get("data-tabstops")))
    c.ok(a.get("data-after-refresh") == "focus kept, tip 2026-11-19",
         "%s: after a status re-render: %r" % (label, a.get("data-after-refresh")))
    box = [int(x) for x in (a.get("data-tip-box") or "0,0,0,0").split(",")]
    c.ok(box[0] >= 0 and box[1] <= box[3] and box[2] >= 0, "%s: tooltip outside the window: %s" % (label, box))
    hover = a.get("data-tip-hover", "")
    c.ok("No data" in hover and "No data1 d" in hover, "%s: hovering the no-data day shows %r" % (label, hover))
    c.ok(a.get("data-tip-after-out") == "hidden", "%s: tooltip still shown after the mouse left" % label)
    # A no-data day must look different from a good day in shape and colour, not a paler green.
    try:
        nd, ok = a["data-nodata-look"].split("|"), a["data-ok-look"].split("|")
        rgb = lambda s_: [int(float(x)) for x in re.findall(r"[\d.]+", s_)[:3]]
        ndc, okc = rgb(nd[0]), rgb(ok[0])
        c.ok(int(nd[1]) * 2 <= int(ok[1]), "%s: a no-data cell is %s px high, a good one %s px: not distinct"
             % (label, nd[1], ok[1]))
        c.ok(not (ndc[1] > ndc[0] + 30 and ndc[1] > ndc[2] + 30), "%s: the no-data cell is green: %s" % (label, nd[0]))
        c.ok(okc[1] > okc[0] + 30 and okc[1] > okc[2] + 30, "%s: a good day is not green: %s" % (label, ok[0]))
    except (KeyError, ValueError, IndexError) as e:
        c.ok(False, "%s: cell looks not recorded (%s): %r %r" % (label, e, a.get("data-nodata-look"), a.get("data-ok-look")))
    return c


def scenario_cadence(args, state, base, status, model, label="history-cadence"):
    """Six minutes of (virtual) time on the dashboard as shipped (status every 10 s): history
    every 60 s, O(services) requests each time, the 90-day bars again only after 300 s."""
    state.reset(Scenario([(200, status)]), model.answer)
    # Six virtual minutes take ~25 s of real time here, and over 45 s when the two cores are
    # shared with several other Chromium runs (a CI run of the whole browser module).
    c, res = run_page(args, state, base, "/", label, budget=365000, slow=2)
    if not isinstance(res, tuple):
        return c
    n = len(services_of(status))
    polls, ups = state.count("/api/status"), state.count("/api/uptime")
    hist = state.answers("/api/history")
    days = sum(1 for q, _, _ in hist if q.get("step") == ["1d"])
    hours = sum(1 for q, _, _ in hist if q.get("step") == ["1h"])
    incs = state.count("/api/incidents")
    log("cadence: status %d, uptime %d, 24h %d, 90d %d, incidents %d" % (polls, ups, hours, days, incs))
    c.ok(30 <= polls <= 38, "%s: %d status polls in 365 s at refresh 10 s" % (label, polls))
    c.ok(5 <= ups <= 7, "%s: %d /api/uptime requests in 365 s, expected one per 60 s (6 or 7)" % (label, ups))
    c.ok(hours == ups * n, "%s: %d 24 h requests for %d refreshes of %d services" % (label, hours, ups, n))
    c.ok(days == 2 * n, "%s: %d 90-day requests in 365 s, expected one per service at 0 s and at 300 s (%d)"
         % (label, days, 2 * n))
    c.ok(incs == ups + 2, "%s: %d incident requests for %d refreshes (+2 of 90 days)" % (label, incs, ups))
    c.ok(hours + days + incs + ups <= ups * (2 * n + 3), "%s: more than 2 x services + 3 requests per refresh"
         % label)
    return c


def scenario_credentials(args, state, base, status, model, label="credentials"):
    """A page on one origin, the 'agent' on another with basic auth and CORS for the page: the
    widget mounted with credentials: 'include' sends the login (the browser's, from a login
    there) and shows status and history; the default one sends none and shows the error."""
    c = Checker(label)
    agent_state = State(None)
    agent_state.reset(Scenario([(200, status)]), model.answer)
    port_holder = {}
    auth = "Basic " + base64.b64encode(b"admin:s3cret").decode()
    spec = {"auth": auth, "origin": base, "next": None}
    srv = Server(("127.0.0.1", 0), make_handler(agent_state, agent=spec))
    port_holder["p"] = srv.server_address[1]
    agent = "http://127.0.0.1:%d" % port_holder["p"]
    spec["next"] = base + CROSS_PATH + "?" + urllib.parse.urlencode({"agent": agent})
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        login = "http://admin:s3cret@127.0.0.1:%d/__test__/login" % port_holder["p"]
        try:
            rc, dom_text, err = chromium(args, login, 5000, timeout=args.browser_timeout)
        except BrowserHang as e:
            c.ok(False, "%s: %s" % (label, e))
            return c
    finally:
        srv.shutdown()
        srv.server_close()
    save(args, label, dom_text, err)
    c.ok(rc == 0, "%s: chromium exited %s" % (label, rc))
    # The default widget's request is refused by CORS (the 401 carries no CORS headers, like the
    # agent's): Chromium says so on the console, and that is the only line allowed.
    check_console(c, err, label, allow=("blocked by CORS policy",))
    dom = parse_dom(dom_text)
    a = (dom.find("html") or Node("html", {}, None)).attrs
    c.ok("data-js-error" not in a, "%s: JavaScript error: %s" % (label, a.get("data-js-error")))
    with agent_state.lock:
        seen = list(agent_state.auth_log)
    log("credentials: agent saw", seen)
    sent = lambda pred: [ok for p, ok in seen if pred(p)]
    inc = sent(lambda p: p.startswith("/api/status?w=include"))
    dflt = sent(lambda p: p.startswith("/api/status?w=default"))
    c.ok(True in inc, "%s: credentials 'include' never sent the login to the other origin (%s)" % (label, seen))
    c.ok(dflt and True not in dflt, "%s: the default widget sent the login across origins, or never asked: %s"
         % (label, dflt))
    c.ok(True in sent(lambda p: p.startswith("/api/uptime")), "%s: history asked without the login" % label)
    with_login = dom.find(cls="with-login")
    without = dom.find(cls="without-login")
    r1 = with_login.find("div", cls="css-ss") if with_login else None
    r2 = without.find("div", cls="css-ss") if without else None
    if c.ok(r1 is not None and r2 is not None, "%s: widgets missing" % label):
        c.ok(len(r1.find_all("li", cls="css-ss-card")) == len(services_of(status)),
             "%s: the 'include' widget shows no service cards: %r" % (label, r1.text()[:300]))
        c.ok(len(r1.find_all(cls="css-ss-day")) == 90 * len(services_of(status)),
             "%s: the 'include' widget shows no 90-day bars" % label)
        w2 = r2.find(cls="css-ss-warn")
        c.ok(w2 is not None and "hidden" not in w2.attrs and "Cannot load" in w2.text(),
             "%s: the default widget does not say it cannot load: %r" % (label, r2.text()[:300]))
    return c


def save(args, label, dom, err):
    if args.dump_dir:
        os.makedirs(args.dump_dir, exist_ok=True)
        with open(os.path.join(args.dump_dir, label + ".html"), "w") as f:
            f.write(dom)
        with open(os.path.join(args.dump_dir, label + ".stderr"), "w") as f:
            f.write(err)


def screenshots(args, base, state, fixture, history=None):
    out = os.path.abspath(args.screenshots)
    os.makedirs(out, exist_ok=True)
    hover = HOVER_PATH + "?" + urllib.parse.urlencode({"service": "ChatStack", "day": "2026-11-25"})
    # The down service with an open incident's diagnosis first, so the pictures show, under the
    # host panel, a card that is not up with its failing checks and its "Why" unfolded.
    doc = copy.deepcopy(fixture)
    doc["services"].sort(key=lambda s_: not (isinstance(s_.get("incident"), dict) and s_["incident"].get("diagnosis")))
    for name, size, path in (("dashboard-desktop.png", args.desktop_size, hover if history else "/"),
                             ("dashboard-phone.png", args.phone_size, "/")):
        state.reset(Scenario([(200, doc)]), history)
        dest = os.path.join(out, name)
        w, h_ = (int(x) for x in size.split(","))
        if w < 500:  # Chromium lays out at least 500 px: a frame of the phone's width, shot at its size
            path = FRAME_PATH + "?" + urllib.parse.urlencode({"w": w, "h": h_, "src": path})
        extra = ["--screenshot=" + dest, "--window-size=" + size, "--hide-scrollbars",
                 "--force-device-scale-factor=1"]
        if args.dark:
            extra.append("--blink-settings=preferredColorScheme=0")
        rc, _, err = chromium(args, base + path, 5000, extra=extra, timeout=args.browser_timeout,
                              dump=False)
        if rc != 0 or not os.path.exists(dest):
            raise SetupError("screenshot %s failed (chromium exit %s)" % (dest, rc))
        print("wrote %s (%d bytes)" % (dest, os.path.getsize(dest)))



# ---------------------------------------------------------------- the host panel (SPEC Part 3)

RESOURCE_KINDS = ("disk", "memory", "load", "pressure")
HOSTILE_PATH = "/srv/<img src=x onerror=alert(2)>"
LAYOUT_PATH = "/__test__/dashboard-layout.html"
# A phone-sized viewport: headless Chromium will not make its window narrower than 500 px, so a
# page of ?w=390&h=844&src=PATH shows PATH in an iframe of that size at the top left, and copies
# the iframe's <html> data-* attributes (the layout script's) onto its own for --dump-dom.
FRAME_PATH = "/__test__/frame.html"
FRAME_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>frame</title></head>
<body style="margin:0"><iframe style="display:block;border:0;width:%dpx;height:%dpx" src="%s"></iframe>
<script>
setInterval(function () {
  var f = document.querySelector('iframe'), d = f.contentDocument && f.contentDocument.documentElement;
  if (!d) return;
  for (var i = 0; i < d.attributes.length; i++) {
    var a = d.attributes[i];
    if (a.name.indexOf('data-') === 0) document.documentElement.setAttribute(a.name, a.value);
  }
}, 50);
</script></body></html>
"""
# Records, once the host panel and the cards are there, what a user on this window would see:
# the viewport and document widths (horizontal scroll), and the boxes of the panel, its tiles
# and the first card, on <html> for --dump-dom to carry out.
LAYOUT_SCRIPT = b"""<script>
(function () {
  var n = 0, t = setInterval(function () {
    var p = document.querySelector('.css-ss-hostp'), card = document.querySelector('.css-ss-card');
    if ((!p || !card) && ++n < 200) return;
    clearInterval(t);
    var r = function (e) { var b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom].map(Math.round).join(','); };
    var a = document.documentElement;
    a.setAttribute('data-vw', String(window.innerWidth));
    a.setAttribute('data-sw', String(document.documentElement.scrollWidth));
    if (p) a.setAttribute('data-panel', r(p));
    if (card) a.setAttribute('data-card', r(card));
    var tiles = document.querySelectorAll('.css-ss-res');
    a.setAttribute('data-tiles', Array.prototype.map.call(tiles, r).join(';'));
    var meta = document.querySelector('.css-ss-rmeta');
    if (meta) a.setAttribute('data-meta-font', getComputedStyle(meta).fontSize);
    var fill = document.querySelector('.css-ss-res[data-kind=disk] .css-ss-mfill');
    if (fill) a.setAttribute('data-fill', r(fill) + '|' + getComputedStyle(fill).backgroundColor);
  }, 50);
})();
</script>
"""


def host_status(status):
    """The fixture as an agent with host resources writes it: the `system` block, AI-Memory
    (degraded) carrying the resource checks (a disk over warn that fills in about 3 days, one
    up with no forecast, memory with swap, load, pressure), and `resources` per unit."""
    doc = copy.deepcopy(status)
    gen = parse_ts(doc["generated_at"])
    doc["system"] = {"boot_id": "0b8f6c2e-5b41-4d8e-9e0e-2f7d1c3a9b10", "booted_at": iso(gen - 3 * 86400 - 4 * 3600),
                     "uptime_s": 3 * 86400 + 4 * 3600, "cpus": 2, "load": [0.62, 0.84, 0.71],
                     "memory": {"total_bytes": 4102029312, "available_bytes": 1538260992, "used_pct": 62.5,
                                "swap_total_bytes": 1073737728, "swap_used_pct": 3.1}}

    def rc(kind, target, status_, values, warn, crit, value, reason=None, detail=""):
        return {"type": kind, "target": target, "status": status_, "reason": reason, "latency_ms": None,
                "detail": detail, "cert_expires_at": None, "values": values,
                "thresholds": {"value": value, "warn": warn, "crit": crit}}
    checks = [
        rc("disk", "/var", "degraded", {"used_pct": 87.4, "total_bytes": 80000000000, "available_bytes": 10080000000,
                                        "inodes_used_pct": 12.0, "full_in_s": 3 * 86400 + 5 * 3600},
           85.0, 95.0, "used_pct", "disk_space", "87.4% used, 10.1 GB of 80.0 GB available, inodes 12.0% used (over 85%)"),
        rc("disk", "/", "up", {"used_pct": 41.2, "total_bytes": 25000000000, "available_bytes": 14700000000,
                               "inodes_used_pct": 8.3, "full_in_s": None},
           80.0, 90.0, "used_pct", None, "41.2% used, 14.7 GB of 25.0 GB available, inodes 8.3% used"),
        rc("memory", "RAM", "up", {"used_pct": 62.5, "total_bytes": 4102029312, "available_bytes": 1538260992,
                                   "swap_used_pct": 3.1}, 85.0, 95.0, "used_pct", None,
           "62.5% used, 1.5 GB of 4.1 GB available, swap 3.1% used"),
        rc("load", "per CPU, 5m", "up", {"load1": 0.62, "load5": 0.84, "load15": 0.71, "cpus": 2, "per_cpu": 0.42},
           1.5, 3.0, "per_cpu", None, "load 0.62 0.84 0.71 on 2 CPUs: 0.42 per CPU over 5m"),
        rc("pressure", "io (some)", "up", {"avg10": 0.8, "avg60": 1.2, "avg300": 0.9}, 10.0, 40.0, "avg60", None,
           "io some avg60 1.2%"),
    ]
    res = {"ChatStack": {"memory_bytes": 412000000, "cpu_pct": 3.4, "tasks": 17},
           "AI-Memory": {"memory_bytes": 1210000000, "cpu_pct": 27.5, "tasks": 9},
           "NeuroSphere SendText": {"memory_bytes": None, "cpu_pct": None, "tasks": None}}
    for s in doc["services"]:
        if s.get("name") == "AI-Memory":
            s["checks"] = s["checks"] + checks
        if s.get("name") in res:
            s["resources"] = res[s["name"]]
    return doc


def resources_doc(now):
    """What /api/resources?since=24h answers for the fixture: 288 five-minute points per service
    with a unit; ChatStack has an hour with no figure, AI-Memory leaks, NeuroSphere stopped 40
    minutes ago (nulls since)."""
    out = {}
    for name, base, cpu in (("ChatStack", 380e6, 3.0), ("AI-Memory", 600e6, 20.0), ("NeuroSphere SendText", 250e6, 8.0)):
        rows = []
        for i in range(288):
            t = int(now - 86400 + 300 * (i + 1))
            mem, c = base * (1 + 0.08 * math.sin(i / 17.0)), cpu * (1 + 0.5 * math.sin(i / 7.0))
            if name == "AI-Memory":
                mem = base + 2.1e6 * i
            if (name == "ChatStack" and 100 <= i < 112) or (name == "NeuroSphere SendText" and i >= 280):
                mem = c = None
            rows.append([t, None if mem is None else int(mem), None if c is None else round(c, 1)])
        out[name] = rows
    return {"since": iso(now - 86400), "services": out}


def with_resources(answer, now):
    """A history answer function that also answers /api/resources as an agent that has it."""
    def a(path, params):
        if path == "/api/resources":
            since = (params.get("since") or ["24h"])[-1]
            if since != "24h":
                return 400, {"error": "since: expected 24h in this fixture, got %r" % since}
            return 200, resources_doc(now)
        return answer(path, params)
    return a


def resource_checks(body):
    """[(service name, check)] of every resource check in a status document, in order."""
    return [(str(s.get("name")), ck) for s in services_of(body) or []
            for ck in (s.get("checks") or []) if isinstance(ck, dict) and ck.get("type") in RESOURCE_KINDS]


def full_in_words(s):
    m = max(1, js_round(s / 60))
    if m < 90:
        return "full in %d minute%s" % (m, "" if m == 1 else "s")
    hrs = js_round(s / 3600)
    if hrs < 48:
        return "full in %d hour%s" % (hrs, "" if hrs == 1 else "s")
    d = js_round(s / 86400)
    return "full in %d day%s" % (d, "" if d == 1 else "s")


def check_host_panel(c, root, state, body, label):
    """The host panel against the status the browser got: one tile per resource check (status
    colour, figure, bar at the value, flags), the system block's memory/load where no check
    has them, "up since"; nothing at all for a status without either. And per service its
    memory and CPU, and the 24 h charts exactly when /api/resources answered with its rows."""
    panel = root.find(cls="css-ss-hostp")
    rcs = resource_checks(body)
    sys_ = body.get("system") if isinstance(body.get("system"), dict) else None
    if not rcs and sys_ is None:
        c.ok(panel is None, "%s: a host panel without resource checks or a system block" % label)
    elif c.ok(panel is not None, "%s: no host panel (.css-ss-hostp) for %d resource checks / system %s"
              % (label, len(rcs), sys_ is not None)):
        first_card = root.find("li", cls="css-ss-card")
        order = [n for n in root.walk() if n is panel or n is first_card]
        c.ok(not first_card or order[0] is panel, "%s: the host panel is not above the services" % label)
        tiles = panel.find_all("li", cls="css-ss-res")
        kinds = set()
        for (svc, ck), tile in zip(rcs, tiles):
            kind, v = ck["type"], ck.get("values") or {}
            kinds.add(kind)
            where = "%s: %s tile %r" % (label, kind, ck.get("target"))
            status = ck.get("status") if ck.get("status") in STATES else "unknown"
            c.ok(tile.attrs.get("data-kind") == kind and tile.has_class("css-ss-s-" + status),
                 "%s: kind/status %r %r, expected %s %s" % (where, tile.attrs.get("data-kind"), tile.attrs.get("class"),
                                                            kind, status))
            text = tile.text()
            tt = tile.find(cls="css-ss-rtitle")
            c.ok(tt is not None and tt.text().endswith("(%s)" % STATES[status]),
                 "%s: the title does not say the state in words: %r" % (where, tt.text() if tt else None))
            c.ok(str(ck.get("target")) in text or kind == "memory", "%s: target not shown as text: %r" % (where, text))
            c.ok(svc in tile.attrs.get("title", ""), "%s: the tile's title does not name service %r" % (where, svc))
            meter = tile.find(cls="css-ss-meter")
            val = v.get((ck.get("thresholds") or {}).get("value") or "used_pct")
            if c.ok(meter is not None and meter.attrs.get("role") == "meter", "%s: no bar (role=meter)" % where):
                if isinstance(val, (int, float)):
                    now_ = float(meter.attrs.get("aria-valuenow", "nan"))
                    c.ok(abs(now_ - min(val, float(meter.attrs.get("aria-valuemax", "inf")))) < 1e-6,
                         "%s: bar at %s, value %s" % (where, now_, val))
                th = ck.get("thresholds") or {}
                marks = len(meter.find_all(cls="css-ss-mmark"))
                want = sum(1 for k in ("warn", "crit") if isinstance(th.get(k), (int, float)))
                c.ok(marks == want, "%s: %d threshold marks on the bar, thresholds %r" % (where, marks, th))
            if kind == "disk":
                fc = [n.text() for n in tile.find_all(cls="css-ss-rflag-forecast")]
                full = v.get("full_in_s")
                if isinstance(full, (int, float)):
                    c.ok(fc == [full_in_words(full)], "%s: forecast %r, full_in_s %s" % (where, fc, full))
                else:
                    c.ok(fc == [] and "full in" not in text, "%s: a forecast without full_in_s: %r" % (where, text))
                ro = [n.text() for n in tile.find_all(cls="css-ss-rflag-bad")]
                c.ok(("read-only" in ro) == (ck.get("reason") == "read_only"),
                     "%s: read-only flag %r, reason %r" % (where, ro, ck.get("reason")))
                if isinstance(v.get("used_pct"), (int, float)):
                    c.ok("%.1f%%" % v["used_pct"] in text, "%s: used %% not shown: %r" % (where, text))
            if kind == "memory" and isinstance(v.get("swap_used_pct"), (int, float)):
                c.ok("swap %.1f%% used" % v["swap_used_pct"] in text, "%s: swap not shown: %r" % (where, text))
            if kind == "load":
                c.ok(isinstance(v.get("per_cpu"), (int, float)) and "%.2f per CPU" % v["per_cpu"] in text,
                     "%s: per-CPU load not shown: %r" % (where, text))
        extra = 0
        if sys_ is not None:
            mem = sys_.get("memory") if isinstance(sys_.get("memory"), dict) else {}
            extra += "memory" not in kinds and isinstance(mem.get("used_pct"), (int, float))
            extra += "load" not in kinds and isinstance(sys_.get("load"), list) and len(sys_["load"]) == 3
        c.ok(len(tiles) == len(rcs) + extra, "%s: %d tiles for %d resource checks + %d from the system block"
             % (label, len(tiles), len(rcs), extra))
        up = panel.find(cls="css-ss-upsince")
        if sys_ is not None and parse_ts(sys_.get("booted_at")) is not None:
            c.ok(up is not None and up.text().startswith("up since ") and up.find("time") is not None,
                 "%s: no 'up since' from booted_at: %r" % (label, up.text() if up else None))
        else:
            c.ok(up is None, "%s: 'up since' without a system block" % label)
    # a check row's figures leave out what the check has not got (no forecast yet, no swap)
    for n in root.find_all(cls="css-ss-values"):
        c.ok("n/a" not in n.text(), "%s: a check row shows a figure it has not got: %r" % (label, n.text()))
    # per service: memory and CPU now, and the 24 h charts
    ans = state.last_answer("/api/resources")
    rows = ans[1].get("services", {}) if ans and ans[0] == 200 and isinstance(ans[1], dict) else {}
    for svc, card in cards_by_service(c, root, services_of(body) or [], label):
        name, where = str(svc.get("name")), "%s: service %r" % (label, svc.get("name"))
        r = svc.get("resources") if isinstance(svc.get("resources"), dict) else None
        stat = {n.attrs.get("data-ss-res"): n.text() for n in card.walk() if n.attrs.get("data-ss-res")}
        if r is None:
            c.ok(not stat, "%s: memory/CPU shown without `resources`: %r" % (where, stat))
        else:
            c.ok(set(stat) == {"memory", "cpu"}, "%s: memory and CPU not both shown: %r" % (where, stat))
            if isinstance(r.get("cpu_pct"), (int, float)):
                c.ok(stat.get("cpu", "").endswith("%"), "%s: CPU %r" % (where, stat.get("cpu")))
        mine = [x for x in rows.get(name, []) if isinstance(x, list)]
        want = sum(1 for col in (1, 2) if sum(1 for x in mine if isinstance(x[col], (int, float))) >= 2)
        charts = card.find_all(cls="css-ss-rchart")
        c.ok(len(charts) == want, "%s: %d memory/CPU charts, expected %d (/api/resources %s)"
             % (where, len(charts), want, ans[0] if ans else "not asked"))
        for ch in charts:
            c.ok(ch.find("polyline") is not None and ch.attrs.get("aria-label", "").endswith(")"),
                 "%s: a resource chart without a line or label" % where)
    return panel


def scenario_host(args, state, base, label, status, history, expect):
    """The dashboard on a variant of the status: the generic host checks, and `expect(c, root,
    panel)` for what this variant is about."""
    state.reset(Scenario([(200, status)]), history)
    c, res = run_page(args, state, base, "/", label)
    if isinstance(res, tuple):
        dom, root, code, body = res
        check_widget(c, root, code, body, label)
        panel = check_host_panel(c, root, state, body, label)
        expect(c, root, panel)
    return c


def scenario_host_layout(args, state, base, status, history, label, size):
    """The page in a window of `size` (desktop or phone): no horizontal scroll, the panel and
    every tile inside the window, above the first card, its small print at least 12 px, and
    the disk over warn's bar filled in the degraded colour."""
    c = Checker(label)
    state.reset(Scenario([(200, status)]), history)
    w, h_ = (int(x) for x in size.split(","))
    url = base + LAYOUT_PATH
    if w < 500:  # narrower than Chromium's smallest window: the page in an iframe that size
        url = base + FRAME_PATH + "?" + urllib.parse.urlencode({"w": w, "h": h_, "src": LAYOUT_PATH})
    try:
        rc, dom_text, err = chromium(args, url, 5000, timeout=args.browser_timeout,
                                     extra=["--window-size=%d,%d" % (max(w, 500), h_), "--hide-scrollbars"])
    except BrowserHang as e:
        c.ok(False, "%s: %s" % (label, e))
        return c
    save(args, label, dom_text, err)
    c.ok(rc == 0, "%s: chromium exited %s" % (label, rc))
    check_console(c, err, label)
    a = (parse_dom(dom_text).find("html") or Node("html", {}, None)).attrs
    width = int(size.split(",")[0])
    box = lambda k: [int(x) for x in a[k].split(",")] if a.get(k) else None
    c.ok(a.get("data-vw") == str(width), "%s: window %r wide, asked for %d" % (label, a.get("data-vw"), width))
    c.ok(a.get("data-sw") == a.get("data-vw"), "%s: horizontal scroll: document %r px in a %r px window"
         % (label, a.get("data-sw"), a.get("data-vw")))
    panel, card = box("data-panel"), box("data-card")
    if c.ok(panel is not None and card is not None, "%s: panel %r or first card %r not laid out"
            % (label, a.get("data-panel"), a.get("data-card"))):
        c.ok(panel[0] >= 0 and panel[2] <= width, "%s: the panel %s sticks out of the window" % (label, panel))
        c.ok(panel[3] <= card[1], "%s: the panel %s is not above the first card %s" % (label, panel, card))
        tiles = [[int(x) for x in t.split(",")] for t in (a.get("data-tiles") or "").split(";") if t]
        c.ok(len(tiles) >= 5, "%s: %d tiles laid out" % (label, len(tiles)))
        c.ok(all(t[0] >= panel[0] and t[2] <= panel[2] and t[2] - t[0] >= min(240, width - 60) for t in tiles),
             "%s: a tile outside the panel or squeezed: %s in %s" % (label, tiles, panel))
    c.ok(a.get("data-meta-font") in ("12px", "13px", "14px"), "%s: the tiles' small print is %r"
         % (label, a.get("data-meta-font")))
    fill = (a.get("data-fill") or "|").split("|")
    f = [int(x) for x in fill[0].split(",")] if fill[0] else None
    c.ok(f is not None and f[2] - f[0] > 0 and "rgb(" in fill[1] and fill[1] not in ("rgba(0, 0, 0, 0)",),
         "%s: the first disk's bar is not drawn: %r" % (label, a.get("data-fill")))
    return c


def host_scenarios(args, state, base, fixture, model):
    """The host panel's variants (fixture mode); `fixture` already has the host data."""
    full = model.status_with_uptime(fixture)
    answer = with_resources(model.answer, model.now)
    out = []

    def forecast(c, root, panel):
        tiles = panel.find_all("li", cls="css-ss-res") if panel else []
        var = [t for t in tiles if "Disk /var" in t.text()]
        c.ok(len(var) == 1 and var[0].has_class("css-ss-s-degraded") and "full in 3 days" in var[0].text(),
             "host: the disk over warn (/var) is not degraded with 'full in 3 days': %r"
             % [t.text() for t in var])
        root_disk = [t for t in tiles if t.find(cls="css-ss-rtitle") and t.find(cls="css-ss-rtitle").text() == "Disk / (UP)"]
        c.ok(len(root_disk) == 1 and "full in" not in root_disk[0].text(), "host: '/' (no forecast) says full in")
        c.ok("up since" in (panel.text() if panel else "") and "3 d 4 h" in panel.text(),
             "host: no 'up since' with the 3 d 4 h uptime: %r" % (panel.text() if panel else None))
        cards = {n.text(): n for n in root.find_all(cls="css-ss-name")}
        chat = root.find_all("li", cls="css-ss-card")[0]
        c.ok("412.0 MB" in chat.find(cls="css-ss-stats").text() and "3.4%" in chat.find(cls="css-ss-stats").text(),
             "host: ChatStack's memory and CPU not on its card: %r" % chat.find(cls="css-ss-stats").text())
        c.ok(len(chat.find_all(cls="css-ss-rchart")) == 2, "host: ChatStack has no memory and CPU charts")
        c.ok(bool(cards), "host: no cards")
    out.append(scenario_host(args, state, base, "host", full, answer, forecast))

    hostile = copy.deepcopy(full)
    for s in hostile["services"]:
        for ck in s["checks"]:
            if ck.get("type") == "disk" and ck.get("target") == "/":
                ck.update(target=HOSTILE_PATH, status="down", reason="read_only",
                          detail="cannot write: mounted read-only " + XSS)
    hostile["system"]["boot_id"] = XSS

    def hostile_(c, root, panel):
        titles = [n.text() for n in (panel.find_all(cls="css-ss-rtitle") if panel else [])]
        c.ok("Disk " + HOSTILE_PATH + " (DOWN)" in titles, "host-hostile: the hostile path is not shown as text: %r" % titles)
        ro = [t for t in (panel.find_all("li", cls="css-ss-res") if panel else []) if HOSTILE_PATH in t.text()]
        c.ok(len(ro) == 1 and ro[0].has_class("css-ss-s-down") and "read-only" in ro[0].text(),
             "host-hostile: the read-only disk is not down with 'read-only'")
    out.append(scenario_host(args, state, base, "host-hostile", hostile, answer, hostile_))

    bare = copy.deepcopy(full)
    bare.pop("system", None)
    for s in bare["services"]:
        s["checks"] = [ck for ck in s["checks"] if ck.get("type") not in RESOURCE_KINDS]
        s.pop("resources", None)
    out.append(scenario_host(args, state, base, "host-none", bare, answer, lambda c, root, panel: c.ok(
        root.find(cls="css-ss-meter") is None, "host-none: a bar without host data")))

    sys_only = copy.deepcopy(bare)
    sys_only["system"] = copy.deepcopy(full["system"])

    def sys_(c, root, panel):
        kinds = [t.attrs.get("data-kind") for t in (panel.find_all("li", cls="css-ss-res") if panel else [])]
        c.ok(kinds == ["memory", "load"], "host-system-only: tiles %r, expected memory and load" % kinds)
        c.ok(panel is not None and "swap 3.1% used" in panel.text() and "0.42 per CPU" in panel.text(),
             "host-system-only: the system block's swap / load per CPU missing: %r" % (panel.text() if panel else None))
    out.append(scenario_host(args, state, base, "host-system-only", sys_only, answer, sys_))

    old = copy.deepcopy(full)
    old.pop("system", None)
    out.append(scenario_host(args, state, base, "host-no-system", old, answer, lambda c, root, panel: c.ok(
        panel is not None and len(panel.find_all("li", cls="css-ss-res")) == 5, "host-no-system: not 5 tiles")))

    def failing(path, params):
        if path == "/api/resources":
            return 500, b"<html><body>Internal Server Error</body></html>"
        return model.answer(path, params)

    def no_chart(c, root, panel):
        c.ok(root.find(cls="css-ss-rchart") is None, "%s: a chart from a failed answer" % c.name)
        c.ok(root.find(cls="css-ss-hnote") is None, "%s: a note for the chart" % c.name)
        c.ok(state.count("/api/resources") >= 1, "%s: /api/resources never asked" % c.name)
        c.ok(any(n.attrs.get("data-ss-res") == "memory" for n in root.walk()),
             "%s: the memory figure went with the chart" % c.name)
    out.append(scenario_host(args, state, base, "resources-failing", full, failing, no_chart))
    out.append(scenario_host(args, state, base, "resources-404", full, model.answer, no_chart))

    out.append(scenario_host_layout(args, state, base, full, answer, "host-desktop", "1280,900"))
    out.append(scenario_host_layout(args, state, base, full, answer, "host-phone", "390,844"))
    return out


def scenario_tls_direct(args, label="page-tls-direct"):
    """Chromium itself on the daemon's https:// page (no proxy between): the widget
    (www/js/status.js, over 64 KiB) must arrive whole and render every service."""
    c = Checker(label)
    with urllib.request.urlopen(args.base_url.rstrip("/") + "/api/status", timeout=10,
                                context=TLS_CONTEXT) as r:
        body = json.loads(r.read())
    # The test's own CA is not in Chromium's store: loopback only, so skip verification.
    try:
        rc, dom_text, err = chromium(args, args.base_url.rstrip("/") + "/", 5000,
                                     extra=["--ignore-certificate-errors"],
                                     timeout=args.browser_timeout)
    except BrowserHang as e:
        c.ok(False, "%s: %s" % (label, e))
        return c
    save(args, label, dom_text, err)
    c.ok(rc == 0, "%s: chromium exited %s" % (label, rc))
    dom = parse_dom(dom_text)
    check_console(c, err, label)
    roots = dom.find_all("div", cls="css-ss")
    if not c.ok(len(roots) == 1, "%s: expected 1 widget (.css-ss), found %d: the widget did not "
                "load over TLS" % (label, len(roots))):
        return c
    text = roots[0].text()
    names = [sv.get("name") for sv in services_of(body) or []]
    c.ok(len(names) > 0, "%s: /api/status has no services" % label)
    for name in names:
        c.ok(name in text, "%s: service %r not rendered" % (label, name))
    c.ok("No status data yet" not in text, "%s: the widget shows no data" % label)
    return c


def wait_for_daemon(base_url, deadline):
    last = None
    while True:
        try:
            with urllib.request.urlopen(base_url.rstrip("/") + "/api/status", timeout=5,
                                        context=TLS_CONTEXT) as r:
                if r.status == 200:
                    return
                last = "HTTP %s" % r.status
        except urllib.error.HTTPError as e:
            last = "HTTP %s" % e.code
            if e.code not in (503,):
                return  # answers, just not with data: the assertions will judge it
        except OSError as e:
            last = str(e)
        if time.monotonic() > deadline:
            if last and last.startswith("HTTP"):
                return  # reachable; test whatever it answers
            raise SetupError("daemon at %s unreachable: %s" % (base_url, last))
        time.sleep(0.2)


def main():
    global VERBOSE, TLS_CONTEXT
    ap = argparse.ArgumentParser(description="Headless-Chromium test of the chatstack-status dashboard.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--base-url", help="test a running daemon at this URL instead of the fixture server")
    ap.add_argument("--fixture", default=os.path.join(FIXTURES, "status-mixed.json"))
    ap.add_argument("--history-fixture", default=os.path.join(FIXTURES, "history-mixed.json"))
    ap.add_argument("--expect-history", action="store_true",
                    help="daemon mode: fail unless the daemon serves history (uptime, bars, incidents)")
    ap.add_argument("--ca-file", help="daemon mode over https: the CA that signed its certificate")
    ap.add_argument("--expect-resources", metavar="SERVICE",
                    help="daemon mode: fail unless SERVICE's card shows its memory and CPU and their 24 h charts")
    ap.add_argument("--expect-clean", action="store_true",
                    help="daemon mode: fail on any error or warning text on the page (a fresh demo)")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="wait for chromium to be installed / the daemon to answer (default 120)")
    ap.add_argument("--browser-timeout", type=float, default=45.0,
                    help="limit for one headless chromium run (default 45)")
    ap.add_argument("--screenshots", metavar="DIR")
    ap.add_argument("--phone-size", default="390,2600", help=argparse.SUPPRESS)
    ap.add_argument("--desktop-size", default="1280,1600", help=argparse.SUPPRESS)
    ap.add_argument("--dark", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--screenshots-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dump-dir", metavar="DIR")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    VERBOSE = args.verbose
    deadline = time.monotonic() + args.timeout
    if args.ca_file:
        TLS_CONTEXT = ssl.create_default_context(cafile=args.ca_file)

    if args.base_url:
        u = urllib.parse.urlsplit(args.base_url)
        if u.scheme not in ("http", "https") or not u.netloc:
            print("run.py: --base-url must look like http://127.0.0.1:PORT", file=sys.stderr)
            return 2
        if args.screenshots:
            print("run.py: --screenshots works in fixture mode only", file=sys.stderr)
            return 2
    fixture = model = None
    if not args.base_url:
        try:
            with open(args.fixture) as f:
                fixture = host_status(json.load(f))
            model = HistoryModel(args.history_fixture)
        except (OSError, ValueError, KeyError) as e:
            print("run.py: cannot read fixture %s / %s: %s" % (args.fixture, args.history_fixture, e), file=sys.stderr)
            return 2

    state = State(args.base_url)
    srv = Server(("127.0.0.1", 0), make_handler(state))
    port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % port
    results = []
    try:
        wait_for_chromium(args.chromium, deadline)
        if args.base_url:
            wait_for_daemon(args.base_url, deadline)
            print("testing daemon %s through proxy %s" % (args.base_url, base))
            for path, label in (("/", "page"), ("/static/admin_status.html", "page-static")):
                state.reset()
                prefix = "history-daemon" if label == "page" and args.expect_history else None
                results.extend(scenario_page(args, state, base, None, path, label, prefix,
                                             expect_history=args.expect_history))
            state.reset()
            results.append(scenario_twice(args, state, base))
            if args.base_url.startswith("https:"):
                results.append(scenario_tls_direct(args))
        else:
            print("testing www/ with fixture %s and history %s on %s"
                  % (os.path.relpath(args.fixture, ROOT), os.path.relpath(args.history_fixture, ROOT), base))
            # The fixture as an agent with history sends it: per-service uptime, history API on.
            full = model.status_with_uptime(fixture)
            answer = with_resources(model.answer, model.now)
            if args.screenshots_only:
                screenshots(args, base, state, full, answer)
                return 0
            for path, label in (("/", "page"), ("/static/admin_status.html", "page-static")):
                state.reset(Scenario([(200, full)]), answer)
                results.extend(scenario_page(args, state, base, fixture, path, label,
                                             "history" if label == "page" else None, expect_history=True))
            stale = copy.deepcopy(full)
            stale["stale"], stale["age_s"] = True, 431.0
            results.append(scenario_fixture_variant(args, state, base, "stale", [(200, stale)],
                                                    history=model.answer))
            results.append(scenario_fixture_variant(
                args, state, base, "error", [(503, {"error": "no status yet: the first cycle has not finished"})],
                history=model.answer))
            results.append(scenario_fixture_variant(
                args, state, base, "lost", [(200, full), (502, b"<html>Bad Gateway</html>")],
                budget=25000, expect_error=True, expect_data=full, history=model.answer))
            state.reset(Scenario([(200, full)]), model.answer)
            results.append(scenario_twice(args, state, base))
            results.append(scenario_tooltip(args, state, base, full, model))
            # An older agent, or history_db: off: no `uptime` in the status, the API says 404.
            results.append(scenario_history_variant(args, state, base, "history-off", fixture, None, "off"))
            # A server without history (serve with history_db: off) for a writer with it.
            results.append(scenario_history_variant(args, state, base, "history-404", full, None, "404"))
            no_yet = (503, {"error": "no history yet: the first check cycle has not been recorded"})
            results.append(scenario_history_variant(args, state, base, "history-503", full,
                                                    lambda p, q: no_yet, "503"))
            results.append(scenario_history_variant(args, state, base, "history-down", full,
                                                    lambda p, q: (502, b"<html>Bad Gateway</html>"), "down"))
            results.append(scenario_history_variant(args, state, base, "history-error", full,
                                                    history_failing(model), "error"))
            results.append(scenario_retention(args, state, base, full, model))
            results.append(scenario_cadence(args, state, base, full, model))
            results.append(scenario_credentials(args, state, base, full, model))
            results.extend(host_scenarios(args, state, base, fixture, model))
            if args.screenshots:
                screenshots(args, base, state, full, answer)
    except SetupError as e:
        print("run.py: %s" % e, file=sys.stderr)
        return 2
    finally:
        srv.shutdown()
        srv.server_close()

    failed = 0
    for c in results:
        if c.failures:
            failed += 1
            for f in c.failures:
                print("FAIL %s" % f)
        else:
            print("ok   %s" % c.name)
    if failed:
        print("%d of %d browser scenarios failed" % (failed, len(results)))
        return 1
    print("all %d browser scenarios passed" % len(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
