//! Property tests: URL paths: nothing outside www_dir is ever served.

use crate::server::www;
use crate::testing::cases;
use proptest::prelude::*;

fn url_path() -> impl Strategy<Value = String> {
    let seg = prop::sample::select(vec![
        "..",
        ".",
        "",
        "%2e%2e",
        "%2E%2e",
        "%2e",
        ".%2e",
        "%2f",
        "%2F",
        "%5c",
        "%5C",
        "%00",
        "%25",
        "%252e%252e",
        "%",
        "%g0",
        "%c0%ae",
        "\\",
        "..\\..",
        "static",
        "js",
        "status.js",
        "admin_status.html",
        "secret.txt",
        "link",
        "linkdir",
        "sub",
        "etc",
        "passwd",
        "/",
        "~",
        "\u{0}",
        "é",
    ]);
    let prefix = prop::sample::select(vec![
        "/static/",
        "/static",
        "/",
        "//",
        "",
        "/static//",
        "/index.html",
    ]);
    prop_oneof![
        6 => (prefix, prop::collection::vec(seg, 0..8)).prop_map(|(p, s)| format!("{p}{}", s.join("/"))),
        1 => "\\PC{0,40}",
        1 => "/static/[./%a-f0-9\\\\]{0,30}",
    ]
}

proptest! {
    #![proptest_config(cases(1))]

    #[test]
    fn www_relative_path_stays_inside(path in url_path()) {
        if let Some(rel) = www::relative_path(&path) {
            prop_assert!(!rel.is_empty());
            prop_assert!(!rel.starts_with('/'), "{:?} -> {:?}", path, rel);
            prop_assert!(!rel.contains('\\') && !rel.contains('\0'), "{:?} -> {:?}", path, rel);
            prop_assert!(
                rel.split('/').all(|s| !s.is_empty() && s != ".." && s != "."),
                "{:?} -> {:?}", path, rel
            );
        }
    }

    #[test]
    fn www_percent_decode_never_panics(s in "\\PC{0,40}") {
        let _ = www::percent_decode(&s);
    }
}

/// A www_dir with a secret beside it and symlinks pointing out of it.
struct WwwFixture {
    _dir: tempfile::TempDir,
    www: std::path::PathBuf,
}

const SECRET: &[u8] = b"TOP-SECRET-CONTENTS";

fn www_fixture() -> WwwFixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("js")).expect("mkdir");
    std::fs::create_dir_all(www.join("sub")).expect("mkdir");
    std::fs::write(www.join("admin_status.html"), b"<html>").expect("write");
    std::fs::write(www.join("js/status.js"), b"js").expect("write");
    std::fs::write(dir.path().join("secret.txt"), SECRET).expect("write");
    std::fs::create_dir_all(dir.path().join("etc")).expect("mkdir");
    std::fs::write(dir.path().join("etc/passwd"), SECRET).expect("write");
    std::os::unix::fs::symlink("../secret.txt", www.join("link")).expect("symlink");
    std::os::unix::fs::symlink("..", www.join("linkdir")).expect("symlink");
    std::os::unix::fs::symlink("../../secret.txt", www.join("sub/link")).expect("symlink");
    WwwFixture { _dir: dir, www }
}

#[test]
fn www_lookup_refuses_symlinks_out() {
    let f = www_fixture();
    for rel in ["link", "linkdir/secret.txt", "sub/link", "linkdir/etc/passwd"] {
        assert!(www::lookup(Some(&f.www), rel).is_none(), "{rel} escaped");
    }
    assert_eq!(www::lookup(Some(&f.www), "js/status.js").as_deref(), Some(&b"js"[..]));
}

proptest! {
    #![proptest_config(cases(2))]

    #[test]
    fn www_lookup_never_serves_the_secret(paths in prop::collection::vec(url_path(), 1..16)) {
        let f = www_fixture();
        for path in paths {
            if let Some(rel) = www::relative_path(&path)
                && let Some(bytes) = www::lookup(Some(&f.www), &rel)
            {
                prop_assert!(bytes.as_ref() != SECRET, "{:?} served the secret via {:?}", path, rel);
            }
        }
    }
}
