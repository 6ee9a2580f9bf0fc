//! `run` (the cycle loop plus the HTTP server) and `serve` (HTTP only).
//!
//! Threads: the main thread owns the loop and the config; each cycle runs on
//! its own thread so that SIGTERM can abandon a cycle stuck on slow targets
//! (a thread kept across cycles would keep the stack pages a cycle touched:
//! +90 KiB of PSS against the ~0.1 ms a cycle its start costs);
//! a signal thread turns SIGTERM/SIGINT/SIGHUP into messages; the server runs
//! on its own threads and reads only published snapshots.

use crate::config::{self, Config};
use crate::cycle::{self, CycleOptions};
use crate::error::Error;
use crate::sdnotify;
use crate::server::{self, Live, Source, Web};
use crate::state::StateFile;
use crate::status::{self, StatusDoc};
use crate::time::Timestamp;
use crate::{metrics, notify, runner, statefile, store};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What reaches the main loop.
enum Msg {
    Shutdown(&'static str),
    Reload,
    CycleDone(Result<StatusDoc, Error>),
}

/// How long `run` waits for the state lock held by a stray `check`.
const LOCK_WAIT: Duration = Duration::from_secs(10);

fn spawn_signals(tx: Sender<Msg>) -> Result<(), Error> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| Error::Other(format!("cannot install signal handlers: {e}")))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let msg = match sig {
                    SIGHUP => Msg::Reload,
                    SIGINT => Msg::Shutdown("SIGINT"),
                    _ => Msg::Shutdown("SIGTERM"),
                };
                if tx.send(msg).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| Error::Other(format!("cannot start the signal thread: {e}")))?;
    Ok(())
}

fn bind(addr: &str) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).map_err(|source| Error::Listen { addr: addr.to_string(), source })
}

/// One cycle with persistence: probe (without the state lock: `ping`,
/// `mute` and `unmute` never wait for a slow target), then under the lock:
/// load the state, apply what the sender finished, record the HTTP pushes
/// received since the last cycle, judge the push checks, step and heal,
/// save (the cycle's alerts and pings are then durable: one write however
/// many pings came), write the status and prom files; then hand the outbox
/// to the sender.
fn cycle_once(
    config: &Config,
    opts: &CycleOptions,
    alerts: &notify::Dispatcher,
    history: &Mutex<store::Recorder>,
    kept: &Mutex<statefile::Kept>,
    server: Option<&server::Server>,
    pool: &runner::Pool,
) -> Result<StatusDoc, Error> {
    let probed = cycle::probe_on(config, opts, Some(pool));
    let mut history = history.lock().unwrap_or_else(PoisonError::into_inner);
    history.reconfigure(&config.history_store); // a reload may have moved it
    let (mut out, state) = {
        let _lock = statefile::lock(&config.state_file, LOCK_WAIT)?;
        // Re-read each cycle (from memory while the file is as we left
        // it): `mute`/`unmute` edit the file while we run. An unreadable
        // file ends the cycle here: nothing healed or saved over a state we
        // could not see.
        let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
        let mut state = kept.load(&config.state_file)?;
        notify::apply_done(&mut state, &alerts.take_done());
        // Taken only once the state is loaded: a cycle that fails before
        // this leaves the pushes queued for the next one.
        let live = server.and_then(server::Server::live);
        let pushes = live.map(server::Live::take_pushes).unwrap_or_default();
        record_pushes(config, &mut state, &pushes);
        // Before a restart: at once (the budget must survive a crash).
        let mut persist = |s: &crate::state::StateFile| kept.save(&config.state_file, s, true);
        let mut out = cycle::apply(config, &mut state, opts, probed, &mut persist, &mut history);
        if let Err(e) = kept.save(&config.state_file, &state, false) {
            // Not on disk: back in the queue for the next cycle, not lost.
            if let Some(live) = live {
                live.requeue_pushes(pushes);
            }
            return Err(e);
        }
        cycle::add_uptime(&mut out.doc, &mut history);
        status::write(&config.status_file, &out.doc)?;
        metrics::write_prom_file(config, &out.doc);
        // After the status, so a history fault never costs it (it warns
        // once); still under the lock, as in `check`, so that results reach
        // the history in the order of their cycles: a `check` run between
        // our unlock and our record would otherwise be recorded first, and
        // the incidents and time spans would follow the wrong order.
        let _ = history.record(&cycle::history_record(config, &state, &out));
        if cycle::number_incidents(&mut state, &mut out, &mut history) && out.captures.is_empty() {
            cycle::save_diagnosed(config, &state, Some(&out.doc));
        }
        (out, state)
    };
    // The incidents this cycle opened: diagnosed after the status is
    // written, before the sender gets their alerts (which carry it), with
    // the lock released: a `check`, `ping` or `mute` never waits for it.
    let state = if out.captures.is_empty() {
        state
    } else {
        let diagnoses = cycle::capture(config, &out);
        let again = statefile::lock(&config.state_file, LOCK_WAIT)
            .and_then(|lock| Ok((lock, statefile::load(&config.state_file)?)));
        match again {
            Ok((_lock, mut now)) => {
                cycle::attach(&mut now, &mut out, &diagnoses, &mut history);
                cycle::save_diagnosed(config, &now, Some(&out.doc));
                now
            }
            Err(e) => {
                // The alerts wait in the outbox for the next cycle; the
                // diagnoses are in this cycle's document only.
                crate::warn!("diagnosis: not kept: {e}");
                cycle::attach(&mut state.clone(), &mut out, &diagnoses, &mut history);
                state
            }
        }
    };
    let outbox = notify::outbox(config, &state, Timestamp::now());
    alerts.sync(config, outbox, notify::heartbeat_due(config, &out.doc), out.raised.dropped);
    Ok(out.doc)
}

