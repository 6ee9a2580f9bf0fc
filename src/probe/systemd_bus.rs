//! systemd asked over D-Bus (the system bus, on a connection kept across
//! cycles), so a cycle costs its host no `systemctl` process (fork, exec,
//! the dynamic loader and libsystemd-shared: 7–9 ms of CPU for 5 units under
//! a real systemd, bench/NOTES.md).
//!
//! Only what the cycle needs is spoken: the EXTERNAL authentication, `Hello`
//! on a bus, and `org.freedesktop.DBus.Properties.Get` of each property in
//! `units::PROPERTIES`, all of a cycle's calls written at once and their
//! answers read back. The answers are rendered as the `KEY=VALUE` block
//! `systemctl show` prints, so the verdict, the diagnosis and the incident's
//! recorded answer read one format whichever way systemd was asked.
//!
//! Where: `addresses`. Where no bus can be reached (not booted with
//! systemd, no dbus daemon, systemd not on it) or the connection breaks,
//! the caller runs `systemctl show` as before.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const SYSTEMD: &str = "org.freedesktop.systemd1";
const UNIT_IFACE: &str = "org.freedesktop.systemd1.Unit";
/// Properties of the Unit interface; the others are the unit type's
/// (`org.freedesktop.systemd1.Service` for a `.service`).
const UNIT_PROPERTIES: &[&str] = &["Id", "LoadState", "ActiveState", "SubState", "InvocationID"];
const NO_SERVICE: &str = "org.freedesktop.DBus.Error.ServiceUnknown";
const NO_OWNER: &str = "org.freedesktop.DBus.Error.NameHasNoOwner";
/// No answer of ours is near this; a peer that sends more is not systemd.
const MAX_MESSAGE: usize = 64 * 1024;
/// Calls written before their answers are read: the system bus refuses a
/// connection more than `max_replies_per_connection` (dbus-daemon: 128)
/// pending calls, and 10 units are 130 properties.
const MAX_IN_FLIGHT: usize = 64;

/// Where systemd listens, and whether a bus daemon sits in between (then
/// the connection says `Hello` first, and is kept across cycles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub path: PathBuf,
    pub bus: bool,
}

/// The path of a `unix:path=…` entry of a D-Bus address list.
fn unix_path(address: &str) -> Option<PathBuf> {
    address.split(';').find_map(|entry| {
        let rest = entry.strip_prefix("unix:")?;
        rest.split(',').find_map(|kv| kv.strip_prefix("path=")).map(PathBuf::from)
    })
}

/// The addresses to try, in order: `DBUS_SYSTEM_BUS_ADDRESS` alone when
/// set; else, on a host booted with systemd (`/run/systemd/system`, as
/// `sd_booted` and `systemctl` check), the system bus, then for root
/// systemd's own socket. The system bus comes first even for root: systemd
/// sends its private socket's clients every signal it broadcasts, read or
/// not, so a connection there is made per cycle and never kept idle.
pub fn addresses() -> Vec<Address> {
    if let Some(a) = std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS") {
        let path = a.to_str().and_then(unix_path);
        return path.map(|path| vec![Address { path, bus: true }]).unwrap_or_default();
    }
    if !std::path::Path::new("/run/systemd/system").is_dir() {
        return Vec::new();
    }
    let mut out = vec![Address { path: "/run/dbus/system_bus_socket".into(), bus: true }];
    if rustix::process::geteuid().is_root() {
        out.push(Address { path: "/run/systemd/private".into(), bus: false });
    }
    out
}

/// What went wrong talking to systemd. `Timeout`: the deadline passed;
/// anything else means the connection is unusable (the caller drops it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusError {
    Timeout,
    Broken(String),
}

impl BusError {
    fn text(&self) -> String {
        match self {
            BusError::Timeout => "no answer in time".into(),
            BusError::Broken(e) => e.clone(),
        }
    }
}

impl From<std::io::Error> for BusError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => BusError::Timeout,
            _ => BusError::Broken(e.to_string()),
        }
    }
}

/// A property's value, for the types the properties we ask have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    U32(u32),
    I32(i32),
    U64(u64),
    Bool(bool),
    Bytes(Vec<u8>),
    /// A type we do not read (never one of `PROPERTIES`).
    Other(String),
}

impl Value {
    /// As `systemctl show` prints it (one with a control character, a line
    /// break say, as `[unprintable]`: the block is lines).
    fn shown(&self) -> String {
        match self {
            Value::Str(s) if s.chars().any(char::is_control) => "[unprintable]".into(),
            Value::Str(s) => s.clone(),
            Value::U32(n) => n.to_string(),
            Value::I32(n) => n.to_string(),
            Value::U64(u64::MAX) => "[not set]".into(),
            Value::U64(n) => n.to_string(),
            Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
            Value::Bytes(b) => b.iter().map(|b| format!("{b:02x}")).collect(),
            Value::Other(sig) => format!("[{sig}]"),
        }
    }
}

