//! Running a child program with a deadline: plugins, `systemctl show`, the
//! restart command.
//!
//! The child gets its own process group, stdin from /dev/null and two pipes.
//! One thread (the caller's) polls both pipes and a pidfd of the child: no
//! thread per run, so a descendant that keeps a pipe open after the child
//! exited (a `setsid` helper) costs nothing once we stop reading. Reading
//! stops at the deadline, or `EXIT_GRACE` after the child exits; then the
//! group is killed and our pipe ends closed. Output is capped per stream;
//! the rest is read and dropped so the child never blocks on a full pipe.
//!
//! A restart command is the exception (`AfterExit::KeepOnSuccess`): a script
//! that starts the service in the background and exits 0 did its job, and
//! what it left running stays; its group is killed only at the deadline or
//! after a failed exit.

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// After the child exits, how long its group may still finish writing.
const EXIT_GRACE: Duration = Duration::from_millis(100);
/// How long a child killed at the deadline gets to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(2);
/// Without a pidfd (kernel before 5.3, or a seccomp filter), how often
/// `try_wait` looks for the exit.
const TRY_WAIT_EVERY: Duration = Duration::from_millis(5);
/// Reads per pipe before the loop looks at the clock again (a child writing
/// as fast as we read must not keep us past the deadline).
const READS_PER_TURN: usize = 16;

pub struct RunOutput {
    /// None when killed by a signal.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

pub enum RunError {
    Spawn(io::Error),
    Timeout,
}

/// What happens to the child's process group once the child has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterExit {
    /// Killed: a plugin's leftovers never outlive its check.
    KillGroup,
    /// Left running when the child exited 0 (a restart command that put the
    /// service in the background); killed after a failure. At the deadline
    /// the group is killed either way.
    KeepOnSuccess,
}

/// Runs `argv` until it exits or `deadline` passes (then its whole process
/// group is killed). Returns at the deadline, or at most `EXIT_GRACE` after
/// the child exits; keeps at most `cap` bytes of each stream.
pub fn run_bounded(argv: &[String], deadline: Instant, cap: usize) -> Result<RunOutput, RunError> {
    run(argv, deadline, cap, true, AfterExit::KillGroup)
}

/// `run_bounded`, leaving what the child started running when it exits 0.
pub fn run_bounded_keep(
    argv: &[String],
    deadline: Instant,
    cap: usize,
) -> Result<RunOutput, RunError> {
    run(argv, deadline, cap, true, AfterExit::KeepOnSuccess)
}

/// `run_bounded`; `use_pidfd: false` takes the `try_wait` path (for tests).
fn run(
    argv: &[String],
    deadline: Instant,
    cap: usize,
    use_pidfd: bool,
    after: AfterExit,
) -> Result<RunOutput, RunError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(RunError::Spawn(io::Error::new(io::ErrorKind::InvalidInput, "empty command")));
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(RunError::Spawn)?;
    let pid = child.id();
    // Readable once the child has exited, without reaping it: until we
    // reap, its pid (the group's id) cannot be reused, so killing the
    // group afterwards can only hit ours.
    let pidfd = Pid::from_raw(pid as i32)
        .filter(|_| use_pidfd)
        .and_then(|p| rustix::process::pidfd_open(p, PidfdFlags::empty()).ok());
    let mut pipes = [
        Pipe::new(child.stdout.take().map(OwnedFd::from), cap),
        Pipe::new(child.stderr.take().map(OwnedFd::from), cap),
    ];
    let mut reaped: Option<ExitStatus> = None;
    let mut exited: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if exited.is_some() && pipes.iter().all(|p| !p.is_open()) {
            break;
        }
        let until = exited.map_or(deadline, |t| t + EXIT_GRACE);
        if now >= until {
            if exited.is_none() {
                kill_group(pid);
                reap_soon(child, pidfd.as_ref());
                return Err(RunError::Timeout);
            }
            break;
        }
        let mut wait = until - now;
        if exited.is_none() && pidfd.is_none() {
            wait = wait.min(TRY_WAIT_EVERY);
        }
        let (ready, leader_ready) =
            poll_once(&pipes, pidfd.as_ref().filter(|_| exited.is_none()), wait);
        for (pipe, ready) in pipes.iter_mut().zip(ready) {
            if ready {
                pipe.read_available();
            }
        }
        if exited.is_none() {
            let gone = match &pidfd {
                Some(_) => leader_ready,
                None => match child.try_wait() {
                    Ok(Some(status)) => {
                        reaped = Some(status);
                        true
                    }
                    Ok(None) => false,
                    Err(e) => {
                        kill_group(pid);
                        return Err(RunError::Spawn(e));
                    }
                },
            };
            if gone {
                exited = Some(Instant::now());
            }
        }
    }
    let status = match reaped {
        Some(s) => s,
        // Exited already: this does not block. (Reaped now, its pid may be
        // reused, but a group id stays while any member lives: `kill` of
        // the group still reaches only ours.)
        None => match child.wait() {
            Ok(s) => s,
            Err(e) => {
                kill_group(pid);
                return Err(RunError::Spawn(e));
            }
        },
    };
    // Whatever is left of the group (descendants holding our pipes) goes,
    // unless the caller keeps what a successful child started; what they
    // wrote before that is kept.
    if !(after == AfterExit::KeepOnSuccess && status.success()) {
        kill_group(pid);
    }
    for pipe in &mut pipes {
        pipe.read_available();
    }
    let [stdout, stderr] = pipes.map(Pipe::into_kept);
    Ok(RunOutput { code: status.code(), signal: status.signal(), stdout, stderr })
}