/// Records the HTTP pushes taken from the server's inbox (the caller holds
/// the state lock). A push check removed by a reload meanwhile: nothing to record.
fn record_pushes(
    config: &Config,
    state: &mut StateFile,
    pushes: &[(String, server::push::Queued)],
) {
    let now = Timestamp::now();
    for (service, q) in pushes {
        if config.service(service).is_some() {
            crate::state::record_ping(state, service, q.ping.clone(), q.count, now);
        }
    }
}

/// The running daemon: its config, the server, the signal channel,
/// systemd's notify socket and the alert sender.
struct Daemon<'a> {
    path: &'a Path,
    config: Arc<Config>,
    opts: CycleOptions,
    /// `--listen` given: a changed `listen:` in the config is ignored.
    listen_pinned: bool,
    server: Option<Arc<server::Server>>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    sd: sdnotify::Notifier,
    alerts: Arc<notify::Dispatcher>,
    /// The history writer, kept open across cycles (one cycle at a time uses it).
    history: Arc<Mutex<store::Recorder>>,
    /// The state between cycles (`statefile::Kept`).
    kept: Arc<Mutex<statefile::Kept>>,
    /// The probe threads, kept across cycles.
    pool: Arc<runner::Pool>,
    /// A SIGHUP came in: reload before the next cycle.
    reload: bool,
    /// Start-up or a reload ran since the last cycle: once the next cycle
    /// is done, the binary's pages they alone ran are given back.
    settle: bool,
    /// The claim on the state file, held for the daemon's life.
    _claim: crate::fsutil::Lock,
}

/// What waiting for a cycle came to.
enum Waited {
    Done(Result<StatusDoc, Error>),
    /// SIGTERM/SIGINT: the cycle was let finish (or abandoned after its grace).
    Stop,
}

