//! The integration suite: one test binary that runs the real
//! `chatstack-status` against real loopback servers, child processes and
//! files. Each module is a topic; a new test goes where its topic is, a new
//! topic gets its own file and a line here. Shared helpers (the hermetic
//! `Env`, the `Daemon` guard, HTTP/TCP/TLS fixtures, `wait_until`) live in
//! `util/` and nowhere else.

// Helpers: Env (tempdir, config, fake systemctl, the binary), Daemon, fixtures.
mod util;

// `check` and the other one-shot commands: exit codes, formats, usage errors.
mod cli;
// The probe kinds against real targets: every state and reason, bounds.
mod probes;
// Certificates: expiry, trust, SNI, chains, ca_file, on the probe's own connection.
mod certs;
// Healing across separate runs through the state file and a fake systemctl.
mod heal;
// The status and state files: shape, atomicity, modes, owners, recovery, locks.
mod files;
// Alerts end to end: notifiers, retries, mutes, depends_on, heartbeats.
mod alerts;
// Email (a real SMTP server), Telegram, Discord and ntfy: request shapes, TLS, secrets.
mod channels;
// Maintenance windows: muting, the alert at their end, the `maintenance` command, errors.
mod maintenance;
// conf.d/ drop-ins and ${…} in config files: order, forbidden keys, duplicates, SIGHUP.
mod dropins;
// Push checks: `ping` and cron'd `check` through the state file, the daemon's
// /api/push (auth, tokens, methods, one state write per cycle), `serve`'s 404,
// healing and alerts of a push service, pings racing a daemon and checks.
mod push;

// What a newcomer sees first: tables, mutes on the row, CLI hints and bounds.
mod newcomer;
// Every YAML block in docs/ (and the man page's host example) validates as written.
mod docs;

// `run` and `serve` as processes: the loop, signals, reloads, sd_notify.
mod daemon;
// What the daemon costs its host: probe threads kept, /proc read once, process figures.
mod cost;
// Per service: one `systemctl show` per cycle, the units' resources, limits,
// their history and /api/resources.
mod resources;
// Process checks' count, memory and CPU against real child processes; max_rss, max_cpu, for.
mod process_figures;
// The history store: faults, concurrency, the history/incidents/report commands.
mod history;
// The history store through the real binary only: incidents across `check`
// runs and daemon restarts, 20 `check`s + a daemon + every reader at once,
// each fault hitting `check` and `run`, a seeded year served by `serve`.
// (Store-level tests and the seeded timeline's direct computation: history.rs.)
mod history_e2e;
// The HTTP server: endpoints, auth, CORS, path escapes, metrics and promtool.
mod server;
// GET /api/openapi.json: served as the rest, every example answers as documented.
mod openapi;
// The HTTP front under attack: every hardening finding replayed.
mod attacks;
// HTTPS on the listener: certificates, bounds over TLS, rotation.
mod tls;
// The why: diagnoses (fake systemctl and journalctl), restart outcomes,
// crash loops and flapping, in `check` and `run`.
mod why;
// The dashboard in headless Chromium.
mod browser;

// A real fleet: agents on 127.0.0.2-4, Prometheus (shipped scrape config and
// rules) and Alertmanager (shipped example) to a webhook receiver; the
// shipped files' own promtool/amtool checks. The agent's Alertmanager path
// plugs into `Fleet::start` (see `alertmanager_notifier`).
mod fleet;