/// One `poll` over the open pipes and (when given) the pidfd; returns which
/// pipes may be read and whether the child has exited. Poll errors come
/// back as "nothing ready" (after a short nap unless EINTR, so a failing
/// poll cannot spin): the caller's clock still bounds the run.
fn poll_once(pipes: &[Pipe; 2], pidfd: Option<&OwnedFd>, wait: Duration) -> ([bool; 2], bool) {
    let mut fds = Vec::with_capacity(3);
    let mut slots = [None, None];
    for (i, p) in pipes.iter().enumerate() {
        if let Some(f) = &p.file {
            slots[i] = Some(fds.len());
            fds.push(PollFd::new(f, PollFlags::IN));
        }
    }
    let leader_slot = pidfd.map(|fd| {
        fds.push(PollFd::new(fd, PollFlags::IN));
        fds.len() - 1
    });
    let timeout = Timespec::try_from(wait).unwrap_or(Timespec { tv_sec: 1, tv_nsec: 0 });
    match rustix::event::poll(&mut fds, Some(&timeout)) {
        Ok(_) => {}
        Err(rustix::io::Errno::INTR) => return ([false; 2], false),
        Err(_) => {
            std::thread::sleep(wait.min(TRY_WAIT_EVERY));
            return ([false; 2], false);
        }
    }
    let ready = |slot: Option<usize>| slot.is_some_and(|i| !fds[i].revents().is_empty());
    ([ready(slots[0]), ready(slots[1])], ready(leader_slot))
}

/// Reaps a child just killed, waiting at most `REAP_WAIT`; one stuck in the
/// kernel beyond that is left to a reaper thread rather than to us.
fn reap_soon(mut child: Child, pidfd: Option<&OwnedFd>) {
    let deadline = Instant::now() + REAP_WAIT;
    loop {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match pidfd {
            Some(fd) => {
                let mut fds = [PollFd::new(fd, PollFlags::IN)];
                let t = Timespec::try_from(left).unwrap_or(Timespec { tv_sec: 1, tv_nsec: 0 });
                let _ = rustix::event::poll(&mut fds, Some(&t));
            }
            None => std::thread::sleep(left.min(TRY_WAIT_EVERY)),
        }
    }
    let _ = std::thread::Builder::new().name("reaper".into()).spawn(move || {
        let _ = child.wait();
    });
}

