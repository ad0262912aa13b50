//! The topology a spec declares: sources, a chain of steps, sinks.
//!
//! The chain is linear. It is cut into sub-topologies where a grouping
//! needs records re-keyed across partitions: the records go through an
//! internal repartition topic, and the steps after it run as their own
//! sub-topology reading that topic (Kafka Streams' sub-topologies).

pub mod describe;
mod ops;
pub(crate) mod plan;

pub use describe::describe;
pub use ops::{
    Aggregation, Emit, Op, Source, StateConfig, StoreKind, TimestampSource, Window, WindowKind,
};
pub use plan::{SubInput, SubOutput, SubTopology};

use std::path::PathBuf;
use std::time::Duration;

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Consumer group and prefix of internal topics.
    pub application_id: String,
    /// The spec file it came from.
    pub spec_path: PathBuf,
    /// librdkafka settings from the spec.
    pub kafka: Vec<(String, String)>,
    /// Threads, batching and commits.
    pub runtime: RuntimeConfig,
    /// Input topics.
    pub sources: Vec<Source>,
    /// The chain of steps, in order.
    pub steps: Vec<Step>,
    /// Output topics.
    pub sinks: Vec<Sink>,
    /// State stores.
    pub state: StateConfig,
    /// The chain cut at repartition points, in order.
    pub subtopologies: Vec<SubTopology>,
    /// The admin API, when enabled.
    pub admin: Option<AdminConfig>,
}

/// Where the admin API listens and what it asks of callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Address to listen on.
    pub listen: std::net::SocketAddr,
    /// Bearer token required by the endpoints that change something.
    pub token: Option<String>,
    /// `host:port` other instances and clients reach the API at (default:
    /// the address it listens on).
    pub advertise: Option<String>,
}

/// The admin API's address when `[admin]` gives none.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9470";

impl Topology {
    /// The source topic names, in spec order.
    pub fn source_topics(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.topic.clone()).collect()
    }

    /// The store a table source keeps its rows in: only when a grouping
    /// follows it, which needs each row's old value.
    pub fn table_source_store(&self) -> Option<String> {
        let source = self.sources.first().filter(|s| s.table)?;
        let first = self.subtopologies.first()?.steps.start;
        self.steps
            .get(first)
            .filter(|s| s.op.is_grouping())
            .map(|_| format!("source-{}", source.topic))
    }

    /// Names of the stores the steps of `steps` keep (and the table source's,
    /// when they start at the first step), in the order tasks index them.
    pub fn stores_of(&self, steps: std::ops::Range<usize>) -> Vec<String> {
        let source = self.table_source_store().filter(|_| steps.start == 0);
        source
            .into_iter()
            .chain(self.steps[steps].iter().filter_map(|s| match &s.op {
                Op::ToTable { store } => Some(store.clone()),
                op => op.aggregation().map(|a| a.store.clone()),
            }))
            .collect()
    }

    /// Names of every store the topology keeps.
    pub fn stores(&self) -> Vec<String> {
        self.stores_of(0..self.steps.len())
    }

    /// The changelog topic of a store.
    pub fn changelog_topic(&self, store: &str) -> String {
        format!("{}-{store}-changelog", self.application_id)
    }
}

/// How the host runs the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Worker threads.
    pub workers: usize,
    /// Most records per batch.
    pub batch_size: usize,
    /// Interval between offset commits.
    pub commit_interval: Duration,
    /// How long a poll waits to fill a batch.
    pub poll_timeout: Duration,
    /// Reload operators whose `.wasm` file changes.
    pub watch: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            batch_size: 1024,
            commit_interval: Duration::from_secs(5),
            poll_timeout: Duration::from_millis(20),
            watch: true,
        }
    }
}

/// Which exported interface a step calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// `eddy:operator/processor`.
    Processor,
    /// `eddy:operator/aggregator`.
    Aggregator,
    /// `eddy:operator/joiner`.
    Joiner,
}

impl Interface {
    /// The interface's name in the WIT package.
    pub fn name(self) -> &'static str {
        match self {
            Interface::Processor => "processor",
            Interface::Aggregator => "aggregator",
            Interface::Joiner => "joiner",
        }
    }
}

/// One step of the chain.
#[derive(Debug, Clone)]
pub struct Step {
    /// Node name.
    pub name: String,
    /// What it does.
    pub op: Op,
    /// The `.wasm` component, for steps that call an operator.
    pub component: Option<PathBuf>,
    /// The interface it is called through.
    pub interface: Interface,
    /// Settings passed to `init`.
    pub settings: Vec<(String, String)>,
    /// Branch names (last step only); tag `i` of an output goes to branch `i`.
    pub branches: Vec<String>,
    /// Memory and time limits.
    pub limits: Limits,
    /// Granted capabilities.
    pub grants: Grants,
    /// What happens to a record the operator fails on.
    pub on_error: ErrorPolicy,
    /// Line of the step in the spec.
    pub line: usize,
}

/// What happens to a record an operator fails on (an error it returns, a
/// trap, a timeout, running out of memory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// Stop the task with the error (its offsets stay uncommitted).
    #[default]
    Fail,
    /// Count the record and go on without it.
    Skip,
    /// Write the record to this topic, with headers naming the error, and
    /// go on without it.
    DeadLetter(String),
}

/// Per-instance resource limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory, in bytes.
    pub memory_bytes: usize,
    /// Longest one batch call may run.
    pub timeout: Duration,
    /// Most fuel one batch call may use (none: not metered).
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            timeout: Duration::from_secs(2),
            fuel: None,
        }
    }
}

/// Capabilities granted to an operator; none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Environment variables passed through by name.
    pub env: Vec<String>,
    /// (host dir, guest path, writable).
    pub dirs: Vec<(PathBuf, String, bool)>,
    /// Real clocks.
    pub clock: bool,
    /// Outbound network.
    pub network: bool,
}

/// One output topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sink {
    /// Topic name.
    pub topic: String,
    /// The branch feeding it, or every output when none.
    pub branch: Option<usize>,
    /// What a record the broker or client refuses does.
    pub on_error: ErrorPolicy,
}

impl Sink {
    /// Whether an output record routed to `branch` goes to this sink.
    pub fn takes(&self, branch: u32) -> bool {
        self.branch.is_none_or(|b| b as u32 == branch)
    }
}
