//! `type: load`: the load average of a window (1m, 5m or 15m) divided by
//! the online CPUs, from /proc/loadavg (read once per cycle).

use super::owned::{
    Built, KeyType, Keys, KindDef, Measured, OwnedProbe, Thresholds, Values, judge,
};
use super::{CheckStatus, CycleCtx, Outcome, Reason};
use std::sync::Arc;

const WINDOWS: &[&str] = &["1m", "5m", "15m"];

pub static KIND: KindDef = KindDef {
    name: "load",
    keys: &[
        ("warn", KeyType::Number),
        ("crit", KeyType::Number),
        ("window", KeyType::OneOf(WINDOWS)),
        ("for", KeyType::Count),
    ],
    build,
    // `chatstack_load_per_cpu{window}` comes from the status's `system` block.
    metrics: &[],
};

#[derive(Debug)]
pub struct Load {
    warn: f64,
    crit: f64,
    /// Index into the three averages.
    window: usize,
    for_cycles: u32,
}

fn build(k: &mut Keys) -> Option<Built> {
    let (warn, crit) = k.warn_crit("warn", "crit", (1.5, 3.0));
    let word = k.word("window").unwrap_or("5m");
    let window = WINDOWS.iter().position(|w| *w == word).unwrap_or(1);
    let probe = Load { warn, crit, window, for_cycles: k.count("for").unwrap_or(1) };
    Some(Built { probe: Arc::new(probe), target: format!("per CPU, {word}") })
}

impl OwnedProbe for Load {
    fn def(&self) -> &'static KindDef {
        &KIND
    }

    fn run(&self, ctx: &CycleCtx) -> Outcome {
        let host = ctx.host.as_ref();
        let (Some(load), Some(cpus)) = (host.and_then(|h| h.load), host.and_then(|h| h.cpus))
        else {
            return Outcome::not_up(
                CheckStatus::Unknown,
                Reason::CheckError,
                "cannot read /proc/loadavg or the online CPUs",
            );
        };
        let per_cpu = (load[self.window] / f64::from(cpus) * 100.0).round() / 100.0;
        let values = Values::from_pairs(&[
            ("load1", Some(load[0])),
            ("load5", Some(load[1])),
            ("load15", Some(load[2])),
            ("cpus", Some(f64::from(cpus))),
            ("per_cpu", Some(per_cpu)),
        ]);
        let detail = format!(
            "load {:.2} {:.2} {:.2} on {cpus} CPUs: {per_cpu:.2} per CPU over {}",
            load[0], load[1], load[2], WINDOWS[self.window]
        );
        let status = judge(per_cpu, self.warn, self.crit);
        let out = if status == CheckStatus::Up {
            Outcome::up(detail)
        } else {
            let limit = if status == CheckStatus::Down { self.crit } else { self.warn };
            Outcome::not_up(status, Reason::LoadHigh, format!("{detail} (over {limit})"))
        };
        out.with_values(Measured {
            values,
            thresholds: Some(Thresholds {
                value: "per_cpu".into(),
                warn: Some(self.warn),
                crit: Some(self.crit),
            }),
        })
    }

    fn for_cycles(&self) -> u32 {
        self.for_cycles
    }
}
