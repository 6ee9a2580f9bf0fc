//! `for: N` of the kinds that own their keys and of process checks'
//! `max_rss`/`max_cpu`: a check over its threshold
//! stays `up` until N consecutive cycles (this one included) were over.
//! The counts are part of the service's state, so `check` run from cron
//! counts across runs exactly as the daemon does.

use super::ServiceState;
use crate::probe::{Check, CheckStatus, Outcome};

/// The key of a check's count: its place, kind and target (a changed
/// config starts it afresh).
pub(super) fn key(i: usize, c: &Check) -> String {
    format!("{i}:{}:{}", c.kind(), c.target)
}

/// Holds back the outcomes of checks whose `for` has not been reached yet,
/// and keeps the counts in `st.over`.
pub fn apply(st: &mut ServiceState, checks: &[Check], outs: &mut [Outcome]) {
    let mut seen = Vec::new();
    for (i, (c, out)) in checks.iter().zip(outs.iter_mut()).enumerate() {
        let need = c.probe.for_cycles();
        if need <= 1 {
            continue;
        }
        let k = key(i, c);
        let over = matches!(out.status, CheckStatus::Degraded | CheckStatus::Down)
            && out.reason.is_some_and(|r| c.probe.holds(r));
        if !over {
            continue;
        }
        let n = st.over.get(&k).copied().unwrap_or(0).saturating_add(1);
        st.over.insert(k.clone(), n);
        seen.push(k);
        if n < need {
            out.detail =
                format!("{} (over {} of the {need} cycles `for` needs: still up)", out.detail, n);
            out.status = CheckStatus::Up;
            out.reason = None;
        }
    }
    // A check not over this cycle starts again from 0.
    st.over.retain(|k, _| seen.contains(k));
}
