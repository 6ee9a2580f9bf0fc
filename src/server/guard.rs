//! The bounded front of the HTTP server.
//!
//! tiny_http reads request heads into unbounded buffers, has no read
//! timeouts, spawns a thread per connection without limit, and its accept
//! loop ends for good on the first accept error (EMFILE). So tiny_http only
//! ever sees connections that went through this front, over a private Unix
//! socket: here every client connection gets an idle timeout, a write
//! timeout, 10 s to send each request head whole (trickling one byte at a
//! time does not reset it), an 8 KiB cap on each request head (431 and
//! close beyond), and a
//! place among at most `MAX_CONNECTIONS`; accept errors are logged and waited
//! out, never fatal.
//!
//! The hot path, a dashboard or script polling `GET /api/status`, is
//! answered here directly from the published snapshot (the `Fast` answer):
//! relaying it through tiny_http costs four thread hand-offs per request and
//! two thirds of the throughput. Anything else, and everything after the
//! first request a connection sends that the fast path declines, goes to
//! tiny_http in order.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Concurrent client connections; more are answered 503 and closed. A
/// connection that has not yet sent a whole request head costs one small
/// thread and no tiny_http resources, so idle ones are cheap.
pub const MAX_CONNECTIONS: usize = 512;
/// Request line plus headers.
pub const MAX_HEAD: usize = 8 * 1024;
/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request head, once begun, must be complete within this, however it
/// trickles in: one byte every few seconds (slowloris) would otherwise keep
/// a connection place forever.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that does not read its response for this long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\nConnection: close\r\nRetry-After: 1\r\n\r\ntoo many connections\n";
const TOO_BIG: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\nContent-Length: 27\r\nConnection: close\r\n\r\nrequest header too large\r\n\n";

/// Answers a complete request head directly, or declines (None). The answer
/// is a whole HTTP response and whether to close the connection after it.
pub type Fast = Arc<dyn Fn(&[u8]) -> Option<(Vec<u8>, bool)> + Send + Sync>;

/// Starts the accept thread: clients of `public` are answered by `fast` or
/// relayed to `backend`.
pub fn spawn(public: TcpListener, backend: PathBuf, fast: Fast) -> io::Result<()> {
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("http-accept".into())
        .spawn(move || accept_loop(&public, &backend, &active, &fast))?;
    Ok(())
}

fn accept_loop(public: &TcpListener, backend: &Path, active: &Arc<AtomicUsize>, fast: &Fast) {
    loop {
        let stream = match public.accept() {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends pass; a busy loop would not help them pass sooner.
                crate::warn!("http: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
            let _ = (&stream).write_all(BUSY);
            continue;
        }
        let slot = Slot(Arc::clone(active));
        let backend = backend.to_path_buf();
        let fast = Arc::clone(fast);
        let spawned = std::thread::Builder::new()
            .name("http-conn".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let _slot = slot;
                relay(stream, &backend, HEAD_TIMEOUT, &fast);
            });
        if let Err(e) = spawned {
            crate::warn!("http: cannot start a connection thread: {e}");
        }
    }
}

/// Frees a connection place when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Sets the client's read timeout: the idle timeout, or less when a request
/// head must be complete by `deadline`. False once that deadline has passed.
fn arm(client: &TcpStream, deadline: Option<Instant>) -> bool {
    let left = match deadline {
        None => IDLE_TIMEOUT,
        Some(d) => d.saturating_duration_since(Instant::now()).min(IDLE_TIMEOUT),
    };
    !left.is_zero() && client.set_read_timeout(Some(left)).is_ok()
}

/// Where a request head ends: just past its blank line (CRLF or bare LF).
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.iter().enumerate().find_map(|(i, &b)| {
        if b != b'\n' {
            return None;
        }
        match &buf[i + 1..] {
            [b'\n', ..] => Some(i + 2),
            [b'\r', b'\n', ..] => Some(i + 3),
            _ => None,
        }
    })
}

fn relay(client: TcpStream, backend: &Path, head_timeout: Duration, fast: &Fast) {
    let _ = client.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = client.set_nodelay(true);
    // Requests the fast path answers never reach tiny_http; nothing does
    // before one whole request head has arrived.
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    let mut deadline = Instant::now() + head_timeout;
    loop {
        let Some(end) = head_end(&pending) else {
            if pending.len() > MAX_HEAD {
                let _ = (&client).write_all(TOO_BIG);
                return;
            }
            let within = if pending.is_empty() { None } else { Some(deadline) };
            if !arm(&client, within) {
                return;
            }
            let n = match (&client).read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if pending.is_empty() {
                deadline = Instant::now() + head_timeout;
            }
            pending.extend_from_slice(&buf[..n]);
            continue;
        };
        if end > MAX_HEAD + 2 {
            let _ = (&client).write_all(TOO_BIG);
            return;
        }
        let Some((answer, close)) = fast(&pending[..end]) else { break };
        if (&client).write_all(&answer).is_err() || close {
            return;
        }
        pending.drain(..end);
        deadline = Instant::now() + head_timeout;
    }
    let mut head = HeadMeter::default();
    if !head.feed(&pending) {
        let _ = (&client).write_all(TOO_BIG);
        return;
    }
    let first = pending;
    let Ok(back) = UnixStream::connect(backend) else { return };
    if (&back).write_all(&first).is_err() {
        return;
    }
    let (Ok(mut back_r), Ok(mut client_w)) = (back.try_clone(), client.try_clone()) else { return };
    // Responses flow back on their own thread, so a pipelining client is
    // read and answered at the same time.
    let writer = std::thread::Builder::new().name("http-out".into()).stack_size(64 * 1024).spawn(
        move || {
            let _ = io::copy(&mut back_r, &mut client_w);
            let _ = client_w.shutdown(Shutdown::Both);
        },
    );
    let Ok(writer) = writer else { return };
    forward_requests(&client, &back, head, head_timeout);
    let _ = back.shutdown(Shutdown::Write);
    let _ = writer.join();
    let _ = client.shutdown(Shutdown::Both);
}