impl<'a> Daemon<'a> {
    fn start(
        path: &'a Path,
        no_restart: bool,
        listen: Option<String>,
        no_http: bool,
    ) -> Result<Self, Error> {
        let config = Arc::new(config::load(path)?);
        // Before anything else that could fail or be seen: a second daemon
        // on the same state file stops here, naming the first.
        let claim = statefile::claim_daemon(&config.state_file)?;
        let server = if no_http {
            None
        } else {
            let addr = listen.clone().unwrap_or_else(|| config.listen.clone());
            let listener = bind(&addr)?;
            let web = Web::from_config(&config).map_err(Error::Other)?;
            Some(
                server::start(listener, Source::Live(Live::default()), web)
                    .map_err(|e| Error::Other(format!("cannot start the HTTP server: {e}")))?,
            )
        };
        let (tx, rx) = mpsc::channel();
        spawn_signals(tx.clone())?;
        for w in config::advice::warnings(&config) {
            crate::warn!("{w}");
        }
        crate::info!(
            "started: {}, every {}{}",
            crate::output::plural(config.services.len(), "service", "services"),
            config::duration::format(config.interval),
            if no_restart { ", healing off (--no-restart)" } else { "" }
        );
        Ok(Daemon {
            path,
            config: Arc::clone(&config),
            opts: CycleOptions { no_restart, only: Vec::new() },
            listen_pinned: listen.is_some(),
            server,
            tx,
            rx,
            sd: sdnotify::Notifier::from_env(),
            alerts: Arc::new(notify::Dispatcher::start()),
            history: Arc::new(Mutex::new(store::Recorder::new(&config.history_store))),
            kept: Arc::default(),
            pool: Arc::new(runner::Pool::new()),
            reload: false,
            settle: true,
            _claim: claim,
        })
    }