/// One connection to systemd.
pub struct Bus {
    sock: UnixStream,
    serial: u32,
    buf: Vec<u8>,
}

impl Bus {
    /// Connects and authenticates (and says `Hello` on a bus), by `deadline`.
    pub fn connect(addr: &Address, deadline: Instant) -> Result<Bus, BusError> {
        let sock = connect_now(&addr.path)?;
        let mut bus = Bus { sock, serial: 0, buf: Vec::new() };
        bus.auth(deadline)?;
        if addr.bus {
            let hello = bus.message(&Call {
                dest: "org.freedesktop.DBus",
                path: "/org/freedesktop/DBus",
                iface: "org.freedesktop.DBus",
                member: "Hello",
                args: &[],
            });
            bus.exchange(&[hello], deadline)?
                .pop()
                .and_then(|r| r.err())
                .map_or(Ok(()), |e| Err(BusError::Broken(format!("Hello refused: {e}"))))?;
        }
        Ok(bus)
    }

    fn auth(&mut self, deadline: Instant) -> Result<(), BusError> {
        let uid = rustix::process::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        self.send(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes(), deadline)?;
        let mut line = Vec::new();
        while !line.windows(2).any(|w| w == b"\r\n") {
            if line.len() > 512 {
                return Err(BusError::Broken("endless authentication line".into()));
            }
            let mut chunk = [0u8; 128];
            self.sock.set_read_timeout(Some(remaining(deadline)?))?;
            let n = self.sock.read(&mut chunk)?;
            if n == 0 {
                return Err(BusError::Broken("closed during authentication".into()));
            }
            line.extend_from_slice(&chunk[..n]);
        }
        let end = line.windows(2).position(|w| w == b"\r\n").map_or(line.len(), |i| i + 2);
        if !line.starts_with(b"OK ") {
            let said = String::from_utf8_lossy(&line[..end]).trim().to_string();
            return Err(BusError::Broken(format!("authentication refused: {said}")));
        }
        // Whatever came after the line is the first message's (not systemd's way).
        self.buf = line.split_off(end);
        self.send(b"BEGIN\r\n", deadline)
    }

    fn send(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), BusError> {
        self.sock.set_write_timeout(Some(remaining(deadline)?))?;
        Ok(self.sock.write_all(bytes)?)
    }

    /// `call` encoded with the next serial.
    fn message(&mut self, call: &Call) -> Vec<u8> {
        self.serial = self.serial.wrapping_add(1).max(1);
        encode_call(self.serial, call)
    }

    /// Writes every call at once, then reads until each has its answer
    /// (a value, or the error systemd gave), in the calls' order.
    fn exchange(
        &mut self,
        calls: &[Vec<u8>],
        deadline: Instant,
    ) -> Result<Vec<Result<Value, String>>, BusError> {
        let serials: Vec<u32> =
            calls.iter().map(|c| u32::from_le_bytes([c[8], c[9], c[10], c[11]])).collect();
        self.send(&calls.concat(), deadline)?;
        let mut answers: Vec<Option<Result<Value, String>>> = vec![None; calls.len()];
        let mut left = calls.len();
        while left > 0 {
            let msg = self.next_message(deadline)?;
            let Some(reply_to) = msg.reply_serial else { continue };
            let Some(i) = serials.iter().position(|s| *s == reply_to) else { continue };
            // The bus itself saying systemd is not on it: not an answer of systemd's.
            if let Some(e @ (NO_SERVICE | NO_OWNER)) = msg.error.as_deref() {
                return Err(BusError::Broken(format!("systemd is not on this bus ({e})")));
            }
            if answers[i].is_none() {
                left -= 1;
            }
            answers[i] = Some(msg.answer);
        }
        Ok(answers.into_iter().map(|a| a.unwrap_or_else(|| Err("no answer".into()))).collect())
    }

