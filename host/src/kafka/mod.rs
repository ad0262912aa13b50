//! Kafka I/O: client settings, internal topics, the run loop and its
//! workers, restoring state from changelogs.

mod broker;
mod config;
mod delivery;
mod dispatch;
mod error;
mod global;
mod health;
pub mod instance;
pub mod limits;
mod offsets;
mod order;
pub mod partitioner;
mod produce;
mod rebalance;
pub mod reset;
pub mod restore;
mod run;
mod send;
pub mod tools;
pub mod topics;
mod worker;

pub use config::{check, consumer_config, producer_config};

use crate::runtime::ticket::{BatchTicket, InFlight};

/// A share of a batch's work travels with each produced record as the
/// producer's delivery opaque: the delivery report completes it.
impl rdkafka::util::IntoOpaque for InFlight {
    fn into_ptr(self) -> *mut std::ffi::c_void {
        self.into_raw().cast_mut().cast()
    }

    unsafe fn from_ptr(p: *mut std::ffi::c_void) -> Self {
        // SAFETY: rdkafka hands back, once, a pointer `into_ptr` made.
        unsafe { InFlight::from_raw(p.cast_const().cast::<BatchTicket>()) }
    }
}
pub use run::{RunError, Wiring, run};
