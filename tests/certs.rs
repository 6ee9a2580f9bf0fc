//! Certificates: a test PKI made here (ECDSA P-256 keys from ring, DER
//! written by a small encoder, any validity we like, expired ones included),
//! served by a real rustls server on 127.0.0.1, probed by the real binary
//! through `http` (https URLs) and `tls` checks.

use crate::util::Daemon;
use crate::util::{Env, TcpFixture, accept_loop, perfdata_items, promtool_lint, wait_until};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::ResolvesServerCertUsingSni;
use rustls::sign::CertifiedKey;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAY: i64 = 86_400;

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

// ----- a tiny DER encoder -------------------------------------------------

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    match n {
        0..=0x7f => out.push(n as u8),
        0x80..=0xff => out.extend([0x81, n as u8]),
        _ => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &a in &arcs[2..] {
        let mut chunk = vec![(a & 0x7f) as u8];
        let mut v = a >> 7;
        while v > 0 {
            chunk.insert(0, 0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        body.extend(chunk);
    }
    tlv(0x06, &body)
}

/// `CN=<cn>` (and `O=<org>`), UTF8String.
fn name(cn: &str) -> Vec<u8> {
    let attr = |arcs: &[u64], v: &str| tlv(0x31, &seq(&[&oid(arcs), &tlv(0x0c, v.as_bytes())]));
    seq(&[&attr(&[2, 5, 4, 10], "Chatstack Test"), &attr(&[2, 5, 4, 3], cn)])
}

/// UTCTime before 2050, GeneralizedTime from then on (RFC 5280).
fn time(unix: i64) -> Vec<u8> {
    let days = unix.div_euclid(DAY);
    let sod = unix.rem_euclid(DAY);
    // civil_from_days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let hms = format!("{m:02}{d:02}{:02}{:02}{:02}Z", sod / 3600, sod / 60 % 60, sod % 60);
    if y < 2050 {
        tlv(0x17, format!("{:02}{hms}", y % 100).as_bytes())
    } else {
        tlv(0x18, format!("{y:04}{hms}").as_bytes())
    }
}

fn ext(arcs: &[u64], critical: bool, value: &[u8]) -> Vec<u8> {
    let crit = if critical { tlv(0x01, &[0xff]) } else { Vec::new() };
    seq(&[&oid(arcs), &crit, &tlv(0x04, value)])
}

/// A subjectAltName: an IP address or a DNS name.
fn san(host: &str) -> Vec<u8> {
    match host.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => tlv(0x87, &ip.octets()),
        Err(_) => tlv(0x82, host.as_bytes()),
    }
}

/// A certificate and its key.
pub struct Issued {
    pub der: Vec<u8>,
    pkcs8: Vec<u8>,
    key: EcdsaKeyPair,
    subject: Vec<u8>,
    pub not_after: i64,
}

impl Issued {
    fn pem(&self) -> String {
        let b64 = base64(&self.der);
        let lines: Vec<&str> =
            b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
    }
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What to issue.
struct Spec<'a> {
    cn: &'a str,
    /// Seconds from now (negative: in the past).
    not_before: i64,
    not_after: i64,
    ca: bool,
    /// Names the certificate is valid for (leaves).
    hosts: &'a [&'a str],
}

impl<'a> Spec<'a> {
    fn ca(cn: &'a str, not_after: i64) -> Self {
        Spec { cn, not_before: -DAY, not_after, ca: true, hosts: &[] }
    }