    /// The next whole message off the socket.
    fn next_message(&mut self, deadline: Instant) -> Result<Decoded, BusError> {
        loop {
            if let Some(len) = message_len(&self.buf)?
                && self.buf.len() >= len
            {
                let rest = self.buf.split_off(len);
                let msg = std::mem::replace(&mut self.buf, rest);
                return decode(&msg).map_err(BusError::Broken);
            }
            let mut chunk = [0u8; 4096];
            self.sock.set_read_timeout(Some(remaining(deadline)?))?;
            let n = self.sock.read(&mut chunk)?;
            if n == 0 {
                return Err(BusError::Broken("systemd closed the connection".into()));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Every property of `properties` for each unit, one `KEY=VALUE` line
    /// each as `systemctl show` prints them, in `properties`' order (a
    /// property the unit's type does not have is left out, as `systemctl
    /// show -p` does). A unit systemd refuses to name (an invalid name)
    /// gets systemd's error.
    pub fn show(
        &mut self,
        units: &[String],
        properties: &[&str],
        deadline: Instant,
    ) -> Result<Vec<Result<String, String>>, BusError> {
        let mut calls = Vec::with_capacity(units.len() * properties.len());
        for unit in units {
            let name = mangle(unit);
            let path = format!("/org/freedesktop/systemd1/unit/{}", escape_label(&name));
            let type_iface = type_interface(&name);
            for p in properties {
                let iface =
                    if UNIT_PROPERTIES.contains(p) { UNIT_IFACE } else { type_iface.as_str() };
                calls.push(self.message(&Call {
                    dest: SYSTEMD,
                    path: &path,
                    iface: "org.freedesktop.DBus.Properties",
                    member: "Get",
                    args: &[iface, p],
                }));
            }
        }
        let mut answers = Vec::with_capacity(calls.len());
        for batch in calls.chunks(MAX_IN_FLIGHT) {
            answers.extend(self.exchange(batch, deadline)?);
        }
        Ok(answers
            .chunks(properties.len().max(1))
            .map(|unit| {
                if let Some(Err(e)) =
                    unit.iter().zip(properties).find(|(_, p)| **p == "LoadState").map(|(a, _)| a)
                {
                    return Err(e.clone());
                }
                Ok(unit
                    .iter()
                    .zip(properties)
                    .filter_map(|(a, p)| a.as_ref().ok().map(|v| format!("{p}={}\n", v.shown())))
                    .collect())
            })
            .collect())
    }
}

/// The connection kept across cycles, and after a failed connect when to
/// try again (a host without a bus is not asked every cycle).
struct Kept {
    bus: Option<(Bus, Address)>,
    retry_at: Option<Instant>,
    /// How systemd was last asked, for `how_asked`.
    how: Option<String>,
}

static KEPT: std::sync::Mutex<Kept> =
    std::sync::Mutex::new(Kept { bus: None, retry_at: None, how: None });

/// How long a host without a reachable systemd socket goes without a try.
const RETRY: Duration = Duration::from_secs(60);

/// How this process last asked systemd ("over D-Bus at …", or "with
/// systemctl" and why), None before it asked. The daemon logs it once; a
/// log line here would reach cron's mail at every `check`.
pub fn how_asked() -> Option<String> {
    KEPT.lock().unwrap_or_else(|p| p.into_inner()).how.clone()
}

/// `Bus::show` on the kept connection (connecting first if needed). None:
/// no connection could be had, or it broke; the caller asks `systemctl`.
/// `Some(Err(Timeout))`: systemd did not answer by `deadline`, over a bus
/// that is there (asking `systemctl` then would only be killed at once).
pub fn show_kept(
    units: &[String],
    properties: &[&str],
    deadline: Instant,
) -> Option<Result<Vec<Result<String, String>>, BusError>> {
    if remaining(deadline).is_err() {
        return Some(Err(BusError::Timeout));
    }
    let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
    if kept.bus.is_none() {
        if kept.retry_at.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        let mut tried = Vec::new();
        for addr in addresses() {
            match Bus::connect(&addr, deadline) {
                Ok(bus) => {
                    kept.how = Some(format!("over D-Bus at {}", addr.path.display()));
                    kept.bus = Some((bus, addr));
                    break;
                }
                Err(BusError::Timeout) => {
                    kept.how = Some(format!("over D-Bus at {}", addr.path.display()));
                    return Some(Err(BusError::Timeout));
                }
                Err(e) => tried.push(format!("{}: {}", addr.path.display(), e.text())),
            }
        }
        if kept.bus.is_none() {
            let why = if tried.is_empty() {
                "not booted with systemd, or no unix:path= address".into()
            } else {
                tried.join("; ")
            };
            kept.how = Some(format!("with systemctl (no D-Bus: {why})"));
            kept.retry_at = Some(Instant::now() + RETRY);
            return None;
        }
    }
    let (bus, addr) = kept.bus.as_mut()?;
    let answer = bus.show(units, properties, deadline);
    let keep = addr.bus && answer.is_ok();
    let said = format!("systemd's D-Bus at {}", addr.path.display());
    if !keep {
        // systemd's own socket is not kept idle (see `addresses`); a broken
        // or late connection is not kept at all. One that broke is not
        // tried again for a minute: a bus without systemd on it (or one
        // that breaks at every question) would otherwise cost a connect
        // and a warning every cycle.
        kept.bus = None;
        kept.retry_at = match answer {
            Err(BusError::Broken(_)) => Some(Instant::now() + RETRY),
            _ => None,
        };
    }
    match answer {
        Ok(blocks) => Some(Ok(blocks)),
        Err(BusError::Timeout) => Some(Err(BusError::Timeout)),
        Err(BusError::Broken(e)) => {
            crate::warn!("{said}: {e}; asking systemctl");
            kept.how = Some(format!("with systemctl ({said}: {e})"));
            None
        }
    }
}

/// A connected socket, or an error at once: a blocking `connect` waits
/// without bound on a listener whose queue is full (a frozen systemd).
fn connect_now(path: &std::path::Path) -> Result<UnixStream, BusError> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| BusError::Broken(e.to_string()))?;
    let addr = SocketAddrUnix::new(path).map_err(|e| BusError::Broken(e.to_string()))?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) => {}
        Err(rustix::io::Errno::AGAIN) => {
            return Err(BusError::Broken("its listen queue is full".into()));
        }
        Err(e) => return Err(BusError::Broken(std::io::Error::from(e).to_string())),
    }
    let sock = UnixStream::from(fd);
    sock.set_nonblocking(false)?;
    Ok(sock)
}

