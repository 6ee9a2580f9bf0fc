"""The blueprint in a real Flask app over HTTP: what GET /api/status and the widget answer for
good, stale, missing, corrupt, odd and huge status files."""

import ast
import datetime
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time

import pytest
from flask import Flask

from conftest import ROOT, WWW, csf, fixture_doc, request, write_file, write_status

MODULE = os.path.join(ROOT, "integrations", "flask", "chatstack_status_flask.py")


def no_errors_logged(caplog):
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not bad, "logged: %s" % [r.getMessage() for r in bad]


# --------------------------------------------------------------------------- 200

def test_serves_the_status_file_with_stale_and_age(panel, tmp_path):
    doc = fixture_doc(age_s=5)
    write_status(tmp_path / "status.json", doc)
    r = panel().get()
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json"
    assert r.header("Cache-Control") == "no-store"
    got = r.json()
    assert list(got) == list(doc) + ["stale", "age_s"], "the file's keys in order, then ours"
    assert {k: v for k, v in got.items() if k not in ("stale", "age_s")} == doc
    assert got["stale"] is False
    assert 4.5 <= got["age_s"] < 60
    # Compact, as the agent sends it; age_s always with one decimal.
    compact = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    assert r.body.startswith(compact[:-1].encode("utf-8") + b',"stale":false,"age_s":')
    assert re.search(rb',"age_s":\d+\.\d\}$', r.body), r.body[-40:]


def test_a_files_own_stale_and_age_are_replaced(panel, tmp_path):
    doc = fixture_doc(age_s=1000)
    doc.update(stale=False, age_s=0.0)  # as a copy of an /api/status answer would have them
    write_status(tmp_path / "status.json", doc)
    r = panel().get()
    assert r.body.count(b'"stale":') == 1 and r.body.count(b'"age_s":') == 1
    assert r.json()["stale"] is True


def test_a_new_file_is_served_at_once(panel, tmp_path):
    p = panel()
    doc = fixture_doc()
    write_status(tmp_path / "status.json", doc)
    assert p.get().json()["host"] == "droplet-1"
    doc["host"] = "droplet-2"
    write_status(tmp_path / "status.json", doc)
    assert p.get().json()["host"] == "droplet-2"
    os.unlink(str(tmp_path / "status.json"))
    assert p.get().status == 503


def test_stale_when_older_than_stale_after(panel, tmp_path, monkeypatch):
    write_status(tmp_path / "status.json", fixture_doc(age_s=120))
    old = panel().get().json()
    assert old["stale"] is True and old["age_s"] >= 120
    for stale_after in (300, 300.0, "5m", datetime.timedelta(minutes=5)):
        assert panel(stale_after=stale_after).get().json()["stale"] is False, stale_after
    assert panel(stale_after="1m").get().json()["stale"] is True
    monkeypatch.setenv("CHATSTACK_STATUS_STALE", "10m")
    assert panel().get().json()["stale"] is False
    assert panel(stale_after=60).get().json()["stale"] is True, "an argument beats the env"


def test_stale_boundary_and_age_rounding(tmp_path):
    doc = fixture_doc()
    doc["generated_at"] = "2026-11-28T06:30:00.250Z"
    write_status(tmp_path / "status.json", doc)
    src = csf.StatusSource(str(tmp_path / "status.json"))
    t0 = csf.parse_rfc3339(doc["generated_at"])

    def tail(now_ms):
        return src.api_json(90.0, now_ms=now_ms).rsplit(b',"stale":', 1)[1]

    assert tail(t0 + 90_000) == b'false,"age_s":90.0}', "stale only when older"
    assert tail(t0 + 90_001) == b'true,"age_s":90.0}'
    assert tail(t0 + 12_349) == b'false,"age_s":12.3}'
    assert tail(t0 + 12_351) == b'false,"age_s":12.4}'
    assert tail(t0 - 5_000) == b'false,"age_s":0.0}', "a future file is 0 s old"


