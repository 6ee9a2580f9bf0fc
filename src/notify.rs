//! Alerts (in progress).
use crate::config::Config;
use crate::cycle::CycleOutput;
use crate::error::Error;
use crate::state::StateFile;
use std::time::Duration;
pub fn after_cycle_oneshot(_c: &Config, _s: &mut StateFile, _o: &CycleOutput) {}
pub fn test_all(_c: &Config) -> Result<u8, Error> {
    Err(Error::Other("notify-test: not built yet".into()))
}
pub struct Dispatcher;
impl Dispatcher {
    pub fn start() -> Self {
        Dispatcher
    }
    pub fn after_cycle(&self, _c: &Config, _s: &mut StateFile, _o: &CycleOutput) {}
    pub fn shutdown(&self, _d: Duration) {}
    pub fn metrics(&self) -> String {
        String::new()
    }
}
