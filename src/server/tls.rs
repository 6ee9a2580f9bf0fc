//! HTTPS on the listener: the rustls server settings from the configured
//! PEM files. Built at start-up and on every reload (certificate rotation),
//! so a bad or unreadable file is an error there, never at a client's
//! handshake.

use crate::config::TlsFiles;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// PEM files are small; a bigger one is not a certificate.
const MAX_PEM: u64 = 1 << 20;

/// The server settings for `files`, or one line naming the file and the problem.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs = read(&files.cert_file, "cert_file")?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&certs).collect::<Result<_, _>>().map_err(|e| {
            format!("{}: tls cert_file: not PEM certificates: {e}", files.cert_file.display())
        })?;
    if chain.is_empty() {
        return Err(format!(
            "{}: tls cert_file: no certificate in it (expected PEM `BEGIN CERTIFICATE` blocks)",
            files.cert_file.display()
        ));
    }
    let key = read(&files.key_file, "key_file")?;
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| {
        format!("{}: tls key_file: no PEM private key in it: {e}", files.key_file.display())
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "{}: tls: the key does not fit the certificate, or either is unusable: {e}",
                files.key_file.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(path: &Path, key: &str) -> Result<Vec<u8>, String> {
    crate::fsutil::read_regular(path, MAX_PEM)
        .map_err(|e| format!("{}: cannot read tls {key}: {e}", path.display()))
}
