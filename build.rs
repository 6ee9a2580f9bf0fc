//! Embeds every file under `www/` into the binary, so a bare binary serves the
//! full dashboard: generates `$OUT_DIR/www.rs` with one `include_bytes!` per file.

use std::path::{Path, PathBuf};

fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        if path.is_dir() {
            walk(&path, base, out);
        } else if let Ok(rel) = path.strip_prefix(base) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            if !rel.starts_with('.') && !rel.contains("/.") {
                out.push((rel, path.canonicalize().unwrap_or(path)));
            }
        }
    }
}

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let www = manifest.join("www");
    println!("cargo:rerun-if-changed=www");
    let mut files = Vec::new();
    walk(&www, &www, &mut files);
    let mut code = String::from(
        "/// Embedded www files: (path relative to www/, contents).\npub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (rel, path) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        code.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("www.rs");
    std::fs::write(out, code).expect("writing www.rs");
    link_order(&manifest);
}

/// Lays out the functions a resting daemon runs first, together
/// (`link-order.txt`, made by bench/link_order.py): the kernel maps code in
/// 64 KiB blocks around each page touched, so code spread over the binary
/// costs the idle daemon most of its text in memory (bench/NOTES.md, "cost").
/// Release builds on x86_64 Linux only, where rustc links with its own lld
/// (the default since Rust 1.90); a name the file lists that the binary lacks
/// is skipped quietly, and what the file misses is laid out after it.
fn link_order(manifest: &Path) {
    let file = manifest.join("link-order.txt");
    println!("cargo:rerun-if-changed={}", file.display());
    let target = std::env::var("TARGET").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    if target == "x86_64-unknown-linux-gnu" && profile == "release" && file.is_file() {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", file.display());
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