/// Copies client bytes to the backend while no request head exceeds MAX_HEAD.
/// Only GET and HEAD are served, so any body counts against the cap too.
fn forward_requests(
    mut client: &TcpStream,
    mut back: &UnixStream,
    mut head: HeadMeter,
    head_timeout: Duration,
) {
    let mut buf = [0u8; 4096];
    let begun = |head: &HeadMeter| head.len > 0;
    let mut deadline = begun(&head).then(|| Instant::now() + head_timeout);
    loop {
        if !arm(client, deadline) {
            return; // a head trickling in for too long
        }
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => return, // closed, idle timeout, or reset
            Ok(n) => n,
        };
        if !head.feed(&buf[..n]) {
            let _ = client.write_all(TOO_BIG);
            let _ = back.shutdown(Shutdown::Both);
            return;
        }
        if back.write_all(&buf[..n]).is_err() {
            return;
        }
        // Idle between requests: the idle timeout; within a head: its deadline.
        deadline = if begun(&head) {
            deadline.or_else(|| Some(Instant::now() + head_timeout))
        } else {
            None
        };
    }
}

/// Counts the bytes of the current request head (since the last blank line).
#[derive(Default)]
pub struct HeadMeter {
    len: usize,
    tail: u32,
    /// Request heads seen complete so far.
    pub completed: usize,
}

impl HeadMeter {
    /// Feeds bytes; false once a head grows beyond MAX_HEAD.
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            self.tail = (self.tail << 8) | u32::from(b);
            self.len += 1;
            if self.tail == u32::from_be_bytes(*b"\r\n\r\n")
                || self.tail & 0xffff == u32::from(u16::from_be_bytes(*b"\n\n"))
            {
                self.len = 0;
                self.tail = 0;
                self.completed += 1;
            } else if self.len > MAX_HEAD {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relays one client to a backend that reads until EOF; the client
    /// sends `prefix`, then trickles a byte every 100 ms (never idle, never
    /// a whole head). Returns how long the relay held the connection.
    fn trickle(prefix: &[u8]) -> Duration {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("backend.sock");
        let backend = std::os::unix::net::UnixListener::bind(&sock).expect("bind backend");
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = backend.accept() {
                let _ = io::copy(&mut s, &mut io::sink());
            }
        });
        let public = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = public.local_addr().expect("addr");
        let relayed = std::thread::spawn(move || {
            let (c, _) = public.accept().expect("accept");
            let t0 = Instant::now();
            let decline: Fast = Arc::new(|_: &[u8]| None);
            relay(c, &sock, Duration::from_millis(300), &decline);
            t0.elapsed()
        });
        let mut c = TcpStream::connect(addr).expect("connect");
        let _ = c.write_all(prefix);
        let until = Instant::now() + Duration::from_secs(3);
        while !relayed.is_finished() && Instant::now() < until {
            let _ = c.write_all(b"a");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(relayed.is_finished(), "a trickled head held the connection for 3 s");
        relayed.join().expect("relay")
    }

    #[test]
    fn a_trickled_head_is_cut_off_at_the_head_timeout() {
        assert!(trickle(b"GET /api/status HTTP/1.1\r\nX-Slow: ") < Duration::from_secs(2));
        // The same for a second request on a kept-alive connection.
        assert!(trickle(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nX: ") < Duration::from_secs(2));
    }

    #[test]
    fn head_end_finds_the_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(head_end(b""), None);
    }

    #[test]
    fn head_meter_resets_per_request_and_caps() {
        let mut m = HeadMeter::default();
        for _ in 0..100 {
            assert!(m.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        }
        let mut m = HeadMeter::default();
        let big = vec![b'a'; MAX_HEAD + 1];
        assert!(!m.feed(&big));
        let mut m = HeadMeter::default();
        // split across reads
        assert!(m.feed(&vec![b'a'; MAX_HEAD - 4]));
        assert!(m.feed(b"\r\n\r\n"));
        assert!(m.feed(&vec![b'b'; MAX_HEAD]));
    }
}
