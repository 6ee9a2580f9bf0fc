//! The heartbeat (dead man's switch): `url` when all is well, `url/fail`
//! otherwise (the healthchecks.io convention), after every full cycle.

use super::http::{AGENT, Attempt, classify_answer, classify_error, scrub_attempt};
use crate::config::Heartbeat;
use std::time::Duration;

/// Pings the heartbeat: `url` when all is well, `url/fail` otherwise (the
/// healthchecks.io convention). Errors never show the URL.
pub fn ping(hb: &Heartbeat, ok: bool, timeout: Duration) -> Result<(), String> {
    let url = heartbeat_url(&hb.url, ok);
    let secrets = [hb.url.clone()];
    let req = match ureq::http::Request::builder().method("GET").uri(&url).body(()) {
        Ok(r) => r,
        Err(_) => return Err("invalid heartbeat url".into()),
    };
    let req = AGENT.configure_request(req).timeout_global(Some(timeout)).build();
    let a = match AGENT.run(req) {
        Ok(resp) => classify_answer(resp),
        Err(err) => classify_error(&err, timeout),
    };
    match scrub_attempt(a, &secrets) {
        Attempt::Sent => Ok(()),
        Attempt::Retry { why, .. } | Attempt::Fail(why) => Err(why),
    }
}

/// `url` or `url/fail`, keeping a query string at the end.
pub fn heartbeat_url(url: &str, ok: bool) -> String {
    if ok {
        return url.to_string();
    }
    let (base, query) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    format!("{}/fail{query}", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_urls() {
        assert_eq!(heartbeat_url("https://hc/abc", true), "https://hc/abc");
        assert_eq!(heartbeat_url("https://hc/abc/", false), "https://hc/abc/fail");
        assert_eq!(heartbeat_url("https://hc/abc?x=1", false), "https://hc/abc/fail?x=1");
    }
}
