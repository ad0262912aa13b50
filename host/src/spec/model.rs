//! The spec file as written, before validation.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// A whole pipeline spec file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    /// The Kafka Streams `application.id`: consumer group and prefix of internal topics.
    pub application_id: Spanned<String>,
    /// librdkafka settings, passed through under their own names.
    #[serde(default)]
    pub kafka: BTreeMap<String, Spanned<KafkaValue>>,
    /// Threads, batching and commits.
    #[serde(default)]
    pub runtime: Option<Spanned<RuntimeSpec>>,
    /// Input topics.
    #[serde(default)]
    pub sources: Vec<Spanned<SourceSpec>>,
    /// The operator chain, in order.
    #[serde(default)]
    pub steps: Vec<Spanned<StepSpec>>,
    /// Output topics.
    #[serde(default)]
    pub sinks: Vec<Spanned<SinkSpec>>,
    /// Where and how state is kept.
    #[serde(default)]
    pub state: Option<Spanned<StateSpec>>,
    /// The admin API.
    #[serde(default)]
    pub admin: Option<Spanned<AdminSpec>>,
}

/// `[admin]`: the admin HTTP API.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSpec {
    /// Address to listen on (default "127.0.0.1:9470").
    pub listen: Option<Spanned<String>>,
    /// Bearer token for the endpoints that change something; required when
    /// listening on anything but loopback, generated at start when absent.
    pub token: Option<Spanned<String>>,
    /// Largest component a reload accepts, e.g. "128MiB" (the default).
    pub max_component_size: Option<Spanned<String>>,
    /// `host:port` other instances and clients reach the API at (default:
    /// the listen address).
    pub advertise: Option<Spanned<String>>,
}

/// `[state]`: state stores.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSpec {
    /// Directory for the stores (default `$XDG_STATE_HOME/eddy` or `~/.local/state/eddy`).
    pub dir: Option<Spanned<String>>,
    /// Write cache size per instance, e.g. "10MiB"; "0" emits every update.
    pub cache_size: Option<Spanned<String>>,
    /// `rocksdb` (default) or `memory`.
    pub store: Option<Spanned<String>>,
}

/// A librdkafka setting value: text, a number or a boolean.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum KafkaValue {
    /// Text.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A decimal number.
    Float(f64),
}

impl std::fmt::Display for KafkaValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KafkaValue::Text(s) => f.write_str(s),
            KafkaValue::Int(i) => write!(f, "{i}"),
            KafkaValue::Bool(b) => write!(f, "{b}"),
            KafkaValue::Float(x) => write!(f, "{x}"),
        }
    }
}

/// `[runtime]`: how the host runs the topology.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSpec {
    /// Worker threads running tasks (default: the number of cores).
    pub workers: Option<Spanned<i64>>,
    /// Most records per polled batch (default 1024).
    pub batch_size: Option<Spanned<i64>>,
    /// How often input offsets are committed (default "5s").
    pub commit_interval: Option<Spanned<String>>,
    /// How long a poll waits to fill a batch (default "20ms").
    pub poll_timeout: Option<Spanned<String>>,
    /// Reload an operator when its `.wasm` file changes (default true).
    pub watch: Option<Spanned<bool>>,
    /// How long a batch may be in flight before `/readyz` says the
    /// instance is stuck (default "60s").
    pub stall_after: Option<Spanned<String>>,
}

/// `[[sources]]`: one source node.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Node name (default: the topic, when there is one).
    pub name: Option<Spanned<String>>,
    /// Topic name.
    pub topic: Option<Spanned<String>>,
    /// Several topics, read as one stream.
    pub topics: Option<Spanned<Vec<String>>>,
    /// A regular expression: every topic whose whole name matches.
    pub pattern: Option<Spanned<String>>,
    /// `stream` (default), `table` or `global-table`.
    #[serde(rename = "as")]
    pub read_as: Option<Spanned<String>>,
    /// A table: keep versions this far back (a versioned table, looked up
    /// as of each stream record's time), e.g. "1h".
    pub history: Option<Spanned<String>>,
    /// `record` (default), `processing-time`, or a JSON pointer such as `/ts`.
    pub timestamp: Option<Spanned<String>>,
    /// What a record whose event time cannot be read does: `fail`
    /// (default), `skip` or `dead-letter`.
    pub on_error: Option<Spanned<String>>,
    /// Where `on_error = "dead-letter"` writes (default
    /// `<application_id>-source-<topic>-dead-letters`).
    pub dead_letter_topic: Option<Spanned<String>>,
}

/// `from`: the node (or `node.branch`) a step or sink reads, or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FromSpec {
    /// One port.
    One(String),
    /// Several ports, merged.
    Many(Vec<String>),
}

impl FromSpec {
    /// The ports named.
    pub fn names(&self) -> Vec<&str> {
        match self {
            FromSpec::One(n) => vec![n.as_str()],
            FromSpec::Many(n) => n.iter().map(String::as_str).collect(),
        }
    }
}

