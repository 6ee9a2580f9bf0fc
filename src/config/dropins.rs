//! `conf.d/` beside the main config file: every `*.yml` and `*.yaml` in it,
//! in name order, read after the main file. Such a file may hold only
//! `services:` and `notify:` (appended in order): what an application's own
//! package drops in (`/etc/chatstack-status/conf.d/chatstack.yml`) without
//! editing the main file. Any other key is an error located in that file.

use super::raw::{RawNotifier, RawService};
use crate::error::Error;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::path::{Path, PathBuf};

/// A drop-in file as written: only these two keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDropIn {
    pub services: Option<Vec<Spanned<RawService>>>,
    pub notify: Option<Vec<Spanned<RawNotifier>>>,
}

/// The drop-in directory of a main config file.
pub fn dir_of(main: &Path) -> PathBuf {
    main.parent().unwrap_or(Path::new(".")).join("conf.d")
}

/// The drop-in files, in name order (byte order, as `ls` in the C locale):
/// none when the directory does not exist.
pub fn list(main: &Path) -> Result<Vec<PathBuf>, Error> {
    let dir = dir_of(main);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::ConfigRead { path: dir, source }),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::ConfigRead { path: dir.clone(), source })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let yaml = name.ends_with(".yml") || name.ends_with(".yaml");
        // Hidden files are editors' and package managers' leftovers.
        if yaml && !name.starts_with('.') {
            files.push(entry.path());
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}
