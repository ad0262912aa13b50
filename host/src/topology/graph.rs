//! The topology as a graph: sources and steps are nodes, a step or a sink
//! reads one or more ports (a node's whole output, or one branch of a
//! branching step). Several inputs merge (Kafka Streams' `merge`); several
//! readers of one port each get every record (fan-out).
//!
//! What flows on each port — a stream, a table's changes, a windowed
//! table, or grouped records waiting for an aggregation — follows from the
//! nodes alone; spec validation and the plan both read it from here.

use super::{FkPart, JoinShape, Op, Source, Step};
use std::collections::BinaryHeap;

/// A node of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeId {
    /// A source, by index.
    Source(usize),
    /// A step, by index.
    Step(usize),
}

/// One output of a node: all of it, or one branch of a branching step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port {
    /// The node.
    pub node: NodeId,
    /// The branch (index into the step's `branches`), if the node branches.
    pub branch: Option<usize>,
}

impl Port {
    /// The whole output of `node`.
    pub fn of(node: NodeId) -> Self {
        Port { node, branch: None }
    }
}

/// What travels on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Records (Kafka Streams' KStream).
    Stream,
    /// A table's changes: new value, and old value when known (KTable).
    Table,
    /// A windowed aggregation's results (a KTable keyed by window).
    WindowedTable,
    /// A global table's rows: only a join looks them up.
    GlobalTable,
    /// Records grouped for an aggregation; `table` when they are a table's
    /// changes (KGroupedTable), else a stream's (KGroupedStream).
    Grouped {
        /// Grouped table changes.
        table: bool,
    },
}

impl Flow {
    /// Whether records on it are a table's changes.
    pub fn is_table(self) -> bool {
        matches!(
            self,
            Flow::Table | Flow::WindowedTable | Flow::Grouped { table: true }
        )
    }
}

