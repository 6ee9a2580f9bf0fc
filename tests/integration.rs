mod daemon;
mod server;
mod util;

mod cli;
mod files;
mod heal;
mod probes;
