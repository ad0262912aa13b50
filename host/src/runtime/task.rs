//! One task: the nodes of one sub-topology for one partition, with the
//! task's state.
//!
//! A batch enters at the node of the topic it was read from and runs
//! through the nodes after it in plan order, each node once per batch. A
//! node reading several ports gets their records merged in the order of
//! the source records they came from (records of one source record in the
//! order of the node's inputs); a port read by several nodes is read by
//! each without a copy. A branching step's outputs are split by branch
//! once. A commit flushes the write caches, whose results run through the
//! nodes after them.

use super::merge::{merge, merge_sides, split};
use super::node::{Destination, Node};
use crate::metrics::NodeLabels;
use crate::ops::{Dropped, Emitter, NodeError, Records, group};
use crate::state::global::Globals;
use crate::state::{ChangelogRecord, StateError, StoreSpec, TaskState};
use crate::topology::{LocalPort, NodeKind, SubInput, Topology};
use crate::wasm::{Chain, Rejected};
use prometheus_client::metrics::counter::Counter;
use std::path::Path;
use std::sync::Arc;

/// Records leaving the task for a destination.
#[derive(Debug)]
pub struct Output {
    /// Where they go.
    pub to: Destination,
    /// The records.
    pub records: Records,
}

/// What a batch (or a flush) produced.
#[derive(Debug, Default)]
pub struct TaskOutput {
    /// Records for sinks and repartition topics.
    pub outputs: Vec<Output>,
    /// Records too late for their windows, by late topic.
    pub late: Vec<(String, Records)>,
    /// Store writes to send to changelogs.
    pub changelog: Vec<ChangelogRecord>,
    /// Records operators failed on, taken out by `skip` or `dead-letter`.
    pub rejected: Vec<Rejected>,
}

/// A node's output during one run.
#[derive(Debug, Default)]
enum Slot {
    /// The node did not run.
    #[default]
    Empty,
    /// Its records.
    Own(Records),
    /// The same records as a port it read (it passes records on).
    Alias(LocalPort),
    /// Its records by branch.
    Split(Vec<Records>),
}

/// A task's nodes and state.
#[derive(Debug)]
pub struct TaskPipeline {
    nodes: Vec<Node>,
    /// The ports each node reads.
    inputs: Vec<Vec<LocalPort>>,
    /// Branches of each node (0 when it does not branch).
    branches: Vec<usize>,
    /// The metric name of each node that has one.
    names: Vec<Option<String>>,
    /// Records in and out of each named node, once metrics are known.
    counters: Option<Vec<Option<(Counter, Counter)>>>,
    /// What the task reads, each with the node its records enter at.
    entries: Vec<(SubInput, usize)>,
    state: Option<TaskState>,
    /// Records skipped for lack of a key, or late.
    pub dropped: Dropped,
}

impl TaskPipeline {
    /// Tells the nodes the task's partition (foreign-key subscriptions name it).
    pub fn set_partition(&mut self, partition: i32) {
        for n in &mut self.nodes {
            n.set_partition(partition);
        }
    }

    /// Builds sub-topology `sub` of `t` for one task, with its stores under
    /// `dir` (RocksDB) or in memory (no `dir`, or `state.store = memory`).
    pub fn new(
        t: &Topology,
        sub: usize,
        dir: Option<&Path>,
        globals: &Arc<Globals>,
    ) -> Result<Self, StateError> {
        let st = &t.plan.subtopologies[sub];
        let store_names = t.plan.store_names(sub);
        let mut nodes = Vec::with_capacity(st.nodes.len());
        let mut names = Vec::with_capacity(st.nodes.len());
        let mut branches = Vec::with_capacity(st.nodes.len());
        for p in &st.nodes {
            nodes.push(Node::new(t, p, &store_names, globals));
            let (name, b) = match &p.kind {
                NodeKind::Step { step, .. } => {
                    let s = &t.steps[*step];
                    (Some(s.name.clone()), s.branches.len())
                }
                NodeKind::TableSource { store, .. } => (Some(store_names[*store].clone()), 0),
                _ => (None, 0),
            };
            names.push(name);
            branches.push(b);
        }
        let specs: Vec<StoreSpec> = (st.stores.iter())
            .map(|&s| StoreSpec::from(&t.plan.stores[s]))
            .collect();
        let mut state = if specs.is_empty() {
            None
        } else {
            Some(TaskState::open(
                t.state.store,
                dir,
                &specs,
                t.state.cache_bytes,
            )?)
        };
        if let Some(state) = state.as_mut() {
            for (i, &s) in st.stores.iter().enumerate() {
                state.set_role(i, t.plan.stores[s].role);
            }
        }
        Ok(TaskPipeline {
            inputs: st.nodes.iter().map(|n| n.inputs.clone()).collect(),
            nodes,
            branches,
            names,
            counters: None,
            entries: st.inputs.clone(),
            state,
            dropped: Dropped::default(),
        })
    }

