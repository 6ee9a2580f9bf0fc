//! `GET|POST /api/push/NAME?status=up|down&msg=…&token=…`: a job reports in
//! to a push check over HTTP, in `run` only.
//!
//! The handler never writes the state file (it has one writer at a time,
//! under its lock): it puts the ping in the `Inbox`, in memory, and the
//! daemon's next cycle takes the inbox under the state lock and records it,
//! so the state file is written once per cycle however many pings come.
//! The inbox holds at most one ping per push check (the latest, with how
//! many came), so a flood costs a counter, not memory. `serve` has no cycle
//! to judge a push: there the path is 404 and says so.

use super::wire::{Method, Request, Response};
use super::{Server, Web};
use crate::probe::push::{Ping, clean_message};
use crate::time::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;

/// The methods `/api/push/NAME` takes (the one path that accepts POST).
pub const METHODS: &str = "GET, HEAD, POST";

/// HTTP pushes waiting for the next cycle.
#[derive(Default)]
pub struct Inbox {
    pending: Mutex<HashMap<String, Queued>>,
}

/// The latest ping of one service and how many came since the last take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub ping: Ping,
    pub count: u64,
}

impl Inbox {
    /// Queues a ping for `service` (a configured push check: the caller
    /// checked), stamped with the time it is queued. Returns that time.
    pub fn add(&self, service: &str, ok: bool, message: String) -> Timestamp {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Stamped under the lock: a cycle that took the inbox before this
        // saw none of it, one after sees all of it.
        let at = Timestamp::now();
        let ping = Ping { at, ok, message, exit_code: None };
        match pending.get_mut(service) {
            Some(q) => {
                q.ping = ping;
                q.count = q.count.saturating_add(1);
            }
            None => {
                pending.insert(service.to_string(), Queued { ping, count: 1 });
            }
        }
        at
    }

    /// Everything queued, emptying the inbox (the daemon's cycle, under the
    /// state lock).
    pub fn take(&self) -> Vec<(String, Queued)> {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *pending).into_iter().collect()
    }

    /// Puts back what `take` returned when the cycle could not save it:
    /// counted with what came meanwhile, the later ping kept.
    pub fn requeue(&self, taken: Vec<(String, Queued)>) {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (service, old) in taken {
            match pending.get_mut(&service) {
                Some(q) => q.count = q.count.saturating_add(old.count),
                None => {
                    pending.insert(service, old);
                }
            }
        }
    }
}

/// Who may push to one push check, read from the config at start and reload.
#[derive(Clone)]
pub struct Gate {
    /// The first line of the check's `token_file` (blanks around it
    /// trimmed), accepted as `?token=`.
    pub token: Option<Vec<u8>>,
}

/// The shortest token a `token_file` may hold: 16 characters of even a
/// small alphabet are beyond guessing at the throttled rate below.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The push checks' gates by service name, reading every `token_file`
/// (bounded, never blocking on a FIFO): an unreadable, empty or short one is
/// an error at start (and in `validate`) and a kept old config on reload.
pub fn gates(c: &crate::config::Config) -> Result<HashMap<String, Gate>, String> {
    let mut out = HashMap::new();
    for svc in &c.services {
        for check in &svc.checks {
            let crate::probe::Probe::Push(p) = &check.probe else { continue };
            let token = match &p.token_file {
                None => None,
                Some(path) => {
                    let what = format!("token_file of service {:?}", svc.name);
                    let text = super::read_secret(path, &what)?;
                    let first = text.lines().next().unwrap_or("").trim();
                    if first.is_empty() {
                        return Err(format!("{}: {what}: the first line is empty", path.display()));
                    }
                    let n = first.chars().count();
                    if n < MIN_TOKEN_CHARS {
                        return Err(format!(
                            "{}: {what}: the token is {n} characters long; at least {MIN_TOKEN_CHARS} are needed (e.g. `openssl rand -hex 16`)",
                            path.display()
                        ));
                    }
                    Some(first.as_bytes().to_vec())
                }
            };
            out.insert(svc.name.clone(), Gate { token });
        }
    }
    Ok(out)
}

