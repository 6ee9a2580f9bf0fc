//! A diagnosis as plain text, for every message that is not JSON: Slack
//! (the unit line and the journal's tail), the Alertmanager annotation
//! (`plain_text`, cut to 1 KiB), Twilio (`result`), email (`plain_text`),
//! and `incidents --id` (also `notify::diagnosis_text`).

use super::Diagnosis;

/// "unit redis.service: failed (failed), result oom-kill, killed by SIGKILL,
/// 3 restarts by systemd, OOM kill"; None without a unit.
pub fn unit_line(d: &Diagnosis) -> Option<String> {
    let u = d.unit.as_ref()?;
    let mut s = format!("unit {}: {} ({})", u.name, u.active_state, u.sub_state);
    if !u.result.is_empty() {
        s.push_str(&format!(", result {}", u.result));
    }
    if let Some(c) = u.exit_code {
        s.push_str(&format!(", exit code {c}"));
    }
    if let Some(sig) = &u.exit_signal {
        s.push_str(&format!(", killed by SIG{sig}"));
    }
    if let Some(n) = u.n_restarts.filter(|n| *n > 0) {
        s.push_str(&format!(", {n} restarts by systemd"));
    }
    if let Some(m) = u.memory_bytes {
        s.push_str(&format!(", memory {}", mib(m)));
    }
    if d.oom_kill {
        s.push_str(", OOM kill");
    }
    Some(s)
}

/// The shortest useful word: "oom-kill", "exit-code 1", "signal KILL";
/// None when systemd had nothing to say.
pub fn result(d: &Diagnosis) -> Option<String> {
    let u = d.unit.as_ref()?;
    let mut parts = Vec::new();
    if d.oom_kill && u.result != "oom-kill" {
        parts.push("oom-kill".to_string());
    }
    if !u.result.is_empty() && u.result != "success" {
        parts.push(u.result.clone());
    }
    if let Some(c) = u.exit_code.filter(|c| *c != 0) {
        parts.push(format!("exit {c}"));
    }
    if let Some(sig) = &u.exit_signal {
        parts.push(format!("SIG{sig}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The journal's last `n` lines.
pub fn journal_tail(d: &Diagnosis, n: usize) -> Vec<&str> {
    let lines = d.journal.as_deref().unwrap_or_default();
    lines[lines.len().saturating_sub(n)..].iter().map(String::as_str).collect()
}

/// The whole diagnosis, one fact a line, for a mail body or an annotation.
pub fn plain_text(d: &Diagnosis) -> String {
    let mut out = Vec::new();
    out.push(format!("captured at {}", d.captured_at));
    if let Some(u) = unit_line(d) {
        out.push(u);
    } else if let Some(e) = &d.unit_error {
        out.push(format!("unit: {e}"));
    }
    if d.oom_kill && d.unit.is_none() {
        out.push("OOM kill".into());
    }
    if let Some(h) = &d.http {
        let status = h.status.map_or("no answer".to_string(), |s| format!("HTTP {s}"));
        if h.body.is_empty() {
            out.push(format!("http: {status}"));
        } else {
            out.push(format!("http: {status}: {}", h.body));
        }
    }
    let s = &d.system;
    let mut host = Vec::new();
    if let Some(m) = s.memory_used_pct {
        host.push(format!("memory {m}% used"));
    }
    if let Some(l) = s.load_per_cpu {
        host.push(format!("load {l} per CPU"));
    }
    if !s.disks_over_warn.is_empty() {
        host.push(format!("disks over warn: {}", s.disks_over_warn.join(", ")));
    }
    if !host.is_empty() {
        out.push(format!("host: {}", host.join(", ")));
    }
    if !d.top_memory.is_empty() {
        let top: Vec<String> = d
            .top_memory
            .iter()
            .map(|p| format!("{} ({}) {}", p.name, p.pid, mib(p.rss_bytes)))
            .collect();
        out.push(format!("top memory: {}", top.join(", ")));
    }
    match (&d.journal, &d.journal_error) {
        (Some(lines), _) if !lines.is_empty() => {
            out.push(format!("journal (last {} lines):", lines.len()));
            out.extend(lines.iter().map(|l| format!("  {l}")));
        }
        (Some(_), _) => out.push("journal: no lines".into()),
        (None, Some(e)) => out.push(format!("journal: {e}")),
        (None, None) => {}
    }
    out.join("\n")
}

/// At most `max` bytes of `text`, cut at a character, "…" when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::{SystemDiag, TopProcess, UnitDiag};
    use crate::probe::HttpAnswer;
    use crate::time::Timestamp;

    pub fn sample() -> Diagnosis {
        Diagnosis {
            captured_at: Timestamp(0),
            unit: Some(UnitDiag {
                name: "chatstack.service".into(),
                active_state: "failed".into(),
                sub_state: "failed".into(),
                result: "oom-kill".into(),
                exit_code: None,
                exit_signal: Some("KILL".into()),
                n_restarts: Some(3),
                memory_bytes: None,
            }),
            unit_error: None,
            oom_kill: true,
            journal: Some((1..=7).map(|i| format!("line {i}")).collect()),
            journal_error: None,
            http: Some(HttpAnswer { status: Some(502), body: "<html>Bad Gateway".into() }),
            system: SystemDiag {
                memory_used_pct: Some(97.1),
                load_per_cpu: Some(2.4),
                disks_over_warn: vec!["/var".into()],
            },
            top_memory: vec![TopProcess {
                pid: 812,
                name: "gunicorn".into(),
                rss_bytes: 734_003_200,
            }],
        }
    }

    #[test]
    fn every_fact_in_plain_text() {
        let t = plain_text(&sample());
        for want in [
            "unit chatstack.service: failed (failed), result oom-kill, killed by SIGKILL, 3 restarts by systemd, OOM kill",
            "http: HTTP 502: <html>Bad Gateway",
            "host: memory 97.1% used, load 2.4 per CPU, disks over warn: /var",
            "top memory: gunicorn (812) 700.0 MiB",
            "journal (last 7 lines):\n  line 1",
            "  line 7",
        ] {
            assert!(t.contains(want), "{want:?} not in\n{t}");
        }
        assert_eq!(result(&sample()).as_deref(), Some("oom-kill, SIGKILL"));
        assert_eq!(journal_tail(&sample(), 5), ["line 3", "line 4", "line 5", "line 6", "line 7"]);
        let mut d = sample();
        d.unit = None;
        d.journal = None;
        d.journal_error = Some("journalctl not found on PATH".into());
        assert!(plain_text(&d).contains("journal: journalctl not found on PATH"));
        assert_eq!(result(&d), None);
    }

    #[test]
    fn cut_keeps_characters_whole() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("ééé", 5).len(), 5);
        assert!(cut(&"x".repeat(2000), 1024).len() <= 1024);
    }
}
