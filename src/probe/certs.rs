//! TLS for probes: which roots are trusted, and reading the certificate chain
//! a server presents *on the connection the probe makes anyway*.
//!
//! ureq's own rustls connector keeps its `ClientConnection` private, and its
//! `TlsConfig` takes neither a custom verifier nor gives the peer chain back.
//! So `https` runs through our connector (ureq's `unversioned::transport`
//! API: ureq's proxy and TCP connectors, then `CertConnector`), a copy of
//! ureq's rustls wrapper with two additions:
//! - its `ClientConfig` has a `RecordingVerifier`: rustls's webpki verifier
//!   (the same checks as before) that first records a summary of the chain it
//!   is asked to verify, so even a refused chain (expired, untrusted) can be
//!   named in the detail;
//! - its transport remembers that summary and publishes it on every request
//!   it carries, so a pooled keep-alive connection in `run` still reports it.
//!
//! The summary goes to a thread-local list: ureq is blocking, so the
//! handshake, the verifier and the request all run on the probe's thread, and
//! a probe reads exactly what its own request saw — no second connection, no
//! keying by host. Session resumption is off, so every handshake verifies and
//! records the chain the server presents *now*.
//!
//! Cost, measured (callgrind, `check` of 4 https targets, bench/certs.sh):
//! loading the 144 roots of the system bundle is the only real one (~3.1 M
//! instructions with our PEM reader, 8.7 M with rustls-pki-types'), paid
//! once per process and only when an https check runs; a `ca_file` check
//! tries its own roots first, so it reads the bundle only when they refuse
//! a chain. Recording the chain itself costs a few thousand instructions.

use super::x509;
use crate::time::Timestamp;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};
use std::cell::RefCell;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
    TransportAdapter,
};

/// Debian's (and Ubuntu's) bundle of the system's trusted roots.
pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// A `ca_file` larger than this is a mistake (the whole system bundle is ~220 KB).
const MAX_CA_FILE: u64 = 4 << 20;
/// Chains remembered per request (redirects are capped at 5).
const MAX_SEEN: usize = 16;

/// The certificate of a chain that expires first, as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Its `notAfter`.
    pub expires_at: Timestamp,
    pub subject: String,
    /// 0: the server's own certificate; 1…: the intermediates it sent, in order.
    pub position: usize,
    /// How many certificates the server sent.
    pub chain_len: usize,
}

impl CertInfo {
    /// The earliest `notAfter` of a presented chain (server's own first).
    /// Certificates we cannot read are skipped; None if none can be read.
    pub fn of_chain<'a>(certs: impl IntoIterator<Item = &'a [u8]>) -> Option<CertInfo> {
        let mut best: Option<CertInfo> = None;
        let mut len = 0;
        for (i, der) in certs.into_iter().enumerate() {
            len = i + 1;
            let Ok(s) = x509::summarize(der) else { continue };
            if best.as_ref().is_none_or(|b| s.not_after < b.expires_at) {
                best = Some(CertInfo {
                    expires_at: s.not_after,
                    subject: s.subject,
                    position: i,
                    chain_len: 0,
                });
            }
        }
        best.map(|b| CertInfo { chain_len: len, ..b })
    }

    /// `certificate "CN=x" expires in 9 days (2026-12-10T09:00:00Z)`, naming
    /// an intermediate as such.
    pub fn describe(&self, now: Timestamp) -> String {
        let which = if self.position == 0 {
            "certificate".to_string()
        } else {
            format!("certificate {} of {} the server sent", self.position + 1, self.chain_len)
        };
        let when = if self.expires_at > now {
            format!("expires in {}", span(self.expires_at.since(now)))
        } else {
            format!("expired {} ago", span(now.since(self.expires_at)))
        };
        format!("{which} {:?} {when} ({})", self.subject, self.expires_at)
    }

    /// Time left at `now` in (fractional) days; negative once expired.
    pub fn days_left(&self, now: Timestamp) -> f64 {
        (self.expires_at.0 - now.0) as f64 / 86_400_000.0
    }
}