/// `validate`'s warnings: push checks that anyone who reaches `listen` may
/// report up (hiding a failure) or down, having neither a `token_file` nor
/// `basic_auth` in front of them.
pub fn open_push_warnings(c: &crate::config::Config) -> Vec<String> {
    if c.basic_auth.is_some() {
        return Vec::new();
    }
    c.services
        .iter()
        .filter(|svc| {
            svc.checks.iter().any(|ch| {
                matches!(&ch.probe, crate::probe::Probe::Push(p) if p.token_file.is_none())
            })
        })
        .map(|svc| {
            format!(
                "service {:?}: its push check has no token_file and basic_auth is off: any client that reaches {} can report it up or down over HTTP",
                svc.name, c.listen
            )
        })
        .collect()
}

/// Answers `/api/push/{rest}` (CORS is added by the caller).
pub fn handle(server: &Server, web: &Web, req: &Request<'_>, rest: &str) -> Response {
    if !matches!(req.method, Method::Get | Method::Head | Method::Post) {
        return Response::json_error(405, "method not allowed: use GET, HEAD or POST")
            .with("Allow", METHODS);
    }
    let Some(live) = server.live() else {
        return Response::json_error(
            404,
            "no pushes here: `serve` only shows the status file that `check` writes, and has no cycle to judge a push; push to `run`, or record it on the host with `chatstack-status ping SERVICE`",
        );
    };
    if let Some(bad) = req.undecodable_param() {
        return super::route::bad_query(bad);
    }
    let name = percent_encoding::percent_decode_str(rest).decode_utf8().ok();
    let gate = name.as_deref().and_then(|n| web.pushes.get(n));
    let basic = web.auth.is_some() && super::route::authorized(web, req);
    let Some((name, gate)) = name.as_deref().zip(gate) else {
        // Behind basic auth, an unknown name is not told from a known one.
        if web.auth.is_some() && !basic {
            return unauthorized(web);
        }
        return Response::json_error(404, "not found: no push check by that service name");
    };
    let given = req.param("token").filter(|_| !basic && gate.token.is_some());
    // A client that guessed wrong too often waits: its token is not even
    // looked at, so guessing runs at the refill rate at most.
    if given.is_some()
        && let Some(wait) = server.push_throttle.locked(req.peer)
    {
        return Response::json_error(
            429,
            "too many wrong push tokens from this address: retry later",
        )
        .with("Retry-After", wait.to_string());
    }
    let token = gate.token.as_deref().zip(given.as_deref()).is_some_and(|(t, given)| {
        use subtle::ConstantTimeEq;
        // Constant time in the content; the length of our own token is no secret.
        given.len() == t.len() && bool::from(given.as_bytes().ct_eq(t))
    });
    let open = web.auth.is_none() && gate.token.is_none();
    if !(basic || token || open) {
        if given.is_some() {
            server.push_throttle.failed(req.peer);
        }
        return unauthorized(web);
    }
    let ok = match req.param("status").as_deref() {
        None | Some("up") => true,
        Some("down") => false,
        Some(other) => {
            return Response::json_error(
                400,
                &format!("status: expected up or down, found {:?}", clean_message(other)),
            );
        }
    };
    let message = req.param("msg").map(|m| clean_message(&m)).unwrap_or_default();
    let at = live.pushes.add(name, ok, message.clone());
    let body = serde_json::json!({
        "service": name,
        "status": if ok { "up" } else { "down" },
        "message": message,
        "at": at,
        "recorded": "by the next cycle",
    });
    Response::new(200, "application/json", serde_json::to_vec(&body).unwrap_or_default())
        .with("Cache-Control", "no-store")
}

/// Wrong push tokens per client address, as token buckets: each address
/// may guess wrong `BURST` times at once, then once per `REFILL`; beyond,
/// its pushes with a token are 429 until a guess is due. IPv6 clients are
/// counted per /64 (one host holds a whole one). At most `MAX_CLIENTS`
/// addresses are remembered (the one that failed longest ago is forgotten
/// first), so the table's memory is bounded whoever guesses.
#[derive(Default)]
pub struct Throttle {
    table: Mutex<HashMap<std::net::IpAddr, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    /// Guesses left at `at` (refilled with time).
    left: f64,
    at: std::time::Instant,
}

const BURST: f64 = 10.0;
const REFILL: std::time::Duration = std::time::Duration::from_secs(1);
const MAX_CLIENTS: usize = 4096;