    fn leaf(cn: &'a str, not_after: i64, hosts: &'a [&'a str]) -> Self {
        Spec { cn, not_before: -DAY, not_after, ca: false, hosts }
    }
}

/// Issues `spec`, signed by `issuer` (self-signed when None).
fn issue(spec: &Spec, issuer: Option<&Issued>) -> Issued {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let subject = name(spec.cn);
    let t0 = now();
    let sig_alg = seq(&[&oid(&[1, 2, 840, 10045, 4, 3, 2])]);
    let spki = seq(&[
        &seq(&[&oid(&[1, 2, 840, 10045, 2, 1]), &oid(&[1, 2, 840, 10045, 3, 1, 7])]),
        &tlv(0x03, &[&[0u8][..], key.public_key().as_ref()].concat()),
    ]);
    let mut exts = Vec::new();
    if spec.ca {
        exts.push(ext(&[2, 5, 29, 19], true, &seq(&[&tlv(0x01, &[0xff])])));
        exts.push(ext(&[2, 5, 29, 15], true, &tlv(0x03, &[0x01, 0x06])));
    } else {
        exts.push(ext(&[2, 5, 29, 19], true, &seq(&[])));
        exts.push(ext(&[2, 5, 29, 15], true, &tlv(0x03, &[0x07, 0x80])));
        exts.push(ext(&[2, 5, 29, 37], false, &seq(&[&oid(&[1, 3, 6, 1, 5, 5, 7, 3, 1])])));
        let names: Vec<Vec<u8>> = spec.hosts.iter().map(|h| san(h)).collect();
        let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
        exts.push(ext(&[2, 5, 29, 17], false, &seq(&refs)));
    }
    let ext_refs: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
    static SERIAL: AtomicUsize = AtomicUsize::new(1);
    let serial = (SERIAL.fetch_add(1, Ordering::Relaxed) as u64 + (t0 as u64) * 1000).to_be_bytes();
    let issuer_name = issuer.map_or(subject.clone(), |i| i.subject.clone());
    let tbs = seq(&[
        &tlv(0xa0, &tlv(0x02, &[2])),
        &tlv(0x02, &[&[0u8][..], &serial].concat()),
        &sig_alg,
        &issuer_name,
        &seq(&[&time(t0 + spec.not_before), &time(t0 + spec.not_after)]),
        &subject,
        &spki,
        &tlv(0xa3, &seq(&ext_refs)),
    ]);
    let signer = issuer.map_or(&key, |i| &i.key);
    let sig = signer.sign(&rng, &tbs).unwrap();
    let der = seq(&[&tbs, &sig_alg, &tlv(0x03, &[&[0u8][..], sig.as_ref()].concat())]);
    Issued { der, pkcs8: pkcs8.as_ref().to_vec(), key, subject, not_after: t0 + spec.not_after }
}

// ----- a TLS server ---------------------------------------------------------

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certified(chain: &[&Issued]) -> Arc<CertifiedKey> {
    let certs: Vec<CertificateDer<'static>> =
        chain.iter().map(|c| CertificateDer::from(c.der.clone())).collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain[0].pkcs8.clone()));
    let signing = provider().key_provider.load_private_key(key).unwrap();
    Arc::new(CertifiedKey::new(certs, signing))
}

/// An HTTPS server on 127.0.0.1: answers every request on a connection
/// (keep-alive) with 200 "ok"; counts the connections it accepted.
pub struct TlsServer {
    fixture: TcpFixture,
    pub connections: Arc<AtomicUsize>,
}

impl TlsServer {
    fn port(&self) -> u16 {
        self.fixture.port()
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/health", self.port())
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }
}

/// Serves `chain` (leaf first) to every client.
fn serve(chain: &[&Issued]) -> TlsServer {
    let key = certified(chain);
    serve_with(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(key))),
    )
}

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for Fixed {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// Serves a certificate per SNI name (and none without SNI).
fn serve_sni(names: &[(&str, &[&Issued])]) -> TlsServer {
    let mut sni = ResolvesServerCertUsingSni::new();
    for (n, chain) in names {
        sni.add(n, (*certified(chain)).clone()).unwrap();
    }
    serve_with(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(sni)),
    )
}

fn serve_with(config: rustls::ServerConfig) -> TlsServer {
    let config = Arc::new(config);
    let connections = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&connections);
    let fixture = accept_loop(move |tcp, stop| {
        count.fetch_add(1, Ordering::SeqCst);
        let _ = tcp.set_read_timeout(Some(Duration::from_millis(100)));
        let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&config)) else { return };
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !stop.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
            match tls.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(_) => return,
            }
            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                buf.drain(..end + 4);
                let reply =
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
                if tls.write_all(reply).and_then(|()| tls.flush()).is_err() {
                    return;
                }
            }
        }
    });
    TlsServer { fixture, connections }
}

