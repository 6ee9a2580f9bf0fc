//! `type: disk`: a file system's space and inodes, as `df` counts them,
//! whether it is mounted read-only, and when it will be full.
//!
//! One `statvfs(2)` per cycle. `used_pct` is df's Use%: used / (used +
//! available to unprivileged users), so the root-reserved blocks count as
//! neither; `total_bytes` is df's Size and `available_bytes` its Avail.
//! `full_in_s` comes from the forecast over the history store's samples of
//! `available_bytes` (see `OwnedProbe::forecast`).

use super::owned::{
    self, Built, Forecast, KeyType, Keys, KindDef, Measured, MetricDef, OwnedProbe, Thresholds,
    Values,
};
use super::{CheckStatus, CycleCtx, Outcome, Reason};
use rustix::fs::StatVfsMountFlags;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub static KIND: KindDef = KindDef {
    name: "disk",
    keys: &[
        ("path", KeyType::Path),
        ("warn", KeyType::Number),
        ("crit", KeyType::Number),
        ("inodes_warn", KeyType::Number),
        ("inodes_crit", KeyType::Number),
        ("read_only_ok", KeyType::Bool),
        ("full_warn", KeyType::Duration),
        ("forecast_window", KeyType::Duration),
        ("for", KeyType::Count),
    ],
    build,
    metrics: &[
        MetricDef {
            name: "chatstack_disk_used_ratio",
            help: "Used space of the file system (0-1), as df's Use%.",
            value: "used_pct",
            scale: 0.01,
            target_label: "path",
        },
        MetricDef {
            name: "chatstack_disk_inodes_used_ratio",
            help: "Used inodes of the file system (0-1).",
            value: "inodes_used_pct",
            scale: 0.01,
            target_label: "path",
        },
    ],
};

#[derive(Debug)]
pub struct Disk {
    path: PathBuf,
    warn: f64,
    crit: f64,
    inodes_warn: f64,
    inodes_crit: f64,
    read_only_ok: bool,
    full_warn: Option<Duration>,
    forecast_window: Duration,
    for_cycles: u32,
}

fn build(k: &mut Keys) -> Option<Built> {
    let path = k.path("path");
    let path = k.require("disk", "path", path)?;
    if !path.is_absolute() {
        k.problem("path", format!("disk path {:?}: expected an absolute path", path.display()));
    }
    let (warn, crit) = k.warn_crit("warn", "crit", (80.0, 90.0));
    let (inodes_warn, inodes_crit) = k.warn_crit("inodes_warn", "inodes_crit", (90.0, 95.0));
    for (key, v) in
        [("warn", warn), ("crit", crit), ("inodes_warn", inodes_warn), ("inodes_crit", inodes_crit)]
    {
        if v > 100.0 {
            k.problem(key, format!("{key} ({v}) is a percentage: expected 0 to 100"));
        }
    }
    let forecast_window = k.duration("forecast_window").unwrap_or(Duration::from_secs(86_400));
    if forecast_window < Duration::from_secs(10) {
        k.problem("forecast_window", "forecast_window: expected at least 10s");
    }
    let disk = Disk {
        path: path.clone(),
        warn,
        crit,
        inodes_warn,
        inodes_crit,
        read_only_ok: k.bool("read_only_ok").unwrap_or(false),
        full_warn: k.duration("full_warn").filter(|d| !d.is_zero()),
        forecast_window,
        for_cycles: k.count("for").unwrap_or(1),
    };
    Some(Built { target: path.display().to_string(), probe: Arc::new(disk) })
}

/// What `statvfs` says, in df's terms.
struct Usage {
    total: u64,
    available: u64,
    used_pct: Option<f64>,
    inodes_used_pct: Option<f64>,
    read_only: bool,
}

fn usage(path: &std::path::Path) -> std::io::Result<Usage> {
    let s = rustix::fs::statvfs(path)?;
    let block = s.f_frsize.max(1);
    let used = s.f_blocks.saturating_sub(s.f_bfree).saturating_mul(block);
    let available = s.f_bavail.saturating_mul(block);
    let pct = |part: u64, whole: u64| {
        (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
    };
    Ok(Usage {
        total: s.f_blocks.saturating_mul(block),
        available,
        used_pct: pct(used, used.saturating_add(available)),
        // Some file systems (btrfs, vfat) have no inode count: null.
        inodes_used_pct: pct(s.f_files.saturating_sub(s.f_ffree), s.f_files),
        read_only: s.f_flag.contains(StatVfsMountFlags::RDONLY),
    })
}

impl OwnedProbe for Disk {
    fn def(&self) -> &'static KindDef {
        &KIND
    }

    fn run(&self, _ctx: &CycleCtx) -> Outcome {
        let shown = self.path.display();
        let u = match usage(&self.path) {
            Ok(u) => u,
            Err(e) => {
                return Outcome::down(
                    Reason::CheckError,
                    format!("cannot read the file system at {shown}: {e}"),
                );
            }
        };
        let values = Values::from_pairs(&[
            ("used_pct", u.used_pct),
            ("total_bytes", Some(u.total as f64)),
            ("available_bytes", Some(u.available as f64)),
            ("inodes_used_pct", u.inodes_used_pct),
            ("full_in_s", None),
        ]);
        let used = u.used_pct.unwrap_or(0.0);
        let inodes = u.inodes_used_pct.unwrap_or(0.0);
        let mut detail = format!(
            "{used:.1}% used, {} of {} available",
            owned::show_bytes(u.available as f64),
            owned::show_bytes(u.total as f64)
        );
        if let Some(i) = u.inodes_used_pct {
            detail.push_str(&format!(", inodes {i:.1}% used"));
        }
        let space = owned::judge(used, self.warn, self.crit);
        let inode = owned::judge(inodes, self.inodes_warn, self.inodes_crit);
        let (status, reason) = if u.read_only && !self.read_only_ok {
            detail.push_str("; mounted read-only");
            (CheckStatus::Down, Some(Reason::ReadOnly))
        } else if space != CheckStatus::Up && space >= inode {
            let limit = if space == CheckStatus::Down { self.crit } else { self.warn };
            detail.push_str(&format!(" (over {limit}%)"));
            (space, Some(Reason::DiskSpace))
        } else if inode != CheckStatus::Up {
            let limit =
                if inode == CheckStatus::Down { self.inodes_crit } else { self.inodes_warn };
            detail.push_str(&format!(" (inodes over {limit}%)"));
            (inode, Some(Reason::DiskInodes))
        } else {
            (CheckStatus::Up, None)
        };
        let out = match reason {
            Some(r) => Outcome::not_up(status, r, detail),
            None => Outcome::up(detail),
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

    fn is_threshold(&self, reason: Reason) -> bool {
        matches!(reason, Reason::DiskSpace | Reason::DiskInodes | Reason::DiskFilling)
    }

    fn forecast(&self) -> Option<Forecast> {
        Some(Forecast {
            value: "available_bytes",
            into: "full_in_s",
            window: self.forecast_window,
            warn: self.full_warn,
            reason: Reason::DiskFilling,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_file_system_reads_as_df_does() {
        let u = usage(std::path::Path::new("/")).expect("statvfs /");
        assert!(u.total > 0 && u.available <= u.total);
        let pct = u.used_pct.expect("a size");
        assert!((0.0..=100.0).contains(&pct), "{pct}");
    }
}