impl Bucket {
    fn now(self, now: std::time::Instant) -> f64 {
        let refilled = now.duration_since(self.at).as_secs_f64() / REFILL.as_secs_f64();
        (self.left + refilled).min(BURST)
    }
}

fn client_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.into(),
            None => std::net::Ipv6Addr::from(v6.to_bits() & !((1u128 << 64) - 1)).into(),
        },
        v4 => v4,
    }
}

impl Throttle {
    /// Seconds to wait when `peer` has no guess left, else None.
    pub fn locked(&self, peer: Option<std::net::IpAddr>) -> Option<u64> {
        let key = client_key(peer?);
        let table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let left = table.get(&key)?.now(std::time::Instant::now());
        (left < 1.0).then(|| ((1.0 - left) * REFILL.as_secs_f64()).ceil().max(1.0) as u64)
    }

    /// Counts a wrong token from `peer`.
    pub fn failed(&self, peer: Option<std::net::IpAddr>) {
        let Some(ip) = peer else { return };
        let key = client_key(ip);
        let now = std::time::Instant::now();
        let mut table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !table.contains_key(&key) && table.len() >= MAX_CLIENTS {
            // Forget those who have their whole burst back; else the stalest.
            table.retain(|_, b| b.now(now) < BURST);
            if table.len() >= MAX_CLIENTS
                && let Some(oldest) = table.iter().min_by_key(|(_, b)| b.at).map(|(k, _)| *k)
            {
                table.remove(&oldest);
            }
        }
        let b = table.entry(key).or_insert(Bucket { left: BURST, at: now });
        *b = Bucket { left: (b.now(now) - 1.0).max(0.0), at: now };
    }

    /// Addresses remembered now (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}

/// 401: with basic auth on, its challenge too (a token alone has none).
fn unauthorized(web: &Web) -> Response {
    let resp = Response::json_error(
        401,
        "authentication required: basic auth, or ?token= from the check's token_file",
    );
    if web.auth.is_some() {
        resp.with("WWW-Authenticate", "Basic realm=\"chatstack-status\", charset=\"UTF-8\"")
    } else {
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_tokens_are_throttled_per_client_and_the_table_stays_bounded() {
        let t = Throttle::default();
        let me: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let other: std::net::IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..BURST as usize {
            assert_eq!(t.locked(Some(me)), None);
            t.failed(Some(me));
        }
        assert_eq!(t.locked(Some(me)), Some(1), "the burst is spent");
        assert_eq!(t.locked(Some(other)), None, "others are not held back");
        // One /64 is one client; a v4-mapped address is its v4 address.
        let a: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8::ffff:2".parse().unwrap();
        for _ in 0..BURST as usize {
            t.failed(Some(a));
        }
        assert!(t.locked(Some(b)).is_some());
        let mapped: std::net::IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert!(t.locked(Some(mapped)).is_some());
        // However many addresses guess, the table holds MAX_CLIENTS at most.
        for i in 0..(MAX_CLIENTS as u32 + 500) {
            t.failed(Some(std::net::Ipv4Addr::from(0x0b00_0000 + i).into()));
        }
        assert!(t.len() <= MAX_CLIENTS, "{}", t.len());
    }

    #[test]
    fn the_inbox_keeps_the_last_ping_per_service_and_counts_them_all() {
        let inbox = Inbox::default();
        let t1 = inbox.add("backup", true, "one".into());
        let t2 = inbox.add("backup", false, "two".into());
        inbox.add("sync", true, String::new());
        assert!(t2 >= t1);
        let mut got = inbox.take();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].0.as_str(), got[0].1.count), ("backup", 2));
        assert_eq!(
            got[0].1.ping,
            Ping { at: t2, ok: false, message: "two".into(), exit_code: None }
        );
        assert_eq!((got[1].0.as_str(), got[1].1.count), ("sync", 1));
        assert!(inbox.take().is_empty(), "taken once");
        // A cycle that could not save puts them back, under what came since.
        inbox.add("sync", false, "newer".into());
        inbox.requeue(got);
        let mut again = inbox.take();
        again.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!((again[0].1.count, again[0].1.ping.at), (2, t2));
        assert_eq!((again[1].1.count, again[1].1.ping.message.as_str()), (2, "newer"));
    }
}
