"""What the agent's history API would answer for a timeline (tests/fixtures/history-mixed.json).

Used by run.py's fixture server for /api/uptime, /api/history and /api/incidents, and by its
assertions. The accounting is the SPEC's, by time: a service is up from `first_seen` to `now`
except in its spans; where spans overlap, no data beats maintenance (muted) beats down beats
degraded. uptime = (up + degraded) / (up + degraded + down), rounded down to 4 decimals, None
without covered time; coverage = covered (up, degraded, down, maintenance) / the window.
Stdlib only.
"""

import json
import math
from datetime import datetime, timezone

PRIORITY = {"nodata": 4, "maint": 3, "down": 2, "degraded": 1}
KEY = {"up": "up_s", "degraded": "degraded_s", "down": "down_s", "maint": "maintenance_s",
       "nodata": "nodata_s"}
WINDOWS = (("1h", 3600), ("24h", 86400), ("7d", 7 * 86400), ("30d", 30 * 86400),
           ("90d", 90 * 86400), ("365d", 365 * 86400))
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def iso(t):
    d = datetime.fromtimestamp(t, timezone.utc)
    if d.microsecond:
        return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (d.microsecond // 1000)
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(v):
    """'90d', '24h', '5m', '30s' -> seconds, or None."""
    if not isinstance(v, str) or len(v) < 2 or v[-1] not in UNITS or not v[:-1].isdigit():
        return None
    return int(v[:-1]) * UNITS[v[-1]]


def floor4(x):
    return math.floor(x * 10000 + 1e-7) / 10000


class HistoryModel:
    def __init__(self, path):
        with open(path) as f:
            spec = json.load(f)
        self.now = ts(spec["now"])
        self.services = {}
        for name, s in spec["services"].items():
            spans = []
            for sp in s.get("spans", []):
                spans.append(dict(sp, a=ts(sp["from"]), b=ts(sp["to"]) if sp.get("to") else self.now))
            self.services[name] = {"first": ts(s["first_seen"]), "latency": float(s["latency_ms"]),
                                   "spans": spans}
        self.incident_list = self._incidents()

    # ---- accounting

    def totals(self, name, a, b):
        """Seconds by kind over [a, min(b, now))."""
        svc = self.services[name]
        b = min(b, self.now)
        out = {k: 0.0 for k in KEY.values()}
        if b <= a:
            return out
        spans = [("nodata", -math.inf, svc["first"])] + [(s["kind"], s["a"], s["b"]) for s in svc["spans"]]
        cuts = sorted({a, b} | {x for _, p, q in spans for x in (p, q) if a < x < b})
        for lo, hi in zip(cuts, cuts[1:]):
            mid = (lo + hi) / 2
            kinds = [k for k, p, q in spans if p <= mid < q]
            kind = max(kinds, key=lambda k: PRIORITY[k]) if kinds else "up"
            out[KEY[kind]] += hi - lo
        return out

    @staticmethod
    def uptime_of(t):
        counted = t["up_s"] + t["degraded_s"] + t["down_s"]
        return floor4((t["up_s"] + t["degraded_s"]) * 100 / counted) if counted > 0 else None

    def latency(self, name, a, b, t):
        """Deterministic hourly-ish latency for a bucket: None where nothing answered."""
        answered = t["up_s"] + t["degraded_s"]
        if answered <= 0:
            return {"min": None, "avg": None, "max": None}
        base = self.services[name]["latency"]
        k = int(a // 3600)
        avg = base * (1 + 0.25 * math.sin(k * 2 * math.pi / 24 + len(name)))
        f = t["degraded_s"] / answered
        avg = avg * (1 - f) + 1800.0 * f
        mx = avg * (1.6 + 0.8 * ((k * 0.618) % 1))
        if name == "ChatStack" and iso(a) == "2026-11-27T19:00:00Z":
            mx = 48.0  # one slow hour: the peak of the 24 h chart
        return {"min": round(avg * 0.6, 3), "avg": round(avg, 3), "max": round(mx, 3)}

    # ---- the API's documents

    def uptime_doc(self):
        services = []
        for name in self.services:
            windows = {}
            for label, w in WINDOWS:
                t = self.totals(name, self.now - w, self.now)
                covered = t["up_s"] + t["degraded_s"] + t["down_s"] + t["maintenance_s"]
                windows[label] = dict({k: round(v, 3) for k, v in t.items()}, uptime=self.uptime_of(t),
                                      coverage=round(covered / w, 6))
            services.append({"name": name, "windows": windows})
        return {"generated_at": iso(self.now), "services": services}

    def history_doc(self, name, since, step):
        start = math.floor((self.now - since) / step) * step
        buckets = []
        at = start
        while at < self.now:
            t = self.totals(name, at, at + step)
            b = dict({k: round(v, 3) for k, v in t.items()}, at=iso(at), uptime=self.uptime_of(t),
                     latency_ms=self.latency(name, at, at + step, t))
            buckets.append(b)
            at += step
        return {"service": name, "since": iso(start), "step_s": step, "buckets": buckets}

    def _incidents(self):
        out = []
        for name, svc in self.services.items():
            maint = [s for s in svc["spans"] if s["kind"] == "maint"]
            for s in svc["spans"]:
                if s["kind"] != "down":
                    continue
                out.append({
                    "service": name, "started_at": iso(s["a"]),
                    "ended_at": iso(s["b"]) if s.get("to") else None,
                    "duration_s": round(s["b"] - s["a"], 3), "cause": s.get("cause"),
                    "restarts": s.get("restarts", []), "alerted": bool(s.get("alerted")),
                    "muted": any(m["a"] <= s["a"] < m["b"] for m in maint), "_a": s["a"],
                    "_b": s["b"] if s.get("to") else None,
                })
        out.sort(key=lambda i: i["_a"])
        for n, i in enumerate(out, 1):
            i["id"] = n
        return out

    def incidents_doc(self, since, limit, service=None):
        frm = self.now - since
        sel = [i for i in self.incident_list if (service is None or i["service"] == service)
               and (i["_b"] is None or i["_b"] >= frm)]
        sel.sort(key=lambda i: (i["_a"], i["id"]), reverse=True)
        return {"incidents": [{k: v for k, v in i.items() if not k.startswith("_")} for i in sel[:limit]]}

    def status_with_uptime(self, status):
        """A copy of a status document with per-service `uptime` as the agent adds it."""
        doc = json.loads(json.dumps(status))
        up = {s["name"]: s["windows"] for s in self.uptime_doc()["services"]}
        for s in doc.get("services", []):
            w = up.get(s.get("name"))
            if w:
                s["uptime"] = {k: w[k]["uptime"] for k in ("24h", "7d", "30d")}
        return doc

    def answer(self, path, params):
        """(code, body) for one history request, with the agent's 400/404 rules."""
        def one(k):
            v = params.get(k)
            return v[-1] if v else None
        if path == "/api/uptime":
            return 200, self.uptime_doc()
        if path == "/api/history":
            name = one("service")
            if name is None:
                return 400, {"error": "service: required (?service=NAME)"}
            if name not in self.services:
                return 404, {"error": "unknown service %r" % name}
            since, step = duration(one("since") or "24h"), duration(one("step") or "1h")
            if not since or not step or step < 60:
                return 400, {"error": "bad since/step"}
            return 200, self.history_doc(name, since, step)
        if path == "/api/incidents":
            name = one("service")
            if name is not None and name not in self.services:
                return 404, {"error": "unknown service %r" % name}
            since = duration(one("since") or "30d")
            limit = one("limit") or "50"
            if not since or not limit.isdigit() or not 1 <= int(limit) <= 10000:
                return 400, {"error": "bad since/limit"}
            return 200, self.incidents_doc(since, int(limit), name)
        return 404, {"error": "not found"}
