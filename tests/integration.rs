mod browser;
mod daemon;
mod server;
mod util;

mod alerts;

mod cli;
mod files;
mod heal;
mod history;
mod probes;
