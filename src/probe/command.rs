//! Command probe: any Nagios-style plugin, run without a shell in its own
//! process group, killed as a group at the deadline, its output capped.
//!
//! Exit 0 up, 1 degraded, 2 down, anything else (or a signal) unknown; the
//! first line of stdout, before `|`, is the detail's summary line, and the
//! Nagios long output after it follows in the detail after a newline
//! (capped), for the JSON and the dashboard; one-line outputs show the
//! summary only.

use super::child::{RunError, run_bounded};
use super::{CheckStatus, CommandProbe, Outcome, Reason, clean_detail};
use std::time::Instant;

/// Output kept per stream; the rest is read and dropped so a chatty
/// plugin never blocks on a full pipe nor grows our memory.
pub const MAX_OUTPUT: usize = 64 * 1024;
/// Long output kept in a check's detail, in bytes.
pub const MAX_LONG_TEXT: usize = 4 * 1024;

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
    let parsed = parse_plugin_output(&text);
    let mut summary = parsed.summary;
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
    let mut detail = if summary.is_empty() {
        how
    } else if status == CheckStatus::Up {
        summary
    } else {
        format!("{summary} ({how})")
    };
    if !parsed.long_text.is_empty() {
        detail.push('\n');
        detail.push_str(&parsed.long_text);
    }
    match status {
        CheckStatus::Up => Outcome::up(detail),
        s => Outcome::not_up(s, Reason::CommandStatus, detail),
    }
}

/// A plugin's output: the summary line, the long text and the performance data.
#[derive(Debug, Default, PartialEq)]
pub struct PluginOutput {
    pub summary: String,
    /// The lines after the first, up to the `|` that starts more perfdata;
    /// control characters removed, at most `MAX_LONG_TEXT` bytes.
    pub long_text: String,
    pub perfdata: Vec<PerfDatum>,
}

/// One `'label'=value[UOM];[warn];[crit];[min];[max]` item.
#[derive(Debug, PartialEq, Clone)]
pub struct PerfDatum {
    pub label: String,
    pub value: f64,
    pub uom: String,
}

/// Parses Nagios plugin output (the plugin API's layout: first line
/// `TEXT | PERFDATA`, then long text lines, the first `|` in them starting
/// more perfdata, which runs to the end). Never fails.
pub fn parse_plugin_output(text: &str) -> PluginOutput {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let (summary, perf) = match first.split_once('|') {
        Some((s, p)) => (s, p.to_string()),
        None => (first, String::new()),
    };
    let mut perf_text = perf;
    let mut long = Vec::new();
    let mut in_perf = false;
    for l in lines {
        if in_perf {
            perf_text.push(' ');
            perf_text.push_str(l);
        } else if let Some((t, p)) = l.split_once('|') {
            long.push(t);
            perf_text.push(' ');
            perf_text.push_str(p);
            in_perf = true;
        } else {
            long.push(l);
        }
    }
    PluginOutput {
        summary: clean_detail(summary, 200),
        long_text: long_text(&long),
        perfdata: parse_perfdata(&perf_text),
    }
}

/// Long text lines cleaned for a detail: control characters dropped (tabs
/// become spaces), trailing blanks and empty edge lines removed, cut at
/// `MAX_LONG_TEXT` bytes on a character boundary with "…".
fn long_text(lines: &[&str]) -> String {
    let cleaned: Vec<String> = lines
        .iter()
        .map(|l| {
            l.chars()
                .map(|c| if c == '\t' { ' ' } else { c })
                .filter(|c| !crate::text::is_control_or_format(*c))
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect();
    let start = cleaned.iter().position(|l| !l.is_empty()).unwrap_or(cleaned.len());
    let end = cleaned.iter().rposition(|l| !l.is_empty()).map_or(start, |i| i + 1);
    let mut text = cleaned[start..end].join("\n");
    if text.len() > MAX_LONG_TEXT {
        let mut cut = MAX_LONG_TEXT - '…'.len_utf8();
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
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
    fn long_text_runs_to_the_first_pipe_and_perfdata_after_it() {
        let o = parse_plugin_output(
            "DISK WARNING - 91%\n\n/ 91%\t used \n/home 40% | /=91%;80;90\n/home=40%\nvar=1\n",
        );
        assert_eq!(o.summary, "DISK WARNING - 91%");
        assert_eq!(o.long_text, "/ 91%  used\n/home 40%");
        let labels: Vec<&str> = o.perfdata.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["/", "/home", "var"]);
        assert_eq!(parse_plugin_output("OK\n").long_text, "");
        assert_eq!(parse_plugin_output("OK\n\u{1b}[31m\n").long_text, "[31m");

        let big = format!("OK\n{}", "é".repeat(5000));
        let t = parse_plugin_output(&big).long_text;
        assert!(t.len() <= MAX_LONG_TEXT && t.ends_with('…'), "{}", t.len());
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

#[cfg(test)]
mod fuzz;
