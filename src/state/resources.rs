//! Per service: its unit's `resources` (memory, CPU, tasks) from the
//! cycle's `systemctl show`, and `limits` held for `for` cycles. Pure: the
//! previous CPU sample and the counts live in the service's state, so
//! `check` from cron computes `cpu_pct` and counts `for` across runs
//! exactly as the daemon does.

use super::ServiceState;
use crate::config::limits::Limits;
use crate::probe::{Reason, UnitInfo};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// What the status reports of a service with a unit (null: no figure).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub memory_bytes: Option<u64>,
    /// Percent of one CPU between the previous sample and this one.
    pub cpu_pct: Option<f64>,
    pub tasks: Option<u64>,
}

/// The unit's CPU counter when last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSample {
    pub at: Timestamp,
    pub usage_ns: u64,
}

/// Consecutive cycles over each limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitCounts {
    pub memory: u32,
    pub cpu: u32,
}

impl LimitCounts {
    pub fn is_zero(&self) -> bool {
        self.memory == 0 && self.cpu == 0
    }
}

/// This cycle's resources from systemd's view of the unit (None: systemd
/// was not heard), keeping the CPU sample for the next cycle. `now` is
/// when systemd was asked, unless the view says.
pub fn observe(st: &mut ServiceState, unit: Option<&UnitInfo>, now: Timestamp) -> Resources {
    let Some(u) = unit else {
        return Resources::default();
    };
    let at = u.sampled_at.unwrap_or(now);
    let cpu_pct = match (st.cpu_sample, u.cpu_usage_ns) {
        (Some(prev), Some(ns)) if ns >= prev.usage_ns && at.0 > prev.at.0 => {
            let wall_ns = (at.0 - prev.at.0) as f64 * 1e6;
            Some(((ns - prev.usage_ns) as f64 / wall_ns * 100.0 * 100.0).round() / 100.0)
        }
        // First sample, a counter that restarted with the unit, or a clock
        // that went back: no figure this time.
        _ => None,
    };
    st.cpu_sample = u.cpu_usage_ns.map(|usage_ns| CpuSample { at, usage_ns });
    Resources { memory_bytes: u.memory_bytes, cpu_pct, tasks: u.tasks }
}

/// Counts the cycles over each limit; once one has held `for` cycles, the
/// reason and detail the unit check goes down with (memory first). A
/// figure systemd does not give is never over.
pub fn judge(st: &mut ServiceState, limits: &Limits, r: &Resources) -> Option<(Reason, String)> {
    let mem_over = matches!((limits.memory, r.memory_bytes), (Some(l), Some(v)) if v > l);
    let cpu_over = matches!((limits.cpu, r.cpu_pct), (Some(l), Some(v)) if v > l);
    let c = &mut st.limits_over;
    c.memory = if mem_over { c.memory.saturating_add(1) } else { 0 };
    c.cpu = if cpu_over { c.cpu.saturating_add(1) } else { 0 };
    let n = limits.for_cycles.max(1);
    let cycles = |k: u32| if n == 1 { String::new() } else { format!(" for {k} cycles") };
    if c.memory >= n
        && let (Some(l), Some(v)) = (limits.memory, r.memory_bytes)
    {
        return Some((
            Reason::MemoryLimit,
            format!("memory {} over the limit {}{}", bytes(v), bytes(l), cycles(c.memory)),
        ));
    }
    if c.cpu >= n
        && let (Some(l), Some(v)) = (limits.cpu, r.cpu_pct)
    {
        return Some((
            Reason::CpuLimit,
            format!("cpu {v:.1}% over the limit {l}% of one CPU{}", cycles(c.cpu)),
        ));
    }
    None
}

/// Bytes as the config writes sizes: `812.3 MB`.
pub fn bytes(b: u64) -> String {
    let b = b as f64;
    let (v, unit) = if b >= 1e12 {
        (b / 1e12, "TB")
    } else if b >= 1e9 {
        (b / 1e9, "GB")
    } else if b >= 1e6 {
        (b / 1e6, "MB")
    } else if b >= 1e3 {
        (b / 1e3, "KB")
    } else {
        return format!("{b} B");
    };
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(mem: Option<u64>, cpu_ns: Option<u64>, at_ms: i64) -> UnitInfo {
        UnitInfo {
            memory_bytes: mem,
            cpu_usage_ns: cpu_ns,
            tasks: Some(3),
            sampled_at: Some(Timestamp(at_ms)),
            ..UnitInfo::default()
        }
    }

    #[test]
    fn cpu_pct_is_between_this_sample_and_the_previous_one() {
        let mut st = ServiceState::default();
        let r = observe(&mut st, Some(&unit(Some(5), Some(1_000_000_000), 10_000)), Timestamp(0));
        assert_eq!(r, Resources { memory_bytes: Some(5), cpu_pct: None, tasks: Some(3) });
        // 0.5 s of CPU in 2 s of wall time: 25 % of one CPU.
        let r = observe(&mut st, Some(&unit(Some(5), Some(1_500_000_000), 12_000)), Timestamp(0));
        assert_eq!(r.cpu_pct, Some(25.0));
        // 3 s in 1 s (several cores): 300 %.
        let r = observe(&mut st, Some(&unit(None, Some(4_500_000_000), 13_000)), Timestamp(0));
        assert_eq!((r.cpu_pct, r.memory_bytes), (Some(300.0), None));
        // The unit restarted: its counter began again.
        let r = observe(&mut st, Some(&unit(None, Some(10), 14_000)), Timestamp(0));
        assert_eq!(r.cpu_pct, None);
        // No figure: the sample is gone, so the next one is a first one.
        observe(&mut st, Some(&unit(None, None, 15_000)), Timestamp(0));
        let r = observe(&mut st, Some(&unit(None, Some(20), 16_000)), Timestamp(0));
        assert_eq!(r.cpu_pct, None);
        assert_eq!(observe(&mut st, None, Timestamp(0)), Resources::default());
    }

    #[test]
    fn a_limit_holds_for_its_cycles_and_a_dip_starts_again() {
        let limits = Limits { memory: Some(800_000_000), cpu: Some(90.0), for_cycles: 3 };
        let mut st = ServiceState::default();
        let r = |m: u64, c: f64| Resources { memory_bytes: Some(m), cpu_pct: Some(c), tasks: None };
        assert_eq!(judge(&mut st, &limits, &r(900_000_000, 10.0)), None);
        assert_eq!(judge(&mut st, &limits, &r(900_000_000, 10.0)), None);
        // A dip under the memory limit starts its count again.
        assert_eq!(judge(&mut st, &limits, &r(700_000_000, 95.0)), None);
        assert_eq!(judge(&mut st, &limits, &r(900_000_000, 95.0)), None);
        let (reason, detail) = judge(&mut st, &limits, &r(900_000_000, 95.0)).unwrap();
        assert_eq!(reason, Reason::CpuLimit);
        assert_eq!(detail, "cpu 95.0% over the limit 90% of one CPU for 3 cycles");
        // Both over: memory first.
        let (reason, detail) = judge(&mut st, &limits, &r(900_000_000, 95.0)).unwrap();
        assert_eq!(reason, Reason::MemoryLimit);
        assert_eq!(detail, "memory 900.0 MB over the limit 800.0 MB for 3 cycles");
        let (reason, _) = judge(&mut st, &limits, &r(1, 95.0)).unwrap();
        assert_eq!(reason, Reason::CpuLimit);
        let none = Resources::default();
        assert_eq!(judge(&mut st, &limits, &none), None);
        assert!(st.limits_over.is_zero());
    }
}
