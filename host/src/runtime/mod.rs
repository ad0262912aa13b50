//! Running a topology: the operator chain, tasks (a sub-topology's steps
//! and state for one partition), and the in-process test driver.

mod chain;
pub mod dead_letter;
pub mod deliver;
mod node;
pub mod task;
pub mod test_driver;
pub mod ticket;

pub use chain::{Chain, ChainError, ChainOutput, Rejected};
pub use dead_letter::{DeadLetter, source_headers};
pub use node::Destination;
