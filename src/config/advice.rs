//! What a valid config may still get wrong: advice `validate` prints as
//! warnings (exit 0) and `run` logs once at start.

use super::Config;
use crate::probe::Probe;

/// One line per problem, naming the service and the check.
pub fn warnings(config: &Config) -> Vec<String> {
    let d = super::duration::format;
    let mut out = Vec::new();
    for svc in &config.services {
        for c in &svc.checks {
            // A push check does no I/O: its timeout never costs a cycle anything.
            if matches!(c.probe, Probe::Push(_)) || c.timeout <= config.interval {
                continue;
            }
            out.push(format!(
                "service {:?}: {} check {}: timeout {} is longer than the interval {}: a target that slow makes cycles run back to back",
                svc.name,
                c.kind(),
                c.target,
                d(c.timeout),
                d(config.interval)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_timeout_longer_than_the_interval_is_a_warning() {
        let c = crate::config::parse(
            "interval: 2s\nservices:\n  - name: slow\n    checks: [{type: tcp, address: '127.0.0.1:1', timeout: 3s}]\n  - name: ok\n    checks: [{type: tcp, address: '127.0.0.1:2', timeout: 2s}]\n  - name: job\n    checks: [{type: push, period: 1h, grace: 1h, timeout: 5s}]\n",
            std::path::Path::new("t.yml"),
        )
        .expect("valid");
        let w = super::warnings(&c);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(
                "service \"slow\": tcp check 127.0.0.1:1: timeout 3s is longer than the interval 2s"
            ),
            "{w:?}"
        );
    }
}
