//! The bounded front of the HTTP server.
//!
//! tiny_http reads request heads into unbounded buffers, has no read
//! timeouts, spawns a thread per connection without limit, and its accept
//! loop ends for good on the first accept error (EMFILE). So tiny_http only
//! ever sees connections that went through this front, over a private Unix
//! socket: here every client connection gets an idle timeout, a write
//! timeout, an 8 KiB cap on each request head (431 and close beyond), and a
//! place among at most `MAX_CONNECTIONS`; accept errors are logged and waited
//! out, never fatal.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Concurrent client connections; more are answered 503 and closed. A
/// connection that has not yet sent a whole request head costs one small
/// thread and no tiny_http resources, so idle ones are cheap.
pub const MAX_CONNECTIONS: usize = 512;
/// Request line plus headers.
pub const MAX_HEAD: usize = 8 * 1024;
/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that does not read its response for this long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\nConnection: close\r\nRetry-After: 1\r\n\r\ntoo many connections\n";
const TOO_BIG: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\nContent-Length: 27\r\nConnection: close\r\n\r\nrequest header too large\r\n\n";

/// Starts the accept thread: clients of `public` are relayed to `backend`.
pub fn spawn(public: TcpListener, backend: PathBuf) -> io::Result<()> {
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("http-accept".into())
        .spawn(move || accept_loop(&public, &backend, &active))?;
    Ok(())
}

fn accept_loop(public: &TcpListener, backend: &Path, active: &Arc<AtomicUsize>) {
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
        let spawned = std::thread::Builder::new()
            .name("http-conn".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let _slot = slot;
                relay(stream, &backend);
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

fn relay(client: TcpStream, backend: &Path) {
    let _ = client.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = client.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = client.set_nodelay(true);
    // Nothing reaches tiny_http before one whole request head has arrived.
    let mut head = HeadMeter::default();
    let mut first = Vec::new();
    let mut buf = [0u8; 4096];
    while head.completed == 0 {
        let n = match (&client).read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !head.feed(&buf[..n]) {
            let _ = (&client).write_all(TOO_BIG);
            return;
        }
        first.extend_from_slice(&buf[..n]);
    }
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
    forward_requests(&client, &back, head);
    let _ = back.shutdown(Shutdown::Write);
    let _ = writer.join();
    let _ = client.shutdown(Shutdown::Both);
}

/// Copies client bytes to the backend while no request head exceeds MAX_HEAD.
/// Only GET and HEAD are served, so any body counts against the cap too.
fn forward_requests(mut client: &TcpStream, mut back: &UnixStream, mut head: HeadMeter) {
    let mut buf = [0u8; 4096];
    loop {
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