/// "9 days", "5 hours", "12 minutes": whole units, rounded down.
fn span(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        172_800.. => (s / 86_400, "day"),
        7_200.. => (s / 3600, "hour"),
        _ => (s / 60, "minute"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// `cert_warn` / `cert_crit` of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertLimits {
    /// Less time left than this: degraded.
    pub warn: Duration,
    /// Less time left than this: down; zero: off.
    pub crit: Duration,
}

impl Default for CertLimits {
    fn default() -> Self {
        CertLimits { warn: Duration::from_secs(14 * 86_400), crit: Duration::ZERO }
    }
}

/// What `limits` make of a certificate at `now`: None while it has more
/// than `warn` left, else (down?, detail).
pub fn judge(cert: &CertInfo, limits: CertLimits, now: Timestamp) -> Option<(bool, String)> {
    let left_ms = cert.expires_at.0 - now.0;
    let below = |d: Duration| left_ms < d.as_millis().min(i64::MAX as u128) as i64;
    let crit = !limits.crit.is_zero() && below(limits.crit);
    (crit || below(limits.warn)).then(|| (crit, cert.describe(now)))
}

// ----- trust ---------------------------------------------------------------

/// Where the base roots came from, for the README's promise and `--version`-ish logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootsSource {
    /// The system bundle, which held this many usable roots.
    System(PathBuf, usize),
    /// The Mozilla roots compiled in (webpki-roots), used when this system
    /// bundle is missing or holds no usable root.
    Bundled(PathBuf),
}

/// The roots every check trusts: the system bundle (`$SSL_CERT_FILE` if set,
/// as for OpenSSL) when it exists and holds a usable root, else the
/// compiled-in webpki roots. Read once per process, on first https use.
static BASE_ROOTS: LazyLock<(Arc<RootCertStore>, RootsSource)> = LazyLock::new(|| {
    let bundle = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty());
    base_roots(bundle.as_deref().map_or(Path::new(SYSTEM_BUNDLE), Path::new))
});

fn base_roots(bundle: &Path) -> (Arc<RootCertStore>, RootsSource) {
    if let Ok(bytes) = read_capped(bundle) {
        let mut store = RootCertStore::empty();
        let ders = x509::pem_certificates(&bytes).into_iter().flatten().map(CertificateDer::from);
        let (added, _ignored) = store.add_parsable_certificates(ders);
        if added > 0 {
            return (Arc::new(store), RootsSource::System(bundle.to_path_buf(), added));
        }
    }
    let store = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    (Arc::new(store), RootsSource::Bundled(bundle.to_path_buf()))
}

/// Which roots https and tls checks trust (loads them if not yet loaded).
pub fn roots_source() -> &'static RootsSource {
    &BASE_ROOTS.1
}

impl fmt::Display for RootsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootsSource::System(path, 1) => write!(f, "{} (1 root)", path.display()),
            RootsSource::System(path, n) => write!(f, "{} ({n} roots)", path.display()),
            RootsSource::Bundled(path) => write!(
                f,
                "the Mozilla roots built in ({} roots; no usable {})",
                webpki_roots::TLS_SERVER_ROOTS.len(),
                path.display()
            ),
        }
    }
}

fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    // Not a FIFO or a device: reading one could block the config load.
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(MAX_CA_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CA_FILE {
        return Err(std::io::Error::other("larger than 4 MiB"));
    }
    Ok(bytes)
}

/// A set of trusted roots with its HTTP agent, shared by every check (and
/// every cycle) that uses it: the base roots, or the base roots plus one
/// `ca_file`. The rustls config and the agent are built on first use, so a
/// config without https checks never reads the system bundle.
pub struct Trust {
    ca_file: Option<PathBuf>,
    roots: Arc<Roots>,
    agent: OnceLock<ureq::Agent>,
}

