//! The topology a spec declares: a graph of sources, steps and sinks, and
//! its physical [`Plan`].
//!
//! Steps read named nodes (a merge when they read several); any node may
//! feed several steps and sinks. The graph is cut into sub-topologies where
//! a grouping needs records re-keyed across partitions: the records go
//! through an internal repartition topic, and the aggregations after it
//! run in the sub-topology reading that topic (Kafka Streams'
//! sub-topologies).

pub mod describe;
pub mod graph;
pub mod join;
mod parts;
pub mod plan;
mod planner;

pub use describe::describe;
pub use graph::{Flow, NodeId, Port};
pub use join::{FkPart, Join, JoinKind, JoinShape, JoinWindow, Joiner};
pub use parts::{
    Aggregation, Emit, Op, Source, StateConfig, StoreKind, TimestampSource, Topics, Window,
    WindowKind,
};
pub use plan::{
    LocalPort, NodeKind, Plan, PlanNode, Repartition, StoreRole, SubInput, SubTopology,
};

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
    /// Source nodes.
    pub sources: Vec<Source>,
    /// Steps, in spec order.
    pub steps: Vec<Step>,
    /// Output topics.
    pub sinks: Vec<Sink>,
    /// State stores.
    pub state: StateConfig,
    /// Sub-topologies, stores and internal topics.
    pub plan: Plan,
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
    /// Largest component a reload accepts, in bytes.
    pub max_component_bytes: usize,
}

/// The admin API's address when `[admin]` gives none.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9470";

impl Topology {
    /// The topics the sources name, in spec order (pattern sources add none).
    pub fn source_topics(&self) -> Vec<String> {
        self.sources
            .iter()
            .flat_map(|s| s.topics.names().iter().cloned())
            .collect()
    }

    /// The source reading `topic`: the one naming it, else the first whose
    /// pattern matches it (internal topics never match a pattern).
    pub fn source_of_topic(&self, topic: &str) -> Option<usize> {
        if let Some(i) = self
            .sources
            .iter()
            .position(|s| s.topics.names().iter().any(|t| t == topic))
        {
            return Some(i);
        }
        if self.writes(topic) {
            return None;
        }
        self.sources
            .iter()
            .position(|s| s.topics.regex().is_some_and(|r| r.is_match(topic)))
    }

    /// Whether the application writes `topic`: a sink, a late or
    /// dead-letter topic, or one of its internal topics (a pattern source
    /// never reads these, or the pipeline would feed itself).
    pub fn writes(&self, topic: &str) -> bool {
        let internal = topic
            .strip_prefix(&self.application_id)
            .is_some_and(|rest| rest.starts_with('-'))
            && (topic.ends_with("-repartition") || topic.ends_with("-changelog"));
        let dead_letter = |p: &ErrorPolicy| matches!(p, ErrorPolicy::DeadLetter(t) if t == topic);
        internal
            || self
                .sinks
                .iter()
                .any(|s| s.topic == topic || dead_letter(&s.on_error))
            || self.sources.iter().any(|s| dead_letter(&s.on_error))
            || self.steps.iter().any(|s| {
                dead_letter(&s.on_error)
                    || s.op
                        .aggregation()
                        .and_then(|a| a.late_topic.as_deref())
                        .is_some_and(|t| t == topic)
            })
    }

    /// Names of every store the topology keeps.
    pub fn stores(&self) -> Vec<String> {
        self.plan.stores.iter().map(|s| s.name.clone()).collect()
    }

    /// The changelog topic of a store.
    pub fn changelog_topic(&self, store: &str) -> String {
        format!("{}-{store}-changelog", self.application_id)
    }

    /// The name of a node.
    pub fn node_name(&self, n: NodeId) -> &str {
        match n {
            NodeId::Source(i) => &self.sources[i].name,
            NodeId::Step(k) => &self.steps[k].name,
        }
    }

    /// A port as the spec writes it: `node` or `node.branch`.
    pub fn port_name(&self, p: Port) -> String {
        match (p.node, p.branch) {
            (NodeId::Step(k), Some(b)) => {
                format!("{}.{}", self.steps[k].name, self.steps[k].branches[b])
            }
            (n, _) => self.node_name(n).to_string(),
        }
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
    /// How long a batch may be in flight before the instance is not ready.
    pub stall_after: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            batch_size: 1024,
            commit_interval: Duration::from_secs(5),
            poll_timeout: Duration::from_millis(20),
            watch: true,
            stall_after: Duration::from_secs(60),
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
    /// Branch names; an output with tag `i` goes to branch `i`.
    pub branches: Vec<String>,
    /// The ports it reads (several: merged).
    pub inputs: Vec<Port>,
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
    /// Most records a processor may emit for one input record.
    pub outputs_per_record: usize,
    /// Largest record (key, value and headers) a processor may emit, bytes.
    pub record_bytes: usize,
}

/// Records a processor may emit per input unless `limits.outputs_per_record` says.
pub const DEFAULT_OUTPUTS_PER_RECORD: usize = 10_000;
/// The largest output record unless `limits.record_size` says.
pub const DEFAULT_RECORD_BYTES: usize = 8 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            timeout: Duration::from_secs(2),
            fuel: None,
            outputs_per_record: DEFAULT_OUTPUTS_PER_RECORD,
            record_bytes: DEFAULT_RECORD_BYTES,
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
    /// The ports feeding it (several: merged).
    pub inputs: Vec<Port>,
    /// What a record the broker or client refuses does.
    pub on_error: ErrorPolicy,
}

/// A step for tests of the graph and the plan: `op` reading `inputs`.
#[cfg(test)]
pub(crate) fn test_step(name: &str, op: Op, inputs: &[NodeId]) -> Step {
    Step {
        name: name.into(),
        op,
        component: None,
        interface: Interface::Processor,
        settings: vec![],
        branches: vec![],
        inputs: inputs.iter().copied().map(Port::of).collect(),
        limits: Limits::default(),
        grants: Grants::default(),
        on_error: ErrorPolicy::Fail,
        line: 1,
    }
}
