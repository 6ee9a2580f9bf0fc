"""`SystemStatus.mount('#system-status')` on the Flask panel's own page, in headless Chromium:
the widget and /api/status come from the panel's origin, the status file from a cron'd
`check` (no agent HTTP server anywhere)."""

import os
import re
import shutil
import subprocess
import tempfile

import pytest
from flask import Flask, request

from conftest import WWW, copy_checked, csf

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>ChatStack admin</title></head>
<body><h1>ChatStack admin</h1>
<div id="system-status"></div>
<script src="/static/js/status.js"></script>
<script>SystemStatus.mount('#system-status');</script>
</body></html>
"""


@pytest.fixture(scope="module")
def chromium():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("no Chromium at %s: `make deps` installs Debian's chromium (or set CHROMIUM)"
                    % CHROMIUM, pytrace=False)
    return CHROMIUM


def admin_panel(serve_app, status_file):
    """The panel: its own page at /admin, the blueprint, and a log of what the browser asked."""
    app = Flask("admin_panel")
    app.register_blueprint(csf.status_blueprint(status_file=str(status_file), www_dir=WWW))
    seen = []

    @app.route("/admin")
    def admin():
        return PAGE

    @app.before_request
    def record():
        seen.append((request.method, request.path))

    return serve_app(app), seen


def render(chromium, url):
    """The DOM after the page ran for 5 s of virtual time; Chromium's console lines."""
    profile = tempfile.mkdtemp(prefix="csf-chromium-")
    try:
        p = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--user-data-dir=" + profile, "--virtual-time-budget=5000",
             "--enable-logging=stderr", "--v=0", "--dump-dom", url],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert p.returncode == 0, p.stderr.decode("utf-8", "replace")[-2000:]
    console = [l for l in p.stderr.decode("utf-8", "replace").splitlines() if ":CONSOLE" in l]
    return p.stdout.decode("utf-8", "replace"), console


def test_widget_mounts_on_the_panels_page_in_cron_mode(chromium, serve_app, checked, tmp_path):
    port, seen = admin_panel(serve_app, copy_checked(checked, tmp_path / "status.json"))
    dom, console = render(chromium, "http://127.0.0.1:%d/admin" % port)
    assert ("GET", "/static/js/status.js") in seen
    assert ("GET", "/api/status") in seen, "the widget's default url is the panel's own"
    assert not console, console
    cards = re.findall(r'class="[^"]*\bcss-ss-card\b', dom)
    assert len(cards) == 2, dom[-3000:]
    for name in ("Web", "Backup"):
        assert ">%s<" % name in dom, name
    # Backup (not critical) is down: the banner says degraded, not an error.
    assert re.search(r'class="[^"]*\bcss-ss-banner\b[^"]*\bcss-ss-s-degraded\b', dom), dom[-3000:]


def test_widget_shows_the_panels_503_reason(chromium, serve_app, tmp_path):
    port, seen = admin_panel(serve_app, tmp_path / "status.json")
    dom, _ = render(chromium, "http://127.0.0.1:%d/admin" % port)
    assert ("GET", "/api/status") in seen
    assert "no status file yet at %s" % (tmp_path / "status.json") in dom, dom[-3000:]
