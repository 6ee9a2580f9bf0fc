//! `run` and `serve` (in progress).
use crate::error::Error;
use std::path::Path;
pub fn run(_c: &Path, _n: bool, _l: Option<String>, _h: bool) -> Result<u8, Error> { Err(Error::Other("run: not built yet".into())) }
pub fn serve(_c: &Path, _l: Option<String>) -> Result<u8, Error> { Err(Error::Other("serve: not built yet".into())) }