    /// The task's stores, if it keeps any.
    pub fn state(&mut self) -> Option<&mut TaskState> {
        self.state.as_mut()
    }

    /// The node records of `input` enter at.
    pub fn entry(&self, input: SubInput) -> Option<usize> {
        self.entries
            .iter()
            .find(|(i, _)| *i == input)
            .map(|(_, n)| *n)
    }

    /// Runs a batch of records read from `input` (numbered 0..n) through
    /// the nodes.
    pub fn process(
        &mut self,
        input: SubInput,
        chain: &mut Chain,
        records: Records,
    ) -> Result<TaskOutput, NodeError> {
        // Rejections left by a batch that failed belong to no output.
        drop(chain.take_rejected());
        let entry = self.entry(input).expect("the task reads this input");
        let mut out = TaskOutput::default();
        self.run(entry, true, records, chain, &mut out)?;
        Ok(self.collect(out, chain, true))
    }

    /// At a commit: flushes every node's cache, in order, running what each
    /// flush emits through the nodes after it.
    pub fn flush(&mut self, chain: &mut Chain) -> Result<TaskOutput, NodeError> {
        drop(chain.take_rejected());
        let mut out = TaskOutput::default();
        for k in 0..self.nodes.len() {
            let Some(state) = self.state.as_mut() else {
                break;
            };
            let mut em = Emitter::new();
            match &mut self.nodes[k] {
                Node::Table(t) => t.flush(state, &mut em)?,
                Node::Versioned(v) => {
                    state.flush_store(v.store).map_err(|e| NodeError::State {
                        step: v.name.clone(),
                        error: e,
                    })?;
                    continue;
                }
                Node::Aggregate(a) => a.flush(state, &mut em)?,
                Node::Windows(w, _) => w.flush(state, &mut em)?,
                Node::Join(j) => j.flush(state, &mut em)?,
                _ => continue,
            }
            if !em.is_empty() {
                self.run(k, false, em.finish(), chain, &mut out)?;
            }
        }
        // What a flush emits has no source record of its own.
        Ok(self.collect(out, chain, false))
    }

    /// Moves every window step's stream time to at least `ts` (a test device),
    /// closing windows and running their final results through the nodes after.
    pub fn advance_time(&mut self, ts: i64, chain: &mut Chain) -> Result<TaskOutput, NodeError> {
        drop(chain.take_rejected());
        let mut out = TaskOutput::default();
        for k in 0..self.nodes.len() {
            let mut em = Emitter::new();
            match (&mut self.nodes[k], self.state.as_mut()) {
                (Node::Windows(w, _), Some(state)) => w.advance(ts, state, &mut em)?,
                (Node::Join(j), Some(state)) => j.advance(ts, state, chain, &mut em)?,
                _ => continue,
            }
            if !em.is_empty() {
                self.run(k, false, em.finish(), chain, &mut out)?;
            }
        }
        Ok(self.collect(out, chain, false))
    }

