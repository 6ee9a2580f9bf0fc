//! The connection side of the HTTP server: accept, bound, read, answer.
//!
//! One small thread per client connection reads request heads into a
//! bounded buffer, lets `wire::parse` judge them, hands each complete request
//! to the handler and writes the answer, in order (pipelining works without
//! any queue). Every byte path is bounded in size and time in both
//! directions, so a slow, absent or hostile peer only ever costs its own
//! connection: a head must arrive whole within `head` (trickling does not
//! reset it) and within 8 KiB whatever its line endings; a connection idle
//! for `idle` is closed; an answer must be taken within `write` or the
//! connection is dropped. At most `max_connections` are served at once; when
//! full, the connection that has been quiet the longest (no byte read from
//! it, none of its answer taken) is closed to make room, so idle, trickling
//! or non-reading connections cannot lock everyone out. Accept errors
//! (EMFILE) are logged and waited out.
//!
//! Never here: routing, auth, or anything about what is being served.

use super::wire::{self, Parsed, Request, Response};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Answers one complete request (its body, if any, is the slice).
pub type Handler = Arc<dyn Fn(&Request<'_>, &[u8]) -> Response + Send + Sync>;
/// The TLS settings for a new connection (None: plain HTTP), asked per
/// connection so a reload's new certificate applies to the next one.
pub type TlsSource = Arc<dyn Fn() -> Option<Arc<rustls::ServerConfig>> + Send + Sync>;

/// The bounds of the front (`Limits::default()` in production).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Concurrent connections served; beyond, the quietest is closed.
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed.
    pub idle: Duration,
    /// A request head (and its body), once begun, must be complete within this.
    pub head: Duration,
    /// An answer must be taken by the client within this.
    pub write: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            idle: Duration::from_secs(10),
            head: Duration::from_secs(10),
            write: Duration::from_secs(10),
        }
    }
}

/// Stack of a connection thread: enough for routing and the history
/// store's queries, small enough for hundreds of them.
const CONN_STACK: usize = 256 * 1024;

/// One live connection, as the accept thread sees it.
struct Conn {
    id: u64,
    /// Milliseconds since the registry's epoch of the last byte read, or
    /// written to the client.
    last_active: AtomicU64,
    /// Being answered (evicted after an idle one that is as quiet).
    busy: AtomicBool,
    evicted: AtomicBool,
    /// A handle on the socket, to close it from the accept thread.
    socket: TcpStream,
}