// ----- helpers ----------------------------------------------------------------

/// A CA file in the env holding `cas`.
fn ca_file(env: &Env, name: &str, cas: &[&Issued]) -> PathBuf {
    let pem: String = cas.iter().map(|c| c.pem()).collect();
    env.write(name, &pem)
}

/// `check --format json` of service `svc` with these checks; its checks.
#[track_caller]
fn run(env: &Env, checks: &[String]) -> (crate::util::Out, Vec<Value>) {
    run_with(env, checks, &[])
}

/// `run` with extra environment (`SSL_CERT_FILE`).
#[track_caller]
fn run_with(env: &Env, checks: &[String], vars: &[(&str, &str)]) -> (crate::util::Out, Vec<Value>) {
    let list: String = checks.iter().map(|c| format!("      - {c}\n")).collect();
    env.config(&format!("timeout: 2s\nservices:\n  - name: svc\n    checks:\n{list}"));
    let cfg = env.config_path().display().to_string();
    let out = env.cmd_env(&["check", "-c", &cfg, "--format", "json"], vars);
    let doc = out.json();
    let svc = crate::util::service_of(&doc, "svc");
    (out, svc["checks"].as_array().cloned().unwrap_or_default())
}

#[track_caller]
fn state(c: &Value, status: &str, reason: Option<&str>) {
    assert_eq!(c["status"], status, "{c:#}");
    match reason {
        Some(r) => assert_eq!(c["reason"], r, "{c:#}"),
        None => assert!(c["reason"].is_null(), "{c:#}"),
    }
}

/// `cert_expires_at` as Unix seconds.
#[track_caller]
fn expires(c: &Value) -> i64 {
    let t = c["cert_expires_at"].as_str().unwrap_or_else(|| panic!("no cert_expires_at: {c:#}"));
    let ts = chatstack_status::time::Timestamp::parse(t).expect("RFC 3339");
    ts.0.div_euclid(1000)
}

fn detail(c: &Value) -> &str {
    c["detail"].as_str().unwrap_or_default()
}

// ----- tests --------------------------------------------------------------------

#[test]
fn valid_for_90_days_is_up_with_cert_expires_at_on_one_connection() {
    let env = Env::new();
    let ca = issue(&Spec::ca("Test Root", 365 * DAY), None);
    let leaf = issue(&Spec::leaf("leaf.test", 90 * DAY, &["127.0.0.1"]), Some(&ca));
    let srv = serve(&[&leaf]);
    let ca_path = ca_file(&env, "ca.pem", &[&ca]);
    let (_, c) = run(
        &env,
        &[
            format!("{{type: http, url: '{}', ca_file: {ca_path:?}}}", srv.url()),
            format!("{{type: tls, address: '{}', ca_file: {ca_path:?}}}", srv.address()),
        ],
    );
    state(&c[0], "up", None);
    assert_eq!(detail(&c[0]), "HTTP 200");
    assert_eq!(expires(&c[0]), leaf.not_after);
    assert_eq!(c[0]["cert_warn_s"], 14 * DAY);
    assert!(c[0].get("cert_crit_s").is_none(), "cert_crit 0 is off: {:#}", c[0]);
    state(&c[1], "up", None);
    assert_eq!(expires(&c[1]), leaf.not_after);
    assert!(
        detail(&c[1]).contains("certificate valid 89 days")
            && detail(&c[1]).contains("CN=leaf.test"),
        "{:#}",
        c[1]
    );
    // One connection per check: the certificate came with the request's own.
    assert_eq!(srv.connections.load(Ordering::SeqCst), 2);

    let text = env.check(&[]);
    assert!(text.stdout.contains("HTTP 200 (cert 89 d left)"), "{}", text.stdout);
}

