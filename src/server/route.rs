//! The one routing function: for every request, whatever its path, the
//! same order of decisions — CORS preflight, method, `/healthz` (never
//! behind auth), auth, then the path. Every answer sets its Content-Type.
//! `/api/push/NAME` is the exception after the preflight: the one path that
//! takes POST, with its own auth (basic auth, or the check's token), in
//! `push.rs`.

use super::wire::{Method, Request, Response};
use super::{Server, Web, budget, history, push, www};
use crate::metrics;
use crate::time::Timestamp;
use std::borrow::Cow;

const GET_HEAD: &str = "GET, HEAD";

/// The OpenAPI 3.1 document of this server (`GET /api/openapi.json`; also
/// installed as /usr/share/chatstack-status/openapi.json). A unit test holds
/// it to `ROUTES`, path for path and method for method.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What answers a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    Status,
    Uptime,
    History,
    Incidents,
    Resources,
    BadgeStatus,
    BadgeUptime,
    Metrics,
    Healthz,
    Push,
    OpenApi,
    /// A dashboard file (`/`, `/index.html`, `/static/…`).
    Www,
}

/// One path the server answers: an OpenAPI path template (`{name}` matches
/// one segment, or with a literal suffix such as `{window}.svg` a segment
/// ending so; a last `{name}` alone takes the rest of the path, slashes too,
/// as `/static/js/status.js` needs), the methods it takes and its handler.
#[derive(Debug)]
pub struct Route {
    pub path: &'static str,
    pub methods: &'static str,
    /// Answered without basic auth (`/healthz`; `/api/push/…` has its own).
    pub open: bool,
    handler: Handler,
}

const fn get(path: &'static str, handler: Handler) -> Route {
    Route { path, methods: GET_HEAD, open: false, handler }
}

/// Every path served, in matching order (the first match wins: concrete
/// paths before the templates that would also match them). `route` answers
/// nothing else (404), so this table *is* what the server answers, and the
/// OpenAPI document is tested against it.
pub const ROUTES: &[Route] = &[
    get("/api/status", Handler::Status),
    get("/api/uptime", Handler::Uptime),
    get("/api/history", Handler::History),
    get("/api/incidents", Handler::Incidents),
    get("/api/resources", Handler::Resources),
    get("/api/openapi.json", Handler::OpenApi),
    Route {
        path: "/api/push/{service}",
        methods: push::METHODS,
        open: true,
        handler: Handler::Push,
    },
    get("/badge/{service}/status.svg", Handler::BadgeStatus),
    get("/badge/{service}/uptime/{window}.svg", Handler::BadgeUptime),
    get("/metrics", Handler::Metrics),
    Route { path: "/healthz", methods: GET_HEAD, open: true, handler: Handler::Healthz },
    get("/", Handler::Www),
    get("/index.html", Handler::Www),
    get("/static/admin_status.html", Handler::Www),
    get("/static/js/status.js", Handler::Www),
    get("/static/{file}", Handler::Www),
];

/// The route `path` matches, and the raw (still percent-encoded) text of
/// its last template parameter (`service` of a badge or push, `file`).
fn find(path: &str) -> Option<(&'static Route, &str)> {
    ROUTES.iter().find_map(|r| matches(r.path, path).map(|p| (r, p)))
}

/// Whether `path` matches `template`; the text of its last parameter if so.
fn matches<'p>(template: &str, path: &'p str) -> Option<&'p str> {
    let segs: Vec<&str> = template.split('/').collect();
    let mut rest = path;
    let mut param = "";
    for (i, seg) in segs.iter().enumerate() {
        if i > 0 {
            rest = rest.strip_prefix('/')?;
        }
        let end = rest.find('/').unwrap_or(rest.len());
        match seg.strip_prefix('{').and_then(|s| s.split_once('}')) {
            // A last bare parameter takes the rest, slashes too.
            Some((_, "")) if i + 1 == segs.len() => return (!rest.is_empty()).then_some(rest),
            Some((_, suffix)) => {
                param = rest[..end].strip_suffix(suffix).filter(|t| !t.is_empty())?;
            }
            None if rest[..end] == **seg => {}
            None => return None,
        }
        rest = &rest[end..];
    }
    rest.is_empty().then_some(param)
}