    /// Runs one cycle on its own thread and waits for it, feeding the
    /// watchdog while it is within its worst-case bound (a cycle stuck
    /// beyond it stops the pings and systemd steps in).
    fn cycle(&mut self, started: Instant) -> Result<Waited, Error> {
        let (config, tx, alerts, opts, history, kept, server, pool) = (
            Arc::clone(&self.config),
            self.tx.clone(),
            Arc::clone(&self.alerts),
            self.opts.clone(),
            Arc::clone(&self.history),
            Arc::clone(&self.kept),
            self.server.clone(),
            Arc::clone(&self.pool),
        );
        std::thread::Builder::new()
            .name("cycle".into())
            .spawn(move || {
                let done =
                    cycle_once(&config, &opts, &alerts, &history, &kept, server.as_deref(), &pool);
                let _ = tx.send(Msg::CycleDone(done));
            })
            .map_err(|e| Error::Other(format!("cannot start a cycle: {e}")))?;
        let bound = cycle_bound(&self.config);
        loop {
            let wait = self.sd.watchdog.unwrap_or(Duration::from_secs(3600));
            match self.rx.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {
                    if self.sd.watchdog.is_some() && started.elapsed() < bound {
                        self.sd.notify("WATCHDOG=1");
                    }
                }
                Ok(Msg::CycleDone(r)) => return Ok(Waited::Done(r)),
                Ok(Msg::Reload) => self.reload = true,
                Ok(Msg::Shutdown(sig)) => {
                    // Let the running cycle finish, or abandon it after its timeout.
                    let grace = self.config.max_timeout() + Duration::from_secs(1);
                    crate::info!(
                        "{sig}: stopping (waiting at most {} ms for the running cycle)",
                        grace.as_millis()
                    );
                    self.sd.notify("STOPPING=1");
                    wait_for_cycle(&self.rx, grace);
                    return Ok(Waited::Stop);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Error::Other("internal error: control channel closed".into()));
                }
            }
        }
    }

    /// A cycle's result: published to the server, told to systemd.
    fn publish(&self, doc: StatusDoc, first: bool) {
        let status = format!("STATUS={}", summary(&doc));
        if let Some(live) = self.server.as_ref().and_then(|s| s.live()) {
            live.set_extra_metrics(self.alerts.metrics());
            live.publish(doc);
        }
        if first {
            self.sd.notify("READY=1");
            if let Some(how) = crate::probe::systemd_bus::how_asked() {
                crate::info!("systemd is asked {how}");
            }
        }
        if self.sd.watchdog.is_some() {
            self.sd.notify("WATCHDOG=1");
        }
        self.sd.notify(&status);
    }

    /// Waits until `next` (the next cycle's start), reloading on SIGHUP and
    /// feeding the watchdog while idle. False on SIGTERM/SIGINT.
    fn idle_until(&mut self, next: Instant) -> Result<bool, Error> {
        loop {
            if std::mem::take(&mut self.reload) {
                self.sd.notify("RELOADING=1");
                if let Some(c) = reload_config(
                    self.path,
                    &self.config,
                    self.server.as_deref(),
                    self.listen_pinned,
                ) {
                    self.config = Arc::new(c);
                }
                self.settle = true;
                self.sd.notify("READY=1");
            }
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(true);
            }
            // With an interval longer than half the watchdog period, keep
            // pinging while idle: the loop is alive, just waiting.
            let nap = self.sd.watchdog.map_or(left, |w| left.min(w));
            match self.rx.recv_timeout(nap) {
                Ok(Msg::Reload) => self.reload = true,
                Ok(Msg::Shutdown(sig)) => {
                    crate::info!("{sig}: stopping");
                    self.sd.notify("STOPPING=1");
                    return Ok(false);
                }
                Ok(Msg::CycleDone(_)) => {}
                Err(RecvTimeoutError::Timeout) if nap < left => self.sd.notify("WATCHDOG=1"),
                Err(RecvTimeoutError::Timeout) => return Ok(true),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Error::Other("internal error: control channel closed".into()));
                }
            }
        }
    }

    /// The one way out: the sender gets a grace period, what it finished is
    /// saved to the state file (still its one writer: this thread, under
    /// the lock), with what the last cycles kept unwritten (`Kept`), and
    /// the rest waits there for the next start.
    fn stop(self) -> u8 {
        self.alerts.shutdown(Duration::from_secs(2));
        let done = self.alerts.take_done();
        // Pushes that came after the last cycle took the inbox: recorded
        // now, or they would be lost with the process.
        let live = self.server.as_deref().and_then(server::Server::live);
        let pushes = live.map(server::Live::take_pushes).unwrap_or_default();
        // A cycle abandoned while it held the kept state: the file as it is.
        let mut kept = match self.kept.try_lock() {
            Ok(mut k) => std::mem::take(&mut *k),
            Err(_) => statefile::Kept::default(),
        };
        if kept.pending() || !done.is_empty() || !pushes.is_empty() {
            let saved = statefile::lock(&self.config.state_file, Duration::from_secs(2)).and_then(
                |_lock| {
                    let mut state = kept.load(&self.config.state_file)?;
                    notify::apply_done(&mut state, &done);
                    record_pushes(&self.config, &mut state, &pushes);
                    kept.save(&self.config.state_file, &state, true)
                },
            );
            if let Err(e) = saved {
                if !done.is_empty() {
                    crate::warn!(
                        "notify: could not record {} finished notification(s) ({e}); they may be sent again",
                        done.len()
                    );
                }
                if !pushes.is_empty() {
                    crate::warn!(
                        "push: could not record the pushes of {} service(s) at exit ({e})",
                        pushes.len()
                    );
                }
            }
        }
        crate::info!("stopped");
        0
    }
}

pub fn run(
    path: &Path,
    no_restart: bool,
    listen: Option<String>,
    no_http: bool,
) -> Result<u8, Error> {
    crate::arena::limit();
    let mut d = Daemon::start(path, no_restart, listen, no_http)?;
    let mut first = true;
    loop {
        let started = Instant::now();
        match d.cycle(started)? {
            Waited::Stop => return Ok(d.stop()),
            Waited::Done(Ok(doc)) => {
                d.publish(doc, first);
                if std::mem::take(&mut d.settle) {
                    // Start-up (or a reload) is over: its code need not stay mapped.
                    crate::resident::release_start_up();
                }
            }
            Waited::Done(Err(e)) if first => return Err(e),
            Waited::Done(Err(e)) => crate::error!("{e}"),
        }
        first = false;
        let elapsed = started.elapsed();
        if elapsed > d.config.interval {
            crate::warn!(
                "cycle took {} ms, longer than the interval ({}); starting the next one now",
                elapsed.as_millis(),
                config::duration::format(d.config.interval)
            );
        }
        if !d.idle_until(started + d.config.interval)? {
            return Ok(d.stop());
        }
    }
}