#[test]
fn ten_days_left_is_degraded_cert_expiring_and_below_cert_crit_down() {
    let env = Env::new();
    let ca = issue(&Spec::ca("Test Root", 365 * DAY), None);
    let leaf = issue(&Spec::leaf("soon.test", 10 * DAY + 3600, &["127.0.0.1"]), Some(&ca));
    let srv = serve(&[&leaf]);
    let ca_path = ca_file(&env, "ca.pem", &[&ca]);
    let (out, c) = run(
        &env,
        &[
            format!("{{type: http, url: '{}', ca_file: {ca_path:?}}}", srv.url()),
            format!(
                "{{type: http, url: '{}', ca_file: {ca_path:?}, cert_warn: 30d, cert_crit: 11d}}",
                srv.url()
            ),
            format!(
                "{{type: tls, address: '{}', ca_file: {ca_path:?}, cert_warn: 5d}}",
                srv.address()
            ),
        ],
    );
    state(&c[0], "degraded", Some("cert_expiring"));
    let d = detail(&c[0]);
    assert!(
        d.starts_with(
            "HTTP 200, certificate \"O=Chatstack Test, CN=soon.test\" expires in 10 days ("
        ),
        "{d}"
    );
    assert_eq!(expires(&c[0]), leaf.not_after);
    state(&c[1], "down", Some("cert_expiring"));
    assert_eq!(c[1]["cert_crit_s"], 11 * DAY);
    state(&c[2], "up", None);
    assert_eq!(out.code, 2, "a critical service down: {out:#?}");
}

#[test]
fn expired_and_untrusted_are_down_tls_and_ca_file_trusts() {
    let env = Env::new();
    let ca = issue(&Spec::ca("Test Root", 365 * DAY), None);
    let old = issue(
        &Spec { not_before: -40 * DAY, ..Spec::leaf("old.test", -2 * DAY - 60, &["127.0.0.1"]) },
        Some(&ca),
    );
    let good = issue(&Spec::leaf("good.test", 90 * DAY, &["127.0.0.1"]), Some(&ca));
    let (expired, fine) = (serve(&[&old]), serve(&[&good]));
    let ca_path = ca_file(&env, "ca.pem", &[&ca]);
    let (_, c) = run(
        &env,
        &[
            format!("{{type: http, url: '{}', ca_file: {ca_path:?}}}", expired.url()),
            format!("{{type: tls, address: '{}', ca_file: {ca_path:?}}}", expired.address()),
            format!("{{type: http, url: '{}'}}", fine.url()),
            format!("{{type: tls, address: '{}'}}", fine.address()),
            format!("{{type: http, url: '{}', ca_file: {ca_path:?}}}", fine.url()),
        ],
    );
    for e in &c[..2] {
        state(e, "down", Some("tls"));
        assert!(
            detail(e).contains("certificate expired") && detail(e).contains("expired 2 days ago"),
            "{e:#}"
        );
        assert_eq!(expires(e), old.not_after, "the refused chain is still reported");
    }
    for u in &c[2..4] {
        state(u, "down", Some("tls"));
        assert!(detail(u).contains("not trusted"), "{u:#}");
    }
    state(&c[4], "up", None);
}

