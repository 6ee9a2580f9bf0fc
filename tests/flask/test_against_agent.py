"""The blueprint against the real agent: `chatstack-status serve` and a Flask panel read the same
status file, and their answers must be the same bytes (age_s aside, which moves with the clock).
"""

import json
import os
import random
import shutil
import sqlite3
import subprocess
import time

import pytest

from conftest import (WWW, Agent, agent_env, config_text, copy_checked, csf, fixture_doc, iso,
                      split_age, write_file, write_status)


@pytest.fixture
def both(panel, agent, tmp_path):
    """both(path) -> (agent, panel) reading the same status file."""

    def make(path=None):
        path = str(path or tmp_path / "status.json")
        return agent(path), panel(status_file=path)

    return make


def same_answer(a, b, path="/api/status"):
    """The agent's and the panel's answers to GET path; asserts they are the same."""
    ra, rb = a.get(path), b.get(path)
    assert (ra.status, ra.header("Content-Type"), ra.header("Cache-Control")) == \
        (rb.status, rb.header("Content-Type"), rb.header("Cache-Control")), (ra, rb)
    if ra.status == 200 and path == "/api/status":
        doc_a, age_a = split_age(ra.body)
        doc_b, age_b = split_age(rb.body)
        assert doc_a == doc_b, first_difference(doc_a, doc_b)
        assert abs(age_a - age_b) <= 0.5, (age_a, age_b)
    else:
        assert ra.body == rb.body, (ra, rb)
    return ra, rb


def first_difference(a, b):
    i = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    return "agent ...%r... vs panel ...%r..." % (a[max(0, i - 60):i + 60], b[max(0, i - 60):i + 60])


def serde_reads_exactly(v):
    """Whether serde_json (without its float_roundtrip feature) reads repr(v) back as v: its
    digits as one integer that is exactly a double, and a power of ten within 10^+-22, so
    that one multiplication or division of exact operands rounds once. Beyond that it may land 1 ulp off (it reads
    "8008431637774300.0" as 8008431637774301.0), so the agent's answer would not be the file's
    number; no file the agent writes holds such a number (latencies are rounded to 0.1 ms)."""
    text = repr(abs(v))
    mantissa, _, exp = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = int(whole + frac)
    return digits < 2 ** 64 and int(float(digits)) == digits \
        and abs(int(exp or 0) - len(frac)) <= 22


def test_same_json_as_the_agent_for_a_file_check_wrote(both, checked, tmp_path):
    path = copy_checked(checked, tmp_path / "status.json")
    doc = json.loads(path.read_text())
    assert [s["name"] for s in doc["services"]] == ["Web", "Backup"]
    assert len(doc["services"][0]["history"]) == 2, "two check runs"
    ra, rb = same_answer(*both(path))
    assert ra.status == 200
    assert json.loads(rb.body)["stale"] is False


def test_same_json_as_the_agent_for_odd_numbers_and_strings(both, checked, tmp_path):
    doc = json.loads(checked.read_text())
    rng = random.Random(20261201)
    web = doc["services"][0]
    # Numbers: serde_json's spelling at its edges (fixed down to 1e-5, unpadded exponents),
    # then random values whose text serde_json reads exactly (see serde_reads_exactly).
    edges = [0.0, -0.0, 1.0, 0.1, 3.2, 1e15, 1e16, 1.5e16, 1e21, 1e22, 1e-4, 1e-5, 2.5e-5,
             -2.5e-5, 9.9e-6, 1e-6, 1.5e-7, 123456789012345.0, 0.000123456789012345]
    randoms = []
    while len(randoms) < 400:
        v = float("%s%de%d" % (rng.choice("-+"), rng.randint(1, 10 ** rng.randint(1, 16)),
                               rng.randint(-24, 24)))
        if serde_reads_exactly(v):
            randoms.append(v)
    assert all(serde_reads_exactly(v) for v in edges)
    web["history"] = [{"at": iso(1795847400 + i), "status": "up", "latency_ms": v}
                      for i, v in enumerate(edges + randoms)]
    doc["duration_ms"] = 1e-5
    # Strings: every ASCII control and symbol, Latin-1, BMP, astral, separators, BOM.
    chars = [chr(c) for c in range(0x80)] + list("éß\u00a0\u2028\u2029\ufeff\u20ac😀\U0010ffff")
    doc["host"] = "".join(chars)
    for check in web["checks"]:
        check["detail"] = "".join(rng.choice(chars) for _ in range(200))
    web["name"] = 'We"b\\/\n\t'
    # Written with \u escapes (ensure_ascii): both must decode and re-encode them the same way.
    write_status(tmp_path / "status.json", doc)
    ra, _ = same_answer(*both())
    assert ra.status == 200