/// The extra roots and the rustls config built from them; held by the
/// connector too (not the `Trust`, which holds the agent: no cycle).
struct Roots {
    extra: Vec<CertificateDer<'static>>,
    client: OnceLock<Result<Arc<ClientConfig>, String>>,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trust").field("ca_file", &self.ca_file).finish_non_exhaustive()
    }
}

static SYSTEM_TRUST: LazyLock<Arc<Trust>> = LazyLock::new(|| Trust::new(None, Vec::new()));

impl Trust {
    fn new(ca_file: Option<PathBuf>, extra: Vec<CertificateDer<'static>>) -> Arc<Trust> {
        Arc::new(Trust {
            ca_file,
            roots: Arc::new(Roots { extra, client: OnceLock::new() }),
            agent: OnceLock::new(),
        })
    }

    /// The base roots only (most checks).
    pub fn system() -> Arc<Trust> {
        Arc::clone(&SYSTEM_TRUST)
    }

    /// The system's roots with an HTTP agent, and so a pool of kept
    /// connections, of its own: a test's kept connection is not evicted by
    /// other tests' (the shared agent keeps 64).
    #[cfg(test)]
    pub fn private() -> Arc<Trust> {
        Trust::new(None, Vec::new())
    }

    /// The base roots plus every certificate of a PEM file. Errors say what
    /// is wrong with the file (the caller adds where it was configured).
    pub fn with_ca_file(path: &Path) -> Result<Arc<Trust>, String> {
        let bytes =
            read_capped(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut extra = Vec::new();
        for item in x509::pem_certificates(&bytes) {
            let der = CertificateDer::from(
                item.map_err(|e| format!("{}: not valid PEM: {e}", path.display()))?,
            );
            let mut probe = RootCertStore::empty();
            probe.add(der.clone()).map_err(|e| {
                format!("{}: certificate {} cannot be a root: {e}", path.display(), extra.len() + 1)
            })?;
            extra.push(der);
        }
        if extra.is_empty() {
            return Err(format!(
                "{}: no certificate found: expected PEM (-----BEGIN CERTIFICATE-----)",
                path.display()
            ));
        }
        Ok(Trust::new(Some(path.to_path_buf()), extra))
    }

    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The rustls config of this trust (built once).
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        self.roots.client_config()
    }

    /// The ureq connector for this trust (TCP, then our TLS).
    pub fn connector(&self) -> CertConnector {
        CertConnector { roots: Arc::clone(&self.roots) }
    }

    /// The HTTP agent for this trust, built by `build` on first use.
    pub fn http_agent(&self, build: impl FnOnce() -> ureq::Agent) -> &ureq::Agent {
        self.agent.get_or_init(build)
    }
}

impl Roots {
    fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        self.client.get_or_init(|| self.build()).clone()
    }

    fn build(&self) -> Result<Arc<ClientConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = if self.extra.is_empty() {
            RecordingVerifier { first: webpki(Arc::clone(&BASE_ROOTS.0), &provider)?, union: None }
        } else {
            // The ca_file's roots first, the union only when they refuse:
            // the same verdicts as one union store, but a check of an
            // internal CA never reads the system bundle.
            let mut own = RootCertStore::empty();
            own.add_parsable_certificates(self.extra.iter().cloned());
            RecordingVerifier {
                first: webpki(Arc::new(own), &provider)?,
                union: Some(Union {
                    extra: self.extra.clone(),
                    provider: Arc::clone(&provider),
                    verifier: OnceLock::new(),
                }),
            }
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|e| format!("TLS setup: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // Every handshake verifies (and records) what the server presents now.
        config.resumption = Resumption::disabled();
        Ok(Arc::new(config))
    }
}

fn webpki(
    roots: Arc<RootCertStore>,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(provider))
        .build()
        .map_err(|e| format!("TLS setup: {e}"))
}

/// The base roots plus a ca_file's, built on first need.
#[derive(Debug)]
struct Union {
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    verifier: OnceLock<Result<Arc<WebPkiServerVerifier>, String>>,
}