struct Registry {
    epoch: Instant,
    conns: Mutex<Vec<Arc<Conn>>>,
    next_id: AtomicU64,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Registers a new connection, closing the quietest one when full.
    /// None when even that is impossible (too many still ending).
    fn admit(&self, socket: &TcpStream, limit: usize) -> Option<Arc<Conn>> {
        let handle = socket.try_clone().ok()?;
        let mut conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        let live = conns.iter().filter(|c| !c.evicted.load(Ordering::Relaxed)).count();
        if live >= limit {
            // Quietest first: idle, trickling, or not reading its answer (a
            // write that makes no progress is as quiet as an idle socket).
            // Among equals, one not being answered goes first.
            let victim =
                conns.iter().filter(|c| !c.evicted.load(Ordering::Relaxed)).min_by_key(|c| {
                    (c.last_active.load(Ordering::Relaxed), c.busy.load(Ordering::Relaxed))
                })?;
            victim.evicted.store(true, Ordering::Relaxed);
            let _ = victim.socket.shutdown(Shutdown::Both);
        }
        // Evicted threads end at once (their read fails), but never let
        // their number grow without bound either.
        if conns.len() >= 2 * limit {
            return None;
        }
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            last_active: AtomicU64::new(self.now_ms()),
            busy: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            socket: handle,
        });
        conns.push(Arc::clone(&conn));
        Some(conn)
    }

    fn leave(&self, id: u64) {
        let mut conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = conns.iter().position(|c| c.id == id) {
            conns.swap_remove(i);
        }
    }

    /// Connections registered now (for tests and metrics).
    fn len(&self) -> usize {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// The running front; dropping it does not stop it (it lives with the process).
pub struct Front {
    registry: Arc<Registry>,
}

impl Front {
    /// Connections currently held open.
    pub fn connections(&self) -> usize {
        self.registry.len()
    }
}

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\nConnection: close\r\nRetry-After: 1\r\n\r\ntoo many connections\n";

/// Starts the accept thread on `listener`.
pub fn spawn(
    listener: TcpListener,
    limits: Limits,
    handler: Handler,
    tls: TlsSource,
) -> io::Result<Front> {
    let registry = Arc::new(Registry {
        epoch: Instant::now(),
        conns: Mutex::new(Vec::new()),
        next_id: AtomicU64::new(0),
    });
    let reg = Arc::clone(&registry);
    std::thread::Builder::new()
        .name("http-accept".into())
        .spawn(move || accept_loop(&listener, &reg, limits, &handler, &tls))?;
    Ok(Front { registry })
}

fn accept_loop(
    listener: &TcpListener,
    reg: &Arc<Registry>,
    limits: Limits,
    handler: &Handler,
    tls: &TlsSource,
) {
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends pass; a busy loop would not help them pass sooner.
                crate::warn!("http: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let Some(conn) = reg.admit(&stream, limits.max_connections) else {
            let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
            let _ = (&stream).write_all(BUSY);
            continue;
        };
        let (reg2, handler) = (Arc::clone(reg), Arc::clone(handler));
        let tls = tls();
        let id = conn.id;
        let spawned = std::thread::Builder::new()
            .name("http-conn".into())
            .stack_size(CONN_STACK)
            .spawn(move || {
                serve(&stream, &conn, &reg2, limits, &handler, tls);
                reg2.leave(conn.id);
            });
        if let Err(e) = spawned {
            crate::warn!("http: cannot start a connection thread: {e}");
            reg.leave(id);
        }
    }
}

/// Where a connection's bytes go: the TCP stream itself, or TLS over it.
/// TLS is driven by hand (not rustls' blocking `Stream`, which loops until
/// a whole record arrives), so every socket read comes back here and the
/// deadlines hold however the bytes trickle.
enum Transport {
    Plain,
    Tls(Box<rustls::ServerConnection>),
}

/// What one read brought.
enum Got {
    Bytes,
    /// Socket data arrived but no plaintext yet (a TLS record in progress).
    Nothing,
    Closed,
}

/// A connection: its transport, the TCP socket under it, and the read
/// timeout it last got, so the common case (a whole request per read, the
/// idle timeout between them) costs no `setsockopt` per request.
struct Socket<'a> {
    transport: Transport,
    tcp: &'a TcpStream,
    read_timeout: Option<Duration>,
}

