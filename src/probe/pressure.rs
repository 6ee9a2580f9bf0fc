//! `type: pressure`: Linux pressure stall information, the share of time
//! tasks waited for a resource (`/proc/pressure/cpu|memory|io`), judged on
//! `avg60` of the `some` line (or `full`). A kernel without PSI is
//! `unknown` with `check_error`: the figure is not there to judge.

use super::owned::{
    Built, KeyType, Keys, KindDef, Measured, OwnedProbe, Thresholds, Values, judge,
};
use super::{CheckStatus, CycleCtx, Outcome, Reason};
use std::sync::Arc;

const RESOURCES: &[&str] = &["cpu", "memory", "io"];

pub static KIND: KindDef = KindDef {
    name: "pressure",
    keys: &[
        ("resource", KeyType::OneOf(RESOURCES)),
        ("warn", KeyType::Number),
        ("crit", KeyType::Number),
        ("full", KeyType::Bool),
        ("for", KeyType::Count),
    ],
    build,
    metrics: &[],
};

#[derive(Debug)]
pub struct Pressure {
    resource: &'static str,
    full: bool,
    warn: f64,
    crit: f64,
    for_cycles: u32,
}

fn build(k: &mut Keys) -> Option<Built> {
    let resource = k.word("resource");
    let resource = k.require("pressure", "resource", resource)?;
    let (warn, crit) = k.warn_crit("warn", "crit", (10.0, 40.0));
    let full = k.bool("full").unwrap_or(false);
    let probe = Pressure { resource, full, warn, crit, for_cycles: k.count("for").unwrap_or(1) };
    let line = if full { "full" } else { "some" };
    Some(Built { probe: Arc::new(probe), target: format!("{resource} ({line})") })
}

/// `avg10`, `avg60`, `avg300` of the `some` or `full` line.
pub fn parse(text: &str, line: &str) -> Option<[f64; 3]> {
    let l = text.lines().find(|l| l.starts_with(line))?;
    let field = |name: &str| {
        l.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    };
    Some([field("avg10")?, field("avg60")?, field("avg300")?])
}

impl OwnedProbe for Pressure {
    fn def(&self) -> &'static KindDef {
        &KIND
    }

    fn run(&self, _ctx: &CycleCtx) -> Outcome {
        let path = format!("/proc/pressure/{}", self.resource);
        let line = if self.full { "full" } else { "some" };
        let text = crate::fsutil::read_regular(std::path::Path::new(&path), 4096)
            .map_err(|e| format!("{path}: {e} (no pressure stall information on this kernel?)"))
            .and_then(|b| String::from_utf8(b).map_err(|_| format!("{path}: not text")));
        let avg = text.and_then(|t| {
            parse(&t, line)
                .ok_or_else(|| format!("{path}: no `{line}` line with avg10, avg60, avg300"))
        });
        let avg = match avg {
            Ok(a) => a,
            Err(e) => return Outcome::not_up(CheckStatus::Unknown, Reason::CheckError, e),
        };
        let values = Values::from_pairs(&[
            ("avg10", Some(avg[0])),
            ("avg60", Some(avg[1])),
            ("avg300", Some(avg[2])),
        ]);
        let detail = format!(
            "{} {line}: avg10 {:.2}%, avg60 {:.2}%, avg300 {:.2}%",
            self.resource, avg[0], avg[1], avg[2]
        );
        let status = judge(avg[1], self.warn, self.crit);
        let out = if status == CheckStatus::Up {
            Outcome::up(detail)
        } else {
            let limit = if status == CheckStatus::Down { self.crit } else { self.warn };
            Outcome::not_up(status, Reason::PressureHigh, format!("{detail} (avg60 over {limit}%)"))
        };
        out.with_values(Measured {
            values,
            thresholds: Some(Thresholds {
                value: "avg60".into(),
                warn: Some(self.warn),
                crit: Some(self.crit),
            }),
        })
    }

    fn for_cycles(&self) -> u32 {
        self.for_cycles
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn psi_lines_parse() {
        let t = "some avg10=1.50 avg60=2.25 avg300=0.00 total=123\nfull avg10=0.10 avg60=0.20 avg300=0.30 total=4\n";
        assert_eq!(super::parse(t, "some"), Some([1.5, 2.25, 0.0]));
        assert_eq!(super::parse(t, "full"), Some([0.1, 0.2, 0.3]));
        assert_eq!(super::parse("some avg10=1", "some"), None);
    }
}
