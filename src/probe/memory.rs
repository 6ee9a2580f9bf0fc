//! `type: memory`: how much of the RAM is gone (MemTotal not MemAvailable,
//! from /proc/meminfo, read once per cycle), and of the swap.

use super::owned::{
    Built, KeyType, Keys, KindDef, Measured, OwnedProbe, Thresholds, Values, judge, show_bytes,
};
use super::{CheckStatus, CycleCtx, Outcome, Reason};
use std::sync::Arc;

pub static KIND: KindDef = KindDef {
    name: "memory",
    keys: &[
        ("warn", KeyType::Number),
        ("crit", KeyType::Number),
        ("swap_warn", KeyType::Number),
        ("swap_crit", KeyType::Number),
        ("for", KeyType::Count),
    ],
    build,
    // `chatstack_memory_used_ratio` comes from the status's `system` block.
    metrics: &[],
};

#[derive(Debug)]
pub struct Memory {
    warn: f64,
    crit: f64,
    /// Off unless set.
    swap: Option<(f64, f64)>,
    for_cycles: u32,
}

fn build(k: &mut Keys) -> Option<Built> {
    let (warn, crit) = k.warn_crit("warn", "crit", (85.0, 95.0));
    let swap = match (k.number("swap_warn"), k.number("swap_crit")) {
        (None, None) => None,
        (w, c) => {
            Some(k.warn_crit("swap_warn", "swap_crit", (w.or(c)?, c.unwrap_or(f64::INFINITY))))
        }
    };
    for key in ["warn", "crit", "swap_warn", "swap_crit"] {
        if let Some(v) = k.number(key).filter(|v| *v > 100.0) {
            k.problem(key, format!("{key} ({v}) is a percentage: expected 0 to 100"));
        }
    }
    let probe = Memory { warn, crit, swap, for_cycles: k.count("for").unwrap_or(1) };
    Some(Built { probe: Arc::new(probe), target: "RAM".into() })
}

impl OwnedProbe for Memory {
    fn def(&self) -> &'static KindDef {
        &KIND
    }

    fn run(&self, ctx: &CycleCtx) -> Outcome {
        let Some(m) = ctx.host.as_ref().and_then(|h| h.memory) else {
            return Outcome::not_up(
                CheckStatus::Unknown,
                Reason::CheckError,
                "cannot read /proc/meminfo",
            );
        };
        let used = m.used_pct().unwrap_or(0.0);
        let swap_used = m.swap_used_pct();
        let values = Values::from_pairs(&[
            ("used_pct", m.used_pct()),
            ("total_bytes", Some(m.total as f64)),
            ("available_bytes", Some(m.available as f64)),
            ("swap_used_pct", swap_used),
        ]);
        let mut detail = format!(
            "{used:.1}% used, {} of {} available",
            show_bytes(m.available as f64),
            show_bytes(m.total as f64)
        );
        match swap_used {
            Some(s) => detail.push_str(&format!(", swap {s:.1}% used")),
            None => detail.push_str(", no swap"),
        }
        let ram = judge(used, self.warn, self.crit);
        let swap = match (self.swap, swap_used) {
            (Some((w, c)), Some(s)) => judge(s, w, c),
            _ => CheckStatus::Up,
        };
        let out = if ram != CheckStatus::Up && ram >= swap {
            let limit = if ram == CheckStatus::Down { self.crit } else { self.warn };
            Outcome::not_up(ram, Reason::MemoryUsed, format!("{detail} (over {limit}%)"))
        } else if swap != CheckStatus::Up {
            Outcome::not_up(swap, Reason::SwapUsed, format!("{detail} (swap over its limit)"))
        } else {
            Outcome::up(detail)
        };
        out.with_values(Measured {
            values,
            thresholds: Some(Thresholds {
                value: "used_pct".into(),
                warn: Some(self.warn),
                crit: Some(self.crit),
            }),
        })
    }

    fn for_cycles(&self) -> u32 {
        self.for_cycles
    }
}