/// Answers one request.
pub fn route(server: &Server, req: &Request<'_>, _body: &[u8]) -> Response {
    let Some(web) = server.web() else {
        return Response::json_error(500, "internal error");
    };
    let api = req.path.starts_with("/api/");
    let origin = api.then(|| allowed_origin(&web, req)).flatten();
    let found = find(req.path);
    let methods = found.map_or(GET_HEAD, |(r, _)| r.methods);
    if req.method == Method::Options {
        return match origin {
            // A CORS preflight carries no credentials: answered without auth.
            Some(o) => cors(Response::new(204, "text/plain", &[][..]), &o, &web)
                .with("Access-Control-Allow-Methods", methods)
                .with("Access-Control-Allow-Headers", "Authorization")
                .with("Access-Control-Max-Age", "600"),
            None => not_allowed(methods),
        };
    }
    // The one path that takes POST, with its own auth (basic, or the
    // check's token): it answers for itself. A push is a GET any web page
    // could make a browser send: one from a page whose origin is not
    // allowed is refused, whatever it carries.
    if let Some((Route { handler: Handler::Push, .. }, name)) = found {
        if origin.is_none() && req.header("origin").is_some() {
            return Response::json_error(
                403,
                "push refused: the request's Origin is not in cors_origins",
            );
        }
        let resp = push::handle(server, &web, req, name);
        return match origin {
            Some(o) => cors(resp, &o, &web),
            None => resp,
        };
    }
    if !matches!(req.method, Method::Get | Method::Head) {
        return not_allowed(GET_HEAD);
    }
    if let Some((Route { handler: Handler::Healthz, .. }, _)) = found {
        let (ok, why) = server.healthy(&web);
        let body =
            serde_json::to_vec(&serde_json::json!({"ok": ok, "detail": why})).unwrap_or_default();
        return Response::new(if ok { 200 } else { 503 }, "application/json", body)
            .with("Cache-Control", "no-store");
    }
    let resp = if !authorized(&web, req) {
        // With CORS headers too, so another origin's page can tell "log in"
        // from "unreachable".
        Response::json_error(401, "authentication required")
            .with("WWW-Authenticate", "Basic realm=\"chatstack-status\", charset=\"UTF-8\"")
    } else if let Some(bad) =
        found.filter(|(r, _)| reads_query(r.handler)).and_then(|_| req.undecodable_param())
    {
        bad_query(bad)
    } else if let Some((r, _)) = found.filter(|(r, _)| expensive(r.handler)) {
        // Room is taken before the answer is built; none left: not built.
        match server.budget.take(budget::BUILD_ESTIMATE) {
            Some(building) => {
                let resp = answer(server, &web, req, r.handler);
                drop(building);
                within_budget(server, resp)
            }
            None => busy(),
        }
    } else {
        match found {
            Some((r, _)) => within_budget(server, answer(server, &web, req, r.handler)),
            None => Response::json_error(404, "not found"),
        }
    };
    match origin {
        Some(o) => cors(resp, &o, &web),
        None => resp,
    }
}

/// The answer for an authorized GET or HEAD of a known route.
fn answer(server: &Server, web: &Web, req: &Request<'_>, h: Handler) -> Response {
    match h {
        Handler::Status => match server.snapshot() {
            Ok(s) => Response::new(200, "application/json", s.api_json(web.stale_after)),
            Err(e) => Response::json_error(503, &e),
        }
        .with("Cache-Control", "no-store"),
        Handler::Uptime => history::uptime(web),
        Handler::History => history::history_buckets(web, req),
        Handler::Incidents => history::incidents(web, req),
        Handler::Resources => history::resources(web, req),
        Handler::BadgeStatus | Handler::BadgeUptime => {
            history::badge(server, web, &req.path["/badge/".len()..])
        }
        Handler::OpenApi => Response::new(200, "application/json", OPENAPI.as_bytes())
            .with("Cache-Control", "no-cache"),
        Handler::Metrics => {
            let snap = server.snapshot().ok();
            let mut text = metrics::render(snap.as_ref().map(|s| &s.doc), Timestamp::now());
            text.push_str(&server.extra_metrics());
            Response::new(200, metrics::CONTENT_TYPE, text.into_bytes())
                .with("Cache-Control", "no-store")
        }
        // Routed elsewhere before auth; here only for a complete match.
        Handler::Healthz | Handler::Push => Response::json_error(404, "not found"),
        Handler::Www => match www::relative_path(req.path)
            .and_then(|rel| www::lookup(web.www_dir.as_deref(), &rel).map(|b| (rel, b)))
        {
            Some((rel, bytes)) => {
                Response::new(200, www::content_type(&rel), bytes).with("Cache-Control", "no-cache")
            }
            None => Response::json_error(404, "not found"),
        },
    }
}

