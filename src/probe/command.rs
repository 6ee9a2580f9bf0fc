//! Command probe: any Nagios-style plugin, run without a shell in its own
//! process group, killed as a group at the deadline, its output capped.
//!
//! Exit 0 up, 1 degraded, 2 down, anything else (or a signal) unknown; the
//! first line of stdout, before `|`, is the detail.

use super::{CheckStatus, CommandProbe, Outcome, Reason, clean_detail};
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Output kept per stream; the rest is drained and dropped so a chatty
/// plugin never blocks on a full pipe nor grows our memory.
pub const MAX_OUTPUT: usize = 64 * 1024;

pub struct RunOutput {
    /// None when killed by a signal.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

pub enum RunError {
    Spawn(std::io::Error),
    Timeout,
}

/// Runs `argv` until it exits or `deadline` passes (then its whole process
/// group is killed). Never blocks past the deadline plus a short drain.
pub fn run_bounded(argv: &[String], deadline: Instant, cap: usize) -> Result<RunOutput, RunError> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(RunError::Spawn)?;
    let pid = child.id();
    let out_rx = drain(child.stdout.take(), cap);
    let err_rx = drain(child.stderr.take(), cap);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let left = deadline.saturating_duration_since(Instant::now());
    let status = match rx.recv_timeout(left) {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(RunError::Spawn(e)),
        Err(_) => {
            kill_group(pid);
            // Reap it so no zombie stays behind; the kill makes this prompt.
            let _ = rx.recv_timeout(Duration::from_secs(2));
            return Err(RunError::Timeout);
        }
    };
    // Descendants may keep the pipes open after the leader exits: give them
    // a moment, then kill the group so readers finish.
    let grace = Instant::now() + Duration::from_millis(200);
    let stdout = recv_until(&out_rx, grace).unwrap_or_else(|| {
        kill_group(pid);
        recv_until(&out_rx, Instant::now() + Duration::from_millis(200)).unwrap_or_default()
    });
    let stderr =
        recv_until(&err_rx, Instant::now() + Duration::from_millis(50)).unwrap_or_default();
    kill_group(pid); // anything left behind in the group
    Ok(RunOutput { code: status.code(), signal: status.signal(), stdout, stderr })
}

fn recv_until(rx: &mpsc::Receiver<Vec<u8>>, until: Instant) -> Option<Vec<u8>> {
    rx.recv_timeout(until.saturating_duration_since(Instant::now())).ok()
}

fn kill_group(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        // ESRCH (already gone) is the normal case.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>, cap: usize) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let room = cap.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
            }
            let _ = tx.send(kept);
        });
    } else {
        let _ = tx.send(Vec::new());
    }
    rx
}

pub fn check(p: &CommandProbe, deadline: Instant) -> Outcome {
    let out = match run_bounded(&p.argv, deadline, MAX_OUTPUT) {
        Ok(o) => o,
        Err(RunError::Spawn(e)) => {
            return Outcome::not_up(
                CheckStatus::Unknown,
                Reason::CheckError,
                format!("cannot run {}: {e}", p.argv[0]),
            );
        }
        Err(RunError::Timeout) => {
            return Outcome::down(
                Reason::Timeout,
                format!("{} did not finish in time; killed", p.argv[0]),
            );
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut summary = parse_plugin_output(&text).summary;
    if summary.is_empty() {
        summary = clean_detail(&String::from_utf8_lossy(&out.stderr), 200);
    }
    let status = match out.code {
        Some(0) => CheckStatus::Up,
        Some(1) => CheckStatus::Degraded,
        Some(2) => CheckStatus::Down,
        _ => CheckStatus::Unknown,
    };
    let how = match (out.code, out.signal) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "exit ?".into(),
    };
    let detail = if summary.is_empty() {
        how
    } else if status == CheckStatus::Up {
        summary
    } else {
        format!("{summary} ({how})")
    };
    match status {
        CheckStatus::Up => Outcome::up(detail),
        s => Outcome::not_up(s, Reason::CommandStatus, detail),
    }
}

/// A plugin's output: the summary line and its performance data.
#[derive(Debug, Default, PartialEq)]
pub struct PluginOutput {
    pub summary: String,
    pub perfdata: Vec<PerfDatum>,
}

/// One `'label'=value[UOM];[warn];[crit];[min];[max]` item.
#[derive(Debug, PartialEq, Clone)]
pub struct PerfDatum {
    pub label: String,
    pub value: f64,
    pub uom: String,
}

/// Parses Nagios plugin output (first line `TEXT | PERFDATA`, further lines
/// long text, perfdata also allowed after a `|` on later lines). Never fails.
pub fn parse_plugin_output(text: &str) -> PluginOutput {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let (summary, perf) = match first.split_once('|') {
        Some((s, p)) => (s, p.to_string()),
        None => (first, String::new()),
    };
    let mut perf_text = perf;
    for l in lines {
        if let Some((_, p)) = l.split_once('|') {
            perf_text.push(' ');
            perf_text.push_str(p);
        }
    }
    PluginOutput { summary: clean_detail(summary, 200), perfdata: parse_perfdata(&perf_text) }
}

fn parse_perfdata(text: &str) -> Vec<PerfDatum> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() && out.len() < 100 {
        // label: quoted (with '' as an escaped quote) or up to '='
        let (label, after) = if let Some(r) = rest.strip_prefix('\'') {
            let mut label = String::new();
            let mut chars = r.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if r[i + 1..].starts_with('\'') {
                        label.push('\'');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    label.push(c);
                }
            }
            match end {
                Some(e) => (label, &r[e..]),
                None => break,
            }
        } else {
            match rest.find('=') {
                Some(i) if !rest[..i].contains(char::is_whitespace) => {
                    (rest[..i].to_string(), &rest[i..])
                }
                _ => break,
            }
        };
        let Some(after) = after.strip_prefix('=') else { break };
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let item = &after[..end];
        rest = after[end..].trim_start();
        let value_part = item.split(';').next().unwrap_or("");
        let num_end = value_part
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
            .unwrap_or(value_part.len());
        // "e" alone could start a unit like "errors": back off if it does not parse.
        let (num, uom) = value_part.split_at(num_end);
        let Ok(value) = num.parse::<f64>() else { continue };
        if !value.is_finite() || label.is_empty() {
            continue;
        }
        out.push(PerfDatum { label, value, uom: uom.to_string() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nagios_output() {
        let o = parse_plugin_output(
            "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968 'my disk'=12%;80;90\nlong text\n",
        );
        assert_eq!(o.summary, "DISK OK - free space: / 3326 MB (56%);");
        assert_eq!(o.perfdata.len(), 2);
        assert_eq!(o.perfdata[0], PerfDatum { label: "/".into(), value: 2643.0, uom: "MB".into() });
        assert_eq!(o.perfdata[1].label, "my disk");
        assert_eq!(o.perfdata[1].uom, "%");
    }

    #[test]
    fn tolerates_garbage() {
        for t in
            ["", "|", "x|=", "OK | 'unterminated=1", "OK | a=b c=1s d=;;;", "\u{0}\u{1}|\u{2}=3"]
        {
            let _ = parse_plugin_output(t);
        }
        assert_eq!(parse_plugin_output("OK | c=1s").perfdata[0].value, 1.0);
    }
}
