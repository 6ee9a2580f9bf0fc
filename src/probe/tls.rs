//! TLS probe (`type: tls`): connect, complete a verified handshake, read the
//! chain the server presented, close. For TLS services that are not HTTP
//! (SMTP submission on 465, IMAPS, a database's TLS port) and for checking a
//! certificate by name (`server_name`, sent as SNI) on a shared address.

use super::certs::{self, CertInfo};
use super::http::io_outcome;
use super::{CheckStatus, Outcome, Reason, TlsProbe, clean_detail};
use crate::time::Timestamp;
use rustls::ClientConnection;
use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn check(p: &TlsProbe, timeout: Duration) -> Outcome {
    let started = Instant::now();
    certs::begin();
    let out = handshake(p, started + timeout, timeout);
    let out = Outcome { cert: certs::presented(), ..out };
    let out = super::judge_cert(out, p.limits, Timestamp::now());
    out.with_latency(started.elapsed())
}

fn handshake(p: &TlsProbe, deadline: Instant, timeout: Duration) -> Outcome {
    let host = p.address.rsplit_once(':').map_or(p.address.as_str(), |(h, _)| h);
    let name = match certs::server_name(p.server_name.as_deref().unwrap_or(host)) {
        Ok(n) => n,
        Err(e) => return Outcome::not_up(CheckStatus::Unknown, Reason::CheckError, e),
    };
    let config = match p.trust.client_config() {
        Ok(c) => c,
        Err(e) => return Outcome::not_up(CheckStatus::Unknown, Reason::CheckError, e),
    };
    let mut sock = match connect(&p.address, deadline, timeout) {
        Ok(s) => s,
        Err(out) => return *out,
    };
    let mut conn = match ClientConnection::new(Arc::clone(&config), name) {
        Ok(c) => c,
        Err(e) => return Outcome::down(Reason::Tls, format!("TLS: {e}")),
    };
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return timed_out(timeout);
        }
        let _ = sock.set_read_timeout(Some(left));
        let _ = sock.set_write_timeout(Some(left));
        let step = if conn.wants_write() {
            conn.write_tls(&mut sock).map(|_| ())
        } else {
            match conn.read_tls(&mut sock) {
                Ok(0) => Err(std::io::Error::from(ErrorKind::UnexpectedEof)),
                Ok(_) => conn
                    .process_new_packets()
                    .map(|_| ())
                    .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e)),
                Err(e) => Err(e),
            }
        };
        if let Err(e) = step {
            // rustls may still have an alert to send (it tells the server why).
            let _ = conn.write_tls(&mut sock);
            return failed(&e, timeout);
        }
    }
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
        _ => "TLS",
    };
    conn.send_close_notify();
    let _ = conn.write_tls(&mut sock);
    let detail = match certs::presented() {
        Some(c) => format!("{version}, {}", valid_for(&c)),
        None => version.to_string(),
    };
    Outcome::up(detail)
}

/// `certificate valid 89 days ("CN=x")` for an up detail.
fn valid_for(c: &CertInfo) -> String {
    let days = c.days_left(Timestamp::now()).floor();
    format!("certificate valid {days:.0} days ({:?})", c.subject)
}

fn connect(address: &str, deadline: Instant, timeout: Duration) -> Result<TcpStream, Box<Outcome>> {
    let addrs: Vec<_> = match address.to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return Err(Box::new(Outcome::down(
                Reason::Dns,
                format!("cannot resolve {address}: {}", clean_detail(&e.to_string(), 120)),
            )));
        }
    };
    let mut last = None;
    for addr in &addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Box::new(match last {
        Some(e) => io_outcome(&e, &clean_detail(&e.to_string(), 120)),
        None if addrs.is_empty() => {
            Outcome::down(Reason::Dns, format!("{address} resolves to no address"))
        }
        None => timed_out(timeout),
    }))
}

fn timed_out(timeout: Duration) -> Outcome {
    Outcome::down(Reason::Timeout, format!("no TLS handshake within {} ms", timeout.as_millis()))
}

fn failed(e: &std::io::Error, timeout: Duration) -> Outcome {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        let cert = certs::presented();
        return Outcome::down(
            Reason::Tls,
            certs::failure_detail(tls, cert.as_deref(), Timestamp::now()),
        );
    }
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => timed_out(timeout),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => {
            Outcome::down(Reason::Tls, "TLS: the server closed the connection during the handshake")
        }
        _ => io_outcome(e, &clean_detail(&e.to_string(), 120)),
    }
}
