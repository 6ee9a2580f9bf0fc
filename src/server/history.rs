//! The history endpoints (`/api/uptime`, `/api/history`, `/api/incidents`,
//! `/api/resources`)
//! and the badges, answered from the history store through a small pool of
//! read-only connections, in `run` and `serve` alike. A missing or malformed
//! parameter is 400 with `{"error"}`, an unknown service 404; a database not
//! there yet (before the first cycle) or unreadable is 503.

use super::wire::{Request, Response};
use super::{Server, Web};
use crate::config::duration;
use crate::state::Health;
use crate::store::{self, StoreError, Window};
use crate::time::Timestamp;
use std::time::Duration;

/// The store's readers and what the config says about services.
pub struct History {
    pub pool: store::ReaderPool,
    pub retention: crate::config::Retention,
}

/// Readers of the history store per HTTP server (more would only contend).
pub const READERS: usize = 3;

fn json(v: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => Response::new(200, "application/json", body).with("Cache-Control", "no-store"),
        Err(_) => Response::json_error(500, "internal error"),
    }
}

/// Every store failure is a 503; the passing ones (no file before the first
/// cycle, a lock held past the busy timeout) say when to come back, as the
/// server's own "busy" answer does, so a client retries instead of giving up.
fn store_error(e: &StoreError) -> Response {
    match e {
        StoreError::Missing { .. } => {
            Response::json_error(503, "no history yet: the first check cycle has not been recorded")
                .with("Retry-After", "1")
        }
        StoreError::Locked { .. } => {
            Response::json_error(503, &e.to_string()).with("Retry-After", "1")
        }
        e => Response::json_error(503, &e.to_string()),
    }
}

/// `Some(history)` or the 404 that says history is off.
fn history(web: &Web) -> Result<&History, Response> {
    web.history
        .as_deref()
        .ok_or_else(|| Response::json_error(404, "history is off (history_db: off in the config)"))
}

/// A duration parameter (`24h`, `7d`, `90s`), or `default` when absent.
fn duration_param(req: &Request<'_>, name: &str, default: Duration) -> Result<Duration, Response> {
    match req.param(name) {
        None => Ok(default),
        // Exactly the grammar the OpenAPI document gives (no blanks around
        // or inside), so a client reading it is never surprised.
        Some(v) => {
            duration::parse(&v).ok().filter(|_| !v.contains(char::is_whitespace)).ok_or_else(|| {
                Response::json_error(
                    400,
                    &format!("{name}: expected a duration like 5m, 24h or 30d, found {v:?}"),
                )
            })
        }
    }
}

fn known<'a>(web: &'a Web, name: &str) -> Result<&'a str, Response> {
    web.services
        .iter()
        .find(|s| *s == name)
        .map(String::as_str)
        .ok_or_else(|| Response::json_error(404, &format!("unknown service {name:?}")))
}

pub fn uptime(web: &Web) -> Response {
    let h = match history(web) {
        Ok(h) => h,
        Err(r) => return r,
    };
    match h.pool.uptime_doc(&web.services, Timestamp::now()) {
        Ok(doc) => json(&doc),
        Err(e) => store_error(&e),
    }
}

pub fn history_buckets(web: &Web, req: &Request<'_>) -> Response {
    let run = || -> Result<Response, Response> {
        let h = history(web)?;
        let service = req
            .param("service")
            .ok_or_else(|| Response::json_error(400, "service: required (?service=NAME)"))?;
        let service = known(web, &service)?;
        let since = duration_param(req, "since", Duration::from_secs(24 * 3600))?;
        let step = duration_param(req, "step", Duration::from_secs(3600))?;
        store::check_history_query(since, step, &h.retention)
            .map_err(|e| Response::json_error(400, &e))?;
        h.pool
            .with(|s| s.history(service, since, step, Timestamp::now()))
            .map(|doc| json(&doc))
            .map_err(|e| store_error(&e))
    };
    run().unwrap_or_else(|r| r)
}

