//! Dashboard files: embedded at build time (see build.rs), or from `www_dir`.
//!
//! URL layout: `/` and `/static/admin_status.html` → `admin_status.html`,
//! `/static/<path>` → `<path>`. No request can name a file outside the www
//! directory: the path is percent-decoded once, then any `..`, `.`, empty
//! segment, backslash or NUL is refused, and a file found on disk must still
//! lie inside the canonical `www_dir` after symlinks are resolved.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/www.rs"));
}

/// Maps a URL path (no query) to a path relative to the www directory.
pub fn relative_path(url_path: &str) -> Option<String> {
    let rel = match url_path {
        "/" | "/index.html" => "admin_status.html".to_string(),
        p => percent_decode(p.strip_prefix("/static/")?)?,
    };
    let ok = !rel.is_empty()
        && !rel.contains(['\\', '\0'])
        && rel.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    ok.then_some(rel)
}

/// Decodes `%XX` escapes once; None on a malformed escape or invalid UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The file's bytes, from `www_dir` when set, else embedded.
pub fn lookup(www_dir: Option<&Path>, rel: &str) -> Option<Cow<'static, [u8]>> {
    match www_dir {
        None => embedded::FILES.iter().find(|(p, _)| *p == rel).map(|(_, b)| Cow::Borrowed(*b)),
        Some(dir) => {
            let root = dir.canonicalize().ok()?;
            let full: PathBuf = root.join(rel).canonicalize().ok()?;
            if !full.starts_with(&root) || !full.is_file() {
                return None;
            }
            std::fs::read(full).ok().map(Cow::Owned)
        }
    }
}

pub fn content_type(rel: &str) -> &'static str {
    match rel.rsplit('.').next().unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_documented_layout() {
        assert_eq!(relative_path("/").as_deref(), Some("admin_status.html"));
        assert_eq!(
            relative_path("/static/admin_status.html").as_deref(),
            Some("admin_status.html")
        );
        assert_eq!(relative_path("/static/js/status.js").as_deref(), Some("js/status.js"));
        assert_eq!(relative_path("/other"), None);
    }

    #[test]
    fn refuses_escapes() {
        for p in [
            "/static/../Cargo.toml",
            "/static/%2e%2e/Cargo.toml",
            "/static/%2E%2E%2FCargo.toml",
            "/static//etc/passwd",
            "/static/js/../../x",
            "/static/a\\..\\b",
            "/static/%00",
            "/static/%zz",
            "/static/./x",
            "/static/",
        ] {
            assert_eq!(relative_path(p), None, "{p}");
        }
        // Double encoding decodes once: a literal "%2e%2e" name, harmless.
        assert_eq!(relative_path("/static/%252e%252e/x").as_deref(), Some("%2e%2e/x"));
    }

    #[test]
    fn embeds_the_dashboard() {
        assert!(lookup(None, "admin_status.html").is_some());
        assert!(lookup(None, "js/status.js").is_some());
    }
}

#[cfg(test)]
mod fuzz;
