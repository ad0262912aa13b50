//! What a running instance tells the admin API, whatever runs it: whether
//! it serves all it was assigned, and the answers of its stores to
//! interactive queries ([`Status`]).

use crate::state::query::{Lookup, QueryError, Rows};
use std::collections::BTreeMap;
use std::time::Duration;

/// A running instance, as the admin API sees it.
pub trait Status: Send + Sync {
    /// Whether it serves all it was assigned.
    fn readiness(&self) -> Readiness;

    /// Answers `lookup` on store `store`: read here, or where the key lives.
    fn ask(&self, store: &str, lookup: Lookup) -> Result<Answer, AskError>;
}

/// Whether the instance serves all it was assigned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Readiness {
    /// Joined the group and every assigned task is open.
    pub ready: bool,
    /// The consumer has had its first assignment.
    pub joined: bool,
    /// Tasks assigned (`<sub-topology>_<partition>`).
    pub tasks: Vec<String>,
    /// Assigned tasks still restoring their stores.
    pub restoring: Vec<String>,
    /// Tasks that could not open or stopped, with the reason.
    pub failed: BTreeMap<String, String>,
    /// What else keeps it from making progress (the broker unreachable, a
    /// batch stuck), each with its reason.
    pub problems: Vec<String>,
}

/// Another member of the group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Owner {
    /// Its consumer's `client.id`.
    pub client_id: String,
    /// Its host as the broker sees it.
    pub host: String,
    /// Its admin API (`host:port`), when it published one.
    pub admin: Option<String>,
}

/// The answer to an interactive query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Read here: the key's rows (possibly none) in this task's store.
    Here {
        /// The key's partition.
        partition: i32,
        /// What the store holds.
        rows: Rows,
    },
    /// Read from a global table, which every instance holds whole.
    Global {
        /// The key's row, if it has one.
        rows: Rows,
    },
    /// The key's task is assigned here but still restoring.
    Restoring {
        /// The key's partition.
        partition: i32,
    },
    /// The key lives in a task of another instance.
    Elsewhere {
        /// The key's partition.
        partition: i32,
        /// The instance owning it, when the group says.
        owner: Option<Owner>,
    },
}

/// Why a query could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    /// No store of that name.
    #[error("no store named `{name}`; the topology's stores are: {known}")]
    UnknownStore {
        /// The name asked for.
        name: String,
        /// The stores there are.
        known: String,
    },
    /// The store could not answer.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A worker did not answer in time.
    #[error("the worker owning the key did not answer within {0:?}; try again")]
    Busy(Duration),
    /// The key's task is assigned here but its stores could not open.
    #[error("the key's task could not open its stores: {0}")]
    Broken(String),
}