/// `/api/resources?since=24h`: the services' unit figures (memory, CPU),
/// at most 288 averaged points each, over at most the 48 h kept.
pub fn resources(web: &Web, req: &Request<'_>) -> Response {
    let run = || -> Result<Response, Response> {
        let h = history(web)?;
        let since = duration_param(req, "since", Duration::from_secs(24 * 3600))?;
        if since.is_zero() || since > store::resources::KEEP {
            return Err(Response::json_error(
                400,
                &format!(
                    "since: expected more than 0 and at most 48h (the figures are kept 48 h), found {:?}",
                    req.param("since").unwrap_or_default()
                ),
            ));
        }
        h.pool
            .with(|s| s.resources(&web.services, since, Timestamp::now()))
            .map(|doc| json(&doc))
            .map_err(|e| store_error(&e))
    };
    run().unwrap_or_else(|r| r)
}

pub fn incidents(web: &Web, req: &Request<'_>) -> Response {
    let run = || -> Result<Response, Response> {
        let h = history(web)?;
        let service = match req.param("service") {
            Some(s) => Some(known(web, &s)?),
            None => None,
        };
        let since = duration_param(req, "since", Duration::from_secs(30 * 24 * 3600))?;
        let limit = match req.param("limit") {
            None => 50,
            Some(v) => {
                v.parse::<usize>().ok().filter(|n| (1..=10_000).contains(n)).ok_or_else(|| {
                    Response::json_error(400, &format!("limit: expected 1 to 10000, found {v:?}"))
                })?
            }
        };
        let now = Timestamp::now();
        let from = Timestamp(now.0.saturating_sub(since.as_millis().min(i64::MAX as u128) as i64));
        h.pool
            .with(|s| s.incidents(service, from, limit, now))
            .map(|doc| json(&doc))
            .map_err(|e| store_error(&e))
    };
    run().unwrap_or_else(|r| r)
}

/// `/badge/NAME/status.svg` and `/badge/NAME/uptime/WINDOW.svg`.
pub fn badge(server: &Server, web: &Web, rest: &str) -> Response {
    let run = || -> Result<Response, Response> {
        let not_found = || Response::json_error(404, "not found");
        let (name, what) = rest.split_once('/').ok_or_else(not_found)?;
        let name = percent_encoding::percent_decode_str(name)
            .decode_utf8()
            .map_err(|_| not_found())?
            .into_owned();
        let name = known(web, &name)?;
        let (text, colour) = match what {
            "status.svg" => {
                let status = server
                    .snapshot()
                    .ok()
                    .and_then(|s| s.doc.services.iter().find(|s| s.name == name).map(|s| s.status));
                match status {
                    Some(Health::Up) => ("up".to_string(), GREEN),
                    Some(Health::Degraded) => ("degraded".to_string(), YELLOW),
                    Some(Health::Down) => ("down".to_string(), RED),
                    None => ("unknown".to_string(), GREY),
                }
            }
            w => {
                let label = w
                    .strip_prefix("uptime/")
                    .and_then(|w| w.strip_suffix(".svg"))
                    .ok_or_else(not_found)?;
                let window = BADGE_WINDOWS.iter().find(|x| x.label == label).ok_or_else(|| {
                    Response::json_error(404, "unknown window: expected 24h, 7d, 30d or 90d")
                })?;
                let h = history(web)?;
                let pct = match h.pool.with(|s| s.uptime(name, &[*window], Timestamp::now())) {
                    Ok(u) => u.windows.0.first().and_then(|(_, f)| f.uptime),
                    Err(StoreError::Missing { .. }) => None,
                    Err(e) => return Err(store_error(&e)),
                };
                match pct {
                    None => ("no data".to_string(), GREY),
                    Some(p) => (format!("{}%", percent(p)), uptime_colour(p)),
                }
            }
        };
        let label = match what {
            "status.svg" => name.to_string(),
            w => format!("{name} {}", w.trim_start_matches("uptime/").trim_end_matches(".svg")),
        };
        Ok(Response::new(200, "image/svg+xml", svg(&label, &text, colour).into_bytes())
            .with("Cache-Control", "max-age=30"))
    };
    run().unwrap_or_else(|r| r)
}

