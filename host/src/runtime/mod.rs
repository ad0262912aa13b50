//! Running a topology: tasks (a sub-topology's nodes and state for one
//! partition), a worker's tasks and their commits, delivery of their
//! output, and the in-process test driver.

pub mod dead_letter;
pub mod deliver;
pub mod intake;
mod merge;
mod node;
pub mod task;
pub mod tasks;
pub mod test_driver;
pub mod ticket;

pub use dead_letter::{DeadLetter, source_headers};
pub use node::Destination;