impl Union {
    fn verifier(&self) -> Result<Arc<WebPkiServerVerifier>, String> {
        self.verifier
            .get_or_init(|| {
                let mut store = RootCertStore::clone(&BASE_ROOTS.0);
                store.add_parsable_certificates(self.extra.iter().cloned());
                webpki(Arc::new(store), &self.provider)
            })
            .clone()
    }
}

// ----- recording ------------------------------------------------------------

thread_local! {
    /// Chains seen by the current request on this thread.
    static SEEN: RefCell<Vec<Arc<CertInfo>>> = const { RefCell::new(Vec::new()) };
    /// The chain of the handshake in progress on this thread.
    static HANDSHAKE: RefCell<Option<Arc<CertInfo>>> = const { RefCell::new(None) };
}

fn publish(info: &Arc<CertInfo>) {
    SEEN.with_borrow_mut(|seen| {
        if seen.len() < MAX_SEEN && !seen.iter().any(|s| Arc::ptr_eq(s, info)) {
            seen.push(Arc::clone(info));
        }
    });
}

/// Forget what earlier requests on this thread saw: call before a request.
pub fn begin() {
    SEEN.with_borrow_mut(Vec::clear);
    HANDSHAKE.with_borrow_mut(|h| *h = None);
}

/// The earliest-expiring certificate of every chain the request since
/// `begin` was presented (redirects can reach several servers).
pub fn presented() -> Option<Arc<CertInfo>> {
    SEEN.with_borrow(|seen| seen.iter().min_by_key(|c| c.expires_at).cloned())
}

/// The webpki verifier, recording the chain before judging it.
#[derive(Debug)]
struct RecordingVerifier {
    /// The base roots, or (with a ca_file) only the ca_file's.
    first: Arc<WebPkiServerVerifier>,
    /// With a ca_file: what decides when `first` refuses a chain.
    union: Option<Union>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity).chain(intermediates).map(|c| c.as_ref());
        if let Some(info) = CertInfo::of_chain(chain).map(Arc::new) {
            publish(&info);
            HANDSHAKE.with_borrow_mut(|h| *h = Some(info));
        }
        let verdict = self.first.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match (&verdict, &self.union) {
            (Err(_), Some(union)) => match union.verifier() {
                Ok(v) => {
                    v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                }
                Err(_) => verdict,
            },
            _ => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.first.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.first.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.first.supported_verify_schemes()
    }
}

/// The chain of the handshake that just completed on `conn`: what the
/// verifier recorded, else (should a handshake skip the verifier) the peer
/// certificates rustls kept.
fn completed_chain(conn: &ClientConnection) -> Option<Arc<CertInfo>> {
    HANDSHAKE.with_borrow_mut(Option::take).or_else(|| {
        let certs = conn.peer_certificates()?;
        CertInfo::of_chain(certs.iter().map(|c| c.as_ref())).map(Arc::new)
    })
}

/// The name a certificate must match: a DNS name or an IP address (`[::1]` too).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    ServerName::try_from(bare.to_string())
        .map_err(|_| format!("invalid server name {host:?}: expected a DNS name or an IP address"))
}

// ----- the ureq connector ----------------------------------------------------

/// Wraps ureq's TCP transport in rustls for `https` URLs, like ureq's own
/// `RustlsConnector`, with our config and the chain kept on the transport.
pub struct CertConnector {
    roots: Arc<Roots>,
}

impl fmt::Debug for CertConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertConnector")
    }
}

impl<In: Transport> Connector<In> for CertConnector {
    type Out = Either<In, CertTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else { return Ok(None) };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().ok_or(ureq::Error::Tls("no host name for TLS"))?;
        let name = server_name(host).map_err(|_| ureq::Error::Tls("invalid server name"))?;
        let config = self.roots.client_config().map_err(std::io::Error::other)?;
        let mut conn = ClientConnection::new(config, name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        HANDSHAKE.with_borrow_mut(|h| *h = None);
        if let Err(e) = conn.complete_io(&mut sock) {
            // Keep rustls's own error (expired, unknown issuer …) for the detail.
            let tls = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).cloned();
            return Err(tls.map_or_else(|| ureq::Error::from(e), ureq::Error::Rustls));
        }
        let chain = completed_chain(&conn);
        if let Some(c) = &chain {
            publish(c);
        }
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(CertTransport { buffers, stream: StreamOwned { conn, sock }, chain })))
    }
}

