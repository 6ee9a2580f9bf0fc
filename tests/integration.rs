mod browser;
mod certs;
mod daemon;
mod server;
mod util;

mod alerts;

mod cli;
mod files;
mod heal;
mod probes;
