"""chatstack-status in a Flask admin panel: the agent's status API and widget on the panel's origin.

    from chatstack_status_flask import status_blueprint

    app.register_blueprint(status_blueprint(status_file="/var/lib/chatstack/status.json"))

    <div id="system-status"></div>
    <script src="/static/js/status.js"></script>
    <script>SystemStatus.mount('#system-status');</script>

The blueprint adds these routes, answered the way `chatstack-status run` / `serve` answer them:

  GET /api/status         the status file plus "stale" and "age_s", `Cache-Control: no-store`;
                          503 {"error": "..."} (also no-store) while the file is missing or
                          unreadable. It reads the file `chatstack-status check` writes, so it
                          works in cron mode, with no agent HTTP server at all.
  GET /api/uptime, /api/history?service=&since=&step=, /api/incidents?service=&since=&limit=
                          from the history database (`history_db`, opened read-only: SQLite
                          `mode=ro`), the same JSON as the agent's, to the byte; the services
                          are the status file's, `since` at most its `history.retention_s`.
                          404 with history_db "off", 503 before the first recorded cycle,
                          and, as the agent, 503 for a file of another program or of a schema
                          other than the agent's (3; a fresh empty file reads as no data).
                          Incidents carry their `diagnosis` (re-encoded as serde_json writes
                          a JSON value: keys sorted) and each restart its `outcome`.
  GET /static/js/status.js  the widget, and
  GET /static/admin_status.html  the dashboard page, from the www files: the installed ones
                          (/usr/share/chatstack-status/www), or, used from a checkout, the
                          checkout's www/ (found beside integrations/; the log says which).
                          Without them both are 404 and a warning says why at registration.

HEAD works on both; other methods get the agent's 405. For a file the agent wrote, the JSON is
byte for byte the agent's: the document's own keys in their order, compact, numbers and strings
spelled as serde_json spells them, then `"stale":BOOL,"age_s":N.N` (age from `generated_at`
in milliseconds, one decimal; stale when older than `stale_after`). The agent re-reads the file
through its schema; this module passes the document through and checks only its top level
(`schema`, `generated_at`, `host`, `overall`, `duration_ms`, `services`), so a hand-edited
file with extra keys keeps them here where the agent would drop them.

A bad status file is never a traceback: missing, unreadable, a directory, a FIFO or device (never
opened for a blocking read), larger than `max_bytes`, not UTF-8, not JSON or not a status
document: each is a 503 with a one-line reason naming the file. Parsed documents are cached
until the file changes (the agent replaces it by rename, so every write is a new file).

Python 3.9+, the standard library and Flask (2.0 or newer). No other dependency.
"""

import datetime
import errno
import json
import logging
import math
import os
import re
import sqlite3
import stat
import threading
import time
import urllib.parse
from collections import OrderedDict

from flask import Blueprint, Response, request

__all__ = ["status_blueprint", "StatusSource", "HistorySource", "HistoryError", "Unavailable",
           "DEFAULT_STATUS_FILE", "DEFAULT_HISTORY_DB", "DEFAULT_WWW_DIR", "DEFAULT_STALE_AFTER",
           "DEFAULT_MAX_BYTES"]

DEFAULT_STATUS_FILE = "/var/lib/chatstack/status.json"
#: Where the .deb installs the www files (install.sh: PREFIX/share/chatstack-status/www).
DEFAULT_WWW_DIR = "/usr/share/chatstack-status/www"
#: Seconds, as the agent's `stale_after: 90s`.
DEFAULT_STALE_AFTER = 90.0
#: A status file of 4 services is ~20 KB and one of 500 services with full history ~3 MB; a
#: larger file is a mistake, and parsing it would cost the panel memory and time.
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
#: Nesting deeper than this is not a status document (the agent's is 5 levels deep).
MAX_DEPTH = 512

_WIDGET = ("js", "status.js")
_PAGE = "admin_status.html"
DEFAULT_HISTORY_DB = "/var/lib/chatstack/history.db"
_TOP_LEVEL = ("schema", "generated_at", "host", "overall", "duration_ms", "services")
_HEALTH = ("up", "degraded", "down")

log = logging.getLogger(__name__)


class Unavailable(Exception):
    """The status cannot be served right now; the message is the 503's `error`."""


# --------------------------------------------------------------------------- the blueprint