impl Socket<'_> {
    /// Sets the read timeout for the next socket read to `wait` (unless it
    /// is already close enough). False on failure.
    fn arm(&mut self, wait: Duration) -> bool {
        let current = self.read_timeout.unwrap_or(Duration::MAX);
        if current > wait || current + Duration::from_millis(100) < wait {
            if self.tcp.set_read_timeout(Some(wait)).is_err() {
                return false;
            }
            self.read_timeout = Some(wait);
        }
        true
    }

    /// One socket read, within `deadline` (else the idle timeout).
    fn read_once(&mut self, out: &mut Vec<u8>, deadline: Option<Instant>, limits: &Limits) -> Got {
        let wait = match deadline {
            None => limits.idle,
            Some(d) => d.saturating_duration_since(Instant::now()).min(limits.idle),
        };
        if wait.is_zero() || !self.arm(wait) {
            return Got::Closed;
        }
        let mut chunk = [0u8; 4096];
        match &mut self.transport {
            Transport::Plain => match (&mut &*self.tcp).read(&mut chunk) {
                Ok(0) | Err(_) => Got::Closed,
                Ok(n) => {
                    out.extend_from_slice(&chunk[..n]);
                    Got::Bytes
                }
            },
            Transport::Tls(conn) => {
                // Plaintext already decrypted comes first: it needs no socket read.
                match conn.reader().read(&mut chunk) {
                    Ok(0) => return Got::Closed,
                    Ok(n) => {
                        out.extend_from_slice(&chunk[..n]);
                        return Got::Bytes;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return Got::Closed,
                }
                match conn.read_tls(&mut &*self.tcp) {
                    Ok(0) | Err(_) => return Got::Closed,
                    Ok(_) => {}
                }
                if conn.process_new_packets().is_err() {
                    let _ = conn.write_tls(&mut &*self.tcp); // the alert, if it fits
                    return Got::Closed;
                }
                match conn.reader().read(&mut chunk) {
                    Ok(0) => Got::Closed, // close_notify
                    Ok(n) => {
                        out.extend_from_slice(&chunk[..n]);
                        Got::Bytes
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Got::Nothing,
                    Err(_) => Got::Closed,
                }
            }
        }
    }

    /// Completes a TLS handshake within `deadline`, one socket operation at
    /// a time. True for plain connections.
    fn handshake(&mut self, deadline: Instant) -> bool {
        let Transport::Tls(conn) = &mut self.transport else { return true };
        let tcp = self.tcp;
        while conn.is_handshaking() || conn.wants_write() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            if conn.wants_write() {
                if tcp.set_write_timeout(Some(left)).is_err() || conn.write_tls(&mut &*tcp).is_err()
                {
                    return false;
                }
                continue;
            }
            if tcp.set_read_timeout(Some(left)).is_err() {
                return false;
            }
            match conn.read_tls(&mut &*tcp) {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
            if conn.process_new_packets().is_err() {
                let _ = conn.write_tls(&mut &*tcp);
                return false;
            }
        }
        self.read_timeout = None; // changed above: set afresh on the next read
        true
    }

    /// Writes all of `parts` (head, body) within `limit` in total, however
    /// slowly the client reads (the socket's write timeout is `limit` to
    /// begin with); `progress` is told of every write the client took, so a
    /// client that reads is never taken for one that does not.
    ///
    /// Over TLS the plaintext goes to rustls in pieces, each drained to the
    /// socket before the next: its buffer takes at most 64 KiB, and a larger
    /// answer handed over whole was cut off there.
    fn write_within(&mut self, parts: &[&[u8]], limit: Duration, progress: &dyn Fn()) -> bool {
        let deadline = Instant::now() + limit;
        let tcp = self.tcp;
        let mut first = true;
        let mut rearm = || -> bool {
            if std::mem::take(&mut first) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            !left.is_zero() && tcp.set_write_timeout(Some(left)).is_ok()
        };
        let done = match &mut self.transport {
            Transport::Plain => {
                let mut slices: Vec<io::IoSlice<'_>> =
                    parts.iter().filter(|p| !p.is_empty()).map(|p| io::IoSlice::new(p)).collect();
                let mut rest = &mut slices[..];
                loop {
                    if rest.is_empty() {
                        break true;
                    }
                    if !rearm() {
                        break false;
                    }
                    match (&mut &*tcp).write_vectored(rest) {
                        Ok(0) | Err(_) => break false,
                        Ok(n) => {
                            progress();
                            io::IoSlice::advance_slices(&mut rest, n);
                        }
                    }
                }
            }
            Transport::Tls(conn) => {
                let mut pieces = parts.iter().copied().filter(|p| !p.is_empty());
                let mut rest: &[u8] = pieces.next().unwrap_or(&[]);
                loop {
                    // Drain what rustls holds, one socket write at a time.
                    if conn.wants_write() {
                        if !rearm() || conn.write_tls(&mut &*tcp).is_err() {
                            break false;
                        }
                        progress();
                        continue;
                    }
                    if rest.is_empty() {
                        match pieces.next() {
                            Some(p) => rest = p,
                            None => break true,
                        }
                    }
                    // Takes what fits in its buffer; the rest after a drain.
                    match conn.writer().write(rest) {
                        Ok(0) | Err(_) => break false,
                        Ok(n) => rest = &rest[n..],
                    }
                }
            }
        };
        done && (first || tcp.set_write_timeout(Some(limit)).is_ok())
    }

    fn close(&mut self) {
        if let Transport::Tls(conn) = &mut self.transport {
            conn.send_close_notify();
            let _ = conn.write_tls(&mut &*self.tcp);
        }
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}

/// Serves one connection: TLS first when configured (its handshake within
/// the head timeout, like any slow client), then HTTP.
fn serve(
    tcp: &TcpStream,
    conn: &Conn,
    reg: &Registry,
    limits: Limits,
    handler: &Handler,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let _ = tcp.set_nodelay(true);
    if tcp.set_write_timeout(Some(limits.write)).is_err() {
        return;
    }
    let transport = match tls.map(rustls::ServerConnection::new) {
        None => Transport::Plain,
        Some(Ok(session)) => Transport::Tls(Box::new(session)),
        Some(Err(_)) => return,
    };
    let mut sock = Socket { transport, tcp, read_timeout: None };
    if !sock.handshake(Instant::now() + limits.head) {
        let _ = tcp.shutdown(Shutdown::Both);
        return;
    }
    let _ = tcp.set_write_timeout(Some(limits.write));
    conn.last_active.store(reg.now_ms(), Ordering::Relaxed);
    serve_http(sock, conn, reg, limits, handler);
}

/// Serves HTTP on a connection until it closes, misbehaves or times out.
fn serve_http(
    mut sock: Socket<'_>,
    conn: &Conn,
    reg: &Registry,
    limits: Limits,
    handler: &Handler,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    let peer = sock.tcp.peer_addr().ok().map(|a| a.ip());
    let progress = || conn.last_active.store(reg.now_ms(), Ordering::Relaxed);
    // A head's clock starts with its first byte (already buffered, for a
    // pipelined one), and does not restart however it trickles.
    let mut deadline: Option<Instant> = None;
    loop {
        if !buf.is_empty() {
            deadline.get_or_insert_with(|| Instant::now() + limits.head);
        }
        let (resp, head_only, close, used) = match wire::parse(&buf) {
            Parsed::Complete { mut req, head_len, body_len }
                if buf.len() >= head_len + body_len =>
            {
                conn.busy.store(true, Ordering::Relaxed);
                req.peer = peer;
                let used = head_len + body_len;
                let resp = handler(&req, &buf[head_len..used]);
                (resp, req.method == wire::Method::Head, req.wants_close(), used)
            }
            Parsed::Complete { .. } | Parsed::Partial => {
                match sock.read_once(&mut buf, deadline, &limits) {
                    Got::Closed => return,
                    // A TLS record in progress is a head begun: its clock runs.
                    Got::Nothing => {
                        deadline.get_or_insert_with(|| Instant::now() + limits.head);
                    }
                    Got::Bytes => progress(),
                }
                continue;
            }
            Parsed::Reject(status, msg) => {
                let answer = wire::encode(&Response::json_error(status, msg), false, true);
                let _ = sock.write_within(&[&answer], limits.write, &progress);
                sock.close();
                return;
            }
        };
        let head = wire::encode_head(&resp, close);
        let body: &[u8] = if head_only { &[] } else { &resp.body };
        let written = sock.write_within(&[&head, body], limits.write, &progress);
        // The body's bytes go back to the budget (`resp.held`) here.
        drop(resp);
        conn.busy.store(false, Ordering::Relaxed);
        if !written || close || conn.evicted.load(Ordering::Relaxed) {
            sock.close();
            return;
        }
        buf.drain(..used);
        deadline = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_path() -> Handler {
        Arc::new(|req: &Request<'_>, body: &[u8]| {
            Response::new(200, "text/plain", format!("{} {}", req.path, body.len()).into_bytes())
        })
    }

    fn start(limits: Limits) -> (std::net::SocketAddr, Front) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        (addr, spawn(l, limits, echo_path(), Arc::new(|| None)).expect("spawn"))
    }

    fn quick() -> Limits {
        Limits {
            max_connections: 4,
            idle: Duration::from_millis(800),
            head: Duration::from_millis(300),
            write: Duration::from_millis(500),
        }
    }

    /// Sends `prefix`, then a byte every 50 ms; how long until the server hung up.
    fn trickle(prefix: &[u8]) -> Duration {
        let (addr, _front) = start(quick());
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        let t0 = Instant::now();
        c.write_all(prefix).expect("write");
        let mut sink = [0u8; 4096];
        while t0.elapsed() < Duration::from_secs(3) {
            if c.write_all(b"a").is_err() {
                break;
            }
            match c.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        t0.elapsed()
    }

    #[test]
    fn a_trickled_head_is_cut_off_at_the_head_timeout_whatever_the_line_endings() {
        assert!(trickle(b"GET /x HTTP/1.1\r\nX-Slow: ") < Duration::from_secs(2));
        assert!(trickle(b"GET /x HTTP/1.1\nX-Slow: ") < Duration::from_secs(2));
        // The same for a second request on a kept-alive connection.
        assert!(trickle(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nX: ") < Duration::from_secs(2));
        assert!(trickle(b"GET / HTTP/1.1\n\nGET / HTTP/1.1\nX: ") < Duration::from_secs(2));
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_then_an_oversize_one_gets_431() {
        let (addr, _front) = start(quick());
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let big = format!("GET /big HTTP/1.1\nX: {}\n\n", "b".repeat(9000));
        let all = format!(
            "GET /one HTTP/1.1\r\n\r\nPOST /two HTTP/1.1\nContent-Length: 3\n\nabcGET /three HTTP/1.1\n\n{big}"
        );
        c.write_all(all.as_bytes()).expect("write");
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        let text = String::from_utf8_lossy(&got);
        let order: Vec<&str> = ["/one 0", "/two 3", "/three 0", "431 Request Header"]
            .into_iter()
            .filter(|p| text.contains(p))
            .collect();
        assert_eq!(order.len(), 4, "{text}");
        let pos: Vec<usize> = order.iter().filter_map(|p| text.find(p)).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "out of order: {text}");
    }

    #[test]
    fn when_full_the_quietest_connection_makes_room() {
        let (addr, front) = start(quick());
        let idle: Vec<TcpStream> =
            (0..4).map(|_| TcpStream::connect(addr).expect("connect")).collect();
        crate::server::tests_wait(Duration::from_secs(2), || front.connections() == 4);
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        c.write_all(b"GET /me HTTP/1.1\r\nConnection: close\r\n\r\n").expect("write");
        let mut got = String::new();
        let _ = c.read_to_string(&mut got);
        assert!(got.contains("/me 0"), "{got}");
        drop(idle);
    }

    #[test]
    fn a_client_that_never_reads_costs_only_its_own_connection() {
        let (addr, front) = start(quick());
        let mut hog = TcpStream::connect(addr).expect("connect");
        // Megabytes of pipelined requests, never reading an answer.
        let req = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
        let writer = std::thread::spawn(move || {
            for _ in 0..100 {
                if hog.write_all(&req).is_err() {
                    break;
                }
            }
        });
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        c.write_all(b"GET /other HTTP/1.1\r\nConnection: close\r\n\r\n").expect("write");
        let mut got = String::new();
        let _ = c.read_to_string(&mut got);
        assert!(got.contains("/other 0"), "{got}");
        let _ = writer.join();
        crate::server::tests_wait(Duration::from_secs(3), || front.connections() == 0);
    }
}