    /// Completes `out` with the work's changelog and rejected records; `sourced`
    /// when its records came from source records (their origins point at them).
    fn collect(&mut self, mut out: TaskOutput, chain: &mut Chain, sourced: bool) -> TaskOutput {
        if let Some(s) = self.state.as_mut() {
            out.changelog = s.take_changelog();
        }
        out.rejected = chain.take_rejected();
        if !sourced {
            for r in &mut out.rejected {
                r.origin = None;
            }
        }
        out
    }

    /// Runs `records` through node `start` (as its input when `into`, else
    /// as its output) and every node after it that they reach.
    fn run(
        &mut self,
        start: usize,
        into: bool,
        records: Records,
        chain: &mut Chain,
        out: &mut TaskOutput,
    ) -> Result<(), NodeError> {
        self.init_counters(chain);
        let mut slots: Vec<Slot> = Vec::with_capacity(self.nodes.len());
        slots.resize_with(self.nodes.len(), Slot::default);
        let passes = matches!(self.nodes[start], Node::Pass | Node::Out(_));
        slots[start] = if into && !passes {
            self.run_node(start, &records, chain, out)?
        } else if into {
            self.count(start, records.len(), records.len());
            Slot::Own(records)
        } else {
            self.count_out(start, records.len());
            Slot::Own(records)
        };
        let mut leaving = Vec::new();
        for k in start + 1..self.nodes.len() {
            if let Node::Join(_) = self.nodes[k] {
                // A global table has no input: it is looked up, never read.
                let side = |p: usize| {
                    let port = self.inputs[k].get(p)?;
                    read(&slots, *port).filter(|r| !r.is_empty())
                };
                let (left, right) = (side(0), side(1));
                if left.is_some() || right.is_some() {
                    let tagged = merge_sides(left, right);
                    slots[k] = self.run_node(k, &tagged, chain, out)?;
                }
                continue;
            }
            let parts: Vec<&Records> = self.inputs[k]
                .iter()
                .filter_map(|p| read(&slots, *p))
                .filter(|r| !r.is_empty())
                .collect();
            if parts.is_empty() {
                continue;
            }
            if let Node::Out(_) = self.nodes[k] {
                leaving.push(k);
                continue;
            }
            let pass = matches!(self.nodes[k], Node::Pass);
            let slot = match (pass, parts.len()) {
                (true, 1) => {
                    let n = parts[0].len();
                    self.count(k, n, n);
                    Slot::Alias(self.inputs[k][0])
                }
                (true, _) => {
                    let merged = merge(&parts);
                    self.count(k, merged.len(), merged.len());
                    Slot::Own(merged)
                }
                (_, 1) => {
                    let input = parts[0];
                    self.run_node(k, input, chain, out)?
                }
                _ => {
                    let merged = merge(&parts);
                    self.run_node(k, &merged, chain, out)?
                }
            };
            slots[k] = slot;
        }
        self.leave(&leaving, &mut slots, out);
        Ok(())
    }

    /// Hands the records reaching each output node to `out`, moving a
    /// node's records on their last use instead of copying them.
    fn leave(&self, leaving: &[usize], slots: &mut [Slot], out: &mut TaskOutput) {
        let single: Vec<Option<LocalPort>> = leaving
            .iter()
            .map(|&k| match self.inputs[k].as_slice() {
                [p] => Some(resolve(slots, *p)),
                _ => None,
            })
            .collect();
        for (i, &k) in leaving.iter().enumerate() {
            let Node::Out(to) = &self.nodes[k] else {
                continue;
            };
            let records = match single[i] {
                Some(port) if single[i + 1..].contains(&Some(port)) => {
                    read(slots, port).cloned().unwrap_or_default()
                }
                Some(port) => take(slots, port),
                None => {
                    let parts: Vec<&Records> = self.inputs[k]
                        .iter()
                        .filter_map(|p| read(slots, *p))
                        .filter(|r| !r.is_empty())
                        .collect();
                    merge(&parts)
                }
            };
            if !records.is_empty() {
                out.outputs.push(Output {
                    to: to.clone(),
                    records,
                });
            }
        }
    }

