//! Every integration test, in one binary: one link instead of eighteen, and the slow ones (the
//! soak, the services waiting on their schedules) overlap the rest instead of following them.
//! `cargo test --release --test suite daemon::` runs one file's tests.

mod common;

mod browser;
mod clustering;
mod config;
mod daemon;
mod faults;
mod fidelity;
mod hostile;
mod hostile_servers;
mod instances;
mod migrate;
mod once;
mod parse;
mod readers;
mod soak;
mod stories;
mod toolbox;
mod upgrade;
