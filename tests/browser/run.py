#!/usr/bin/env python3
"""Browser test of the chatstack-status dashboard (www/) in headless Chromium. Stdlib only.

Usage:
  python3 tests/browser/run.py [--base-url URL] [--fixture FILE] [--chromium PATH]
                               [--timeout SECONDS] [--screenshots DIR] [--dump-dir DIR] [-v]

  (no --base-url)   Fixture mode. Serves this checkout's www/ on 127.0.0.1:<ephemeral> with the
                    daemon's URL layout (/ and /static/admin_status.html -> www/admin_status.html,
                    /static/<path> -> www/<path>) and FILE (default tests/fixtures/status-mixed.json)
                    at /api/status, then checks these scenarios:
                      page, page-static  the fixture as served (fresh data)
                      stale              the fixture with "stale": true
                      error              503 {"error": ...} before any data
                      lost               good data first, then HTTP 502: last data stays, greyed
                      twice              tests/fixtures/widget-twice.html (two widgets, two URLs)
  --base-url URL    Daemon mode, e.g. --base-url http://127.0.0.1:8095 against a running
                    `chatstack-status run|serve`. A loopback proxy forwards every request to URL
                    (so the pages, /static/js/status.js and /api/status come from the daemon) and
                    also serves /__test__/widget-twice.html. Scenarios: page, page-static, twice.
                    Assertions are driven by the JSON the daemon actually sent to the browser
                    (recorded by the proxy), so any config works; stale or error answers are
                    checked for their warning. Waits up to --timeout for /api/status to answer 200.
  --screenshots DIR Fixture mode only: also write DIR/dashboard-desktop.png (1280x900) and
                    DIR/dashboard-phone.png (390 px wide) of the page with the fixture.
  --dump-dir DIR    Save each scenario's rendered DOM and Chromium's stderr there.
  --chromium PATH   Browser binary (default $CHROMIUM or /usr/bin/chromium).
  --timeout S       How long to wait for the daemon to answer (default 120).
  --browser-timeout S  Limit for one Chromium run (default 45); a hang counts as a failure.

Exit status: 0 all passed; 1 an assertion failed (each failure is printed as "FAIL <scenario>:
<what>"); 2 set-up problem (no Chromium, daemon unreachable, bad arguments).
Network: binds 127.0.0.1 port 0 only; Chromium is started with background networking off.
"""

import argparse
import copy
import html.parser
import http.server
import json
import mimetypes
import os
import re
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WWW = os.path.join(ROOT, "www")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
TWICE_PATH = "/__test__/widget-twice.html"
STATES = {"up": "UP", "degraded": "DEGRADED", "down": "DOWN", "unknown": "UNKNOWN"}
XSS = "<img src=x onerror=alert(1)>"
VERBOSE = False


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


class State:
    def __init__(self, base_url):
        self.base_url = base_url.rstrip("/") if base_url else None
        self.scenario = None
        self.lock = threading.Lock()
        self.api_log = []  # (path_with_query, code, parsed body or None) in order served
        self.requests = []

    def reset(self, scenario=None):
        with self.lock:
            self.scenario = scenario
            self.api_log = []
            self.requests = []

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