/// 400 for a query parameter that is not UTF-8 once decoded: never read as
/// if it were absent (a push with `status=%FF` was recorded as up).
pub(super) fn bad_query(raw: &str) -> Response {
    let shown: String = raw.chars().take(64).collect();
    Response::json_error(
        400,
        &format!("query parameter {shown:?} is not valid UTF-8 once percent-decoded"),
    )
}

/// The routes that read query parameters (others ignore the query).
fn reads_query(h: Handler) -> bool {
    matches!(h, Handler::History | Handler::Incidents | Handler::Resources)
}

/// Answers built from the history store (the others are cheap to build).
fn expensive(h: Handler) -> bool {
    matches!(
        h,
        Handler::Uptime
            | Handler::History
            | Handler::Incidents
            | Handler::Resources
            | Handler::BadgeStatus
            | Handler::BadgeUptime
    )
}

fn busy() -> Response {
    Response::json_error(
        503,
        "busy: too many large answers are waiting for their clients to read them; retry shortly",
    )
    .with("Retry-After", "1")
    .with("Cache-Control", "no-store")
}

/// Holds a large built answer's bytes in the server's budget until it is
/// written, or answers 503 when they do not fit. Small answers and bytes
/// compiled into the binary cost nothing.
fn within_budget(server: &Server, mut resp: Response) -> Response {
    if matches!(resp.body, Cow::Borrowed(_)) || resp.body.len() <= budget::SMALL {
        return resp;
    }
    match server.budget.take(resp.body.len()) {
        Some(held) => {
            resp.held = Some(held);
            resp
        }
        None => busy(),
    }
}

fn not_allowed(methods: &'static str) -> Response {
    let msg = if methods == GET_HEAD {
        "method not allowed: use GET or HEAD"
    } else {
        "method not allowed: use GET, HEAD or POST"
    };
    Response::json_error(405, msg).with("Allow", methods)
}

/// The request's Origin when the config allows it.
fn allowed_origin(web: &Web, req: &Request<'_>) -> Option<String> {
    let o = req.header_str("origin")?;
    if web.cors_origins.iter().any(|c| c == "*") {
        return Some("*".to_string());
    }
    web.cors_origins.iter().any(|c| c == o).then(|| o.to_string())
}

/// CORS headers for an allowed origin. A literal `*` never comes with
/// credentials (config forbids `*` together with basic_auth); a named
/// origin gets them when auth is on, so its page can send the admin's login.
fn cors(resp: Response, origin: &str, web: &Web) -> Response {
    if origin == "*" {
        return resp.with("Access-Control-Allow-Origin", "*");
    }
    let resp = resp
        .with("Access-Control-Allow-Origin", Cow::Owned(origin.to_string()))
        .with("Vary", "Origin");
    if web.auth.is_some() { resp.with("Access-Control-Allow-Credentials", "true") } else { resp }
}