fn kill_group(pid: u32) {
    if let Some(pid) = Pid::from_raw(pid as i32) {
        // ESRCH (already gone) is the normal case.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// One of the child's output pipes, read without blocking.
struct Pipe {
    /// None once closed (end of file, an error, or never opened).
    file: Option<File>,
    kept: Vec<u8>,
    cap: usize,
}

impl Pipe {
    fn new(fd: Option<OwnedFd>, cap: usize) -> Self {
        // A pipe we could not make non-blocking is dropped: better no output
        // than a read that waits on a child's descendants.
        let file =
            fd.filter(|fd| rustix::io::ioctl_fionbio(fd.as_fd(), true).is_ok()).map(File::from);
        Pipe { file, kept: Vec::new(), cap }
    }

    fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Reads what is there now (a bounded number of chunks), keeping up to
    /// `cap` bytes; closes at end of file.
    fn read_available(&mut self) {
        let Some(file) = self.file.as_mut() else { return };
        let mut buf = [0u8; 8192];
        for _ in 0..READS_PER_TURN {
            match file.read(&mut buf) {
                Ok(0) => {
                    self.file = None;
                    return;
                }
                Ok(n) => {
                    let room = self.cap.saturating_sub(self.kept.len());
                    self.kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.file = None;
                    return;
                }
            }
        }
    }

    fn into_kept(self) -> Vec<u8> {
        self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        ["sh", "-c", script].map(String::from).to_vec()
    }

    #[test]
    fn output_exit_and_bounds_with_and_without_a_pidfd() {
        for use_pidfd in [true, false] {
            let deadline = Instant::now() + Duration::from_secs(5);
            let run = |argv: &[String], deadline, cap| {
                run(argv, deadline, cap, use_pidfd, AfterExit::KillGroup)
            };
            let out =
                run(&sh("echo out; echo err >&2; exit 3"), deadline, 1024).ok().expect("runs");
            assert_eq!(
                (out.code, out.stdout, out.stderr),
                (Some(3), b"out\n".to_vec(), b"err\n".to_vec())
            );

            // A descendant in the group holding stdout: killed after the grace.
            let started = Instant::now();
            let out = run(&sh("sleep 30 & echo done"), deadline, 1024).ok().expect("runs");
            assert_eq!((out.code, out.stdout), (Some(0), b"done\n".to_vec()));
            assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

            // Capped, and cut at the deadline.
            let out = run(&sh("head -c 100000 /dev/zero"), deadline, 1000).ok().expect("runs");
            assert_eq!(out.stdout.len(), 1000);
            let started = Instant::now();
            let r = run(&sh("sleep 30"), Instant::now() + Duration::from_millis(200), 1024);
            assert!(matches!(r, Err(RunError::Timeout)));
            assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        }
        assert!(matches!(run_bounded(&[], Instant::now(), 1), Err(RunError::Spawn(_))));
    }

    /// The pid a script wrote to `file`, once it is there.
    fn pid_in(file: &std::path::Path) -> i32 {
        let text = std::fs::read_to_string(file).expect("pid file");
        text.trim().parse().expect("a pid")
    }

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| !r.trim_start().starts_with('Z')))
    }

    /// Polls for the process to be gone (a SIGKILL lands at once, but
    /// /proc may show it a moment longer).
    fn gone_soon(pid: i32) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    #[test]
    fn a_successful_restart_command_keeps_what_it_backgrounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 60 >/dev/null 2>&1 & echo $! > {}; exit 0", pidfile.display());
        let deadline = Instant::now() + Duration::from_secs(5);
        let out = run_bounded_keep(&sh(&script), deadline, 1024).ok().expect("runs");
        assert_eq!(out.code, Some(0));
        let pid = pid_in(&pidfile);
        std::thread::sleep(Duration::from_millis(200)); // a kill would have landed by now
        let kept = alive(pid);
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid).expect("pid"),
            rustix::process::Signal::KILL,
        );
        assert!(kept, "the backgrounded sleep was killed");

        // The same script through run_bounded (a plugin): its leftover goes.
        let out = run_bounded(&sh(&script), deadline, 1024).ok().expect("runs");
        assert_eq!(out.code, Some(0));
        assert!(gone_soon(pid_in(&pidfile)));

        // A failed restart command's leftovers go too.
        let failing = format!("sleep 60 >/dev/null 2>&1 & echo $! > {}; exit 1", pidfile.display());
        let out = run_bounded_keep(&sh(&failing), deadline, 1024).ok().expect("runs");
        assert_eq!(out.code, Some(1));
        assert!(gone_soon(pid_in(&pidfile)));
    }
}