def test_invalid_settings_are_refused_when_the_blueprint_is_made(monkeypatch):
    for bad in ("soon", "-5s", "5.s", -1, float("nan"), True, [90]):
        with pytest.raises(ValueError, match="stale_after"):
            csf.status_blueprint(status_file="x", stale_after=bad, www_dir=WWW)
    monkeypatch.setenv("CHATSTACK_STATUS_STALE", "later")
    with pytest.raises(ValueError, match="CHATSTACK_STATUS_STALE: invalid duration \"later\""):
        csf.status_blueprint(status_file="x", www_dir=WWW)
    monkeypatch.delenv("CHATSTACK_STATUS_STALE")
    with pytest.raises(ValueError, match="max_bytes"):
        csf.status_blueprint(status_file="x", www_dir=WWW, max_bytes=0)


def test_status_file_defaults_to_the_environment_then_var_lib(panel, tmp_path, monkeypatch):
    monkeypatch.setenv("CHATSTACK_STATUS_FILE", str(tmp_path / "elsewhere.json"))
    write_status(tmp_path / "elsewhere.json", dict(fixture_doc(), host="from-env"))
    assert panel(status_file=None).get().json()["host"] == "from-env"
    monkeypatch.delenv("CHATSTACK_STATUS_FILE")
    if not os.path.exists(csf.DEFAULT_STATUS_FILE):
        assert panel(status_file=None).get().json() == {
            "error": "no status file yet at /var/lib/chatstack/status.json"}


def test_registers_under_a_prefix_and_twice(serve_app, tmp_path):
    write_status(tmp_path / "a.json", dict(fixture_doc(), host="a"))
    write_status(tmp_path / "b.json", dict(fixture_doc(), host="b"))
    app = Flask("panel")
    app.register_blueprint(csf.status_blueprint(status_file=str(tmp_path / "a.json"), www_dir=WWW))
    app.register_blueprint(csf.status_blueprint(status_file=str(tmp_path / "b.json"), www_dir=WWW,
                                                name="status_b"), url_prefix="/b")
    port = serve_app(app)
    assert request(port, "GET", "/api/status").json()["host"] == "a"
    assert request(port, "GET", "/b/api/status").json()["host"] == "b"
    assert request(port, "GET", "/b/static/js/status.js").status == 200


# --------------------------------------------------------------------------- 503

def test_missing_file_is_503_json(panel, tmp_path):
    path = str(tmp_path / "status.json")
    r = panel().get()
    assert r.status == 503
    assert r.header("Content-Type") == "application/json"
    assert r.header("Cache-Control") == "no-store"
    assert r.body == ('{"error":"no status file yet at %s"}' % path).encode()
    write_status(path, fixture_doc())
    assert panel(status_file=path).get().status == 200


GOOD = json.dumps(fixture_doc(), indent=2)


