//! Host-side nodes: grouping, aggregation, tables and windows. They read
//! and write state stores and call aggregator operators a batch at a time.
//!
//! Records move between nodes as encoded batches ([`Records`]). A table's
//! changes travel as records whose value is the new value and whose aux is
//! the old one (either may be none), like Kafka Streams' `Change`.

pub mod aggregate;
pub mod fold;
pub mod group;
pub mod join;
pub mod table;
pub mod versioned;
pub mod windows;

use crate::state::StateError;
use crate::wasm::ChainError;
use eddy_batch::{BatchView, BatchWriter};

/// A batch between nodes, with the source record each record came from.
#[derive(Debug, Clone)]
pub struct Records {
    /// The encoded batch.
    pub buf: Vec<u8>,
    /// For each record, the index of the source record it came from.
    pub origins: Vec<u32>,
}

impl Default for Records {
    fn default() -> Self {
        Records::new(BatchWriter::new().into_vec(), Vec::new())
    }
}

impl Records {
    /// Wraps a batch the host wrote or the chain checked.
    pub fn new(buf: Vec<u8>, origins: Vec<u32>) -> Self {
        Records { buf, origins }
    }

    /// Reads the batch.
    pub fn view(&self) -> BatchView<'_> {
        BatchView::already_checked(&self.buf).expect("written by the host or checked")
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.origins.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }
}

/// Builds a node's output batch.
#[derive(Debug, Default)]
pub struct Emitter {
    writer: BatchWriter,
    origins: Vec<u32>,
}

impl Emitter {
    /// An empty output.
    pub fn new() -> Self {
        Emitter::default()
    }

    /// Adds a record that came from source record `origin`; `old` is the
    /// previous value for table changes.
    pub fn emit<'h>(
        &mut self,
        origin: u32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        old: Option<&[u8]>,
        timestamp: i64,
        headers: impl IntoIterator<Item = (&'h [u8], Option<&'h [u8]>)>,
    ) {
        let i = self.origins.len() as u32;
        self.writer
            .record_full(i, key, value, old, 0, timestamp, headers);
        self.origins.push(origin);
    }

    /// Adds a record with an explicit tag (branch).
    #[allow(clippy::too_many_arguments)] // one argument per entry field
    pub fn emit_tagged<'h>(
        &mut self,
        origin: u32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        old: Option<&[u8]>,
        tag: u32,
        timestamp: i64,
        headers: impl IntoIterator<Item = (&'h [u8], Option<&'h [u8]>)>,
    ) {
        let i = self.origins.len() as u32;
        self.writer
            .record_full(i, key, value, old, tag, timestamp, headers);
        self.origins.push(origin);
    }

    /// Number of records so far.
    pub fn len(&self) -> usize {
        self.origins.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    /// The finished batch.
    pub fn finish(mut self) -> Records {
        let buf = self.writer.finish().to_vec();
        Records::new(buf, self.origins)
    }
}

/// Why a node failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// An operator failed.
    #[error(transparent)]
    Operator(#[from] ChainError),
    /// A store failed.
    #[error("step `{step}`: {error}")]
    State {
        /// The step.
        step: String,
        /// What happened.
        error: StateError,
    },
    /// An operator returned something the node cannot use.
    #[error("operator `{step}` {message}")]
    Contract {
        /// The step.
        step: String,
        /// What was wrong.
        message: String,
        /// Source record it is pinned to.
        input_index: Option<u32>,
    },
    /// A record of an internal topic is not what eddy wrote there.
    #[error("step `{step}`: {message}")]
    Internal {
        /// The step.
        step: String,
        /// What was wrong and what to do.
        message: String,
    },
}

impl NodeError {
    /// The source record the failure is pinned to, if known.
    pub fn input_index(&self) -> Option<u32> {
        match self {
            NodeError::Operator(e) => e.input_index,
            NodeError::Contract { input_index, .. } => *input_index,
            NodeError::State { .. } | NodeError::Internal { .. } => None,
        }
    }
}

/// Counters a task keeps about records it could not use.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Records without a key (or grouping key) reaching an aggregation.
    pub no_key: u64,
    /// Records later than their window's end + grace.
    pub late: u64,
}
