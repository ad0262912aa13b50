//! Why `eddy run` stopped with an error.

use crate::wasm::LoadError;
use rdkafka::error::KafkaError;

/// Why `eddy run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The spec lacks something running needs.
    #[error("{0}")]
    Config(String),
    /// An operator failed to load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The broker could not be reached.
    #[error(
        "cannot reach Kafka at {servers} after {attempts} attempts over {secs}s: {last}. Is the broker running (scripts/kafka start)?"
    )]
    Unreachable {
        /// bootstrap.servers.
        servers: String,
        /// Attempts made.
        attempts: u32,
        /// Seconds spent.
        secs: u64,
        /// The last error.
        last: String,
    },
    /// Topics the pipeline names do not exist.
    #[error(
        "topic(s) {0:?} do not exist on the broker; create them first (e.g. scripts/kafka topic-create NAME PARTITIONS)"
    )]
    MissingTopics(Vec<String>),
    /// A Kafka client error.
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A worker thread stopped on a bug; its tasks could commit nothing more.
    #[error(
        "worker {worker} stopped: {why}. eddy stopped too (what was delivered is committed); restart it to resume from the last committed offsets, and report the bug"
    )]
    WorkerFailed {
        /// The worker.
        worker: usize,
        /// The panic's message.
        why: String,
    },
}
