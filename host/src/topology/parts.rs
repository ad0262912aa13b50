//! The parts of a topology besides its graph: what a step does (run an
//! operator, group, aggregate, window, turn a stream into a table), how a
//! source is read, and the state and time settings those need.

use std::path::PathBuf;
use std::time::Duration;

/// The kind of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A processor operator (map, filter, flat-map, branch).
    Process {
        /// The operator promises not to change keys (Kafka Streams'
        /// `mapValues`): a `group_by_key` after it needs no repartition.
        keeps_key: bool,
    },
    /// Groups by the current key (`groupByKey`).
    GroupByKey,
    /// Groups by a new key: a JSON pointer into the value, or the keys a
    /// processor operator gives its outputs (`groupBy`).
    GroupBy {
        /// JSON pointer (`/user/id`) of the new key, when not an operator.
        field: Option<String>,
    },
    /// Counts the records (or table rows) of each group.
    Count(Aggregation),
    /// Folds each group's values with an aggregator's adder, the first value
    /// being the initial aggregate (`reduce`).
    Reduce(Aggregation),
    /// Folds each group's values into an aggregate (initializer, adder, and
    /// subtractor for tables): the `aggregator` interface.
    Aggregate(Aggregation),
    /// Reads a stream as a table: each record upserts its key, a tombstone
    /// deletes it (`toTable`).
    ToTable {
        /// The store holding the table.
        store: String,
    },
    /// Joins its two inputs (`inputs[0]` is the left, `inputs[1]` the right).
    Join(super::join::Join),
}

impl Op {
    /// The name used in the spec's `op` key.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Process { .. } => "process",
            Op::GroupByKey => "group_by_key",
            Op::GroupBy { .. } => "group_by",
            Op::Count(_) => "count",
            Op::Reduce(_) => "reduce",
            Op::Aggregate(_) => "aggregate",
            Op::ToTable { .. } => "to_table",
            Op::Join(_) => "join",
        }
    }

    /// The aggregation settings of `count`, `reduce` and `aggregate`.
    pub fn aggregation(&self) -> Option<&Aggregation> {
        match self {
            Op::Count(a) | Op::Reduce(a) | Op::Aggregate(a) => Some(a),
            _ => None,
        }
    }

    /// The join settings of `join`.
    pub fn join(&self) -> Option<&super::join::Join> {
        match self {
            Op::Join(j) => Some(j),
            _ => None,
        }
    }

    /// Whether the step groups records (and so must precede an aggregation).
    pub fn is_grouping(&self) -> bool {
        matches!(self, Op::GroupByKey | Op::GroupBy { .. })
    }
}

/// How an aggregation keeps and emits its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregation {
    /// The store holding the aggregates; its changelog is
    /// `<application-id>-<store>-changelog`.
    pub store: String,
    /// Windows, when the aggregation is windowed.
    pub window: Option<Window>,
    /// When results go downstream.
    pub emit: Emit,
    /// Where records too late for their window go, besides being counted.
    pub late_topic: Option<String>,
}

/// When an aggregation's results go downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// Every update (through the write cache, which may collapse updates of
    /// a key between commits).
    Update,
    /// One result per window once it closes (window end + grace ≤ stream
    /// time): `suppress(untilWindowCloses)`.
    Final,
}

/// A window definition, with Kafka Streams' semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The kind and its sizes.
    pub kind: WindowKind,
    /// How long after a window ends records may still arrive for it.
    pub grace: Duration,
}

/// The kinds of windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Fixed-size, non-overlapping, aligned to the epoch: `[start, start + size)`.
    Tumbling {
        /// Window size.
        size: Duration,
    },
    /// Fixed-size windows starting every `advance`, aligned to the epoch.
    Hopping {
        /// Window size.
        size: Duration,
        /// Distance between window starts.
        advance: Duration,
    },
    /// Kafka Streams' `SlidingWindows`: windows `[t - difference, t]`
    /// defined by the records themselves, bounds inclusive.
    Sliding {
        /// Largest time difference between two records of one window.
        difference: Duration,
    },
    /// Per-key sessions of activity separated by at least `gap`.
    Session {
        /// Inactivity gap that closes a session.
        gap: Duration,
    },
}

/// Where a source record's event time comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampSource {
    /// The Kafka record's timestamp.
    Record,
    /// The wall clock when the record is processed.
    ProcessingTime,
    /// A number of milliseconds at a JSON pointer into the value.
    Field(String),
}

/// One source node: its topics and how they are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Node name (steps and sinks read it by this name).
    pub name: String,
    /// The topics it reads.
    pub topics: Topics,
    /// Read as a table (each record an upsert of its key) rather than a stream.
    pub table: bool,
    /// A global table: every partition, on every instance, read by a
    /// consumer of its own and looked up by joins (Kafka Streams'
    /// `GlobalKTable`); in no sub-topology.
    pub global: bool,
    /// A versioned table: how far back its versions are kept, ms.
    pub history: Option<i64>,
    /// Event time of its records.
    pub timestamp: TimestampSource,
    /// What a record whose event time cannot be read does.
    pub on_error: super::ErrorPolicy,
}

/// The topics of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topics {
    /// These topics.
    Names(Vec<String>),
    /// Every topic whose whole name matches this regular expression
    /// (Kafka Streams' `stream(Pattern)`), internal topics excepted.
    Pattern(String),
}

impl Topics {
    /// The topic, when there is exactly one.
    pub fn single(&self) -> Option<&str> {
        match self {
            Topics::Names(n) if n.len() == 1 => Some(&n[0]),
            _ => None,
        }
    }

    /// The named topics (none for a pattern).
    pub fn names(&self) -> &[String] {
        match self {
            Topics::Names(n) => n,
            Topics::Pattern(_) => &[],
        }
    }

    /// The pattern, compiled to match whole topic names.
    pub fn regex(&self) -> Option<regex::Regex> {
        match self {
            Topics::Pattern(p) => regex::Regex::new(&format!("^(?:{p})$")).ok(),
            Topics::Names(_) => None,
        }
    }
}

impl std::fmt::Display for Topics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Topics::Names(n) => f.write_str(&n.join(", ")),
            Topics::Pattern(p) => write!(f, "pattern {p}"),
        }
    }
}

/// Where and how state is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// Directory holding `<application-id>/<task>/` store directories.
    pub dir: PathBuf,
    /// Write cache per instance, in bytes (0: every update goes downstream
    /// at once, as Kafka Streams with `statestore.cache.max.bytes = 0`).
    pub cache_bytes: usize,
    /// Store implementation.
    pub store: StoreKind,
}

/// Store implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// RocksDB on local disk, restored from the changelog when lost.
    RocksDb,
    /// In memory, restored from the changelog on every start.
    Memory,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: default_state_dir(),
            // Kafka Streams' default statestore.cache.max.bytes.
            cache_bytes: 10 << 20,
            store: StoreKind::RocksDb,
        }
    }
}

/// `$XDG_STATE_HOME/eddy`, else `~/.local/state/eddy`, else a temp dir.
fn default_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("eddy");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h).join(".local/state/eddy");
    }
    std::env::temp_dir().join("eddy-state")
}
