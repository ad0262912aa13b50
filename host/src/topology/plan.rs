//! The physical plan: the validated graph cut into sub-topologies, each
//! with its nodes in execution order, its stores and the topics it reads
//! and writes. Tasks, workers, the test driver, restore and queries all
//! read it; nothing else decides these facts.
//!
//! A grouping needs every record of a key in one task. Source records are
//! partitioned by their key, so a `group_by_key` that reads records whose
//! keys no step changed groups in place. A `group_by`, or a `group_by_key`
//! after a step that may have changed keys, writes its records to
//! `<application-id>-<step>-repartition`, keyed by the grouping key, and
//! the aggregations reading it run in the sub-topology that reads that
//! topic. Sub-topologies are the connected parts of the graph once those
//! edges are cut, as in Kafka Streams; they are numbered by their first
//! node (sources, then steps, in spec order).

use super::JoinShape;

/// The physical plan of a topology.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The sub-topologies, by id.
    pub subtopologies: Vec<SubTopology>,
    /// Every store, by stable id.
    pub stores: Vec<StorePlan>,
    /// Every repartition topic.
    pub repartitions: Vec<Repartition>,
    /// The sub-topology of each source (`usize::MAX` for a global table,
    /// which is in none).
    pub source_sub: Vec<usize>,
}

/// A state store and who keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePlan {
    /// Store name; its changelog is `<application-id>-<name>-changelog`.
    pub name: String,
    /// A window store (it has a time index too).
    pub windowed: bool,
    /// Read in key ranges (session and sliding windows).
    pub scanned: bool,
    /// The sub-topology whose tasks keep it.
    pub sub: usize,
    /// What it holds, as queries see it.
    pub role: StoreRole,
}

/// What a store holds, as interactive queries see it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StoreRole {
    /// Rows or windows, each with its latest value.
    #[default]
    Plain,
    /// A versioned table: rows as of a time, `history` ms back.
    Versioned {
        /// How far back versions are kept, ms.
        history: i64,
    },
    /// A join's internal records (a stream–stream join's buffers, a
    /// foreign-key join's subscriptions): not served (as in Kafka Streams).
    JoinBuffer,
}

/// An internal topic between a grouping and its aggregations, or before a
/// join's side whose keys changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repartition {
    /// `<application-id>-<name>-repartition`.
    pub topic: String,
    /// The grouping step writing it, or the join reading it.
    pub step: usize,
    /// The name its nodes go by: the grouping step's, or `<join>-left` /
    /// `<join>-right`.
    pub name: String,
    /// The sub-topology writing it.
    pub from: usize,
    /// The sub-topology reading it.
    pub to: usize,
    /// Whether its records are a table's changes (old values travel in a header).
    pub table: bool,
    /// Whether each record names its partition in its value (a foreign-key
    /// join's answers go back to the partition of the row that asked).
    pub by_value: bool,
}

/// A topic a sub-topology's tasks read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubInput {
    /// The topics of a source.
    Source(usize),
    /// A repartition topic (index into [`Plan::repartitions`]).
    Repartition(usize),
}

/// A part of the graph that runs as its own tasks, one per partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubTopology {
    /// Its id: tasks are named `<id>_<partition>`.
    pub id: usize,
    /// What it reads, each with the node its records enter at.
    pub inputs: Vec<(SubInput, usize)>,
    /// Its nodes, each after the nodes it reads.
    pub nodes: Vec<PlanNode>,
    /// Its stores (ids into [`Plan::stores`]); a node's local store index
    /// is a position in this list.
    pub stores: Vec<usize>,
}

/// One node of a sub-topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanNode {
    /// What it does.
    pub kind: NodeKind,
    /// The ports it reads (several: merged).
    pub inputs: Vec<LocalPort>,
    /// Whether the records it reads are a table's changes (with old values).
    pub table: bool,
}

/// A port within a sub-topology: a node's index and, for a branching
/// step, the branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalPort {
    /// Index into [`SubTopology::nodes`].
    pub node: usize,
    /// The branch, if the node branches.
    pub branch: Option<usize>,
}

/// What a plan node does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// Records of a source enter here and pass on.
    Source(usize),
    /// A table source whose rows are kept in a store (a grouping reads it
    /// and needs each row's old value).
    TableSource {
        /// The source.
        source: usize,
        /// Local store index.
        store: usize,
    },
    /// Records of a repartition topic enter here and pass on.
    RepartitionSource(usize),
    /// A step of the spec.
    Step {
        /// The step.
        step: usize,
        /// Local index of its store, if it keeps one.
        store: Option<usize>,
    },
    /// A join step.
    Join {
        /// The step.
        step: usize,
        /// What its inputs are.
        shape: JoinShape,
        /// Local indices of its own stores (two streams: left, right, and
        /// for left and outer joins the unmatched records).
        own: Vec<usize>,
        /// Local store index of each input that is a table (left, right).
        tables: [Option<usize>; 2],
    },
    /// Records go to these sinks (indices into the topology's sinks).
    ToSinks(Vec<usize>),
    /// Records go to a repartition topic.
    ToRepartition(usize),
}

impl SubTopology {
    /// The node records of `input` enter at.
    pub fn entry(&self, input: SubInput) -> Option<usize> {
        self.inputs
            .iter()
            .find(|(i, _)| *i == input)
            .map(|(_, n)| *n)
    }
}

impl Plan {
    /// The names of the stores of sub-topology `sub`, in local index order.
    pub fn store_names(&self, sub: usize) -> Vec<String> {
        self.subtopologies[sub]
            .stores
            .iter()
            .map(|&s| self.stores[s].name.clone())
            .collect()
    }

    /// The sub-topology keeping store `name`.
    pub fn sub_of_store(&self, name: &str) -> Option<usize> {
        self.stores.iter().find(|s| s.name == name).map(|s| s.sub)
    }
}

pub use super::planner::plan;

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
