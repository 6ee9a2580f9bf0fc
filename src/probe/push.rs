//! Push checks: passive. A job reports in — `chatstack-status ping SERVICE`
//! on the host, or `GET|POST /api/push/NAME` to `run` — and the check judges
//! how long ago the last report came and what it said.
//!
//! The pings live in the state file (`PushState`, per service); the cycle
//! hands what the state holds to the probe through `CycleCtx`, with the
//! cycle's clock, so judging reads no clock and no file: a pure function of
//! the pings and the time, tested as a table below.

use super::{CheckStatus, Outcome, Reason};
use crate::time::{Timestamp, human_duration};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// A message longer than this (in characters) is cut: it is shown on one
/// line of the dashboard, the text table and alerts.
pub const MAX_MESSAGE: usize = 200;

/// One `type: push` check.
#[derive(Debug, Clone)]
pub struct PushProbe {
    /// The service it belongs to: pings are recorded per service (the
    /// config allows one push check per service).
    pub service: String,
    /// How often the job reports in.
    pub period: Duration,
    /// How late a report may be on top of `period`.
    pub grace: Duration,
    /// A file holding the token accepted as `?token=` by the HTTP push (the
    /// server reads it when the config is loaded).
    pub token_file: Option<PathBuf>,
}

impl PushProbe {
    /// The longest a successful ping stays good: `period + grace`.
    pub fn allowed(&self) -> Duration {
        self.period.saturating_add(self.grace)
    }
}

/// One report from a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// When it was recorded (the CLI: when it took the lock; HTTP: when the
    /// server received it).
    pub at: Timestamp,
    /// False for `--fail`, a non-zero `--exit-code`, `status=down`.
    pub ok: bool,
    /// What the job said (cleaned: one line, at most `MAX_MESSAGE` characters).
    #[serde(default)]
    pub message: String,
    /// `--exit-code`, when it was a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

impl Ping {
    /// A ping from the command line: `--fail`, `--exit-code` and
    /// `--message`. The exit code is an integer 0–255, or what systemd's
    /// `$EXIT_STATUS` holds for a job killed by a signal: the signal's name
    /// (`TERM`, `SIGKILL`), a failure too. Anything else is refused, so a
    /// typo never records a success.
    pub fn from_cli(
        at: Timestamp,
        fail: bool,
        exit: Option<&str>,
        message: Option<&str>,
    ) -> Result<Ping, String> {
        let message = message.map(clean_message).unwrap_or_default();
        let Some(exit) = exit.map(str::trim) else {
            return Ok(Ping { at, ok: !fail, message, exit_code: None });
        };
        if !exit.is_empty() && exit.bytes().all(|b| b.is_ascii_digit()) {
            return match exit.parse::<u8>() {
                Ok(code) => Ok(Ping {
                    at,
                    ok: !fail && code == 0,
                    message,
                    exit_code: Some(i32::from(code)),
                }),
                Err(_) => Err(exit_code_error(exit)),
            };
        }
        let name = exit.strip_prefix("SIG").unwrap_or(exit);
        if !SIGNALS.contains(&name) {
            return Err(exit_code_error(exit));
        }
        let said = if message.is_empty() { String::new() } else { format!(": {message}") };
        Ok(Ping {
            at,
            ok: false,
            message: clean_message(&format!("exit status {name}{said}")),
            exit_code: None,
        })
    }
}

/// The signal names systemd writes to `$EXIT_STATUS` for a killed job.
const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS",
];

fn exit_code_error(found: &str) -> String {
    let shown: String = found.chars().take(40).flat_map(char::escape_debug).collect();
    format!(
        "--exit-code: expected an integer 0-255 (or a signal name such as TERM, as in systemd's $EXIT_STATUS), found \"{shown}\"; nothing recorded"
    )
}

/// What the state file remembers of one service's push check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PushState {
    /// When the check was first seen (by a cycle, or by its first ping):
    /// "before any ping" is unknown until `period + grace` after this.
    pub first_seen: Option<Timestamp>,
    /// The latest ping.
    pub last: Option<Ping>,
    /// When the latest successful ping came (a failure's detail says it).
    pub last_ok: Option<Timestamp>,
    /// Every ping ever recorded: a counter, so a lost one would show.
    pub pings: u64,
}

impl PushState {
    /// Records `count` pings of which `ping` is the latest (the HTTP queue
    /// keeps only the last per service, and how many came).
    ///
    /// The latest by time wins: a ping older than the one on record (a
    /// command that waited for the lock while a queued HTTP push got in)
    /// only counts. A recorded ping later than `now` means the clock stepped
    /// back: the new one wins then, or the check would stay stuck on it.
    pub fn record(&mut self, ping: Ping, count: u64, now: Timestamp) {
        self.pings = self.pings.saturating_add(count.max(1));
        self.first_seen.get_or_insert(ping.at);
        let newer = |prev: Timestamp| ping.at >= prev || prev > now;
        if ping.ok && self.last_ok.is_none_or(newer) {
            self.last_ok = Some(ping.at);
        }
        if self.last.as_ref().is_none_or(|l| newer(l.at)) {
            self.last = Some(ping);
        }
    }
}

