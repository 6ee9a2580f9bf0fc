//! Crash loops and flapping, pure: what the last cycles of one service say
//! beyond its status now.
//!
//! - A crash loop is systemd restarting the unit itself (`Restart=`): its
//!   `NRestarts` grows while a probe may well catch it `active`. The samples
//!   of the last `crash_loop.within` live in the state file, so a `check`
//!   from cron sees the loop as the daemon does.
//! - Flapping is a status that keeps changing: `flap.changes` changes within
//!   the last `flap.window` results. It ends once the last `flap.window`
//!   results are all one status.

use super::{Health, ServiceState};
use crate::config::{CrashLoop, Flap};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The unit's `NRestarts` at a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartSample {
    pub at: Timestamp,
    pub n: u64,
}

/// Records this cycle's `NRestarts` (when systemd gave one) and returns the
/// restarts systemd itself made within `cfg.within` when they are at least
/// `cfg.restarts` (None: no crash loop).
///
/// Between two samples, growth counts; a counter that went down was reset
/// (systemd zeroes it on a start that is not its own automatic restart), so
/// all of the later value is new. Our own restarts are not counted: across
/// a sample pair that holds one of ours, one restart less (when systemd
/// counted it at all).
pub fn crash_loop(
    samples: &mut Vec<RestartSample>,
    n_now: Option<u64>,
    now: Timestamp,
    cfg: CrashLoop,
    ours: &[Timestamp],
) -> Option<u64> {
    if let Some(n) = n_now {
        samples.push(RestartSample { at: now, n });
    }
    let start = Timestamp(now.0.saturating_sub(cfg.within.as_millis() as i64));
    // Keep the window and the one sample just before it (the baseline).
    let first_in = samples.iter().position(|s| s.at > start).unwrap_or(samples.len());
    samples.drain(..first_in.saturating_sub(1));
    n_now?;
    let mut grown = 0u64;
    for w in samples.windows(2) {
        let (a, b) = (w[0], w[1]);
        let delta = if b.n >= a.n { b.n - a.n } else { b.n };
        let ours_between = ours.iter().filter(|t| **t > a.at && **t <= b.at).count() as u64;
        let delta = if b.n >= a.n { delta.saturating_sub(ours_between) } else { delta };
        grown = grown.saturating_add(delta);
    }
    (grown >= u64::from(cfg.restarts)).then_some(grown)
}

/// Adds this cycle's status to the service's recent ones and updates
/// `flapping`: on at `cfg.changes` changes within the last `cfg.window`
/// results, off once those are all one status.
pub fn observe_flap(s: &mut ServiceState, cur: Health, cfg: Flap) {
    s.recent.push_back(cur);
    while s.recent.len() > cfg.window as usize {
        s.recent.pop_front();
    }
    let changes = s.recent.iter().zip(s.recent.iter().skip(1)).filter(|(a, b)| a != b).count();
    if !s.flapping && changes >= cfg.changes as usize {
        s.flapping = true;
    } else if s.flapping && s.recent.len() == cfg.window as usize && changes == 0 {
        s.flapping = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MIN: i64 = 60_000;
    const CFG: CrashLoop = CrashLoop { restarts: 3, within: Duration::from_secs(600) };

    /// (minute, NRestarts, our restart just before?) → crash loop count.
    fn run(rows: &[(i64, Option<u64>, bool)]) -> Vec<Option<u64>> {
        let mut samples = Vec::new();
        let mut ours = Vec::new();
        rows.iter()
            .map(|&(m, n, our)| {
                if our {
                    ours.push(Timestamp(m * MIN - 1));
                }
                crash_loop(&mut samples, n, Timestamp(m * MIN), CFG, &ours)
            })
            .collect()
    }

    #[test]
    fn crash_loops_table() {
        // Growing by one a minute: the third restart within 10 min is a loop.
        assert_eq!(
            run(&[
                (0, Some(0), false),
                (1, Some(1), false),
                (2, Some(2), false),
                (3, Some(3), false)
            ]),
            [None, None, None, Some(3)]
        );
        // Slow growth leaves the window: never 3 within 10 minutes.
        assert_eq!(
            run(&[
                (0, Some(0), false),
                (5, Some(1), false),
                (10, Some(2), false),
                (16, Some(3), false)
            ]),
            [None, None, None, None]
        );
        // A first sample already high is a baseline, not growth.
        assert_eq!(run(&[(0, Some(50), false), (1, Some(50), false)]), [None, None]);
        // Counted by systemd or not, our own restarts are not a loop.
        assert_eq!(
            run(&[(0, Some(0), false), (1, Some(1), true), (2, Some(2), true), (3, Some(3), true)]),
            [None, None, None, None]
        );
        // Our restart reset the counter (systemd does on a manual start):
        // what grew after it is systemd's own.
        assert_eq!(
            run(&[
                (0, Some(5), false),
                (1, Some(0), true),
                (2, Some(2), false),
                (3, Some(3), false)
            ]),
            [None, None, None, Some(3)]
        );
        // No NRestarts this cycle (systemctl failed): no verdict.
        assert_eq!(
            run(&[(0, Some(0), false), (1, Some(9), false), (2, None, false)]),
            [None, Some(9), None]
        );
        // It ends: ten quiet minutes later.
        assert_eq!(
            run(&[
                (0, Some(0), false),
                (1, Some(4), false),
                (5, Some(4), false),
                (12, Some(4), false)
            ]),
            [None, Some(4), Some(4), None]
        );
    }

    #[test]
    fn samples_stay_bounded_by_the_window() {
        let mut samples = Vec::new();
        for m in 0..1000 {
            crash_loop(&mut samples, Some(0), Timestamp(m * MIN), CFG, &[]);
        }
        assert!(samples.len() <= 11, "{}", samples.len());
    }

    fn flaps(statuses: &str, cfg: Flap) -> String {
        let mut s = ServiceState::default();
        statuses
            .chars()
            .map(|c| {
                let h = match c {
                    'u' => Health::Up,
                    'd' => Health::Down,
                    _ => Health::Degraded,
                };
                observe_flap(&mut s, h, cfg);
                if s.flapping { 'F' } else { '.' }
            })
            .collect()
    }

    #[test]
    fn flapping_table() {
        let cfg = Flap { changes: 3, window: 5 };
        // Three changes within five results: flapping from the third change.
        assert_eq!(flaps("ududuuuuu", cfg), "...FFFFF.");
        assert_eq!(flaps("uduuudu", cfg), ".......");
        // Degraded counts as a status of its own.
        assert_eq!(flaps("ugdg", cfg), "...F");
        // It lasts while the window still holds a change.
        assert_eq!(flaps("ududdddud", cfg), "...FFFFFF");
        let d = Flap::default();
        assert_eq!(flaps("ududu", d), ".....");
        assert_eq!(flaps("ududud", d), ".....F");
        let many = flaps(&format!("{}{}", "ud".repeat(3), "u".repeat(20)), d);
        assert_eq!(&many[..6], ".....F");
        assert_eq!(&many[many.len() - 2..], "F.");
    }
}
