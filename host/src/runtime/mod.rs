//! Running a topology: the operator chain, tasks (a sub-topology's steps
//! and state for one partition), and the in-process test driver.

mod chain;
mod node;
pub mod task;
pub mod test_driver;

pub use chain::{Chain, ChainError, ChainOutput, Rejected, source_headers};
pub use node::Destination;