/// The longest a healthy cycle can take: every wave of probes at its
/// timeout, every unit restarted at `heal.timeout`, plus slack.
fn cycle_bound(config: &Config) -> Duration {
    let checks: usize = config.services.iter().map(|s| s.checks.len()).sum();
    let waves = checks.div_ceil(config.workers.max(1)).max(1) as u32;
    let units = config.services.iter().filter(|s| s.unit.is_some()).count() as u32;
    config.max_timeout() * waves + config.heal.timeout * units + Duration::from_secs(10)
}

fn wait_for_cycle(rx: &Receiver<Msg>, grace: Duration) {
    let deadline = Instant::now() + grace;
    while let Ok(msg) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Msg::CycleDone(r) = msg {
            if let Err(e) = r {
                crate::error!("{e}");
            }
            return;
        }
    }
    crate::warn!("abandoned the running cycle at shutdown; state is as of the previous cycle");
}

fn summary(doc: &StatusDoc) -> String {
    use crate::state::Health;
    let count = |h: Health| doc.services.iter().filter(|s| s.status == h).count();
    format!(
        "{}: {} up, {} degraded, {} down",
        doc.overall.as_str(),
        count(Health::Up),
        count(Health::Degraded),
        count(Health::Down)
    )
}

/// SIGHUP: a valid new config replaces the old; an invalid one is logged and ignored.
fn reload_config(
    path: &Path,
    old: &Config,
    server: Option<&server::Server>,
    listen_pinned: bool,
) -> Option<Config> {
    let mut new = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            crate::error!("reload: keeping the old config: {}", e.to_string().replace('\n', "; "));
            return None;
        }
    };
    if let Some(server) = server {
        match Web::from_config(&new) {
            Ok(web) => server.set_web(web),
            Err(e) => {
                crate::error!("reload: keeping the old config: {e}");
                return None;
            }
        }
    }
    if new.state_file != old.state_file {
        // The daemon's claim (`<state_file>.pid`) is on the old one.
        crate::warn!(
            "reload: state_file changed to {}; that takes a restart (still using {})",
            new.state_file.display(),
            old.state_file.display()
        );
        new.state_file = old.state_file.clone();
    }
    if new.listen != old.listen && !listen_pinned {
        crate::warn!("reload: listen changed to {}; that takes a restart", new.listen);
    }
    crate::info!(
        "reloaded {}: {}",
        path.display(),
        crate::output::plural(new.services.len(), "service", "services")
    );
    Some(new)
}

pub fn serve(path: &Path, listen: Option<String>) -> Result<u8, Error> {
    crate::arena::limit();
    let config = config::load(path)?;
    let addr = listen.clone().unwrap_or_else(|| config.listen.clone());
    let listener = bind(&addr)?;
    let web = Web::from_config(&config).map_err(Error::Other)?;
    let source = Source::File(server::FileSource::new(config.status_file.clone()));
    let server = server::start(listener, source, web)
        .map_err(|e| Error::Other(format!("cannot start the HTTP server: {e}")))?;
    let (tx, rx) = mpsc::channel();
    spawn_signals(tx)?;
    let sd = sdnotify::Notifier::from_env();
    sd.notify("READY=1");
    let mut config = config;
    loop {
        let wait = sd.watchdog.unwrap_or(Duration::from_secs(3600));
        match rx.recv_timeout(wait) {
            Ok(Msg::Reload) => {
                sd.notify("RELOADING=1");
                if let Some(c) = reload_config(path, &config, Some(&server), listen.is_some()) {
                    if c.status_file != config.status_file {
                        crate::warn!("reload: status_file changed; that takes a restart");
                    }
                    config = c;
                }
                sd.notify("READY=1");
            }
            Ok(Msg::Shutdown(sig)) => {
                crate::info!("{sig}: stopping");
                sd.notify("STOPPING=1");
                return Ok(0);
            }
            Ok(Msg::CycleDone(_)) => {}
            Err(RecvTimeoutError::Timeout) => sd.notify("WATCHDOG=1"),
            Err(RecvTimeoutError::Disconnected) => return Ok(0),
        }
    }
}