fn remaining(deadline: Instant) -> Result<Duration, BusError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() { Err(BusError::Timeout) } else { Ok(left) }
}

/// `systemctl`'s name for a unit given without a type: `x` is `x.service`.
fn mangle(unit: &str) -> String {
    const TYPES: &[&str] = &[
        "service",
        "socket",
        "target",
        "device",
        "mount",
        "automount",
        "swap",
        "timer",
        "path",
        "slice",
        "scope",
    ];
    match unit.rsplit_once('.') {
        Some((_, t)) if TYPES.contains(&t) => unit.to_string(),
        _ => format!("{unit}.service"),
    }
}

/// `org.freedesktop.systemd1.Service` for `x.service`.
fn type_interface(unit: &str) -> String {
    let t = unit.rsplit_once('.').map_or("service", |(_, t)| t);
    let mut cs = t.chars();
    let first = cs.next().map(|c| c.to_ascii_uppercase()).into_iter();
    format!("org.freedesktop.systemd1.{}", first.chain(cs).collect::<String>())
}

/// sd-bus's object path label: everything but ASCII letters (and digits
/// after the first character) as `_` and two hex digits.
fn escape_label(s: &str) -> String {
    if s.is_empty() {
        return "_".into();
    }
    let mut out = String::with_capacity(s.len() * 2);
    for (i, b) in s.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

// ---- the wire format (D-Bus specification, "Message Protocol") ----

/// Appends D-Bus's marshalling of basic values to a buffer whose offset 0
/// is the message's start (alignment counts from there).
struct Writer(Vec<u8>);

impl Writer {
    fn pad(&mut self, to: usize) {
        while !self.0.len().is_multiple_of(to) {
            self.0.push(0);
        }
    }
    fn u32(&mut self, n: u32) {
        self.pad(4);
        self.0.extend_from_slice(&n.to_le_bytes());
    }
    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
    }
    fn signature(&mut self, s: &str) {
        self.0.push(s.len() as u8);
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
    }
    /// A header field: (code, variant of `sig`).
    fn field(&mut self, code: u8, sig: &str, value: &str) {
        self.pad(8);
        self.0.push(code);
        self.signature(sig);
        if sig == "g" { self.signature(value) } else { self.string(value) }
    }
}

/// A method call whose arguments are all strings.
struct Call<'a> {
    dest: &'a str,
    path: &'a str,
    iface: &'a str,
    member: &'a str,
    args: &'a [&'a str],
}

/// `call` as a little-endian METHOD_CALL message.
fn encode_call(serial: u32, call: &Call) -> Vec<u8> {
    let Call { dest, path, iface, member, args } = *call;
    let mut body = Writer(Vec::new());
    for a in args {
        body.string(a);
    }
    let mut w = Writer(Vec::with_capacity(256));
    // Flags: NO_AUTO_START (0x2): a bus without systemd answers at once
    // that no one has the name, rather than trying to start it.
    w.0.extend_from_slice(&[b'l', 1, 0x2, 1]);
    w.0.extend_from_slice(&(body.0.len() as u32).to_le_bytes());
    w.0.extend_from_slice(&serial.to_le_bytes());
    w.0.extend_from_slice(&[0; 4]); // the fields' length, below
    w.field(1, "o", path);
    w.field(2, "s", iface);
    w.field(3, "s", member);
    w.field(6, "s", dest);
    if !args.is_empty() {
        w.field(8, "g", &"s".repeat(args.len()));
    }
    let fields = (w.0.len() - 16) as u32;
    w.0[12..16].copy_from_slice(&fields.to_le_bytes());
    w.pad(8);
    w.0.extend_from_slice(&body.0);
    w.0
}

/// A message's total length once its fixed header has arrived.
fn message_len(buf: &[u8]) -> Result<Option<usize>, BusError> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let r = Reader { buf, pos: 0, big: buf[0] == b'B' };
    if !matches!(buf[0], b'l' | b'B') || buf[3] != 1 {
        return Err(BusError::Broken("not a D-Bus message".into()));
    }
    let body = r.u32_at(4) as usize;
    let fields = r.u32_at(12) as usize;
    let len = (16 + fields).div_ceil(8) * 8 + body;
    if len > MAX_MESSAGE {
        return Err(BusError::Broken(format!("a message of {len} bytes")));
    }
    Ok(Some(len))
}