/// Judges a push check at `now` from what the state holds (None: nothing yet).
pub fn check(p: &PushProbe, seen: Option<&PushState>, now: Timestamp) -> Outcome {
    let allowed = p.allowed();
    let expected = format!("expected every {} + {} grace", short(p.period), short(p.grace));
    let Some(last) = seen.and_then(|s| s.last.as_ref()) else {
        let first = seen.and_then(|s| s.first_seen).unwrap_or(now);
        let waited = now.since(first);
        if waited < allowed {
            return Outcome::not_up(
                CheckStatus::Unknown,
                Reason::PushLate,
                "waiting for the first ping",
            );
        }
        return Outcome::down(
            Reason::PushLate,
            format!(
                "no ping since the check was first seen {} ago ({first}); {expected}",
                human_duration(waited)
            ),
        );
    };
    let age = now.since(last.at);
    let when = format!("{} ago ({})", human_duration(age), last.at);
    let code = last.exit_code.map(|c| format!(", exit code {c}")).unwrap_or_default();
    let said = if last.message.is_empty() { String::new() } else { format!(": {}", last.message) };
    if !last.ok {
        let since_ok = match seen.and_then(|s| s.last_ok) {
            Some(t) => format!("last success {} ago ({t})", human_duration(now.since(t))),
            None => "no success on record".to_string(),
        };
        let late =
            if age >= allowed { format!("; nothing since, {expected}") } else { String::new() };
        return Outcome::down(
            Reason::PushFailed,
            format!("last ping {when} reported failure{code}{said}; {since_ok}{late}"),
        );
    }
    if age < allowed {
        Outcome::up(format!("last ping {when}{code}{said}"))
    } else {
        Outcome::down(
            Reason::PushLate,
            format!(
                "no ping for {} (last {}{code}{said}); {expected}",
                human_duration(age),
                last.at
            ),
        )
    }
}

