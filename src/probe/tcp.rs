//! TCP probe: resolve, then connect with what is left of the timeout.

use super::{Outcome, Reason, TcpProbe, clean_detail, http::io_outcome};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

pub fn check(p: &TcpProbe, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let addrs: Vec<_> = match p.address.to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return Outcome::down(
                Reason::Dns,
                format!("cannot resolve {}: {}", p.address, clean_detail(&e.to_string(), 120)),
            )
            .with_latency(started.elapsed());
        }
    };
    if addrs.is_empty() {
        return Outcome::down(Reason::Dns, format!("{} resolves to no address", p.address));
    }
    let mut last = None;
    for addr in &addrs {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(_) => {
                return Outcome::up(format!("connected to {addr}")).with_latency(started.elapsed());
            }
            Err(e) => last = Some(e),
        }
    }
    let out = match last {
        Some(e) => io_outcome(&e, &clean_detail(&e.to_string(), 120)),
        None => Outcome::down(
            Reason::Timeout,
            format!("no connection within {} ms", timeout.as_millis()),
        ),
    };
    out.with_latency(started.elapsed())
}