/// A TLS connection that remembers the chain its handshake saw.
pub struct CertTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
    chain: Option<Arc<CertInfo>>,
}

impl fmt::Debug for CertTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertTransport").field("chain", &self.chain).finish_non_exhaustive()
    }
}

impl Transport for CertTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        // Every request sent on this connection (a pooled one too) reports it.
        if let Some(c) = &self.chain {
            publish(c);
        }
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

// ----- failures ---------------------------------------------------------------

/// A handshake failure in words, naming the certificate when we saw one.
pub fn failure_detail(e: &rustls::Error, cert: Option<&CertInfo>, now: Timestamp) -> String {
    use rustls::CertificateError as C;
    let what = match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Expired | C::ExpiredContext { .. } => "certificate expired".to_string(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "certificate not valid yet".to_string()
            }
            C::UnknownIssuer => {
                "certificate not trusted (unknown issuer; an internal CA goes in ca_file)"
                    .to_string()
            }
            other => other.to_string(),
        },
        other => other.to_string(),
    };
    match cert {
        Some(c) => format!("TLS: {what}: {}", c.describe(now)),
        None => format!("TLS: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(days: i64, position: usize) -> CertInfo {
        let now = Timestamp::from_secs(1_800_000_000);
        CertInfo {
            expires_at: Timestamp(now.0 + days * 86_400_000),
            subject: "CN=x".into(),
            position,
            chain_len: 2,
        }
    }

    #[test]
    fn limits_grade_time_left() {
        let now = Timestamp::from_secs(1_800_000_000);
        let limits = CertLimits { warn: Duration::from_secs(14 * 86_400), crit: Duration::ZERO };
        assert_eq!(judge(&info(90, 0), limits, now), None);
        let (down, detail) = judge(&info(10, 0), limits, now).expect("warns");
        assert!(!down);
        assert!(detail.contains("expires in 10 days") && detail.contains("\"CN=x\""), "{detail}");
        let crit = CertLimits { crit: Duration::from_secs(20 * 86_400), ..limits };
        assert_eq!(judge(&info(10, 0), crit, now).map(|j| j.0), Some(true));
        // crit 0 is off: an expired extra certificate only warns.
        assert_eq!(judge(&info(-1, 1), limits, now).map(|j| j.0), Some(false));
        assert!(judge(&info(-3, 1), limits, now).unwrap().1.contains("certificate 2 of 2"));
    }

    #[test]
    fn spans_are_whole_units() {
        assert_eq!(span(Duration::from_secs(10 * 86_400 + 5)), "10 days");
        assert_eq!(span(Duration::from_secs(47 * 3600)), "47 hours");
        assert_eq!(span(Duration::from_secs(61)), "1 minute");
    }

    #[test]
    fn the_earliest_certificate_of_a_chain_is_reported() {
        assert_eq!(CertInfo::of_chain([&b"junk"[..]]), None);
    }

    #[test]
    fn the_system_bundle_is_preferred_when_it_has_roots() {
        let dir = tempfile::tempdir().unwrap();
        let (_, src) = base_roots(&dir.path().join("missing.crt"));
        assert!(matches!(src, RootsSource::Bundled(_)));
        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        assert_eq!(base_roots(&empty).1, RootsSource::Bundled(empty.clone()));
        if Path::new(SYSTEM_BUNDLE).exists() {
            assert!(
                matches!(base_roots(Path::new(SYSTEM_BUNDLE)).1, RootsSource::System(_, n) if n > 10)
            );
        }
    }

    #[test]
    fn server_names_accept_dns_names_and_ips() {
        assert!(server_name("example.com").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("[::1]").is_ok());
        assert!(server_name("bad name").is_err());
    }
}