@pytest.mark.parametrize("content, reason", [
    (b"", "Expecting value at line 1 column 1"),
    (GOOD[:len(GOOD) // 2].encode(), "at line "),
    (b"garbage\n", "Expecting value at line 1 column 1"),
    (b"[]", "expected a JSON object, found a list"),
    (b'"up"', "expected a JSON object, found a string"),
    (b'{"schema":1}', "missing field `generated_at` at line 1 column 12"),
    (b'{\n  "schema": 1,\n  "h\xc3\xb6st": 2\n}', "missing field `generated_at` at line 4 column 1"),
    (GOOD.replace('"schema": 1', '"schema": "1"').encode(), 'schema: expected a whole number, found "1"'),
    (GOOD.replace('"schema": 1', '"schema": true').encode(), "schema: expected a whole number, found true"),
    (GOOD.replace('"host": "droplet-1"', '"host": null').encode(), "host: expected a string, found null"),
    (GOOD.replace('"overall": "down"', '"overall": "sideways"').encode(),
     'overall: expected up, degraded or down, found "sideways"'),
    (GOOD.replace('"duration_ms": 41.7', '"duration_ms": "fast"').encode(),
     'duration_ms: expected a number, found "fast"'),
    (re.sub(r'"generated_at": "[^"]*"', '"generated_at": "yesterday"', GOOD).encode(),
     'generated_at: expected an RFC 3339 time, found "yesterday"'),
    (re.sub(r'"services": \[', '"services": [1, ', GOOD).encode(),
     "services: expected a list of objects, found a list"),
    (GOOD.replace('"duration_ms": 41.7', '"duration_ms": NaN').encode(), "NaN is not a JSON value"),
    (GOOD.replace('"duration_ms": 41.7', '"duration_ms": 1e400').encode(), "number out of range"),
    (GOOD.replace('"host": "droplet-1"', '"host": "a", "host": "b"').encode(), "duplicate field `host`"),
    (GOOD.encode().replace(b'"droplet-1"', b'"\xff"'), "invalid UTF-8 at byte"),
    (GOOD.replace('"host": "droplet-1"', '"host": "\\ud800"').encode(), "lone surrogate"),
    (GOOD.replace('"overall": "down"', '"overall": "\\ud800"').encode(),
     'overall: expected up, degraded or down, found "\ufffd"'),
    (GOOD.encode() + b"\n}", "trailing characters"),
    (b"[" * 100000, "unreadable status file: "),
    (GOOD.replace('"host": "droplet-1"', '"host": ' + "[" * 600 + "]" * 600).encode(),
     "host: expected a string, found a list"),
    (GOOD.replace('"host": "droplet-1"', '"host": "h", "deep": ' + "[" * 600 + "]" * 600).encode(),
     "nested deeper than 512 levels"),
])
def test_corrupt_file_is_503_with_its_reason(panel, tmp_path, caplog, content, reason):
    path = str(tmp_path / "status.json")
    write_file(path, content)
    p = panel()
    r = p.get()
    assert r.status == 503, r
    assert r.header("Content-Type") == "application/json"
    assert r.header("Cache-Control") == "no-store"
    error = r.json()["error"]
    assert error.startswith(path + ": unreadable status file: "), error
    assert reason in error, error
    assert "\n" not in error and len(error) < 400, "one line: %r" % error
    assert p.get().json()["error"] == error, "the same answer from the cache"
    write_status(path, fixture_doc())
    assert p.get().status == 200, "a good file heals it"
    no_errors_logged(caplog)


def test_a_path_that_is_not_utf8_is_shown_as_the_agent_shows_it(panel, tmp_path):
    d = os.path.join(os.fsencode(str(tmp_path)), b"caf\xe9")
    os.mkdir(d)
    r = panel(status_file=os.path.join(d, b"status.json")).get()
    assert r.status == 503
    assert r.json() == {"error": "no status file yet at %s/caf\ufffd/status.json" % tmp_path}
    write_status(os.fsdecode(os.path.join(d, b"status.json")), fixture_doc())
    assert panel(status_file=os.path.join(d, b"status.json")).get().status == 200


def test_not_a_regular_file_is_refused_without_opening_it(panel, tmp_path, caplog):
    path = tmp_path / "status.json"
    path.mkdir()
    p = panel()
    assert p.get().json() == {"error": "%s: cannot read status file: not a regular file "
                                       "(a directory)" % path}
    path.rmdir()
    os.mkfifo(str(path))  # nobody ever writes to it: a blocking open would hang forever
    started = time.monotonic()
    r = p.get()
    assert r.status == 503 and time.monotonic() - started < 2
    assert r.json() == {"error": "%s: cannot read status file: not a regular file (a FIFO)" % path}
    path.unlink()
    os.symlink("/dev/zero", str(path))  # endless
    r = p.get()
    assert r.json() == {"error": "%s: cannot read status file: not a regular file (a device)"
                        % path}
    no_errors_logged(caplog)


def test_a_fifo_swapped_in_after_the_stat_does_not_hang(tmp_path):
    regular = tmp_path / "regular"
    regular.write_text("{}")
    fifo = tmp_path / "fifo"
    os.mkfifo(str(fifo))
    result = []
    t = threading.Thread(target=lambda: result.append(_try_read(str(fifo), os.stat(str(regular)))),
                         daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "read_bounded blocked on a FIFO"
    assert result == ["%s: cannot read status file: not a regular file (a FIFO)" % fifo]


def _try_read(path, st):
    try:
        csf.read_bounded(path, st, 1000)
        return "read"
    except csf.Unavailable as e:
        return str(e)


def test_a_huge_file_is_refused_before_it_is_read(panel, tmp_path):
    path = tmp_path / "status.json"
    with open(str(path), "wb") as f:
        f.truncate(1 << 30)  # sparse: 1 GiB of NULs, costs no disk
    started = time.monotonic()
    r = panel().get()
    assert time.monotonic() - started < 2
    assert r.json() == {"error": "%s: cannot read status file: 1073741824 bytes, more than the "
                                 "8388608 allowed" % path}
    write_status(path, fixture_doc())
    size = path.stat().st_size
    assert panel(max_bytes=size).get().status == 200
    assert panel(max_bytes=size - 1).get().json()["error"].endswith(
        "%d bytes, more than the %d allowed" % (size, size - 1))


def test_a_path_through_a_file_is_the_agents_not_a_directory(panel, tmp_path):
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "status.json"
    assert panel(status_file=str(path)).get().json() == {
        "error": "cannot read %s: Not a directory (os error 20)" % path}


def test_permission_denied_reads_as_the_agent_says_it():
    # Not under pytest's tmp_path: its /tmp/pytest-of-USER is 0700, so `nobody` could not even
    # reach the directory this test means to open or close.
    d = tempfile.mkdtemp(prefix="csf-perm-")
    try:
        os.chmod(d, 0o755)
        path = os.path.join(d, "status.json")
        write_status(path, fixture_doc())
        os.chmod(path, 0o000)
        assert _status_as_another_user(path) == (
            "%s: cannot read status file: Permission denied (os error 13)" % path)
        os.chmod(d, 0o000)
        assert _status_as_another_user(path) == (
            "cannot read %s: Permission denied (os error 13)" % path)
    finally:
        os.chmod(d, 0o755)
        shutil.rmtree(d)


def _status_as_another_user(path):
    """The 503 reason for `path` seen by a user without access: a forked child that becomes
    `nobody` when we are root (root reads everything), else one that stays us."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no return, no exception escapes
        try:
            os.close(r)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            try:
                csf.StatusSource(path).api_json(90)
                out = "read"
            except csf.Unavailable as e:
                out = str(e)
            os.write(w, out.encode("utf-8"))
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode("utf-8")
    os.waitpid(pid, 0)
    return out


# --------------------------------------------------------------------------- methods

def test_head_answers_like_get_without_a_body(panel, tmp_path):
    write_status(tmp_path / "status.json", fixture_doc(age_s=1000))
    p = panel()
    for path in ("/api/status", "/static/js/status.js"):
        get, head = p.get(path), p.get(path, "HEAD")
        assert head.status == 200 and head.body == b""
        for h in ("Content-Type", "Cache-Control", "Content-Length"):
            assert head.header(h) == get.header(h), (path, h)


def test_other_methods_get_the_agents_405(panel):
    p = panel()
    for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        for path in ("/api/status", "/static/js/status.js"):
            r = p.get(path, method)
            assert r.status == 405, (method, path)
            assert r.header("Allow") == "GET, HEAD"
            assert r.header("Content-Type") == "application/json"
            assert r.body == b'{"error":"method not allowed: use GET or HEAD"}'


# --------------------------------------------------------------------------- the widget

def test_widget_is_served_with_the_agents_headers(panel, serve_app, tmp_path):
    with open(os.path.join(WWW, "js", "status.js"), "rb") as f:
        shipped = f.read()
    r = panel().get("/static/js/status.js")
    assert r.status == 200
    assert r.header("Content-Type") == "text/javascript; charset=utf-8"
    assert r.header("Cache-Control") == "no-cache"
    assert r.body == shipped
    # A panel with static files of its own keeps them; the widget's URL is ours.
    static = tmp_path / "static"
    (static / "js").mkdir(parents=True)
    (static / "js" / "status.js").write_text("/* the panel's old widget */")
    (static / "app.css").write_text("body{}")
    app = Flask("panel", static_folder=str(static))
    app.register_blueprint(csf.status_blueprint(status_file=str(tmp_path / "s.json"), www_dir=WWW))
    port = serve_app(app)
    assert request(port, "GET", "/static/js/status.js").body == shipped
    assert request(port, "GET", "/static/app.css").body == b"body{}"


def test_widget_follows_the_file_and_404s_without_it(panel, tmp_path, caplog):
    www = tmp_path / "www"
    (www / "js").mkdir(parents=True)
    write_file(www / "js" / "status.js", "/* v1 */")
    p = panel(www_dir=str(www))
    assert p.get("/static/js/status.js").body == b"/* v1 */"
    write_file(www / "js" / "status.js", "/* v2, longer */")
    assert p.get("/static/js/status.js").body == b"/* v2, longer */"
    os.unlink(str(www / "js" / "status.js"))
    r = p.get("/static/js/status.js")
    assert (r.status, r.body) == (404, b'{"error":"not found"}')
    assert r.header("Content-Type") == "application/json"
    caplog.clear()
    panel(www_dir=str(tmp_path / "nowhere"))
    assert any("no widget at" in rec.getMessage() for rec in caplog.records), \
        "a missing widget is logged when the blueprint is made"


def test_default_www_dir_is_the_installed_one(tmp_path):
    assert csf.DEFAULT_WWW_DIR == "/usr/share/chatstack-status/www"
    # In a checkout (integrations/flask/), the checkout's own www/: the page is never blank.
    assert csf._default_www_dir() == WWW, "from a checkout: its www/"
    elsewhere = tmp_path / "lib"
    elsewhere.mkdir()
    shutil.copy(MODULE, str(elsewhere))
    spec = importlib.util.spec_from_file_location(
        "copied_csf", str(elsewhere / "chatstack_status_flask.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod._default_www_dir() == csf.DEFAULT_WWW_DIR, "a copy elsewhere: the installed one"
    share = tmp_path / "share" / "chatstack-status"
    (share / "integrations").mkdir(parents=True)
    shutil.copy(MODULE, str(share / "integrations"))
    shutil.copytree(WWW, str(share / "www"))
    spec = importlib.util.spec_from_file_location(
        "installed_csf", str(share / "integrations" / "chatstack_status_flask.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod._default_www_dir() == str(share / "www"), "install.sh PREFIX: the www beside it"


# --------------------------------------------------------------------------- the agent's rules

def test_rfc3339_is_read_by_the_agents_rules():
    t = csf.parse_rfc3339("2026-11-28T06:30:00Z")
    assert t == 1795847400000
    assert csf.parse_rfc3339("2026-11-28t06:30:00z") == t
    assert csf.parse_rfc3339("2026-11-28 06:30:00Z") == t
    assert csf.parse_rfc3339("2026-11-28T06:30:00.5Z") == t + 500
    assert csf.parse_rfc3339("2026-11-28T06:30:00.123456Z") == t + 123
    assert csf.parse_rfc3339("2026-11-28T08:00:00+01:30") == t
    assert csf.parse_rfc3339("2026-11-28T05:00:00-01:30") == t
    assert csf.parse_rfc3339("2026-02-31T00:00:00Z") == csf.parse_rfc3339("2026-03-03T00:00:00Z")
    assert csf.parse_rfc3339("1970-01-01T00:00:00Z") == 0
    assert csf.parse_rfc3339("0000-03-01T00:00:00Z") == -62162035200000
    for bad in ("2026-11-28T06:30:00", "2026-11-28T06:30:00.Z", "2026-13-28T06:30:00Z",
                "2026-11-28T24:00:00Z", "2026-11-28T06:30:61Z", "2026-11-28T06:30Z",
                "2026-11-28T06:30:00+0130", "2026-11-28T06:30:00 Z", "２026-11-28T06:30:00Z",
                "2026-11-28X06:30:00Z", "", None, 5):
        assert csf.parse_rfc3339(bad) is None, bad


def test_durations_are_read_by_the_agents_rules():
    for text, secs in (("90s", 90), ("90", 90), ("2m", 120), ("500ms", 0.5), ("1.5s", 1.5),
                       ("1h", 3600), ("1d", 86400), (" 5s ", 5), ("0", 0), ("4097ms", 4.097)):
        assert csf.parse_duration(text) == secs, text
    for bad in ("", "s", ".5s", "5.s", "5x", "-1s", "1e3", "1.2.3s", "11y"):
        with pytest.raises(ValueError, match="invalid duration"):
            csf.parse_duration(bad)


def test_floats_are_spelled_as_serde_json_spells_them():
    # serde_json 1.0.154 (zmij) output for each, read from the agent (also cross-checked
    # against the real binary in test_against_agent.py).
    for f, text in ((0.0, "0.0"), (-0.0, "-0.0"), (1.0, "1.0"), (41.7, "41.7"), (0.1, "0.1"),
                    (1e15, "1000000000000000.0"), (1e16, "1e+16"), (1.5e16, "1.5e+16"),
                    (1e21, "1e+21"), (1e-4, "0.0001"), (1e-5, "0.00001"), (2.5e-5, "0.000025"),
                    (-2.5e-5, "-0.000025"), (1e-6, "1e-6"), (1.5e-7, "1.5e-7"), (5e-324, "5e-324"),
                    (1.7976931348623157e308, "1.7976931348623157e+308"), (1e100, "1e+100")):
        assert csf.format_float(f) == text, f


def test_module_is_python_3_9_and_stdlib_plus_flask():
    with open(MODULE) as f:
        source = f.read()
    tree = ast.parse(source, feature_version=(3, 9))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    stdlib = getattr(sys, "stdlib_module_names", None)
    assert stdlib, "Python 3.10+ runs the tests"
    assert {m for m in imported if m not in stdlib} == {"flask"}


def test_from_a_checkout_the_widget_and_page_are_served_without_www_dir(panel, tmp_path):
    p = panel(www_dir=None)
    for path, name, ctype in (("/static/js/status.js", os.path.join("js", "status.js"),
                               "text/javascript; charset=utf-8"),
                              ("/static/admin_status.html", "admin_status.html",
                               "text/html; charset=utf-8")):
        r = p.get(path)
        assert r.status == 200, (path, r)
        assert r.header("Content-Type") == ctype
        with open(os.path.join(WWW, name), "rb") as f:
            assert r.body == f.read(), path


def test_admin_status_page_404s_without_the_www_files(panel, tmp_path, caplog):
    caplog.clear()
    p = panel(www_dir=str(tmp_path / "nowhere"))
    r = p.get("/static/admin_status.html")
    assert (r.status, r.body) == (404, b'{"error":"not found"}')
    msgs = " ".join(rec.getMessage() for rec in caplog.records)
    assert "no widget at" in msgs and "admin_status.html" in msgs, msgs


def test_history_is_off_with_history_db_off_and_503_before_the_first_cycle(panel, tmp_path):
    write_status(tmp_path / "status.json", fixture_doc())
    p = panel(history_db="off")
    for path in ("/api/uptime", "/api/history?service=ChatStack", "/api/incidents"):
        r = p.get(path)
        assert (r.status, r.json()) == (404, {"error": "history is off (history_db: off in the "
                                                       "config)"}), path
    p = panel(history_db=str(tmp_path / "none-yet.db"))
    r = p.get("/api/uptime")
    assert (r.status, r.json()["error"]) == \
        (503, "no history yet: the first check cycle has not been recorded")


def test_history_is_opened_read_only(panel, tmp_path):
    import sqlite3
    db = tmp_path / "h.db"
    conn = sqlite3.connect(str(db))
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    os.chmod(str(db), 0o444)
    before = os.stat(str(db)).st_mtime_ns
    write_status(tmp_path / "status.json", fixture_doc())
    r = panel(history_db=str(db)).get("/api/incidents")
    # As the agent's reader: a file with tables but no application_id is another program's.
    assert (r.status, r.json()) == (503, {"error": "%s: not a chatstack-status history database "
                                                  "(application_id 0, user_version 0, 1 schema "
                                                  "objects); left untouched" % db})
    assert os.stat(str(db)).st_mtime_ns == before
    assert not os.path.exists(str(db) + "-wal")
