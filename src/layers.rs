//! The module layering (ARCHITECTURE.md, "Layers"), checked: a module may
//! use only modules of a lower layer (and its own submodules). Reads the
//! sources, so a new upward import fails `cargo test` with the file and the
//! offending path. Macros (`crate::warn!`) are not modules and are skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom to top. Same layer: no imports either way.
const LAYERS: &[&[&str]] = &[
    &["table", "suggest"],
    &["time", "log", "error", "fsutil", "sdnotify", "arena", "text", "resident"],
    &["probe"],
    &["config"],
    &["diagnosis"],
    &["state"],
    &["status", "statefile", "heal", "runner"],
    &["metrics", "output", "store", "fleet"],
    &["notify"],
    &["cycle"],
    &["server"],
    &["daemon"],
    &["app"],
    &["cli"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a source file belongs to (`src/notify/http.rs` → notify).
fn owner(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

/// Every `crate::name` a file refers to that is a module (not a macro),
/// including names inside `use crate::{a, b::c}` groups.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let code: String =
        text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String =
                    item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && name != "self" {
                    out.insert(name);
                }
            }
            continue;
        }
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let is_macro = rest[name.len()..].starts_with('!');
        if !name.is_empty() && !is_macro {
            out.insert(name);
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_module_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let Some(module) = owner(&src, file) else { continue };
        // The crate root, the entry point and test-only support sit outside the layers.
        if matches!(module.as_str(), "lib" | "main" | "layers" | "testing") {
            continue;
        }
        let Some(mine) = layer(&module) else {
            problems.push(format!("{}: module `{module}` is in no layer", file.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for used in crate_refs(&text) {
            if used == module {
                continue;
            }
            match layer(&used) {
                Some(theirs) if theirs < mine => {}
                Some(_) => problems.push(format!(
                    "{}: `{module}` uses crate::{used}, which is not below it",
                    file.display()
                )),
                None => {}
            }
        }
        checked += 1;
    }
    assert!(checked > 20, "found only {checked} source files under {}", src.display());
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

#[test]
fn the_reference_scanner_sees_groups_and_skips_macros() {
    let refs = crate_refs(
        "use crate::{fsutil, output::render, self};\nlet x = crate::time::now();\ncrate::warn!(\"x\");\n// crate::daemon in a comment\n",
    );
    assert_eq!(refs.into_iter().collect::<Vec<_>>(), ["fsutil", "output", "time"]);
}

/// `unsafe` is denied crate-wide (Cargo.toml) and allowed in one place,
/// with its proof beside it: src/resident.rs. Another `allow` fails here, so
/// a second unsafe block is a decision made in review, not in passing.
#[test]
fn unsafe_code_is_allowed_in_resident_rs_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let allowing: Vec<String> = files
        .iter()
        .filter(|f| !f.ends_with("layers.rs"))
        .filter(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains("allow(unsafe_code)")))
        .map(|f| f.strip_prefix(&src).unwrap_or(f).display().to_string())
        .collect();
    assert_eq!(allowing, ["resident.rs"], "files allowing unsafe code");
}