def test_same_stale_and_age_as_the_agent(both, checked, tmp_path):
    doc = json.loads(checked.read_text())
    a, p = both()
    for generated_at, stale in (("2020-01-01T00:00:00Z", True),
                                ("2020-01-01T00:00:00.999Z", True),
                                ("2030-01-01T00:00:00Z", False)):
        doc["generated_at"] = generated_at
        write_status(tmp_path / "status.json", doc)
        same_answer(a, p)
        assert p.get().json()["stale"] is stale
    # Forms the agent accepts but rewrites (offsets, long fractions, lower case): the same
    # age and staleness, though the agent re-spells generated_at in its answer.
    for generated_at in ("2020-01-01T01:30:00+01:30", "2020-01-01t00:00:00.123456z"):
        doc["generated_at"] = generated_at
        write_status(tmp_path / "status.json", doc)
        ja, jp = a.get().json(), p.get().json()
        assert (ja["stale"], jp["stale"]) == (True, True)
        assert abs(ja["age_s"] - jp["age_s"]) <= 0.5


@pytest.mark.parametrize("case", ["missing", "directory", "through-a-file", "empty",
                                  "missing-field", "missing-field-pretty", "garbage"])
def test_same_503_as_the_agent(both, tmp_path, case):
    path = tmp_path / "status.json"
    if case == "directory":
        path.mkdir()
    elif case == "through-a-file":
        (tmp_path / "file").write_text("")
        path = tmp_path / "file" / "status.json"
    elif case == "empty":
        write_file(path, b"")
    elif case == "missing-field":
        write_file(path, '{"schema":1,"hôst":"é"}')
    elif case == "missing-field-pretty":
        write_file(path, '{\n  "schema": 1,\n  "hôst": "é",\n  "generated_at": '
                         '"2026-11-28T06:30:00Z"\n}\n')
    elif case == "garbage":
        write_file(path, b"garbage")
    a, p = both(path)
    ra, rb = a.get(), p.get()
    assert ra.status == rb.status == 503
    for h in ("Content-Type", "Cache-Control"):
        assert ra.header(h) == rb.header(h), h
    ea, eb = ra.json()["error"], rb.json()["error"]
    if case in ("empty", "garbage"):
        # A JSON syntax error: the same file and prefix; the parsers' own words after it.
        prefix = "%s: unreadable status file: " % path
        assert ea.startswith(prefix) and eb.startswith(prefix), (ea, eb)
    else:
        assert ea == eb


def test_same_answers_to_head_and_other_methods(both, checked, tmp_path):
    a, p = both(copy_checked(checked, tmp_path / "status.json"))
    for path in ("/api/status", "/static/js/status.js"):
        ha, hp = a.get(path, "HEAD"), p.get(path, "HEAD")
        assert (ha.status, ha.body, ha.header("Content-Type"), ha.header("Cache-Control")) == \
            (hp.status, hp.body, hp.header("Content-Type"), hp.header("Cache-Control"))
        for method in ("POST", "DELETE", "OPTIONS"):
            ra, rp = a.get(path, method), p.get(path, method)
            assert (ra.status, ra.header("Allow"), ra.header("Content-Type"), ra.body) == \
                (rp.status, rp.header("Allow"), rp.header("Content-Type"), rp.body), method