#[test]
fn the_system_store_is_trusted_and_ca_file_adds_to_it() {
    let env = Env::new();
    // SSL_CERT_FILE stands in for /etc/ssl/certs/ca-certificates.crt.
    let system_ca = issue(&Spec::ca("System Root", 365 * DAY), None);
    let internal_ca = issue(&Spec::ca("Internal Root", 365 * DAY), None);
    let other_ca = issue(&Spec::ca("Unknown Root", 365 * DAY), None);
    let public = issue(&Spec::leaf("public.test", 90 * DAY, &["127.0.0.1"]), Some(&system_ca));
    let internal =
        issue(&Spec::leaf("internal.test", 90 * DAY, &["127.0.0.1"]), Some(&internal_ca));
    let stranger = issue(&Spec::leaf("stranger.test", 90 * DAY, &["127.0.0.1"]), Some(&other_ca));
    let (p, i, x) = (serve(&[&public]), serve(&[&internal]), serve(&[&stranger]));
    let bundle = ca_file(&env, "bundle.crt", &[&other_ca, &system_ca]).display().to_string();
    let ca = ca_file(&env, "internal.pem", &[&internal_ca]);
    let checks = [
        format!("{{type: http, url: '{}'}}", p.url()),
        format!("{{type: http, url: '{}'}}", i.url()),
        // With a ca_file, the system's roots still count (tried second).
        format!("{{type: http, url: '{}', ca_file: {ca:?}}}", p.url()),
        format!("{{type: tls, address: '{}', ca_file: {ca:?}}}", i.address()),
        format!("{{type: tls, address: '{}', ca_file: {ca:?}}}", x.address()),
    ];
    let (_, c) = run_with(&env, &checks, &[("SSL_CERT_FILE", &bundle)]);
    state(&c[0], "up", None);
    state(&c[1], "down", Some("tls"));
    state(&c[2], "up", None);
    state(&c[3], "up", None);
    state(&c[4], "up", None);
    // Without the stranger's root in the "system" bundle, it is untrusted.
    let bundle = ca_file(&env, "bundle2.crt", &[&system_ca]).display().to_string();
    let (_, c) = run_with(&env, &checks, &[("SSL_CERT_FILE", &bundle)]);
    state(&c[4], "down", Some("tls"));
    assert!(detail(&c[4]).contains("not trusted"), "{:#}", c[4]);
    // No usable system bundle: the built-in Mozilla roots, which trust none of these.
    let (_, c) = run_with(&env, &checks, &[("SSL_CERT_FILE", "/nonexistent/bundle.crt")]);
    state(&c[0], "down", Some("tls"));
    state(&c[3], "up", None);
    let cfg = env.config_path().display().to_string();
    let out =
        env.cmd_env(&["validate", "-c", &cfg], &[("SSL_CERT_FILE", "/nonexistent/bundle.crt")]);
    assert!(
        out.stdout.contains("certificates: trusting the Mozilla roots built in (")
            && out.stdout.contains("no usable /nonexistent/bundle.crt"),
        "{}",
        out.stdout
    );
    let out = env.cmd_env(&["validate", "-c", &cfg], &[("SSL_CERT_FILE", &bundle)]);
    assert!(
        out.stdout.contains(&format!("certificates: trusting {bundle} (1 root)")),
        "{}",
        out.stdout
    );
}

#[test]
fn sni_picks_the_certificate_by_server_name() {
    let env = Env::new();
    let ca = issue(&Spec::ca("Test Root", 365 * DAY), None);
    let a = issue(&Spec::leaf("a.test", 60 * DAY, &["a.test"]), Some(&ca));
    let b = issue(&Spec::leaf("b.test", 30 * DAY, &["b.test"]), Some(&ca));
    let srv = serve_sni(&[("a.test", &[&a]), ("b.test", &[&b])]);
    let ca_path = ca_file(&env, "ca.pem", &[&ca]);
    let addr = srv.address();
    let (_, c) = run(
        &env,
        &[
            format!("{{type: tls, address: '{addr}', server_name: a.test, ca_file: {ca_path:?}}}"),
            format!("{{type: tls, address: '{addr}', server_name: b.test, ca_file: {ca_path:?}}}"),
            format!("{{type: tls, address: '{addr}', ca_file: {ca_path:?}}}"),
        ],
    );
    state(&c[0], "up", None);
    assert_eq!(expires(&c[0]), a.not_after);
    assert!(detail(&c[0]).contains("CN=a.test"), "{:#}", c[0]);
    assert_eq!(c[0]["target"], format!("{addr} (a.test)"));
    state(&c[1], "up", None);
    assert_eq!(expires(&c[1]), b.not_after);
    // No SNI (an IP address): the server has no certificate to offer.
    state(&c[2], "down", Some("tls"));
}

#[test]
fn an_intermediate_expiring_before_the_leaf_is_the_date_reported() {
    let env = Env::new();
    let root = issue(&Spec::ca("Test Root", 365 * DAY), None);
    let mid = issue(&Spec::ca("Test Intermediate", 20 * DAY), Some(&root));
    let leaf = issue(&Spec::leaf("chain.test", 90 * DAY, &["127.0.0.1"]), Some(&mid));
    let srv = serve(&[&leaf, &mid]);
    let ca_path = ca_file(&env, "root.pem", &[&root]);
    let (_, c) = run(
        &env,
        &[
            format!("{{type: http, url: '{}', ca_file: {ca_path:?}}}", srv.url()),
            format!(
                "{{type: tls, address: '{}', ca_file: {ca_path:?}, cert_warn: 30d}}",
                srv.address()
            ),
        ],
    );
    state(&c[0], "up", None);
    assert_eq!(expires(&c[0]), mid.not_after);
    state(&c[1], "degraded", Some("cert_expiring"));
    assert_eq!(expires(&c[1]), mid.not_after);
    let d = detail(&c[1]);
    assert!(
        d.contains("certificate 2 of 2 the server sent") && d.contains("CN=Test Intermediate"),
        "{d}"
    );
}

