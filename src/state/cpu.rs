//! `cpu_pct` of process checks: the CPU time their processes used since
//! the previous sample, which is part of the service's state, so `check`
//! run from cron measures across runs exactly as the daemon does. Then
//! `max_cpu` is judged (reason `process_cpu`); `hold` applies its `for`.

use super::ServiceState;
use crate::probe::owned::show_value;
use crate::probe::{Check, CheckStatus, Outcome, Probe, Reason};

/// Sets each process check's `cpu_pct` from the last sample in `st`, keeps
/// this cycle's sample there, and judges `max_cpu`.
pub fn apply(st: &mut ServiceState, checks: &[Check], outs: &mut [Outcome]) {
    let mut seen = Vec::new();
    for (i, (c, out)) in checks.iter().zip(outs.iter_mut()).enumerate() {
        let Probe::Process(p) = &c.probe else { continue };
        let Some(sample) = out.cpu.take() else { continue };
        let k = super::hold::key(i, c);
        let pct = st.proc_cpu.get(&k).and_then(|prev| sample.pct_since(prev));
        st.proc_cpu.insert(k.clone(), sample);
        seen.push(k);
        let Some(m) = out.measured.as_mut() else { continue };
        m.values.set("cpu_pct", pct);
        let (Some(max), Some(pct)) = (p.limits.max_cpu, pct) else { continue };
        if out.status == CheckStatus::Up && pct > max {
            out.status = CheckStatus::Down;
            out.reason = Some(Reason::ProcessCpu);
            out.detail = format!(
                "{}, {} CPU (over max_cpu {})",
                out.detail,
                show_value("cpu_pct", Some(pct)),
                show_value("cpu_pct", Some(max))
            );
        } else if out.status == CheckStatus::Up {
            out.detail = format!("{}, {} CPU", out.detail, show_value("cpu_pct", Some(pct)));
        }
    }
    // A check gone from the config leaves no sample behind.
    st.proc_cpu.retain(|k, _| seen.contains(k));
}