def test_same_widget_as_the_agent(both, tmp_path):
    a, p = both()
    ra, rp = same_answer(a, p, "/static/js/status.js")
    assert ra.status == 200
    with open(os.path.join(WWW, "js", "status.js"), "rb") as f:
        assert rp.body == f.read(), "the agent embeds this checkout's www/"


# --------------------------------------------------------------------------- the history

SEEDED = ["svc-00", "svc-01", "svc-02"]


@pytest.fixture(scope="module")
def seeded(binary, tmp_path_factory):
    """A history database seeded by the agent itself: 3 services, 120 days, ending an hour
    ago (so no open tail moves while the test compares)."""
    d = tmp_path_factory.mktemp("seeded")
    db = d / "history.db"
    now = time.time() - 3600
    r = subprocess.run([binary, "__seed-history", "--db", str(db), "--services", "3",
                        "--days", "120", "--result-days", "2", "--interval", "60s",
                        "--now", iso(int(now))], env=agent_env(), capture_output=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return db


@pytest.fixture
def history_pair(binary, seeded, panel, tmp_path):
    """(agent, panel, status doc) over the same seeded database and status file."""
    status = tmp_path / "status.json"
    doc = fixture_doc()
    names = list(SEEDED)
    doc["services"] = [dict(doc["services"][i % len(doc["services"])], name=n)
                       for i, n in enumerate(names)]
    doc["history"] = {"retention_s": 400 * 86400}
    write_status(status, doc)
    state = tmp_path / "agent-state.json"
    cfg = tmp_path / "agent.yml"
    text = config_text(status, state, [(n, 1, True) for n in names])
    shutil.copyfile(str(seeded), str(tmp_path / "history.db"))
    cfg.write_text(text)
    a = Agent(binary, cfg)
    try:
        yield a, panel(status_file=str(status), history_db=str(tmp_path / "history.db")), \
            csf.HistorySource(str(tmp_path / "history.db"))
    finally:
        a.stop()


def parse_ms(s):
    return csf.parse_rfc3339(s)


def history_now(doc):
    """The `now` an /api/history answer was computed at: its last bucket ends there (the
    bucket's covered time plus its no-data time), unless it is a whole bucket."""
    b = doc["buckets"][-1]
    covered = b["up_s"] + b["degraded_s"] + b["down_s"] + b["maintenance_s"] + b["nodata_s"]
    return parse_ms(b["at"]) + int(round(covered * 1000))


def test_uptime_history_and_incidents_are_the_agents_bytes(history_pair):
    a, p, source = history_pair
    # /api/uptime: computed at its generated_at; the same document, byte for byte.
    ra = a.get("/api/uptime")
    assert ra.status == 200, ra
    now = parse_ms(ra.json()["generated_at"])
    mine = csf._dumps(source.uptime_doc(SEEDED, now)).encode()
    assert mine == ra.body, first_difference(ra.body, mine)
    rp = p.get("/api/uptime")
    assert (rp.status, rp.header("Content-Type"), rp.header("Cache-Control")) == \
        (200, "application/json", "no-store")
    assert [s["name"] for s in rp.json()["services"]] == SEEDED
    assert list(rp.json()["services"][0]["windows"]) == ["1h", "24h", "7d", "30d", "90d", "365d"]

    # /api/history at several resolutions (minutes, hours, days; the coarsest-rollup path).
    for service in SEEDED:
        for since, step in (("24h", "1h"), ("90d", "1d"), ("2h", "1m"), ("7d", "1h"),
                            ("3d", "90m"), ("365d", "1d")):
            q = "/api/history?service=%s&since=%s&step=%s" % (service, since, step)
            ra = a.get(q)
            assert ra.status == 200, (q, ra)
            doc = ra.json()
            now = history_now(doc)
            mine = csf._dumps(source.history_doc(
                service, csf.parse_duration_ms(since), csf.parse_duration_ms(step), now)).encode()
            assert mine == ra.body, (q, first_difference(ra.body, mine))
            rp = p.get(q)
            assert rp.status == 200 and [b["at"] for b in rp.json()["buckets"]] == \
                [b["at"] for b in doc["buckets"]], q

    # /api/incidents: newest first, their causes and restarts.
    for q, service, since, limit in (("/api/incidents", None, "30d", 50),
                                     ("/api/incidents?since=120d&limit=1000", None, "120d", 1000),
                                     ("/api/incidents?service=svc-01&limit=5", "svc-01", "30d", 5)):
        ra = a.get(q)
        assert ra.status == 200, (q, ra)
        incidents = ra.json()["incidents"]
        open_ = [i for i in incidents if i["ended_at"] is None]
        now = parse_ms(open_[0]["started_at"]) + int(round(open_[0]["duration_s"] * 1000)) \
            if open_ else int(time.time() * 1000)
        mine = csf._dumps(source.incidents_doc(
            service, now - csf.parse_duration_ms(since), limit, now)).encode()
        assert mine == ra.body, (q, first_difference(ra.body, mine))
        rp = p.get(q)
        assert rp.status == 200 and [i["id"] for i in rp.json()["incidents"]] == \
            [i["id"] for i in incidents], q
    assert len(a.get("/api/incidents?since=120d&limit=1000").json()["incidents"]) > 3


@pytest.mark.parametrize("query", [
    "/api/history", "/api/history?service=nope", "/api/history?service=svc-00&since=0s",
    "/api/history?service=svc-00&since=500d", "/api/history?service=svc-00&step=30s",
    "/api/history?service=svc-00&since=soon", "/api/incidents?limit=0",
    "/api/incidents?limit=10001", "/api/incidents?limit=x", "/api/incidents?service=nope",
    "/api/incidents?since=-1d", "/api/incidents?since=5m%20",
    "/api/history?service=svc-00&step=+1h",
])
def test_the_same_errors_as_the_agent(history_pair, query):
    a, p, _ = history_pair
    ra, rp = a.get(query), p.get(query)
    assert (ra.status, ra.header("Content-Type"), ra.body) == \
        (rp.status, rp.header("Content-Type"), rp.body), (ra, rp)
    assert ra.status in (400, 404)


def test_the_same_503_before_the_first_cycle(binary, panel, tmp_path):
    status = tmp_path / "status.json"
    write_status(status, fixture_doc())
    cfg = tmp_path / "agent.yml"
    cfg.write_text(config_text(status, tmp_path / "state.json", [("ChatStack", 1, True)]))
    a = Agent(binary, cfg)
    try:
        p = panel(status_file=str(status), history_db=str(tmp_path / "history.db"))
        for q in ("/api/uptime", "/api/history?service=ChatStack", "/api/incidents"):
            ra, rp = a.get(q), p.get(q)
            assert (ra.status, ra.body) == (rp.status, rp.body) == \
                (503, b'{"error":"no history yet: the first check cycle has not been recorded"}'), q
    finally:
        a.stop()


# --------------------------------------------------------------------------- the why

FAKE_SYSTEMCTL = """#!/bin/sh
[ "$1" = __ready ] && exit 0
echo "$*" >> '{d}/systemctl.log'
case "$1" in
  show)
    # one block per unit, separated by an empty line, as systemd answers
    shift 3; first=1
    for unit; do [ $first = 1 ] || echo; first=0; cat '{d}/units/'"$unit"; done
    exit 0 ;;
esac
exit 0
"""

FAKE_JOURNALCTL = """#!/bin/sh
[ "$1" = __ready ] && exit 0
printf '%s\\n' '2026-12-07T03:12:00+0000 web[812]: starting "h\\u00e9" \\\\ tab\there' \\
  '2026-12-07T03:12:02+0000 systemd[1]: web.service: Main process exited, status=3'
"""


def set_unit(d, name, active):
    """What the fake systemctl says of `name`: active, or failed with exit code 3."""
    failed = active != "active"
    (d / "units" / name).write_text(
        "LoadState=loaded\nActiveState=%s\nSubState=%s\nResult=%s\nExecMainCode=%s\n"
        "ExecMainStatus=%d\nNRestarts=0\nInvocationID=0123456789abcdef0123456789abcdef\n"
        "MemoryCurrent=%s\n" % (active, "failed" if failed else "running",
                                "exit-code" if failed else "success", "1", 3 if failed else 0,
                                "[not set]" if failed else "73400320"))


@pytest.fixture(scope="module")
def why(binary, tmp_path_factory):
    """A history database and status file written by three real `check` runs with a fake
    systemctl and journalctl first on PATH: `web` and `db` (units, no other check) fail, get a
    diagnosis each and are restarted; then web is active again (its restart "recovered"), db
    still failed ("still_down"); then db is active too. Returns the directory."""
    d = tmp_path_factory.mktemp("why")
    (d / "bin").mkdir()
    (d / "units").mkdir()
    for name, text in (("systemctl", FAKE_SYSTEMCTL), ("journalctl", FAKE_JOURNALCTL)):
        (d / "bin" / name).write_text(text.replace("{d}", str(d)))
        os.chmod(str(d / "bin" / name), 0o755)
    cfg = d / "monitor.yml"
    cfg.write_text("\n".join([
        "status_file: %s" % json.dumps(str(d / "status.json")),
        "state_file: %s" % json.dumps(str(d / "state.json")),
        "history_db: %s" % json.dumps(str(d / "history.db")),
        "timeout: 2s",
        "heal: { after_failures: 1, grace: 0s, max_restarts: 1 }",
        "services:",
        "  - name: web", "    unit: web.service",
        "  - name: db", "    unit: db.service", ""]))
    env = dict(agent_env(), PATH="%s:%s" % (d / "bin", os.environ.get("PATH", "/usr/bin:/bin")))
    for web, db in (("failed", "failed"), ("active", "failed"), ("active", "active")):
        set_unit(d, "web.service", web)
        set_unit(d, "db.service", db)
        r = subprocess.run([binary, "check", "-c", str(cfg)], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60)
        assert r.returncode in (0, 1, 2), r.stdout + r.stderr
    assert "restart" in (d / "systemctl.log").read_text(), "the agent restarted the units"
    return d


def test_diagnoses_and_restart_outcomes_are_the_agents_bytes(binary, why, panel, tmp_path):
    db = tmp_path / "history.db"
    shutil.copyfile(str(why / "history.db"), str(db))
    status = tmp_path / "status.json"
    shutil.copyfile(str(why / "status.json"), str(status))
    cfg = tmp_path / "agent.yml"
    cfg.write_text(config_text(status, tmp_path / "state.json", [("web", 1, True),
                                                                 ("db", 1, True)]))
    a = Agent(binary, cfg)
    try:
        p = panel(status_file=str(status), history_db=str(db))
        ra = a.get("/api/incidents")
        assert ra.status == 200, ra
        incidents = {i["service"]: i for i in ra.json()["incidents"]}
        assert sorted(incidents) == ["db", "web"], ra
        for name, outcome in (("web", "recovered"), ("db", "still_down")):
            inc = incidents[name]
            assert inc["ended_at"] is not None, inc
            assert [(r["ok"], r["outcome"]) for r in inc["restarts"]] == [(True, outcome)], inc
            d = inc["diagnosis"]
            assert d["unit"]["exit_code"] == 3 and d["journal"], d
            assert list(d) == sorted(d), "serde_json writes a Value's keys sorted"
        rp = p.get("/api/incidents")
        assert (rp.status, rp.header("Content-Type"), rp.header("Cache-Control")) == \
            (200, "application/json", "no-store")
        assert rp.body == ra.body, first_difference(ra.body, rp.body)

        # What the agent reads but did not write this time: a restart whose outcome is NULL
        # (recorded before schema 2) or unknown is "pending"; a diagnosis with numbers and
        # strings at serde_json's edges, keys in no order and a duplicate; one that does not
        # read as JSON (null).
        conn = sqlite3.connect(str(db))
        with conn:
            ids = {name: (iid, sid) for iid, sid, name in conn.execute(
                "SELECT i.id, i.service_id, s.name FROM incidents i "
                "JOIN services s ON s.id = i.service_id")}
            (web_id, web_sid), db_id = ids["web"], ids["db"][0]
            at = conn.execute("SELECT max(at) FROM restarts").fetchone()[0]
            for k, outcome in enumerate((None, "someday")):
                conn.execute("INSERT INTO restarts (incident_id, service_id, at, ok, outcome) "
                             "VALUES (?, ?, ?, ?, ?)", (web_id, web_sid, at + k + 1, k, outcome))
            conn.execute("UPDATE incidents SET diagnosis = ? WHERE id = ?", (
                '{"z": 1e16, "a": [1.5e-7, 0.00001, -0.0, 18446744073709551615, '
                '18446744073709551616, -9223372036854775809, 1E2, 3.20], "\u00e9": "\\u00e9\\n", '
                '"A": {"b": null, "a": true}, "dup": 1, "dup": 2, "\U0001F600": "\\ud83d\\ude00"}',
                web_id))
        conn.close()
        for bad in ('{"lone": "\\ud800"}', "{not json", "[" * 128 + "]" * 128, '{"n": 1e999}'):
            conn = sqlite3.connect(str(db))
            with conn:
                conn.execute("UPDATE incidents SET diagnosis = ? WHERE id = ?", (bad, db_id))
            conn.close()
            ra, rp = a.get("/api/incidents"), p.get("/api/incidents")
            assert ra.status == rp.status == 200
            assert rp.body == ra.body, (bad, first_difference(ra.body, rp.body))
            got = {i["id"]: i for i in ra.json()["incidents"]}
            assert got[db_id]["diagnosis"] is None, bad
        web = got[web_id]
        assert [r["outcome"] for r in web["restarts"]] == ["recovered", "pending", "pending"]
        assert list(web["diagnosis"]) == ["A", "a", "dup", "z", "\u00e9", "\U0001F600"], web
        assert web["diagnosis"]["dup"] == 2
        # 127 levels of nesting still read (serde_json's limit is 128).
        conn = sqlite3.connect(str(db))
        with conn:
            conn.execute("UPDATE incidents SET diagnosis = ? WHERE id = ?",
                         ("[" * 127 + "]" * 127, db_id))
        conn.close()
        ra, rp = a.get("/api/incidents"), p.get("/api/incidents")
        assert rp.body == ra.body, first_difference(ra.body, rp.body)
        assert {i["id"]: i for i in ra.json()["incidents"]}[db_id]["diagnosis"] is not None
    finally:
        a.stop()


@pytest.mark.parametrize("case", ["fresh", "foreign", "newer", "older"])
def test_the_same_answer_as_the_agent_for_each_schema(binary, panel, tmp_path, case):
    status = tmp_path / "status.json"
    write_status(status, fixture_doc())
    db = tmp_path / "history.db"
    conn = sqlite3.connect(str(db))
    if case == "foreign":
        conn.execute("CREATE TABLE t (x)")
    elif case in ("newer", "older"):
        conn.execute("PRAGMA application_id = %d" % 0x43534844)
        conn.execute("PRAGMA user_version = %d" % (5 if case == "newer" else 2))
        conn.execute("CREATE TABLE services (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    cfg = tmp_path / "agent.yml"
    cfg.write_text(config_text(status, tmp_path / "state.json", [("ChatStack", 1, True)]))
    a = Agent(binary, cfg)
    try:
        p = panel(status_file=str(status), history_db=str(db))
        for q in ("/api/incidents", "/api/history?service=ChatStack"):
            ra, rp = a.get(q), p.get(q)
            if case == "fresh" and q == "/api/incidents":
                assert (ra.status, ra.body) == (200, b'{"incidents":[]}'), ra
            elif case != "fresh":
                assert ra.status == 503, ra
            if case == "fresh" and q != "/api/incidents":
                # Time-dependent buckets: the same shape, not the same bytes.
                assert (rp.status, rp.json()["step_s"]) == (ra.status, ra.json()["step_s"])
            else:
                assert (rp.status, rp.body) == (ra.status, ra.body), (q, ra, rp)
    finally:
        a.stop()