def status_blueprint(status_file=None, stale_after=None, www_dir=None,
                     max_bytes=DEFAULT_MAX_BYTES, name="chatstack_status", history_db=None,
                     clock=None):
    """A Blueprint with GET /api/status, /api/uptime, /api/history, /api/incidents,
    /static/js/status.js and /static/admin_status.html.

    status_file  the agent's `status_file`; default $CHATSTACK_STATUS_FILE, else
                 /var/lib/chatstack/status.json.
    stale_after  seconds (int or float), a `datetime.timedelta`, or a duration as the config
                 writes it ("90s", "2m", "500ms"); default $CHATSTACK_STATUS_STALE, else 90 s.
    www_dir      the www files; default the `www` directory beside this module's
                 `integrations` directory when it holds js/status.js (an install.sh PREFIX),
                 else /usr/share/chatstack-status/www.
    max_bytes    a larger status file is a 503, not a slow parse.
    name         the blueprint's name, to register it twice (e.g. with a url_prefix).
    history_db   the agent's `history_db`; default $CHATSTACK_HISTORY_DB, else
                 /var/lib/chatstack/history.db; "off": the history endpoints answer 404.
                 Opened read-only (SQLite `mode=ro`), once per request.
    clock        a function returning the time in milliseconds (tests); default the clock.

    Protect it like the rest of the panel: the app's own `before_request` login check covers
    it, or add one to the returned blueprint (`bp.before_request(require_admin)`).
    """
    if status_file is None:
        status_file = os.environ.get("CHATSTACK_STATUS_FILE") or DEFAULT_STATUS_FILE
    status_file = os.fsdecode(os.fspath(status_file))
    if stale_after is None:
        env = os.environ.get("CHATSTACK_STATUS_STALE")
        stale_after = env if env else DEFAULT_STALE_AFTER
        what = "CHATSTACK_STATUS_STALE" if env else "stale_after"
    else:
        what = "stale_after"
    stale_s = _seconds(stale_after, what)
    www_dir = os.fsdecode(os.fspath(www_dir)) if www_dir is not None else _default_www_dir()
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError("max_bytes: expected a whole number of bytes (1 or more), found %r"
                         % (max_bytes,))

    if history_db is None:
        history_db = os.environ.get("CHATSTACK_HISTORY_DB") or DEFAULT_HISTORY_DB
    history_db = os.fsdecode(os.fspath(history_db))
    history = None if history_db.strip() == "off" else HistorySource(history_db)
    now_ms = clock or (lambda: time.time_ns() // 1_000_000)

    source = StatusSource(status_file, max_bytes)
    widget = os.path.join(www_dir, *_WIDGET)
    widget_cache = _FileCache(widget, max_bytes, lambda data: data, what="widget")
    page_cache = _FileCache(os.path.join(www_dir, _PAGE), max_bytes, lambda data: data,
                            what="page")
    if not os.path.isfile(widget):
        log.warning("chatstack-status: no widget at %s (install the chatstack-status package, "
                    "or pass www_dir= the www/ of a checkout): /static/js/status.js and "
                    "/static/admin_status.html will answer 404 and the panel's status "
                    "section stays empty", widget)
    else:
        log.info("chatstack-status: the widget and page from %s", www_dir)

    bp = Blueprint(name, __name__)

    def api_status():
        try:
            body = source.api_json(stale_s)
        except Unavailable as e:
            return _json_response(503, {"error": str(e)}, no_store=True)
        return Response(body, status=200, content_type="application/json",
                        headers={"Cache-Control": "no-store"})

    def widget_js():
        try:
            data = widget_cache.get()
        except Unavailable:
            return _json_response(404, {"error": "not found"})
        return Response(data, status=200, content_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    def admin_page():
        try:
            data = page_cache.get()
        except Unavailable:
            return _json_response(404, {"error": "not found"})
        return Response(data, status=200, content_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    def history_view(answer):
        def view():
            if history is None:
                return _json_response(404, {"error": "history is off (history_db: off in "
                                                     "the config)"})
            try:
                doc = answer(history, source, request.args, now_ms())
            except HistoryError as e:
                return _json_response(e.status, {"error": str(e)})
            except Unavailable as e:
                return _json_response(503, {"error": str(e)})
            return Response(_lossy(_dumps(doc)).encode("utf-8"), status=200,
                            content_type="application/json", headers={"Cache-Control": "no-store"})
        view.__name__ = answer.__name__
        return view

    for rule, endpoint, view in (("/api/status", "api_status", api_status),
                                 ("/api/uptime", "api_uptime", history_view(_uptime)),
                                 ("/api/history", "api_history", history_view(_history)),
                                 ("/api/incidents", "api_incidents", history_view(_incidents)),
                                 ("/static/js/status.js", "widget", widget_js),
                                 ("/static/admin_status.html", "admin_page", admin_page)):
        bp.add_url_rule(rule, endpoint, _get_or_head(view), methods=_METHODS,
                        provide_automatic_options=False)
    return bp


# Methods routed to the views so that they get the agent's JSON 405 rather than Werkzeug's
# HTML one (OPTIONS included: the agent answers preflights only for CORS, which a same-origin
# blueprint has no use for).
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _get_or_head(view):
    def route():
        if request.method not in ("GET", "HEAD"):
            return _json_response(405, {"error": "method not allowed: use GET or HEAD"},
                                  extra={"Allow": "GET, HEAD"})
        return view()

    route.__name__ = view.__name__
    return route


def _json_response(status, obj, no_store=False, extra=None):
    headers = dict(extra or {})
    if no_store:
        headers["Cache-Control"] = "no-store"
    return Response(_lossy(_dumps(obj)).encode("utf-8"), status=status,
                    content_type="application/json", headers=headers)


def _lossy(text):
    """`text` as valid UTF-8: a path's undecodable bytes (os.fsdecode's surrogate escapes)
    and lone surrogates from a file become U+FFFD, as Rust's `Path::display` shows them."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


def _default_www_dir():
    # Installed as <share>/chatstack-status/integrations/chatstack_status_flask.py next to
    # <share>/chatstack-status/www: use that copy (install.sh with any PREFIX). In a checkout
    # the module is integrations/flask/chatstack_status_flask.py and the checkout's www/ is
    # two levels up: use it (the files the agent embeds).
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = []
    if os.path.basename(here) == "integrations":
        candidates.append(os.path.join(os.path.dirname(here), "www"))
    if os.path.basename(here) == "flask" and \
            os.path.basename(os.path.dirname(here)) == "integrations":
        candidates.append(os.path.join(os.path.dirname(os.path.dirname(here)), "www"))
    for beside in candidates:
        if os.path.isfile(os.path.join(beside, *_WIDGET)):
            return beside
    return DEFAULT_WWW_DIR


# --------------------------------------------------------------------------- the status

class StatusSource:
    """The status file, parsed once per version of the file."""

    def __init__(self, path, max_bytes=DEFAULT_MAX_BYTES):
        self.path = path
        self._cache = _FileCache(path, max_bytes, self._parse)

    def document(self):
        """The parsed status document; raises Unavailable."""
        return self._cache.get()[2]

    def api_json(self, stale_after_s, now_ms=None):
        """The body of GET /api/status, as bytes; raises Unavailable."""
        json_open, generated_ms, _ = self._cache.get()
        if now_ms is None:
            now_ms = time.time_ns() // 1_000_000
        age = max(now_ms - generated_ms, 0) / 1000.0
        stale = "true" if age > stale_after_s else "false"
        # The agent formats age_s with Rust's `{:.1}`: correctly rounded, ties to even on the
        # exact binary value, as Python's "%.1f" is.
        return json_open + (',"stale":%s,"age_s":%.1f}' % (stale, age)).encode("ascii")

    def _parse(self, data):
        where = self.path + ": unreadable status file: "
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Unavailable(where + "invalid UTF-8 at byte %d" % e.start) from None
        try:
            doc, end = _decoder.raw_decode(text, _skip_ws(text, 0))
            if _skip_ws(text, end) != len(text):
                raise json.JSONDecodeError("trailing characters", text, _skip_ws(text, end))
        except json.JSONDecodeError as e:
            raise Unavailable(where + "%s at line %d column %d" % (e.msg, e.lineno, e.colno)) \
                from None
        except _NotJson as e:
            raise Unavailable(where + str(e)) from None
        except (ValueError, RecursionError, MemoryError) as e:
            raise Unavailable(where + (str(e) or type(e).__name__)) from None
        problem = _check_top_level(doc)
        if problem:
            if problem.startswith("missing field"):
                # Where serde_json reports it: just after the document's closing brace.
                line_start = text.rfind("\n", 0, end) + 1
                column = len(text[line_start:end].encode("utf-8", "surrogatepass"))
                problem += " at line %d column %d" % (text.count("\n", 0, end) + 1, column)
            raise Unavailable(where + problem)
        generated_ms = parse_rfc3339(doc["generated_at"])
        # Keys the agent adds itself; its schema would drop them from the file.
        doc.pop("stale", None)
        doc.pop("age_s", None)
        try:
            body = _dumps(doc).encode("utf-8")
        except _NotJson as e:
            raise Unavailable(where + str(e)) from None
        except UnicodeEncodeError:
            raise Unavailable(where + "a string holds a lone surrogate escape") from None
        except RecursionError:
            raise Unavailable(where + "nested too deeply") from None
        return body[:-1], generated_ms, doc


def _check_top_level(doc):
    """What keeps `doc` from being a status document, or None. Mirrors the agent's schema for
    the top level only (the fields every reader relies on) and its order of complaints: a
    wrong field in document order first, then the first missing one in schema order."""
    if not isinstance(doc, dict):
        return "expected a JSON object, found %s" % _kind(doc)
    for key, v in doc.items():
        check = _FIELD_CHECKS.get(key)
        if check is not None and not check[0](v):
            return "%s: expected %s, found %s" % (key, check[1], _found(v))
    for key in _TOP_LEVEL:
        if key not in doc:
            return "missing field `%s`" % key
    return None


_FIELD_CHECKS = {
    "schema": (lambda v: _is_int(v) and 0 <= v <= 0xFFFFFFFF, "a whole number"),
    "generated_at": (lambda v: parse_rfc3339(v) is not None, "an RFC 3339 time"),
    "host": (lambda v: isinstance(v, str), "a string"),
    "overall": (lambda v: isinstance(v, str) and v in _HEALTH, "up, degraded or down"),
    "duration_ms": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
                    "a number"),
    "services": (lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
                 "a list of objects"),
}


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _kind(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    return "a list" if isinstance(v, list) else "an object"


def _found(v):
    if isinstance(v, (dict, list)):
        return _kind(v)
    text = _dumps(v)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------- reading a file

class _FileCache:
    """A file's parsed contents (or why it has none), re-read only when its identity
    (device, inode, size, mtime) changes: a corrupt file costs one parse, not one per request."""

    def __init__(self, path, max_bytes, parse, what="status file"):
        self.path, self.max_bytes, self.parse, self.what = path, max_bytes, parse, what
        self._lock = threading.Lock()
        self._key = None
        self._value = None
        self._error = None

    def get(self):
        path = self.path
        try:
            st = os.stat(path)
        except OSError as e:
            # The agent's words (server::FileSource): the file is looked up before it is read.
            if e.errno == errno.ENOENT and self.what == "status file":
                raise Unavailable("no status file yet at %s" % path) from None
            raise Unavailable("cannot read %s: %s" % (path, _os_error(e))) from None
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if key == self._key:
                if self._error is not None:
                    raise Unavailable(self._error)
                return self._value
        value, error = None, None
        try:
            data, key = read_bounded(path, st, self.max_bytes, self.what)
            value = self.parse(data)
        except Unavailable as e:
            error = str(e)
        except Exception as e:  # whatever else goes wrong: a 503 with a reason, no traceback
            error = "%s: cannot read %s: %s: %s" % (path, self.what, type(e).__name__, e)
            log.warning("chatstack-status: %s", error)
        with self._lock:
            self._key, self._value, self._error = key, value, error
        if error is not None:
            raise Unavailable(error)
        return value


def _not_regular(mode):
    """The agent's words (fsutil::read_regular) for what is not a regular file."""
    if stat.S_ISDIR(mode):
        kind = "a directory"
    elif stat.S_ISFIFO(mode):
        kind = "a FIFO"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    elif stat.S_ISBLK(mode) or stat.S_ISCHR(mode):
        kind = "a device"
    else:
        kind = "something else"
    return "not a regular file (%s)" % kind


def read_bounded(path, st, max_bytes, what="status file"):
    """(bytes, identity) of the regular file `path` (just stat'ed as `st`), at most max_bytes;
    raises Unavailable.

    Anything but a regular file is refused before it is opened, and the open is non-blocking,
    so a FIFO put where the file should be (even in a race) costs one `open`, not a request
    thread stuck forever; fstat then confirms what was opened.
    """
    where = "%s: cannot read %s: " % (path, what)
    if not stat.S_ISREG(st.st_mode):
        raise Unavailable(where + _not_regular(st.st_mode))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        # Replaced between stat and open: the agent's read_status words.
        raise Unavailable("%s: no status file yet: has `chatstack-status check` or `run` "
                          "been started?" % path) from None
    except OSError as e:
        raise Unavailable(where + _os_error(e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Unavailable(where + _not_regular(st.st_mode))
        if st.st_size > max_bytes:
            raise Unavailable(where + "%d bytes, more than the %d allowed"
                              % (st.st_size, max_bytes))
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise Unavailable(where + "more than the %d bytes allowed" % max_bytes)
    except OSError as e:
        raise Unavailable(where + _os_error(e)) from None
    finally:
        os.close(fd)
    return b"".join(chunks), (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _os_error(e):
    # Rust's io::Error text, so that the reasons read as the agent's do.
    if e.errno:
        return "%s (os error %d)" % (os.strerror(e.errno), e.errno)
    return str(e)


# --------------------------------------------------------------------------- JSON as serde_json writes it

class _NotJson(ValueError):
    pass


def _no_constant(name):
    raise _NotJson("%s is not a JSON value" % name)


def _finite_float(text):
    f = float(text)
    if math.isinf(f):
        raise _NotJson("number out of range: %s" % text[:40])
    return f


def _unique_keys(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise _NotJson("duplicate field `%s`" % k)
        d[k] = v
    return d


_decoder = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float,
                            object_pairs_hook=_unique_keys)
_WS = " \t\n\r"


def _skip_ws(text, i):
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    return i


def _dumps(value):
    out = []
    _dump(value, out, 0)
    return "".join(out)


def _dump(v, out, depth):
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        # serde_json escapes exactly what json.dumps(ensure_ascii=False) escapes: '"', '\\',
        # \b \f \n \r \t and other controls as \u00XX (lower-case hex); the rest is raw UTF-8.
        out.append(json.dumps(v, ensure_ascii=False))
    elif isinstance(v, int):
        out.append(int.__repr__(v))
    elif isinstance(v, float):
        out.append(format_float(v))
    elif depth >= MAX_DEPTH:
        raise _NotJson("nested deeper than %d levels" % MAX_DEPTH)
    elif isinstance(v, list):
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _dump(item, out, depth + 1)
        out.append("]")
    elif isinstance(v, dict):
        out.append("{")
        first = True
        for k, item in v.items():
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(k, ensure_ascii=False))
            out.append(":")
            _dump(item, out, depth + 1)
        out.append("}")
    else:
        raise _NotJson("cannot encode %s" % type(v).__name__)


def format_float(f):
    """A float as serde_json 1.0.15x (zmij) writes it: the shortest round-trip digits, like
    Python's repr, but fixed notation down to 1e-5 and the exponent unpadded ("1.5e-7",
    "1e+16" where repr says "1.5e-07", "1e+16")."""
    if math.isnan(f) or math.isinf(f):
        raise _NotJson("number out of range")
    r = float.__repr__(f)
    if "e" not in r:
        return r
    mantissa, exp = r.split("e")
    e = int(exp)
    if e == -5:
        sign = "-" if mantissa.startswith("-") else ""
        return sign + "0.0000" + mantissa.lstrip("-").replace(".", "")
    return "%se%s%d" % (mantissa, "+" if e >= 0 else "-", abs(e))


# --------------------------------------------------------------------------- the history

def _services(source):
    """The services the agent knows, in its order: the status file's (the agent's config)."""
    doc = source.document()
    return [str(x.get("name")) for x in doc.get("services", []) if isinstance(x, dict)]


def _retention_ms(source):
    """`retention.rollups` as the status file says (`history.retention_s`), else the default."""
    doc = source.document()
    h = doc.get("history")
    r = h.get("retention_s") if isinstance(h, dict) else None
    return (r if _is_int(r) and r > 0 else DEFAULT_ROLLUPS_S) * 1000


def _known(source, name):
    if name not in _services(source):
        raise HistoryError(404, "unknown service %s" % json.dumps(name, ensure_ascii=False))
    return name


def _duration_arg(args, name, default_ms):
    v = args.get(name)
    if v is None:
        return default_ms
    try:
        if any(c in _RUST_WHITESPACE for c in v):
            # The agent refuses what its parser would trim ("5m " from a stray "+" in a URL).
            raise ValueError(v)
        return parse_duration_ms(v)
    except ValueError:
        raise HistoryError(400, "%s: expected a duration like 5m, 24h or 30d, found %s"
                           % (name, json.dumps(v, ensure_ascii=False))) from None


#: Rust's `char::is_whitespace` (Unicode White_Space).
_RUST_WHITESPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
                             "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f"
                             "\u3000")


def _uptime(history, source, args, now):
    return history.uptime_doc(_services(source), now)


def _history(history, source, args, now):
    service = args.get("service")
    if service is None:
        raise HistoryError(400, "service: required (?service=NAME)")
    service = _known(source, service)
    since = _duration_arg(args, "since", DAY)
    step = _duration_arg(args, "step", HOUR)
    keep = _retention_ms(source)
    if since == 0 or since > keep:
        raise HistoryError(400, "since %s: expected more than 0 and at most retention.rollups "
                           "(%s)" % (_format_duration_ms(since), _format_duration_ms(keep)))
    if step < HISTORY_MIN_STEP_MS:
        raise HistoryError(400, "step %s: expected at least 1m" % _format_duration_ms(step))
    return history.history_doc(service, since, step, now)


def _incidents(history, source, args, now):
    service = args.get("service")
    if service is not None:
        service = _known(source, service)
    since = _duration_arg(args, "since", 30 * DAY)
    v = args.get("limit")
    limit = 50
    if v is not None:
        if not re.fullmatch(r"\+?[0-9]+", v) or not 1 <= int(v) <= 10_000:
            raise HistoryError(400, "limit: expected 1 to 10000, found %s"
                               % json.dumps(v, ensure_ascii=False))
        limit = int(v)
    return history.incidents_doc(service, max(now - since, -2 ** 63), limit, now)


MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
MINUTE_KEEP = 48 * HOUR
HISTORY_MIN_STEP_MS = MINUTE
MAX_BUCKETS = 10_000
MAX_INCIDENTS = 10_000
#: `retention.rollups` when the status file does not say (the agent's default, 400 d).
DEFAULT_ROLLUPS_S = 400 * 86_400
UPTIME_WINDOWS = (("1h", HOUR), ("24h", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY),
                  ("90d", 90 * DAY), ("365d", 365 * DAY))
NO_HISTORY_YET = "no history yet: the first check cycle has not been recorded"


class HistoryError(Exception):
    """An answer other than 200: (status, message) as the agent's `{"error"}` body."""

    def __init__(self, status, message):
        Exception.__init__(self, message)
        self.status = status


def _round_half_away(x):
    """Rust's f64::round (half away from zero)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def _secs(ms):
    return ms / 1000.0


def _ratio(num, den):
    if den <= 0:
        return 0.0
    return min(max(_round_half_away((num / den) * 1e6), 0.0), 1e6) / 1e6


def _uptime_percent(t):
    up, degraded, down, _ = t
    counted = up + degraded + down
    if counted <= 0:
        return None
    p = float(up + degraded) * 100.0 / float(counted)
    return min(max(math.floor(p * 10_000.0) / 10_000.0, 0.0), 100.0)


def _scaled(t, num, den):
    """An edge bucket's share: Rust's `(v as i128 * num) / den`, truncating toward zero."""
    den = max(den, 1)
    return tuple(_div_trunc(v * num, den) for v in t)


def _div_trunc(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _add(t, o):
    return tuple(a + b for a, b in zip(t, o))


_KINDS = {"up": 0, "degraded": 1, "down": 2, "maintenance": 3}
ZERO = (0, 0, 0, 0)


def _bucket_start(t, res):
    return (t // res) * res


def _round_up(v, unit):
    return (v // unit) * unit + (0 if v % unit == 0 else unit)


def _plan(frm, now):
    """The agent's query::plan: (res, lo, hi, weight or None) × 4."""
    p = [(MINUTE, 0, 0, None), (MINUTE, 0, 0, None), (HOUR, 0, 0, None), (DAY, 0, 0, None)]
    if frm >= now:
        return p
    first_res = MINUTE if frm >= now - MINUTE_KEEP + MINUTE else HOUR
    edge = _bucket_start(frm, first_res)
    nxt = edge
    if edge < frm:
        p[0] = (first_res, edge, edge + 1, (edge + first_res - frm, first_res))
        nxt = edge + first_res
    hour = _round_up(nxt, HOUR)
    if first_res == MINUTE:
        p[1] = (MINUTE, nxt, min(hour, now), None)
    day = _round_up(hour, DAY)
    p[2] = (HOUR, hour, min(day, now), None)
    p[3] = (DAY, day, now, None)
    return p


def _format_duration_ms(ms):
    """The agent's config::duration::format."""
    if ms % 86_400_000 == 0 and ms > 0:
        return "%dd" % (ms // 86_400_000)
    if ms % 3_600_000 == 0 and ms > 0:
        return "%dh" % (ms // 3_600_000)
    if ms % 60_000 == 0 and ms > 0:
        return "%dm" % (ms // 60_000)
    if ms % 1000 == 0:
        return "%ds" % (ms // 1000)
    return "%dms" % ms


def format_rfc3339(ms):
    """A timestamp as the agent writes it: milliseconds only when there are some."""
    secs, msec = divmod(ms, 1000)
    days, sod = divmod(secs, 86400)
    y, m, d = _civil_from_days(days)
    s = "%04d-%02d-%02dT%02d:%02d:%02d" % (y, m, d, sod // 3600, sod // 60 % 60, sod % 60)
    return s + (".%03dZ" % msec if msec else "Z")


def _civil_from_days(z):
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


class HistorySource:
    """The agent's history database, read-only: the answers of GET /api/uptime, /api/history
    and /api/incidents as the agent computes them (src/store/query.rs), to the byte."""

    def __init__(self, path):
        self.path = path

    def _connect(self):
        try:
            os.stat(self.path)
        except FileNotFoundError:
            raise HistoryError(503, NO_HISTORY_YET) from None
        except OSError as e:
            raise HistoryError(503, "%s: cannot read it: %s" % (self.path, _os_error(e))) from None
        uri = "file:%s?mode=ro" % urllib.parse.quote(self.path)
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=2.0, check_same_thread=False)
            conn.execute("PRAGMA query_only = 1")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.Error as e:
            raise HistoryError(503, "%s: %s" % (self.path, e)) from None
        problem = _schema_problem(app_id, version, objects)
        if problem is not None:
            conn.close()
            raise HistoryError(503, "%s: %s" % (_lossy(self.path), problem))
        return conn, version == 0

    def _read(self, fn):
        conn, empty = self._connect()
        try:
            return fn(conn, empty)
        except sqlite3.Error as e:
            raise HistoryError(503, "%s: %s" % (self.path, e)) from None
        finally:
            conn.close()

    @staticmethod
    def _mark(conn, empty, service):
        if empty:
            return None
        row = conn.execute(
            "SELECT id, last_at, last_status, last_muted, last_interval, covered_until, "
            "open_incident FROM services WHERE name = ?1", (service,)).fetchone()
        if row is None:
            return None
        sid, last_at, last_status, last_muted, last_interval, covered_until, _ = row
        return {"id": sid, "last_at": last_at,
                "status": {0: "up", 1: "degraded"}.get(last_status or 0, "down"),
                "muted": bool(last_muted or 0), "interval": last_interval or 0,
                "covered_until": covered_until if covered_until is not None else -2 ** 63}

    @staticmethod
    def _tail(mark, now):
        if mark is None or mark["last_at"] is None:
            return None
        last_at = mark["last_at"]
        frm = max(last_at, mark["covered_until"])
        to = min(now, last_at + 2 * mark["interval"])
        if to <= frm:
            return None
        kind = "maintenance" if mark["muted"] else mark["status"]
        return frm, to, kind

    def _windows(self, conn, mark, froms, now):
        out = []
        tail = self._tail(mark, now)
        for frm in froms:
            t = ZERO
            for res, lo, hi, weight in _plan(frm, now):
                row = conn.execute(
                    "SELECT coalesce(sum(up), 0), coalesce(sum(degraded), 0), "
                    "coalesce(sum(down), 0), coalesce(sum(maintenance), 0) FROM rollups "
                    "WHERE service_id = ?1 AND res = ?2 AND start >= ?3 AND start < ?4",
                    (mark["id"], res, lo, hi)).fetchone()
                part = tuple(int(v) for v in row)
                t = _add(t, _scaled(part, weight[0], weight[1]) if weight else part)
            if tail is not None:
                a, b = max(tail[0], frm), min(tail[1], now)
                if b > a:
                    t = _add(t, _one(tail[2], b - a))
            out.append(t)
        return out

    @staticmethod
    def _figures(t, length):
        covered = min(sum(t), max(length, 0))
        return OrderedDict((
            ("uptime", _uptime_percent(t)), ("up_s", _secs(t[0])), ("degraded_s", _secs(t[1])),
            ("down_s", _secs(t[2])), ("maintenance_s", _secs(t[3])),
            ("nodata_s", _secs(max(length - covered, 0))),
            ("coverage", _ratio(covered, length))))

    def uptime_doc(self, services, now):
        def run(conn, empty):
            out = []
            for name in services:
                mark = self._mark(conn, empty, name)
                froms = [now - ms for _, ms in UPTIME_WINDOWS]
                totals = self._windows(conn, mark, froms, now) if mark else [ZERO] * len(froms)
                out.append(OrderedDict((("name", name), ("windows", OrderedDict(
                    (label, self._figures(t, ms)) for (label, ms), t in zip(UPTIME_WINDOWS, totals)))))
                )
            return OrderedDict((("generated_at", format_rfc3339(now)), ("services", out)))
        return self._read(run)

    def history_doc(self, service, since_ms, step_ms, now):
        def run(conn, empty):
            asked_start = now - max(since_ms, MINUTE)
            want = max(step_ms, MINUTE)
            res = MINUTE
            step = _round_up(want, res)
            start = _bucket_start(asked_start, step)
            if start < now - MINUTE_KEEP + MINUTE:
                res = HOUR
                step = _round_up(want, res)
                start = _bucket_start(asked_start, step)
            if (now - start) // step > MAX_BUCKETS:
                step = _round_up((now - asked_start) // MAX_BUCKETS + 1, res)
                start = _bucket_start(asked_start, step)
            read_res = DAY if step % DAY == 0 else HOUR if step % HOUR == 0 else MINUTE
            n = max((now - start + step - 1) // step, 1)
            acc = [[ZERO, [0, 0.0, None, None], 0] for _ in range(n)]
            mark = self._mark(conn, empty, service)
            if mark is not None:
                rows = conn.execute(
                    "SELECT start, up, degraded, down, maintenance, samples, lat_n, lat_sum, "
                    "lat_min, lat_max FROM rollups WHERE service_id = ?1 AND res = ?2 "
                    "AND start >= ?3 AND start < ?4 ORDER BY start",
                    (mark["id"], read_res, start, start + n * step))
                for r in rows:
                    i = (r[0] - start) // step
                    if 0 <= i < n:
                        slot = acc[i]
                        slot[0] = _add(slot[0], tuple(int(v) for v in r[1:5]))
                        lat = slot[1]
                        lat[0] += r[6]
                        lat[1] += r[7]
                        if r[8] is not None:
                            lat[2] = r[8] if lat[2] is None else min(lat[2], r[8])
                        if r[9] is not None:
                            lat[3] = r[9] if lat[3] is None else max(lat[3], r[9])
                        slot[2] += r[5]
                tail = self._tail(mark, now)
                if tail is not None:
                    a, b = max(tail[0], start), min(tail[1], now)
                    t = a
                    while t < b:
                        bs = _bucket_start(t, step)
                        end = min(bs + step, b)
                        i = (bs - start) // step
                        if 0 <= i < n:
                            acc[i][0] = _add(acc[i][0], _one(tail[2], end - t))
                        t = end
            buckets = []
            for i, (t, lat, _) in enumerate(acc):
                at = start + i * step
                length = min(at + step, now) - at
                covered = min(sum(t), length)
                r3 = lambda v: None if v is None else _round_half_away(v * 1000.0) / 1000.0
                avg = lat[1] / float(lat[0]) if lat[0] > 0 else None
                buckets.append(OrderedDict((
                    ("at", format_rfc3339(at)), ("up_s", _secs(t[0])), ("degraded_s", _secs(t[1])),
                    ("down_s", _secs(t[2])), ("maintenance_s", _secs(t[3])),
                    ("nodata_s", _secs(max(length - covered, 0))), ("uptime", _uptime_percent(t)),
                    ("latency_ms", OrderedDict((("min", r3(lat[2])), ("avg", r3(avg)),
                                                ("max", r3(lat[3]))))))))
            return OrderedDict((("service", service), ("since", format_rfc3339(start)),
                                ("step_s", step // 1000), ("buckets", buckets)))
        return self._read(run)

    def incidents_doc(self, service, since, limit, now):
        def run(conn, empty):
            if empty:
                return OrderedDict((("incidents", []),))
            rows = conn.execute(
                "SELECT i.id, s.name, i.started_at, i.ended_at, i.cause_type, i.cause_target, "
                "i.cause_reason, i.cause_detail, i.alerts, i.muted, i.diagnosis "
                "FROM incidents i JOIN services s ON s.id = i.service_id "
                "WHERE (?1 IS NULL OR s.name = ?1) AND (i.ended_at IS NULL OR i.ended_at >= ?2) "
                "ORDER BY i.started_at DESC, i.id DESC LIMIT ?3",
                (service, since, min(limit, MAX_INCIDENTS))).fetchall()
            out = []
            for (iid, name, started, ended, kind, target, reason, detail, alerts, muted,
                 diagnosis) in rows:
                cause = None
                if kind is not None:
                    cause = OrderedDict((("type", kind), ("target", target or ""),
                                         ("reason", reason), ("detail", detail or "")))
                restarts = [OrderedDict((("at", format_rfc3339(at)), ("ok", bool(ok)),
                                         ("outcome", _outcome_of(outcome))))
                            for at, ok, outcome in conn.execute(
                                "SELECT at, ok, outcome FROM restarts WHERE incident_id = ?1 "
                                "ORDER BY at, id", (iid,))]
                out.append(OrderedDict((
                    ("id", iid), ("service", name), ("started_at", format_rfc3339(started)),
                    ("ended_at", format_rfc3339(ended) if ended is not None else None),
                    ("duration_s", _secs(max((ended if ended is not None else now) - started, 0))),
                    ("cause", cause), ("restarts", restarts), ("alerted", alerts > 0),
                    ("muted", bool(muted)), ("diagnosis", _serde_value(diagnosis)))))
            return OrderedDict((("incidents", out),))
        return self._read(run)


#: The schema the agent writes and reads (src/store/schema.rs: `LATEST`, `APPLICATION_ID`).
SCHEMA_VERSION = 4
APPLICATION_ID = 0x43534844  # "CSHD"


def _schema_problem(app_id, version, objects):
    """Why the agent's reader refuses this file (store::Header::check), or None: a fresh file
    (no id, no version, no objects) reads as empty; another program's file, a newer schema and
    an older one (which only a writer migrates) are each a 503 in the agent's words."""
    if app_id == 0 and version == 0 and objects == 0:
        return None
    if app_id != APPLICATION_ID:
        return ("not a chatstack-status history database (application_id %d, user_version %d, "
                "%d schema objects); left untouched" % (app_id, version, objects))
    if version > SCHEMA_VERSION:
        return ("history database schema %d is newer than this version understands (%d); "
                "left untouched" % (version, SCHEMA_VERSION))
    if 0 < version < SCHEMA_VERSION:
        return ("history database schema %d is older than this version reads (%d); the next "
                "`check` or `run` migrates it" % (version, SCHEMA_VERSION))
    return None


def _outcome_of(text):
    """A stored restart outcome as the agent reads it (query.rs `outcome_of`): NULL (recorded
    before outcomes existed, or not judged yet) and anything unknown are "pending"."""
    return text if text in ("recovered", "still_down") else "pending"


#: serde_json's recursion limit: a 128th level of nesting is an error.
_SERDE_DEPTH = 127
_U64_MAX = 2 ** 64 - 1
_I64_MIN = -2 ** 63


def _serde_value(text):
    """incidents.diagnosis as the agent answers it: its text read into a `serde_json::Value`
    (None when it does not read: NULL, not JSON, a lone surrogate, nested too deeply, a number
    out of range), which serde_json writes with every object's keys sorted (a BTreeMap: no
    `preserve_order`), integers beyond i64/u64 as floats, duplicate keys the last one's."""
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
        return _as_serde(value, 0)
    except (ValueError, RecursionError, _NotJson):
        return None


def _as_serde(v, depth):
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        if _I64_MIN <= v <= _U64_MAX:
            return v
        f = float(v)
        if math.isinf(f):
            raise _NotJson("number out of range")
        return f
    if isinstance(v, float):
        return v
    if isinstance(v, str):
        if any("\ud800" <= c <= "\udfff" for c in v):
            raise _NotJson("lone surrogate")
        return v
    if depth >= _SERDE_DEPTH:
        raise _NotJson("recursion limit exceeded")
    if isinstance(v, list):
        return [_as_serde(x, depth + 1) for x in v]
    return OrderedDict((_as_serde(k, depth), _as_serde(v[k], depth + 1)) for k in sorted(v))


def _one(kind, ms):
    t = [0, 0, 0, 0]
    t[_KINDS[kind]] = ms
    return tuple(t)


# --------------------------------------------------------------------------- time and durations

def parse_rfc3339(s):
    """Milliseconds since the epoch of an RFC 3339 time, or None: the agent's own parser
    (`Timestamp::parse`: `Z` or a numeric offset, fraction truncated to milliseconds)."""
    if not isinstance(s, str):
        return None
    b = s.encode("utf-8", "surrogatepass")
    if len(b) < 20 or b[4:5] != b"-" or b[7:8] != b"-" or b[10:11] not in (b"T", b"t", b" "):
        return None

    def num(lo, hi):
        t = b[lo:hi]
        if len(t) != hi - lo or not t or not all(0x30 <= c <= 0x39 for c in t):
            return None
        return int(t)

    y, mo, d = num(0, 4), num(5, 7), num(8, 10)
    if y is None or mo is None or d is None or b[13:14] != b":" or b[16:17] != b":":
        return None
    h, mi, sec = num(11, 13), num(14, 16), num(17, 19)
    if h is None or mi is None or sec is None:
        return None
    if not 1 <= mo <= 12 or not 1 <= d <= 31 or h > 23 or mi > 59 or sec > 60:
        return None
    i, ms = 19, 0
    if b[i:i + 1] == b".":
        i += 1
        start = i
        while i < len(b) and 0x30 <= b[i] <= 0x39:
            i += 1
        if i == start:
            return None
        frac = b[start:min(i, start + 3)]
        ms = int(frac) * 10 ** (3 - len(frac))
    rest = b[i:]
    if rest in (b"Z", b"z"):
        offset_s = 0
    elif len(rest) == 6 and rest[:1] in (b"+", b"-"):
        oh, om = num(i + 1, i + 3), num(i + 4, i + 6)
        if oh is None or om is None:
            return None
        offset_s = (-1 if rest[:1] == b"-" else 1) * (oh * 3600 + om * 60)
    else:
        return None
    days = _days_from_civil(y, mo, d)
    return (days * 86400 + h * 3600 + mi * 60 + sec - offset_s) * 1000 + ms


def _days_from_civil(y, m, d):
    # Howard Hinnant's algorithm, as src/time.rs has it (no month-length check, like the agent).
    y = y - 1 if m <= 2 else y
    era = y // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_UNITS_NS = {"ms": 1e6, "": 1e9, "s": 1e9, "m": 6e10, "h": 3.6e12, "d": 8.64e13}


def parse_duration(text):
    """Seconds of a duration as the config writes it (`500ms`, `5s`, `1.5s`, `2m`, `1h`, `1d`,
    bare seconds); raises ValueError. The agent's `config::duration::parse`."""
    secs, nanos = _duration_parts(text)
    return secs + nanos / 1e9


def parse_duration_ms(text):
    """Whole milliseconds of a duration (as the agent's `Duration::as_millis`)."""
    secs, nanos = _duration_parts(text)
    return secs * 1000 + nanos // 1_000_000


def _duration_parts(text):
    t = text.strip()
    split = len(t)
    for i, c in enumerate(t):
        if not ("0" <= c <= "9" or c == "."):
            split = i
            break
    num, unit = t[:split], t[split:].strip()
    scale = _UNITS_NS.get(unit)
    bad = ValueError("invalid duration %s: expected a number with ms, s, m or h (e.g. 500ms, "
                     "5s, 2m) or a number of seconds" % json.dumps(text))
    if scale is None or not num or num.startswith(".") or num.endswith(".") or num.count(".") > 1:
        raise bad
    ns = float(num) * scale
    if not (math.isfinite(ns) and 0.0 <= ns <= 315_360_000e9):
        raise bad
    return divmod(int(math.floor(ns + 0.5)), 1_000_000_000)


def _seconds(value, what):
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as e:
            raise ValueError("%s: %s" % (what, e)) from None
    if isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value) and value >= 0:
        return float(value)
    raise ValueError("%s: expected seconds (0 or more), a timedelta or a duration such as "
                     "\"90s\", found %r" % (what, value))
