//! State stores owned by the host: key-value and window stores on RocksDB
//! (or in memory), a write cache in front of them, their changelog records
//! and the checkpoint that says how far the local copy is good.
//!
//! Operators never see stores: aggregation steps read and write them here
//! and hand the operator only values to fold.

mod backend;
mod cache;
mod checkpoint;
pub mod global;
pub mod keys;
pub mod query;
mod task;
pub mod versions;

pub use backend::{Backend, Write};
pub use cache::{Cache, CacheEntry};
pub use checkpoint::Checkpoint;
pub use task::{ChangelogRecord, StoreSpec, TaskState};

use std::path::PathBuf;

/// Why a store could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// RocksDB refused an operation.
    #[error(
        "state store at {path}: {reason}. If the directory is damaged, stop eddy, delete it and restart: the store is restored from its changelog"
    )]
    Rocks {
        /// The store directory.
        path: PathBuf,
        /// RocksDB's message.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("state directory {path}: {reason}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Bytes in a store or changelog are not in the expected format.
    #[error("store {store}: {reason}")]
    Corrupt {
        /// The store.
        store: String,
        /// What is wrong.
        reason: String,
    },
}
