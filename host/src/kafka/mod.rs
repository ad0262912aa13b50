//! Kafka I/O: client settings, topic checks, and the run loop.

mod config;
mod ledger;
mod run;
pub mod tools;

pub use config::{consumer_config, producer_config};
pub use run::{RunError, run};