def make_handler(state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            log("http:", fmt % args)

        def send(self, code, body, ctype, extra=None):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            with state.lock:
                state.requests.append(self.path)
            path = urllib.parse.urlsplit(self.path).path
            if path == TWICE_PATH:
                with open(os.path.join(FIXTURES, "widget-twice.html"), "rb") as f:
                    return self.send(200, f.read(), "text/html; charset=utf-8")
            if state.base_url:
                return self.proxy(path)
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
                with urllib.request.urlopen(req, timeout=30) as r:
                    code, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
            except urllib.error.HTTPError as e:
                code, body, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
            except OSError as e:
                code, body, ctype = 502, ("proxy: %s" % e).encode(), "text/plain"
            if path == "/api/status":
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


# ---------------------------------------------------------------- scenarios

def run_page(args, state, base, path, label, budget=5000):
    c = Checker(label)
    try:
        rc, dom_text, err = chromium(args, base + path, budget, timeout=args.browser_timeout)
    except BrowserHang as e:
        c.ok(False, "%s: %s" % (label, e))
        return c, None
    save(args, label, dom_text, err)
    c.ok(rc == 0, "%s: chromium exited %s" % (label, rc))
    dom = parse_dom(dom_text)
    check_console(c, err, label)
    check_no_injection(c, dom, dom_text, label)
    roots = dom.find_all("div", cls="css-ss")
    if not c.ok(len(roots) == 1, "%s: expected 1 widget (.css-ss), found %d" % (label, len(roots))):
        return c, dom
    rec = state.last_api("/api/status")
    if not c.ok(rec is not None, "%s: the page never requested /api/status" % label):
        return c, dom
    code, body = rec
    return c, (dom, roots[0], code, body)


def scenario_page(args, state, base, fixture, path, label):
    c, res = run_page(args, state, base, path, label)
    if isinstance(res, tuple):
        dom, root, code, body = res
        check_widget(c, root, code, body, label)
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
    return c


def scenario_fixture_variant(args, state, base, label, answers, budget=5000, expect_error=False,
                             expect_data=None):
    state.reset(Scenario(answers))
    c, res = run_page(args, state, base, "/", label, budget)
    if isinstance(res, tuple):
        dom, root, code, body = res
        check_widget(c, root, code, body, label, expect_error=expect_error, expect_data=expect_data)
        if label == "lost":
            c.ok(state.scenario.count >= 2, "%s: the page did not poll again (%d requests)"
                 % (label, state.scenario.count))
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
    if codes.get("/api/status") == 200:
        c.ok(codes.get("/api/status?x=2") == 200,
             "%s: /api/status answered 200 but /api/status?x=2 answered %s (the server must ignore "
             "the query string), so the second widget shows no data" % (label, codes.get("/api/status?x=2")))
    return c


def save(args, label, dom, err):
    if args.dump_dir:
        os.makedirs(args.dump_dir, exist_ok=True)
        with open(os.path.join(args.dump_dir, label + ".html"), "w") as f:
            f.write(dom)
        with open(os.path.join(args.dump_dir, label + ".stderr"), "w") as f:
            f.write(err)


def screenshots(args, base, state, fixture):
    out = os.path.abspath(args.screenshots)
    os.makedirs(out, exist_ok=True)
    for name, size in (("dashboard-desktop.png", "1280,900"), ("dashboard-phone.png", args.phone_size)):
        state.reset(Scenario([(200, fixture)]))
        dest = os.path.join(out, name)
        extra = ["--screenshot=" + dest, "--window-size=" + size, "--hide-scrollbars",
                 "--force-device-scale-factor=1"]
        if args.dark:
            extra.append("--blink-settings=preferredColorScheme=0")
        rc, _, err = chromium(args, base + "/", 5000, extra=extra, timeout=args.browser_timeout,
                            dump=False)
        if rc != 0 or not os.path.exists(dest):
            raise SetupError("screenshot %s failed (chromium exit %s)" % (dest, rc))
        print("wrote %s (%d bytes)" % (dest, os.path.getsize(dest)))


def wait_for_daemon(base_url, deadline):
    last = None
    while True:
        try:
            with urllib.request.urlopen(base_url.rstrip("/") + "/api/status", timeout=5) as r:
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
    global VERBOSE
    ap = argparse.ArgumentParser(description="Headless-Chromium test of the chatstack-status dashboard.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--base-url", help="test a running daemon at this URL instead of the fixture server")
    ap.add_argument("--fixture", default=os.path.join(FIXTURES, "status-mixed.json"))
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="wait for chromium to be installed / the daemon to answer (default 120)")
    ap.add_argument("--browser-timeout", type=float, default=45.0,
                    help="limit for one headless chromium run (default 45)")
    ap.add_argument("--screenshots", metavar="DIR")
    ap.add_argument("--phone-size", default="390,1840", help=argparse.SUPPRESS)
    ap.add_argument("--dark", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dump-dir", metavar="DIR")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    VERBOSE = args.verbose
    deadline = time.monotonic() + args.timeout

    if args.base_url:
        u = urllib.parse.urlsplit(args.base_url)
        if u.scheme not in ("http", "https") or not u.netloc:
            print("run.py: --base-url must look like http://127.0.0.1:PORT", file=sys.stderr)
            return 2
        if args.screenshots:
            print("run.py: --screenshots works in fixture mode only", file=sys.stderr)
            return 2
    fixture = None
    if not args.base_url:
        try:
            with open(args.fixture) as f:
                fixture = json.load(f)
        except (OSError, ValueError) as e:
            print("run.py: cannot read fixture %s: %s" % (args.fixture, e), file=sys.stderr)
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
                results.append(scenario_page(args, state, base, None, path, label))
            state.reset()
            results.append(scenario_twice(args, state, base))
        else:
            print("testing www/ with fixture %s on %s" % (os.path.relpath(args.fixture, ROOT), base))
            for path, label in (("/", "page"), ("/static/admin_status.html", "page-static")):
                state.reset(Scenario([(200, fixture)]))
                results.append(scenario_page(args, state, base, fixture, path, label))
            stale = copy.deepcopy(fixture)
            stale["stale"], stale["age_s"] = True, 431.0
            results.append(scenario_fixture_variant(args, state, base, "stale", [(200, stale)]))
            results.append(scenario_fixture_variant(
                args, state, base, "error", [(503, {"error": "no status yet: the first cycle has not finished"})]))
            results.append(scenario_fixture_variant(
                args, state, base, "lost", [(200, fixture), (502, b"<html>Bad Gateway</html>")],
                budget=25000, expect_error=True, expect_data=fixture))
            state.reset(Scenario([(200, fixture)]))
            results.append(scenario_twice(args, state, base))
            if args.screenshots:
                screenshots(args, base, state, fixture)
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