const BADGE_WINDOWS: [Window; 4] = [
    Window { label: "24h", ms: 24 * 3_600_000 },
    Window { label: "7d", ms: 7 * 24 * 3_600_000 },
    Window { label: "30d", ms: 30 * 24 * 3_600_000 },
    Window { label: "90d", ms: 90 * 24 * 3_600_000 },
];

const GREEN: &str = "#2e7d32";
const YELLOW: &str = "#b07d00";
const RED: &str = "#c62828";
const GREY: &str = "#757575";

/// 99.93, 100, 97.5: at most two decimals, never rounded up to 100.
fn percent(p: f64) -> String {
    let floored = (p * 100.0).floor() / 100.0;
    let s = format!("{floored:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn uptime_colour(p: f64) -> &'static str {
    if p >= 99.9 {
        GREEN
    } else if p >= 99.0 {
        YELLOW
    } else {
        RED
    }
}

/// Text safe inside an XML attribute or element: markup escaped, and any
/// character XML does not allow (controls, U+FFFE, U+FFFF) dropped, so the
/// badge is well-formed whatever a name holds.
fn xml_escape(s: &str) -> String {
    s.chars()
        .filter(|c| crate::config::is_xml_char(*c) && !c.is_control())
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A flat two-part badge; text widths estimated (7 px per character of Verdana 11).
fn svg(label: &str, value: &str, colour: &str) -> String {
    let width = |s: &str| 10 + 7 * s.chars().count();
    let (lw, vw) = (width(label), width(value));
    let (l, v) = (xml_escape(label), xml_escape(value));
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" aria-label="{l}: {v}"><title>{l}: {v}</title><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{vw}" height="20" fill="{colour}"/><g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle"><text x="{lx}" y="14">{l}</text><text x="{vx}" y="14">{v}</text></g></svg>"##,
        w = lw + vw,
        lx = lw / 2,
        vx = lw + vw / 2,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passing_store_failure_says_when_to_come_back() {
        let path = std::path::PathBuf::from("/x/history.db");
        let retry = |e: StoreError| {
            let r = store_error(&e);
            assert_eq!(r.status, 503);
            r.headers.iter().find(|(n, _)| *n == "Retry-After").map(|(_, v)| v.to_string())
        };
        let locked = StoreError::Locked { path: path.clone(), waited: Duration::from_secs(2) };
        assert_eq!(retry(locked).as_deref(), Some("1"));
        assert_eq!(retry(StoreError::Missing { path: path.clone() }).as_deref(), Some("1"));
        assert_eq!(retry(StoreError::DiskFull { path }), None, "not passing: no promise");
    }

    #[test]
    fn percents_never_round_up_to_100() {
        assert_eq!(percent(100.0), "100");
        assert_eq!(percent(99.999), "99.99");
        assert_eq!(percent(97.5), "97.5");
        assert_eq!(percent(0.0), "0");
    }

    #[test]
    fn badges_escape_names() {
        let s = svg("<a&b>", "up", GREEN);
        assert!(s.contains("&lt;a&amp;b&gt;") && !s.contains("<a&b>"), "{s}");
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
    }

    #[test]
    fn badges_drop_what_xml_does_not_allow() {
        let s = svg("a\u{FFFF}b\u{FFFE}\u{1}c\u{7f}", "up", GREEN);
        assert!(s.contains(">abc<"), "{s}");
        assert!(s.chars().all(|c| crate::config::is_xml_char(c) && !c.is_control()), "{s:?}");
    }
}