/// The steps in an order where every step comes after the steps it reads
/// (ties in spec order), or the steps of a cycle.
pub fn step_order(steps: &[Step]) -> Result<Vec<usize>, Vec<usize>> {
    let n = steps.len();
    let mut waiting = vec![0usize; n];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, s) in steps.iter().enumerate() {
        for p in &s.inputs {
            if let NodeId::Step(j) = p.node
                && j < n
            {
                waiting[k] += 1;
                readers[j].push(k);
            }
        }
    }
    let mut ready: BinaryHeap<std::cmp::Reverse<usize>> = (0..n)
        .filter(|&k| waiting[k] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(std::cmp::Reverse(k)) = ready.pop() {
        order.push(k);
        for &r in &readers[k] {
            waiting[r] -= 1;
            if waiting[r] == 0 {
                ready.push(std::cmp::Reverse(r));
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Every step left waits on another left: follow inputs until one repeats.
    let left: Vec<bool> = (0..n).map(|k| waiting[k] > 0).collect();
    let start = (0..n).find(|&k| left[k]).expect("a step is left");
    let mut path = vec![start];
    loop {
        let at = *path.last().expect("non-empty");
        let next = steps[at]
            .inputs
            .iter()
            .find_map(|p| match p.node {
                NodeId::Step(j) if j < n && left[j] => Some(j),
                _ => None,
            })
            .expect("a step in a cycle reads another");
        if let Some(pos) = path.iter().position(|&k| k == next) {
            let mut cycle = path.split_off(pos);
            cycle.reverse();
            // From its first step in spec order, for a stable message.
            let first = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
            cycle.rotate_left(first);
            return Err(cycle);
        }
        path.push(next);
    }
}

/// The flow out of each step (indexed like `steps`), given an order from
/// [`step_order`]; a step reading several ports takes the first one's.
pub fn flows(sources: &[Source], steps: &[Step], order: &[usize]) -> Vec<Flow> {
    let mut out = vec![Flow::Stream; steps.len()];
    for &k in order {
        let input = steps[k]
            .inputs
            .first()
            .map_or(Flow::Stream, |p| port_flow(sources, &out, *p));
        out[k] = match &steps[k].op {
            Op::Process { .. } => Flow::Stream,
            Op::GroupByKey | Op::GroupBy { .. } => Flow::Grouped {
                table: input.is_table(),
            },
            Op::ToTable { .. } => Flow::Table,
            Op::Join(_) => match join_shape(sources, &out, &steps[k]) {
                Some(JoinShape::TableTable | JoinShape::ForeignKey(_)) => Flow::Table,
                _ => Flow::Stream,
            },
            op => match op.aggregation().and_then(|a| a.window) {
                Some(_) => Flow::WindowedTable,
                None => Flow::Table,
            },
        };
    }
    out
}

/// What a join step's two inputs are, given the flows out of the steps
/// before it; none when they cannot be joined.
pub fn join_shape(sources: &[Source], step_flows: &[Flow], step: &Step) -> Option<JoinShape> {
    let [l, r] = step.inputs.as_slice() else {
        return None;
    };
    match (
        port_flow(sources, step_flows, *l),
        port_flow(sources, step_flows, *r),
    ) {
        (Flow::Stream, Flow::Stream) => Some(JoinShape::StreamStream),
        (Flow::Stream, Flow::Table) => Some(JoinShape::StreamTable),
        (Flow::Stream, Flow::GlobalTable) => Some(JoinShape::StreamGlobalTable),
        // The step's results come out of the part that reads the answers.
        (Flow::Table, Flow::Table) if step.op.join().is_some_and(|j| j.foreign_key.is_some()) => {
            Some(JoinShape::ForeignKey(FkPart::Result))
        }
        (Flow::Table, Flow::Table) => Some(JoinShape::TableTable),
        _ => None,
    }
}

/// Whether a grouping reads step `k`'s output, and so needs each of its
/// table changes with the old value.
pub fn old_values_read(steps: &[Step], k: usize) -> bool {
    steps
        .iter()
        .any(|r| r.op.is_grouping() && r.inputs.iter().any(|p| p.node == NodeId::Step(k)))
}

/// For each step, whether the keys of its output may differ from the keys
/// its source records were partitioned by (a processor that may change
/// keys, or any step after one, up to a grouping, which repartitions).
pub fn keys_changed(steps: &[Step], order: &[usize]) -> Vec<bool> {
    let mut changed = vec![false; steps.len()];
    for &k in order {
        let input_changed = steps[k].inputs.iter().any(|p| match p.node {
            NodeId::Step(j) => changed[j],
            NodeId::Source(_) => false,
        });
        changed[k] = match &steps[k].op {
            Op::Process { keeps_key } => !keeps_key || input_changed,
            // Groupings repartition; aggregates, tables and joins are keyed
            // by what they read, which is partitioned right.
            _ => false,
        };
    }
    changed
}

/// The flow on port `p`, given the flows out of the steps.
pub fn port_flow(sources: &[Source], step_flows: &[Flow], p: Port) -> Flow {
    match p.node {
        NodeId::Source(i) if sources.get(i).is_some_and(|s| s.global) => Flow::GlobalTable,
        NodeId::Source(i) if sources.get(i).is_some_and(|s| s.table) => Flow::Table,
        NodeId::Source(_) => Flow::Stream,
        NodeId::Step(k) => step_flows.get(k).copied().unwrap_or(Flow::Stream),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(inputs: &[NodeId]) -> Step {
        crate::topology::test_step("s", Op::Process { keeps_key: false }, inputs)
    }

    #[test]
    fn steps_come_after_what_they_read_ties_in_spec_order() {
        use NodeId::{Source as So, Step as St};
        let steps = [
            step(&[St(2)]),
            step(&[So(0)]),
            step(&[St(1)]),
            step(&[So(0)]),
        ];
        assert_eq!(step_order(&steps), Ok(vec![1, 2, 0, 3]));
    }

    #[test]
    fn a_cycle_is_named_by_its_steps() {
        use NodeId::{Source as So, Step as St};
        let steps = [
            step(&[So(0)]),
            step(&[St(2)]),
            step(&[St(1)]),
            step(&[St(2)]),
        ];
        assert_eq!(step_order(&steps).unwrap_err(), vec![1, 2]);
    }
}