/// `1d`, `1h`, `10m`, `90s`, `500ms`: how the config writes a duration
/// (probe stays below config, so it has its own few lines).
fn short(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if ms > 0 && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// A job's message as it is kept: control characters (newlines, escapes)
/// become spaces, invisible format characters (bidi overrides, zero-width)
/// go, runs of blanks become one, cut at `MAX_MESSAGE` characters.
pub fn clean_message(text: &str) -> String {
    let spaced: String = text
        .chars()
        .filter(|c| !crate::text::is_format(*c))
        .map(|c| if c.is_control() || c.is_whitespace() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = spaced.split(' ').filter(|w| !w.is_empty()).collect();
    let line = words.join(" ");
    if line.chars().count() <= MAX_MESSAGE {
        return line;
    }
    let mut cut: String = line.chars().take(MAX_MESSAGE - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_795_847_400_000); // 2026-11-28T06:30:00Z

    fn probe() -> PushProbe {
        PushProbe {
            service: "backup".into(),
            period: Duration::from_secs(3600),
            grace: Duration::from_secs(600),
            token_file: None,
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp(T0.0 + secs * 1000)
    }

    fn ping(secs: i64, ok: bool, message: &str) -> Ping {
        Ping { at: at(secs), ok, message: message.into(), exit_code: None }
    }

    fn seen(first: i64, pings: &[Ping]) -> PushState {
        let mut s = PushState { first_seen: Some(at(first)), ..Default::default() };
        for p in pings {
            s.record(p.clone(), 1, p.at);
        }
        s
    }

    #[test]
    fn judged_from_the_last_ping_and_the_clock() {
        let p = probe();
        let allowed = 4200; // period + grace, in seconds
        let good = [ping(0, true, "dump ok")];
        let bad = [ping(0, true, "dump ok"), ping(100, false, "disk full")];
        type Case = (&'static str, PushState, i64, CheckStatus, Option<Reason>, &'static str);
        let cases: Vec<Case> = vec![
            (
                "nothing yet",
                seen(0, &[]),
                0,
                CheckStatus::Unknown,
                Some(Reason::PushLate),
                "waiting for the first ping",
            ),
            (
                "nothing, just in time",
                seen(0, &[]),
                allowed - 1,
                CheckStatus::Unknown,
                Some(Reason::PushLate),
                "waiting for the first ping",
            ),
            (
                "nothing, too long",
                seen(0, &[]),
                allowed,
                CheckStatus::Down,
                Some(Reason::PushLate),
                "no ping since the check was first seen 1h 10m ago (2026-11-28T06:30:00Z); expected every 1h + 10m grace",
            ),
            (
                "fresh",
                seen(0, &good),
                5,
                CheckStatus::Up,
                None,
                "last ping 5s ago (2026-11-28T06:30:00Z): dump ok",
            ),
            (
                "young enough",
                seen(0, &good),
                allowed - 1,
                CheckStatus::Up,
                None,
                "last ping 1h 9m ago",
            ),
            (
                "late",
                seen(0, &good),
                allowed,
                CheckStatus::Down,
                Some(Reason::PushLate),
                "no ping for 1h 10m (last 2026-11-28T06:30:00Z: dump ok); expected every 1h + 10m grace",
            ),
            (
                "failed",
                seen(0, &bad),
                160,
                CheckStatus::Down,
                Some(Reason::PushFailed),
                "last ping 1m 0s ago (2026-11-28T06:31:40Z) reported failure: disk full; last success 2m 40s ago (2026-11-28T06:30:00Z)",
            ),
            (
                "failed and late",
                seen(0, &bad),
                100 + allowed,
                CheckStatus::Down,
                Some(Reason::PushFailed),
                "; nothing since, expected every 1h + 10m grace",
            ),
            (
                "failed first",
                seen(0, &[ping(1, false, "")]),
                2,
                CheckStatus::Down,
                Some(Reason::PushFailed),
                "reported failure; no success on record",
            ),
            (
                "exit code",
                seen(0, &[Ping { exit_code: Some(3), ..ping(1, false, "rsync") }]),
                2,
                CheckStatus::Down,
                Some(Reason::PushFailed),
                "reported failure, exit code 3: rsync;",
            ),
            (
                "recovered",
                seen(0, &[ping(0, false, "x"), ping(9, true, "fixed")]),
                10,
                CheckStatus::Up,
                None,
                "last ping 1s ago (2026-11-28T06:30:09Z): fixed",
            ),
            ("clock stepped back", seen(0, &good), -30, CheckStatus::Up, None, "last ping 0s ago"),
        ];
        for (what, state, now, status, reason, detail) in cases {
            let out = check(&p, Some(&state), at(now));
            assert_eq!((out.status, out.reason), (status, reason), "{what}: {}", out.detail);
            assert!(out.detail.contains(detail), "{what}: {:?} lacks {detail:?}", out.detail);
        }
        // Never seen at all: this cycle is the first.
        let out = check(&p, None, at(0));
        assert_eq!(
            (out.status, out.detail.as_str()),
            (CheckStatus::Unknown, "waiting for the first ping")
        );
    }

    #[test]
    fn the_latest_ping_wins_by_time_and_every_one_counts() {
        let mut s = PushState::default();
        s.record(ping(10, true, "b"), 3, at(10));
        assert_eq!((s.pings, s.first_seen, s.last_ok), (3, Some(at(10)), Some(at(10))));
        // An older one (it waited for the lock) counts but does not replace.
        s.record(ping(5, false, "a"), 1, at(12));
        assert_eq!((s.pings, s.last.as_ref().map(|l| l.message.as_str())), (4, Some("b")));
        s.record(ping(20, false, "c"), 1, at(20));
        assert_eq!((s.last.as_ref().map(|l| l.ok), s.last_ok), (Some(false), Some(at(10))));
        // The clock stepped back an hour: the record is "in the future", the new one wins.
        s.record(ping(-3600, true, "d"), 1, at(-3600));
        assert_eq!(s.last.as_ref().map(|l| l.message.as_str()), Some("d"));
        assert_eq!((s.last_ok, s.pings, s.first_seen), (Some(at(-3600)), 6, Some(at(10))));
    }

    #[test]
    fn command_line_pings() {
        let p = |fail, exit: Option<&str>, msg: Option<&str>| {
            Ping::from_cli(T0, fail, exit, msg).expect("a valid ping")
        };
        assert_eq!(
            p(false, None, None),
            Ping { at: T0, ok: true, message: String::new(), exit_code: None }
        );
        assert!(!p(true, None, None).ok);
        assert_eq!(
            (p(false, Some("0"), None).ok, p(false, Some("0"), None).exit_code),
            (true, Some(0))
        );
        assert_eq!(
            (p(false, Some(" 3 "), None).ok, p(false, Some("3"), None).exit_code),
            (false, Some(3))
        );
        assert_eq!(p(false, Some("255"), None).exit_code, Some(255));
        assert!(!p(true, Some("0"), None).ok, "--fail wins");
        // systemd's $EXIT_STATUS for a killed job is a signal name.
        let killed = p(false, Some("TERM"), Some("nightly"));
        assert_eq!((killed.ok, killed.message.as_str()), (false, "exit status TERM: nightly"));
        assert_eq!(p(false, Some("SIGKILL"), None).message, "exit status KILL");
        // SPEC Part 3: an integer 0-255; anything else is refused.
        for bad in ["", "notanumber", "300", "256", "-1", "+0", "1.0", "term", "0x1"] {
            let e = Ping::from_cli(T0, false, Some(bad), None).expect_err(bad);
            assert!(e.contains("expected an integer 0-255"), "{bad}: {e}");
        }
    }

    #[test]
    fn messages_are_one_readable_line() {
        assert_eq!(clean_message("  done\n\tin 3s\r\n\x1b[31mred\x07 "), "done in 3s [31mred");
        let long = clean_message(&"x".repeat(1000));
        assert_eq!(long.chars().count(), MAX_MESSAGE);
        assert!(long.ends_with('…'));
        assert_eq!(clean_message("é".repeat(MAX_MESSAGE).as_str()).chars().count(), MAX_MESSAGE);
        assert_eq!(clean_message("\n\n"), "");
    }
}
