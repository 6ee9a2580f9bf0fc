//! Certificates for tests: a CA and a leaf, made with the openssl CLI.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A CA and a leaf signed by it (for `sans`, e.g. `IP:127.0.0.1`), made
/// with the openssl CLI in `dir`.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl is installed (CI installs it)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Pki {
    pub fn new(dir: &Path, name: &str, sans: &[&str]) -> Pki {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(&dir).expect("mkdir");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let subject = format!("/CN={name} test CA");
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend(["-days", "30", "-subj", &subject, "-keyout", "ca.key", "-out", "ca.pem"]);
        openssl(&ca, &dir);
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend(["-subj", "/CN=127.0.0.1", "-keyout", "leaf.key", "-out", "leaf.csr"]);
        openssl(&csr, &dir);
        std::fs::write(dir.join("ext.cnf"), format!("subjectAltName={}\n", sans.join(",")))
            .expect("ext");
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "10",
                "-extfile",
                "ext.cnf",
                "-out",
                "leaf.pem",
            ],
            &dir,
        );
        Pki { ca: dir.join("ca.pem"), cert: dir.join("leaf.pem"), key: dir.join("leaf.key") }
    }
}
