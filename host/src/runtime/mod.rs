//! Running a topology: the operator chain, the in-process test driver and
//! the Kafka loop.

mod chain;
pub mod test_driver;

pub use chain::{Chain, ChainError, ChainOutput};
