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

/// Answers one request.
pub fn route(server: &Server, req: &Request<'_>, _body: &[u8]) -> Response {
    let Some(web) = server.web() else {
        return Response::json_error(500, "internal error");
    };
    let api = req.path.starts_with("/api/");
    let origin = api.then(|| allowed_origin(&web, req)).flatten();
    let push = req.path.strip_prefix("/api/push/");
    let methods = if push.is_some() { push::METHODS } else { GET_HEAD };
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
    if let Some(rest) = push {
        if origin.is_none() && req.header("origin").is_some() {
            return Response::json_error(
                403,
                "push refused: the request's Origin is not in cors_origins",
            );
        }
        let resp = push::handle(server, &web, req, rest);
        return match origin {
            Some(o) => cors(resp, &o, &web),
            None => resp,
        };
    }
    if !matches!(req.method, Method::Get | Method::Head) {
        return not_allowed(GET_HEAD);
    }
    if req.path == "/healthz" {
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
    } else if let Some(bad) = req.undecodable_param() {
        bad_query(bad)
    } else if expensive(req.path) {
        // Room is taken before the answer is built; none left: not built.
        match server.budget.take(budget::BUILD_ESTIMATE) {
            Some(building) => {
                let resp = answer(server, &web, req);
                drop(building);
                within_budget(server, resp)
            }
            None => busy(),
        }
    } else {
        within_budget(server, answer(server, &web, req))
    };
    match origin {
        Some(o) => cors(resp, &o, &web),
        None => resp,
    }
}

/// The answer for an authorized GET or HEAD.
fn answer(server: &Server, web: &Web, req: &Request<'_>) -> Response {
    match req.path {
        "/api/status" => match server.snapshot() {
            Ok(s) => Response::new(200, "application/json", s.api_json(web.stale_after)),
            Err(e) => Response::json_error(503, &e),
        }
        .with("Cache-Control", "no-store"),
        "/api/uptime" => history::uptime(web),
        "/api/history" => history::history_buckets(web, req),
        "/api/incidents" => history::incidents(web, req),
        p if p.starts_with("/badge/") => history::badge(server, web, &p["/badge/".len()..]),
        "/metrics" => {
            let snap = server.snapshot().ok();
            let mut text = metrics::render(snap.as_ref().map(|s| &s.doc), Timestamp::now());
            text.push_str(&server.extra_metrics());
            Response::new(200, metrics::CONTENT_TYPE, text.into_bytes())
                .with("Cache-Control", "no-store")
        }
        p => match www::relative_path(p)
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

/// Answers built from the history store (the others are cheap to build).
fn expensive(path: &str) -> bool {
    matches!(path, "/api/history" | "/api/incidents" | "/api/uptime") || path.starts_with("/badge/")
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
