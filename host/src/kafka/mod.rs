//! Kafka I/O: client settings, internal topics, the run loop and its
//! workers, restoring state from changelogs.

mod config;
pub mod instance;
mod ledger;
pub mod partitioner;
pub mod reset;
pub mod restore;
mod run;
pub mod tools;
pub mod topics;
mod worker;

pub use config::{consumer_config, producer_config};
pub use run::{RunError, run};
