//! A join step: two inputs, how they match, and what a match becomes.

/// Which unmatched records a join keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Only matches.
    Inner,
    /// Matches, and left records that find none (joined with null).
    Left,
    /// Matches, and records of either side that find none.
    Outer,
}

impl JoinKind {
    /// The name used in the spec's `kind` key.
    pub fn name(self) -> &'static str {
        match self {
            JoinKind::Inner => "inner",
            JoinKind::Left => "left",
            JoinKind::Outer => "outer",
        }
    }
}

/// What a matched pair (or a record joined with null) becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joiner {
    /// The step's Wasm component, through its `joiner` interface.
    Component,
    /// Two JSON objects merged: the right object's fields added to the
    /// left's (flattened), or the right value under one field.
    Merge {
        /// The field holding the right value; none: flattened.
        into: Option<String>,
    },
    /// `{"left": L, "right": R}`.
    Pair,
    /// The left value.
    Left,
    /// The right value.
    Right,
}

/// The time bounds of a stream–stream join: a left record at `t` joins
/// right records from `t - before` to `t + after`, bounds included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindow {
    /// How far before a left record a right record may be, ms (may be
    /// negative when `after` makes up for it).
    pub before: i64,
    /// How far after a left record a right record may be, ms.
    pub after: i64,
    /// How long after a window closes records may still arrive, ms.
    pub grace: i64,
}

impl JoinWindow {
    /// How long a side's records are kept: `before + after + grace`.
    pub fn retention(&self) -> i64 {
        self.before + self.after + self.grace
    }
}

/// A join step's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// Inner, left or outer.
    pub kind: JoinKind,
    /// What a match becomes.
    pub joiner: Joiner,
    /// The window, for two streams.
    pub window: Option<JoinWindow>,
    /// With a global table: a JSON pointer into the stream record's value
    /// giving the key to look up (none: the record's key).
    pub key: Option<String>,
    /// With two tables: a JSON pointer into the left value giving the key
    /// of the right row it joins (a foreign-key join).
    pub foreign_key: Option<String>,
    /// Prefix of the join's own stores (`<store>-left`, `<store>-right`,
    /// `<store>-outer` for two streams).
    pub store: String,
}

/// What the two inputs of a join are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinShape {
    /// Two streams, within a window.
    StreamStream,
    /// A stream looking up a table.
    StreamTable,
    /// A stream looking up a global table by a key taken from each record.
    StreamGlobalTable,
    /// Two tables.
    TableTable,
    /// Two tables, the left's rows joining the right's by a key taken from
    /// the left value; this part of it runs in one sub-topology.
    ForeignKey(FkPart),
}

/// The three parts of a foreign-key join, each in the sub-topology of the
/// table it reads (Kafka Streams' KIP-213 topology).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FkPart {
    /// Left table changes become subscriptions, keyed by foreign key.
    Subscribe,
    /// Subscriptions are kept and answered, and right table changes answer
    /// every subscriber.
    Answer,
    /// Answers that still match the left row become the join's results.
    Result,
}

impl JoinShape {
    /// The join's own stores as (suffix, windowed, scanned). A stream
    /// join's buffers are keyed like window stores but have no time index:
    /// the join sweeps out what its retention passed.
    pub fn own_stores(self, kind: JoinKind) -> Vec<(&'static str, bool, bool)> {
        match (self, kind) {
            (JoinShape::StreamStream, JoinKind::Inner) => {
                vec![("left", false, true), ("right", false, true)]
            }
            (JoinShape::StreamStream, _) => vec![
                ("left", false, true),
                ("right", false, true),
                ("outer", false, true),
            ],
            (JoinShape::ForeignKey(FkPart::Answer), _) => vec![("subscriptions", false, true)],
            _ => Vec::new(),
        }
    }
}