/// What a received message says to us.
struct Decoded {
    reply_serial: Option<u32>,
    /// An error's name (`org.freedesktop.DBus.Error.ServiceUnknown`).
    error: Option<String>,
    /// A method return's first value, or an error's name and message.
    answer: Result<Value, String>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
}

impl Reader<'_> {
    fn u32_at(&self, at: usize) -> u32 {
        let b = [self.buf[at], self.buf[at + 1], self.buf[at + 2], self.buf[at + 3]];
        if self.big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    }
    fn align(&mut self, to: usize) -> Result<(), String> {
        self.pos = self.pos.div_ceil(to) * to;
        if self.pos > self.buf.len() { Err("truncated message".into()) } else { Ok(()) }
    }
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end =
            self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or("truncated message")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        self.align(4)?;
        let at = self.pos;
        self.take(4)?;
        Ok(self.u32_at(at))
    }
    fn u64(&mut self) -> Result<u64, String> {
        self.align(8)?;
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| "truncated message")?;
        Ok(if self.big { u64::from_be_bytes(b) } else { u64::from_le_bytes(b) })
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        let s = String::from_utf8_lossy(self.take(n)?).into_owned();
        self.take(1)?;
        Ok(s)
    }
    fn signature(&mut self) -> Result<String, String> {
        let n = self.u8()? as usize;
        let s = String::from_utf8_lossy(self.take(n)?).into_owned();
        self.take(1)?;
        Ok(s)
    }
    /// One value of a single complete type we read; None for another type
    /// (the caller stops there: nothing of ours follows one).
    fn value(&mut self, sig: &str) -> Result<Option<Value>, String> {
        Ok(Some(match sig {
            "s" | "o" => Value::Str(self.string()?),
            "g" => Value::Str(self.signature()?),
            "u" => Value::U32(self.u32()?),
            "i" => Value::I32(self.u32()? as i32),
            "b" => Value::Bool(self.u32()? != 0),
            "t" => Value::U64(self.u64()?),
            "y" => Value::U32(self.u8()?.into()),
            "ay" => {
                let n = self.u32()? as usize;
                Value::Bytes(self.take(n)?.to_vec())
            }
            _ => return Ok(None),
        }))
    }
}

