//! Alerts (in progress).
use crate::config::Config;
use crate::cycle::CycleOutput;
use crate::error::Error;
use crate::state::StateFile;
pub fn after_cycle_oneshot(_c: &Config, _s: &mut StateFile, _o: &CycleOutput) {}
pub fn test_all(_c: &Config) -> Result<u8, Error> { Err(Error::Other("notify-test: not built yet".into())) }