#[test]
fn tls_check_failures_have_reasons() {
    let env = Env::new();
    // Accepts and closes at once; speaks plain text first (an SMTP or SSH banner).
    let closing = TcpFixture::new();
    let banner = accept_loop(|mut s, _| {
        let _ = s.write_all(b"220 mail.example ESMTP ready\r\n");
        let _ = s.read(&mut [0u8; 512]);
    });
    let (_, c) = run(
        &env,
        &[
            format!("{{type: tls, address: '127.0.0.1:{}'}}", crate::util::closed_port()),
            format!("{{type: tls, address: '127.0.0.1:{}'}}", closing.port()),
            format!("{{type: tls, address: '127.0.0.1:{}'}}", banner.port()),
        ],
    );
    state(&c[0], "down", Some("refused"));
    state(&c[1], "down", Some("tls"));
    assert!(detail(&c[1]).contains("closed the connection during the handshake"), "{:#}", c[1]);
    state(&c[2], "down", Some("tls"));
    assert!(c.iter().all(|c| c["cert_expires_at"].is_null()), "{c:#?}");
}

#[test]
fn a_silent_tls_server_times_out_within_the_timeout() {
    let env = Env::new();
    let silent = accept_loop(|s, stop| crate::util::hold_silently(&s, stop));
    let started = std::time::Instant::now();
    let (_, c) = run(
        &env,
        &[format!("{{type: tls, address: '127.0.0.1:{}', timeout: 300ms}}", silent.port())],
    );
    state(&c[0], "down", Some("timeout"));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[test]
fn metric_and_nagios_perfdata_carry_the_expiry() {
    let env = Env::new();
    let ca = issue(&Spec::ca("Test Root", 365 * DAY), None);
    let leaf = issue(&Spec::leaf("m.test", 40 * DAY, &["127.0.0.1"]), Some(&ca));
    let soon = issue(&Spec::leaf("s.test", 3 * DAY, &["127.0.0.1"]), Some(&ca));
    let (srv, srv2) = (serve(&[&leaf]), serve(&[&soon]));
    let ca_path = ca_file(&env, "ca.pem", &[&ca]);
    let prom = env.path("m.prom");
    env.config(&format!(
        "timeout: 2s\nprom_file: {prom:?}\nservices:\n  - name: \"Lead Flow\"\n    checks:\n      - {{type: http, url: '{}', ca_file: {ca_path:?}}}\n      - {{type: tls, address: '{}', ca_file: {ca_path:?}, cert_crit: 1d}}\n",
        srv.url(),
        srv2.address()
    ));
    let out = env.check(&["--format", "nagios"]);
    let line = out.stdout.trim_end();
    let (_, perf) = line.split_once(" | ").unwrap_or_else(|| panic!("no perfdata: {line}"));
    // Nagios plugin perfdata: 'label'=value[UOM];[warn];[crit];[min];[max],
    // thresholds as ranges ([@][start:][end], ~ for -inf).
    let range = r"@?(~|-?[0-9.]+)?:?(-?[0-9.]+)?";
    let item = regex::Regex::new(&format!(
        r"^('(?:[^']|'')+'|[^'=\s]+)=-?[0-9]+(\.[0-9]+)?([a-zA-Z%]+)?(;({range})?){{0,2}}(;(-?[0-9.]*)?){{0,2}}$"
    ))
    .unwrap();
    let items = perfdata_items(perf);
    assert_eq!(items.join(" "), perf.trim());
    for i in &items {
        assert!(item.is_match(i), "bad perfdata item {i:?} in {line}");
    }
    let cert: Vec<&String> = items.iter().filter(|i| i.contains("cert_days")).collect();
    assert_eq!(cert.len(), 2, "{items:?}");
    let value = |i: &str| -> f64 {
        i.split_once('=').unwrap().1.split(';').next().unwrap().parse().unwrap()
    };
    assert!(
        cert[0].starts_with("'Lead Flow cert_days'=") && cert[0].ends_with(";14:"),
        "{}",
        cert[0]
    );
    assert!((39.9..=40.0).contains(&value(cert[0])), "{}", cert[0]);
    assert!(
        cert[1].starts_with("'Lead Flow cert_days 2'=") && cert[1].ends_with(";14:;1:"),
        "{}",
        cert[1]
    );
    assert!((2.9..=3.0).contains(&value(cert[1])), "{}", cert[1]);

    let text = std::fs::read_to_string(&prom).unwrap();
    let want = format!(
        "chatstack_cert_expiry_timestamp_seconds{{service=\"Lead Flow\",check=\"0\",target=\"{}\"}} {}",
        srv.url(),
        leaf.not_after
    );
    assert!(text.contains(&want), "{want} not in\n{text}");
    assert!(text.contains("# TYPE chatstack_cert_expiry_timestamp_seconds gauge"));
    promtool_lint(text.as_bytes());
}

#[test]
fn a_pooled_connection_in_run_still_reports_the_certificate() {
    let env = Env::new();
    let ca = issue(&Spec::ca("Test Root", 365 * DAY), None);
    let leaf = issue(&Spec::leaf("pool.test", 90 * DAY, &["127.0.0.1"]), Some(&ca));
    let srv = serve(&[&leaf]);
    let ca_path = ca_file(&env, "ca.pem", &[&ca]);
    env.config(&format!(
        "interval: 100ms\ntimeout: 2s\nheal: {{ enabled: false }}\nservices:\n  - name: svc\n    checks:\n      - {{type: http, url: '{}', ca_file: {ca_path:?}, body_contains: ok}}\n",
        srv.url()
    ));
    let cfg = env.config_path().display().to_string();
    let _d = Daemon::start(&env, &["run", "-c", &cfg, "--no-http"], &[]);
    // Several cycles, then the status must still carry the certificate.
    wait_until(Duration::from_secs(15), || {
        let Ok(text) = std::fs::read_to_string(env.status_path()) else { return false };
        let Ok(doc) = serde_json::from_str::<Value>(&text) else { return false };
        let svc = crate::util::service_of(&doc, "svc");
        svc["history"].as_array().is_some_and(|h| h.len() >= 4)
            && svc["checks"][0]["cert_expires_at"].is_string()
    });
    let doc = env.status();
    let c = &crate::util::service_of(&doc, "svc")["checks"][0];
    assert_eq!(expires(c), leaf.not_after);
    // ureq pools a connection whose body was read (body_contains reads it).
    assert_eq!(srv.connections.load(Ordering::SeqCst), 1, "the connection was reused");
}

#[test]
fn ca_file_errors_are_located_and_exit_3() {
    let env = Env::new();
    let junk = env.write("junk.pem", "not a certificate\n");
    env.config(&format!(
        "services:\n  - name: svc\n    checks:\n      - type: tls\n        address: 127.0.0.1:1\n        ca_file: {junk:?}\n      - type: http\n        url: https://127.0.0.1:1/\n        ca_file: /nonexistent/ca.pem\n"
    ));
    let out = env.cmd(&["validate", "-c", &env.config_path().display().to_string()]);
    assert_eq!(out.code, 3, "{out:#?}");
    // Env::config adds lines of its own before ours: find ours.
    let text = env.read("monitor.yml");
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let (junk_line, missing_line) = (line_of("junk.pem"), line_of("/nonexistent/ca.pem"));
    assert!(
        out.stderr.contains(&format!("monitor.yml:{junk_line}:18: service \"svc\": ca_file: "))
            && out.stderr.contains("no certificate found"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "monitor.yml:{missing_line}:18: service \"svc\": ca_file: cannot read /nonexistent/ca.pem"
        )),
        "{}",
        out.stderr
    );
}