    /// Runs node `k` on `input`; returns its output.
    fn run_node(
        &mut self,
        k: usize,
        input: &Records,
        chain: &mut Chain,
        out: &mut TaskOutput,
    ) -> Result<Slot, NodeError> {
        let mut em = Emitter::new();
        let state = self.state.as_mut();
        let records = match &mut self.nodes[k] {
            Node::Pass | Node::Out(_) => input.clone(),
            Node::Process { step, branching } => {
                let (buf, origins) =
                    chain.process(*step, &input.buf, &input.origins, *branching)?;
                Records::new(buf, origins)
            }
            Node::GroupByField { pointer, table } => {
                group::group_by_field(input, pointer, *table, &mut self.dropped)
            }
            Node::GroupByOperator { step } => {
                let (buf, origins) = chain.process(*step, &input.buf, &input.origins, false)?;
                Records::new(buf, origins)
            }
            Node::Table(t) => {
                t.process(input, state.expect("stores"), &mut em, &mut self.dropped)?;
                em.finish()
            }
            Node::Versioned(v) => {
                v.process(input, state.expect("stores"), &mut self.dropped)?;
                Records::default()
            }
            Node::Aggregate(a) => {
                a.process(
                    input,
                    state.expect("stores"),
                    chain,
                    &mut em,
                    &mut self.dropped,
                )?;
                em.finish()
            }
            Node::Join(j) => {
                j.process(input, state, chain, &mut em, &mut self.dropped)?;
                em.finish()
            }
            Node::Windows(w, late_topic) => {
                let mut late = Emitter::new();
                w.process(
                    input,
                    state.expect("stores"),
                    chain,
                    &mut em,
                    &mut late,
                    &mut self.dropped,
                )?;
                if let Some(topic) = late_topic
                    && !late.is_empty()
                {
                    out.late.push((topic.clone(), late.finish()));
                }
                em.finish()
            }
        };
        self.count(k, input.len(), records.len());
        Ok(match self.branches[k] {
            0 => Slot::Own(records),
            n => Slot::Split(split(&records, n)),
        })
    }

    fn count(&self, k: usize, records_in: usize, records_out: usize) {
        if let Some(Some((i, _))) = self.counters.as_ref().map(|c| &c[k]) {
            i.inc_by(records_in as u64);
        }
        self.count_out(k, records_out);
    }

    fn count_out(&self, k: usize, n: usize) {
        if let Some(Some((_, o))) = self.counters.as_ref().map(|c| &c[k]) {
            o.inc_by(n as u64);
        }
    }

    /// Takes each named node's counters from the chain's metrics, once.
    fn init_counters(&mut self, chain: &Chain) {
        if self.counters.is_some() {
            return;
        }
        let Some(m) = chain.metrics() else {
            return;
        };
        self.counters = Some(
            self.names
                .iter()
                .map(|n| {
                    let label = NodeLabels { node: n.clone()? };
                    Some((
                        m.node_records_in.get_or_create(&label).clone(),
                        m.node_records_out.get_or_create(&label).clone(),
                    ))
                })
                .collect(),
        );
    }
}

/// The port whose records `p` carries (following nodes that pass records on).
fn resolve(slots: &[Slot], mut p: LocalPort) -> LocalPort {
    while let Slot::Alias(q) = &slots[p.node] {
        p = *q;
    }
    p
}

/// The records on port `p`, if its node ran.
fn read(slots: &[Slot], p: LocalPort) -> Option<&Records> {
    let p = resolve(slots, p);
    match (&slots[p.node], p.branch) {
        (Slot::Own(r), _) => Some(r),
        (Slot::Split(parts), Some(b)) => parts.get(b),
        _ => None,
    }
}

/// Takes the records on port `p` out of the slots.
fn take(slots: &mut [Slot], p: LocalPort) -> Records {
    let p = resolve(slots, p);
    match (&mut slots[p.node], p.branch) {
        (Slot::Own(r), _) => std::mem::take(r),
        (Slot::Split(parts), Some(b)) => parts.get_mut(b).map(std::mem::take).unwrap_or_default(),
        _ => Records::default(),
    }
}

#[cfg(test)]
#[path = "task_tests.rs"]
mod tests;
