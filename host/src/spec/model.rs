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
}

/// `[[sources]]`: one input topic.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Topic name.
    pub topic: Spanned<String>,
}

/// `[[steps]]`: one operator in the chain.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Node name, unique in the topology.
    pub name: Spanned<String>,
    /// Path of the `.wasm` component, relative to the spec file.
    pub component: Spanned<String>,
    /// Which exported interface the step calls (`processor`).
    pub interface: Spanned<String>,
    /// Settings handed to the operator's `init`.
    #[serde(default)]
    pub settings: BTreeMap<String, Spanned<KafkaValue>>,
    /// Names of the branches the operator routes to (last step only).
    #[serde(default)]
    pub branches: Option<Spanned<Vec<String>>>,
    /// Memory and time limits.
    #[serde(default)]
    pub limits: Option<Spanned<LimitsSpec>>,
    /// Capabilities granted to the operator (none by default).
    #[serde(default)]
    pub grants: Option<Spanned<GrantsSpec>>,
}

/// `[steps.limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Largest linear memory per instance, e.g. "64MiB".
    pub memory: Option<Spanned<String>>,
    /// Longest a single batch call may run, e.g. "2s".
    pub timeout: Option<Spanned<String>>,
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
    /// The branch of the last step that feeds this sink (required when it branches).
    pub from: Option<Spanned<String>>,
}
