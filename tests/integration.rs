mod browser;
mod daemon;
mod server;
mod util;

mod alerts;
mod attacks;

mod cli;
mod files;
mod heal;
mod probes;