pub(super) fn authorized(web: &Web, req: &Request<'_>) -> bool {
    use subtle::ConstantTimeEq;
    match &web.auth {
        None => true,
        Some(expected) => req.header("authorization").is_some_and(|given| {
            // Constant time in the content; the length of our own value is no secret.
            given.len() == expected.len() && bool::from(given.ct_eq(expected))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn document() -> Value {
        serde_json::from_str(OPENAPI).expect("src/server/openapi.json is JSON")
    }

    /// The operations a route's methods call for: HEAD goes with GET (the
    /// document says so once), POST is described where taken.
    fn operations(methods: &str) -> BTreeSet<String> {
        methods.split(", ").filter(|m| *m != "HEAD").map(str::to_ascii_lowercase).collect()
    }

    #[test]
    fn the_openapi_document_describes_exactly_the_routes_served() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"), "bump openapi.json too");
        let paths = doc["paths"].as_object().expect("paths");
        let described: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
        let served: BTreeSet<&str> = ROUTES.iter().map(|r| r.path).collect();
        assert_eq!(served.len(), ROUTES.len(), "a route listed twice");
        let undescribed: Vec<_> = served.difference(&described).collect();
        let unserved: Vec<_> = described.difference(&served).collect();
        assert!(undescribed.is_empty(), "served but not in openapi.json: {undescribed:?}");
        assert!(unserved.is_empty(), "in openapi.json but not served: {unserved:?}");
        for r in ROUTES {
            let item = paths[r.path].as_object().expect("a path item");
            let ops: BTreeSet<String> = item
                .keys()
                .filter(|k| {
                    ["get", "put", "post", "delete", "options", "head", "patch"]
                        .contains(&k.as_str())
                })
                .cloned()
                .collect();
            assert_eq!(ops, operations(r.methods), "{}: methods", r.path);
            for op in &ops {
                let o = &item[op];
                // Open routes say so; the rest inherit the document's
                // (basic auth when configured).
                let open = o["security"].as_array().is_some_and(|s| {
                    s.iter().any(|x| x == &serde_json::json!({}))
                        && !s.iter().any(|x| x.get("basicAuth").is_some())
                });
                assert_eq!(open, r.handler == Handler::Healthz, "{} {op}: security", r.path);
                let codes: Vec<&String> =
                    o["responses"].as_object().expect("responses").keys().collect();
                assert!(codes.iter().any(|c| c.starts_with('2')), "{} {op}: no success", r.path);
                if !r.open {
                    assert!(codes.iter().any(|c| *c == "401"), "{} {op}: no 401", r.path);
                }
                // Every path parameter of the template is declared.
                let mut declared: BTreeSet<String> = BTreeSet::new();
                for p in item
                    .get("parameters")
                    .into_iter()
                    .chain(o.get("parameters"))
                    .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                {
                    if p["in"] == "path" {
                        declared.insert(p["name"].as_str().unwrap_or("").to_string());
                    }
                }
                let in_template: BTreeSet<String> = r
                    .path
                    .split('{')
                    .skip(1)
                    .filter_map(|s| s.split_once('}').map(|(n, _)| n.to_string()))
                    .collect();
                assert_eq!(declared, in_template, "{} {op}: path parameters", r.path);
            }
        }
    }

    #[test]
    fn every_route_matches_its_own_example_and_nothing_else_does() {
        let cases = [
            ("/api/status", Some("/api/status")),
            ("/api/status/", None),
            ("/api/statusx", None),
            ("/api/push/backup", Some("/api/push/{service}")),
            ("/api/push/a%2Fb", Some("/api/push/{service}")),
            ("/api/push/", None),
            ("/badge/Web/status.svg", Some("/badge/{service}/status.svg")),
            ("/badge/Web/uptime/24h.svg", Some("/badge/{service}/uptime/{window}.svg")),
            ("/badge/Web/uptime/.svg", None),
            ("/badge/Web/uptime/24h.png", None),
            ("/badge//status.svg", None),
            ("/badge/a/b/status.svg", None),
            ("/", Some("/")),
            ("/index.html", Some("/index.html")),
            ("/static/js/status.js", Some("/static/js/status.js")),
            ("/static/css/x.css", Some("/static/{file}")),
            ("/static/", None),
            ("/healthz", Some("/healthz")),
            ("/healthz/x", None),
            ("/nope", None),
        ];
        for (path, want) in cases {
            assert_eq!(find(path).map(|(r, _)| r.path), want, "{path}");
        }
        assert_eq!(find("/api/push/a%2Fb").map(|(_, p)| p), Some("a%2Fb"));
        assert_eq!(find("/static/css/x.css").map(|(_, p)| p), Some("css/x.css"));
    }
}