fn decode(msg: &[u8]) -> Result<Decoded, String> {
    let mut r = Reader { buf: msg, pos: 16, big: msg[0] == b'B' };
    let kind = msg[1];
    let fields_end = 16 + r.u32_at(12) as usize;
    let (mut reply_serial, mut error, mut signature) = (None, None, String::new());
    while r.pos < fields_end {
        r.align(8)?;
        let code = r.u8()?;
        let sig = r.signature()?;
        let v = r.value(&sig)?.ok_or_else(|| format!("a header field of type {sig}"))?;
        match (code, v) {
            (5, Value::U32(s)) => reply_serial = Some(s),
            (4, Value::Str(s)) => error = Some(s),
            (8, Value::Str(s)) => signature = s,
            _ => {}
        }
    }
    r.align(8)?;
    let answer = match kind {
        3 => {
            let name = error.clone().unwrap_or_else(|| "an error".into());
            let text = if signature.starts_with('s') {
                r.string().unwrap_or_default()
            } else {
                String::new()
            };
            Err(if text.is_empty() { name } else { text })
        }
        // A Get's answer is one variant; Hello's is a string.
        _ if signature == "v" => {
            let sig = r.signature()?;
            Ok(r.value(&sig)?.unwrap_or(Value::Other(sig)))
        }
        _ => Ok(r.value(&signature)?.unwrap_or(Value::Other(signature))),
    };
    Ok(Decoded { reply_serial, error, answer })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::os::unix::net::UnixListener;
    use std::sync::{Arc, Mutex};

    #[test]
    fn unit_names_become_systemds_object_paths_and_interfaces() {
        // Examples of the systemd.dbus(5) manual and sd-bus's escaping.
        assert_eq!(escape_label("avahi-daemon.service"), "avahi_2ddaemon_2eservice");
        assert_eq!(escape_label("1x@a_b.service"), "_31x_40a_5fb_2eservice");
        assert_eq!(escape_label(""), "_");
        assert_eq!(mangle("web"), "web.service");
        assert_eq!(mangle("web.timer"), "web.timer");
        assert_eq!(mangle("gunicorn@api.v2"), "gunicorn@api.v2.service");
        assert_eq!(type_interface("web.service"), "org.freedesktop.systemd1.Service");
        assert_eq!(type_interface("x.automount"), "org.freedesktop.systemd1.Automount");
        assert_eq!(Value::Str("a\nb".into()).shown(), "[unprintable]");
        assert_eq!(Value::Str("exit-code".into()).shown(), "exit-code");
    }

    #[test]
    fn a_bus_address_is_read_as_sd_bus_reads_its_unix_path() {
        assert_eq!(unix_path("unix:path=/run/x"), Some(PathBuf::from("/run/x")));
        assert_eq!(unix_path("unix:abstract=a;unix:guid=1,path=/b"), Some(PathBuf::from("/b")));
        assert_eq!(unix_path("tcp:host=127.0.0.1,port=1"), None);
        assert_eq!(unix_path(""), None);
    }

    /// A call as the fake systemd reads it.
    #[derive(Debug, Clone)]
    struct Asked {
        serial: u32,
        path: String,
        member: String,
        args: Vec<String>,
    }

    fn read_asked(msg: &[u8]) -> Asked {
        let mut r = Reader { buf: msg, pos: 16, big: false };
        let end = 16 + r.u32_at(12) as usize;
        let (mut path, mut member, mut sig) = (String::new(), String::new(), String::new());
        while r.pos < end {
            r.align(8).unwrap();
            let code = r.u8().unwrap();
            let s = r.signature().unwrap();
            match (code, r.value(&s).unwrap().unwrap()) {
                (1, Value::Str(v)) => path = v,
                (3, Value::Str(v)) => member = v,
                (8, Value::Str(v)) => sig = v,
                _ => {}
            }
        }
        r.align(8).unwrap();
        let args = sig.chars().map(|_| r.string().unwrap()).collect();
        Asked { serial: r.u32_at(8), path, member, args }
    }

    /// A reply (kind 2) or error (kind 3) to `to`, with `body` of `sig`.
    fn encode_reply(to: u32, error: Option<&str>, sig: &str, body: &[u8]) -> Vec<u8> {
        let mut w = Writer(vec![b'l', if error.is_some() { 3 } else { 2 }, 1, 1]);
        w.0.extend_from_slice(&(body.len() as u32).to_le_bytes());
        w.0.extend_from_slice(&(to + 1000).to_le_bytes());
        w.0.extend_from_slice(&[0; 4]);
        w.pad(8);
        w.0.push(5);
        w.signature("u");
        w.u32(to);
        if let Some(e) = error {
            w.field(4, "s", e);
        }
        w.field(8, "g", sig);
        let n = (w.0.len() - 16) as u32;
        w.0[12..16].copy_from_slice(&n.to_le_bytes());
        w.pad(8);
        w.0.extend_from_slice(body);
        w.0
    }

    fn variant(v: &Value) -> Vec<u8> {
        let mut b = Writer(Vec::new());
        match v {
            Value::Str(s) => {
                b.signature("s");
                b.string(s);
            }
            Value::U32(n) => {
                b.signature("u");
                b.u32(*n);
            }
            Value::I32(n) => {
                b.signature("i");
                b.u32(*n as u32);
            }
            Value::U64(n) => {
                b.signature("t");
                b.pad(8);
                b.0.extend_from_slice(&n.to_le_bytes());
            }
            Value::Bytes(v) => {
                b.signature("ay");
                b.u32(v.len() as u32);
                b.0.extend_from_slice(v);
            }
            _ => unreachable!(),
        }
        b.0
    }

    /// The fake's property table: (object path, interface, property) → value.
    type Table = HashMap<(String, String, String), Value>;

    /// A fake systemd on a socket: authenticates, then answers every Get
    /// from `table` (an unknown object or property: systemd's errors) and
    /// logs what it was asked. `mute`: authenticates and never answers.
    fn fake_systemd(
        table: Table,
        mute: bool,
    ) -> (tempfile::TempDir, PathBuf, Arc<Mutex<Vec<Asked>>>, std::thread::JoinHandle<()>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private");
        let listener = UnixListener::bind(&path).unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let server = std::thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let mut said_ok = false;
            loop {
                if !said_ok && buf.windows(2).any(|w| w == b"\r\n") {
                    assert!(buf.starts_with(b"\0AUTH EXTERNAL "), "{buf:?}");
                    s.write_all(b"OK 0123456789abcdef0123456789abcdef\r\n").unwrap();
                    said_ok = true;
                }
                if said_ok && let Some(i) = buf.windows(7).position(|w| w == b"BEGIN\r\n") {
                    buf.drain(..i + 7);
                    break;
                }
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            loop {
                while let Ok(Some(len)) = message_len(&buf) {
                    if buf.len() < len {
                        break;
                    }
                    let msg: Vec<u8> = buf.drain(..len).collect();
                    let call = read_asked(&msg);
                    log.lock().unwrap().push(call.clone());
                    if mute {
                        continue;
                    }
                    let key = (call.path.clone(), call.args[0].clone(), call.args[1].clone());
                    let out = if call.path.contains("gone") {
                        // The bus driver's answer where systemd is not on the bus.
                        encode_reply(call.serial, Some(NO_SERVICE), "", &[])
                    } else if call.path.contains("_40_2e") {
                        let mut b = Writer(Vec::new());
                        b.string("Unit name bad@.service is not valid.");
                        encode_reply(
                            call.serial,
                            Some("org.freedesktop.DBus.Error.InvalidArgs"),
                            "s",
                            &b.0,
                        )
                    } else if let Some(v) = table.get(&key) {
                        encode_reply(call.serial, None, "v", &variant(v))
                    } else {
                        encode_reply(
                            call.serial,
                            Some("org.freedesktop.DBus.Error.UnknownProperty"),
                            "",
                            &[],
                        )
                    };
                    if s.write_all(&out).is_err() {
                        return;
                    }
                }
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        });
        (dir, path, asked, server)
    }

    /// Every call the fake read, once the client is gone and it has ended.
    fn all_asked(
        bus: Bus,
        server: std::thread::JoinHandle<()>,
        asked: &Mutex<Vec<Asked>>,
    ) -> usize {
        drop(bus);
        server.join().unwrap();
        asked.lock().unwrap().len()
    }

    fn props() -> Vec<&'static str> {
        crate::probe::units::PROPERTIES.split(',').collect()
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[test]
    fn units_are_asked_property_by_property_and_shown_as_systemctl_prints_them() {
        let web = "/org/freedesktop/systemd1/unit/web_2eservice".to_string();
        let timer = "/org/freedesktop/systemd1/unit/t_2etimer".to_string();
        let mut t = Table::new();
        let mut put = |path: &String, iface: &str, p: &str, v: Value| {
            t.insert((path.clone(), format!("org.freedesktop.systemd1.{iface}"), p.into()), v);
        };
        put(&web, "Unit", "Id", Value::Str("web.service".into()));
        put(&web, "Unit", "LoadState", Value::Str("loaded".into()));
        put(&web, "Unit", "ActiveState", Value::Str("failed".into()));
        put(&web, "Unit", "SubState", Value::Str("failed".into()));
        put(&web, "Unit", "InvocationID", Value::Bytes(vec![0xab; 16]));
        put(&web, "Service", "Result", Value::Str("exit-code".into()));
        put(&web, "Service", "NRestarts", Value::U32(2));
        put(&web, "Service", "ExecMainCode", Value::I32(1));
        put(&web, "Service", "ExecMainStatus", Value::I32(3));
        put(&web, "Service", "ExecMainPID", Value::U32(4242));
        put(&web, "Service", "MemoryCurrent", Value::U64(734_003_200));
        put(&web, "Service", "CPUUsageNSec", Value::U64(u64::MAX));
        put(&web, "Service", "TasksCurrent", Value::U64(7));
        put(&timer, "Unit", "LoadState", Value::Str("loaded".into()));
        put(&timer, "Unit", "ActiveState", Value::Str("active".into()));
        put(&timer, "Unit", "SubState", Value::Str("waiting".into()));
        put(&timer, "Timer", "Result", Value::Str("success".into()));
        let (_dir, path, asked, _server) = fake_systemd(t, false);
        let mut bus = Bus::connect(&Address { path, bus: false }, soon()).unwrap();
        let units = ["web", "bad@.service", "t.timer"].map(String::from);
        let answer = bus.show(&units, &props(), soon()).unwrap();
        assert_eq!(
            answer[0].as_deref(),
            Ok(
                "LoadState=loaded\nActiveState=failed\nSubState=failed\nResult=exit-code\nNRestarts=2\n\
                Id=web.service\nExecMainCode=1\nExecMainStatus=3\nExecMainPID=4242\n\
                InvocationID=abababababababababababababababab\nMemoryCurrent=734003200\n\
                CPUUsageNSec=[not set]\nTasksCurrent=7\n"
            )
        );
        assert_eq!(answer[1], Err("Unit name bad@.service is not valid.".to_string()));
        // A property the timer type does not have is left out, as systemctl does.
        assert_eq!(
            answer[2].as_deref(),
            Ok("LoadState=loaded\nActiveState=active\nSubState=waiting\nResult=success\n")
        );
        // What the verdict and the diagnosis read from it.
        let u = crate::probe::units::parse_show(answer[0].as_ref().unwrap());
        assert_eq!(
            (u.memory_bytes, u.cpu_usage_ns, u.tasks, u.n_restarts),
            (Some(734_003_200), None, Some(7), Some(2))
        );
        // One Get per property and unit, written at once; the connection is kept.
        assert_eq!(asked.lock().unwrap().len(), 3 * props().len());
        assert!(asked.lock().unwrap().iter().all(|c| c.member == "Get"));
        let again = bus.show(&units[..1], &["ActiveState"], soon()).unwrap();
        assert_eq!(again, vec![Ok("ActiveState=failed\n".to_string())]);
    }

    #[test]
    fn a_systemd_that_never_answers_costs_the_deadline_and_a_stranger_breaks_the_connection() {
        let (_dir, path, asked, server) = fake_systemd(Table::new(), true);
        let mut bus = Bus::connect(&Address { path, bus: false }, soon()).unwrap();
        let t0 = Instant::now();
        let r =
            bus.show(&["web".to_string()], &props(), Instant::now() + Duration::from_millis(300));
        assert_eq!(r.unwrap_err(), BusError::Timeout);
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert_eq!(all_asked(bus, server, &asked), props().len());

        // 10 units (130 properties): no more calls in flight than a bus allows.
        let (_dir, path, asked, server) = fake_systemd(Table::new(), true);
        let mut bus = Bus::connect(&Address { path, bus: false }, soon()).unwrap();
        let units: Vec<String> = (0..10).map(|i| format!("u{i}.service")).collect();
        let deadline = Instant::now() + Duration::from_millis(300);
        assert_eq!(bus.show(&units, &props(), deadline).unwrap_err(), BusError::Timeout);
        assert_eq!(all_asked(bus, server, &asked), MAX_IN_FLIGHT);

        // A bus without systemd on it (the bus driver answers for it): broken.
        let (_dir, path, _, _server) = fake_systemd(Table::new(), false);
        let mut bus = Bus::connect(&Address { path, bus: false }, soon()).unwrap();
        match bus.show(&["gone".to_string()], &props(), soon()) {
            Err(BusError::Broken(e)) => assert!(e.contains("not on this bus"), "{e}"),
            other => panic!("{other:?}"),
        }

        // Something that is not D-Bus: refused at authentication, or at its first message.
        for said in [&b"REJECTED EXTERNAL\r\n"[..], b"OK 1\r\nHTTP/1.1 400 Bad Request\r\n\r\n"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("sock");
            let listener = UnixListener::bind(&path).unwrap();
            let said = said.to_vec();
            let server = std::thread::spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                let mut b = [0u8; 256];
                let _ = s.read(&mut b);
                s.write_all(&said).unwrap();
                let _ = s.read(&mut b);
                let _ = s.read(&mut b);
            });
            let r = Bus::connect(&Address { path, bus: false }, soon()).and_then(|mut bus| {
                bus.show(&["web".to_string()], &["LoadState"], soon()).map(|_| bus)
            });
            match r {
                Err(BusError::Broken(e)) => assert!(!e.is_empty()),
                Err(e) => panic!("{e:?}"),
                Ok(_) => panic!("a stranger answered as systemd"),
            }
            server.join().unwrap();
        }
    }

    #[test]
    fn a_real_dbus_daemon_accepts_our_authentication_hello_and_calls() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("bus");
        let conf = dir.path().join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                "<busconfig><type>session</type><listen>unix:path={}</listen><auth>EXTERNAL</auth>\
                 <policy context=\"default\"><allow send_destination=\"*\"/><allow receive_sender=\"*\"/><allow own=\"*\"/></policy></busconfig>",
                sock.display()
            ),
        )
        .unwrap();
        /// Ends the daemon this test started, by its handle.
        struct Kill(std::process::Child);
        impl Drop for Kill {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let mut daemon = Kill(
            std::process::Command::new("dbus-daemon")
                .arg(format!("--config-file={}", conf.display()))
                .arg("--nofork")
                .arg("--print-address=1")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("dbus-daemon (the dbus-daemon package) is needed by this test"),
        );
        // It prints its address once it listens.
        let mut said = String::new();
        let out = daemon.0.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut said).unwrap();
        assert!(said.starts_with("unix:path="), "{said:?}");
        let addr = Address { path: sock, bus: true };
        let mut bus = Bus::connect(&addr, soon()).expect("Hello");
        let calls = vec![
            bus.message(&Call {
                dest: "org.freedesktop.DBus",
                path: "/org/freedesktop/DBus",
                iface: "org.freedesktop.DBus",
                member: "GetNameOwner",
                args: &["org.freedesktop.DBus"],
            }),
            bus.message(&Call {
                dest: "org.freedesktop.DBus",
                path: "/org/freedesktop/DBus",
                iface: "org.freedesktop.DBus.Properties",
                member: "Get",
                args: &["org.freedesktop.DBus", "Features"],
            }),
            bus.message(&Call {
                dest: "org.freedesktop.DBus",
                path: "/org/freedesktop/DBus",
                iface: "org.freedesktop.DBus.Properties",
                member: "Get",
                args: &["org.freedesktop.DBus", "NoSuchProperty"],
            }),
        ];
        let answers = bus.exchange(&calls, soon()).unwrap();
        assert_eq!(answers[0], Ok(Value::Str("org.freedesktop.DBus".into())));
        assert_eq!(answers[1], Ok(Value::Other("as".into())));
        assert!(
            answers[2].as_ref().is_err_and(|e| e.contains("NoSuchProperty")),
            "{:?}",
            answers[2]
        );
    }
}