/// `[[steps]]`: one step of the graph.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Node name, unique in the topology.
    pub name: Spanned<String>,
    /// What it reads (default: the step before it; for the first step,
    /// every source).
    pub from: Option<Spanned<FromSpec>>,
    /// What the step does (default `process`).
    pub op: Option<Spanned<String>>,
    /// Path of the `.wasm` component, relative to the spec file.
    pub component: Option<Spanned<String>>,
    /// Which exported interface the step calls (implied by `op`).
    pub interface: Option<Spanned<String>>,
    /// `process`: the operator never changes keys.
    pub keeps_key: Option<Spanned<bool>>,
    /// `group_by`: JSON pointer of the new key in the value.
    pub key: Option<Spanned<String>>,
    /// `count`/`reduce`/`aggregate`: windows; `join` of two streams: how
    /// far apart matching records may be.
    pub window: Option<Spanned<WindowSpec>>,
    /// `join`: the left input (a node, or `node.branch`).
    pub left: Option<Spanned<String>>,
    /// `join`: the right input.
    pub right: Option<Spanned<String>>,
    /// `join`: `inner` (default), `left` or `outer`.
    pub kind: Option<Spanned<String>>,
    /// `join`: `merge`, `pair`, `left`, `right`, or absent with `component`.
    pub joiner: Option<Spanned<String>>,
    /// `join` of two tables: JSON pointer of the foreign key in the left
    /// value, the right table's key each left row joins.
    pub foreign_key: Option<Spanned<String>>,
    /// `join` with `joiner = "merge"`: the field the right value goes under
    /// (default: its fields are added to the left's).
    #[serde(rename = "as")]
    pub merge_as: Option<Spanned<String>>,
    /// `count`/`reduce`/`aggregate`: `update` (default) or `final`.
    pub emit: Option<Spanned<String>>,
    /// Store name (default: the step name).
    pub store: Option<Spanned<String>>,
    /// Topic for records too late for their window.
    pub late_topic: Option<Spanned<String>>,
    /// Settings handed to the operator's `init`.
    #[serde(default)]
    pub settings: BTreeMap<String, Spanned<KafkaValue>>,
    /// Names of the branches the operator routes to.
    #[serde(default)]
    pub branches: Option<Spanned<Vec<String>>>,
    /// Memory and time limits.
    #[serde(default)]
    pub limits: Option<Spanned<LimitsSpec>>,
    /// Capabilities granted to the operator (none by default).
    #[serde(default)]
    pub grants: Option<Spanned<GrantsSpec>>,
    /// What a record the operator fails on does: `fail` (default), `skip`
    /// or `dead-letter`.
    pub on_error: Option<Spanned<String>>,
    /// Where `on_error = "dead-letter"` writes (default
    /// `<application_id>-<step>-dead-letters`).
    pub dead_letter_topic: Option<Spanned<String>>,
}

/// `window = { ... }` of an aggregation or a join step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// `tumbling`, `hopping`, `sliding` or `session` (aggregations only).
    pub kind: Option<Spanned<String>>,
    /// How far before a left record a right record may be (joins).
    pub before: Option<Spanned<String>>,
    /// How far after a left record a right record may be (joins).
    pub after: Option<Spanned<String>>,
    /// Window size (tumbling, hopping).
    pub size: Option<Spanned<String>>,
    /// Distance between window starts (hopping).
    pub advance: Option<Spanned<String>>,
    /// Largest time difference within a window (sliding); for a join,
    /// both `before` and `after`.
    pub difference: Option<Spanned<String>>,
    /// Inactivity gap (session).
    pub gap: Option<Spanned<String>>,
    /// Grace period after a window ends (default "0s").
    pub grace: Option<Spanned<String>>,
}

/// `[steps.limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Largest linear memory per instance, e.g. "64MiB".
    pub memory: Option<Spanned<String>>,
    /// Longest a single batch call may run, e.g. "2s".
    pub timeout: Option<Spanned<String>>,
    /// Most Wasm fuel (roughly, instructions) one batch call may use.
    pub fuel: Option<Spanned<i64>>,
    /// Most records a processor may emit for one input record (default 10000).
    pub outputs_per_record: Option<Spanned<i64>>,
    /// Largest record a processor may emit, e.g. "8MiB" (the default).
    pub record_size: Option<Spanned<String>>,
}

/// `[steps.grants]`: ambient capabilities, all off by default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantsSpec {
    /// Environment variables visible to the operator: names copied from the host environment.
    #[serde(default)]
    pub env: Vec<Spanned<String>>,
    /// Host directories mounted into the operator.
    #[serde(default)]
    pub dirs: Vec<Spanned<DirGrant>>,
    /// Real wall and monotonic clocks (otherwise both read zero).
    #[serde(default)]
    pub clock: bool,
    /// Outbound network access (TCP, UDP, name lookup).
    #[serde(default)]
    pub network: bool,
}

/// One mounted directory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// Directory on the host, relative to the spec file.
    pub host: String,
    /// Path the operator sees.
    pub guest: String,
    /// Whether the operator may write (default read-only).
    #[serde(default)]
    pub writable: bool,
}

/// `[[sinks]]`: one output topic.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSpec {
    /// Topic name.
    pub topic: Spanned<String>,
    /// What it reads (default: the last step).
    pub from: Option<Spanned<FromSpec>>,
    /// What a record the broker or client refuses (too large, invalid)
    /// does: `fail` (default), `skip` or `dead-letter`.
    pub on_error: Option<Spanned<String>>,
    /// Where `on_error = "dead-letter"` writes (default
    /// `<application_id>-sink-<topic>-dead-letters`).
    pub dead_letter_topic: Option<Spanned<String>>,
}
