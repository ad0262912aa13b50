//! One task: the steps of one sub-topology for one partition, with the
//! task's state. A batch runs through the steps in order, each step once
//! per batch; a commit flushes the write caches, whose results run through
//! the steps after them.

use super::{Chain, Rejected};
use crate::metrics::NodeLabels;
use crate::ops::aggregate::KvAggregate;
use crate::ops::fold::Fold;
use crate::ops::table::TableNode;
use crate::ops::windows::WindowStep;
use crate::ops::windows::session::SessionAggregate;
use crate::ops::windows::sliding::SlidingAggregate;
use crate::ops::windows::time::TimeWindowAggregate;
use crate::ops::{Dropped, Emitter, NodeError, Records, group};
use crate::state::{ChangelogRecord, StateError, StoreSpec, TaskState};
use crate::topology::{Op, SubInput, SubOutput, Topology, WindowKind};
use prometheus_client::metrics::counter::Counter;
use std::path::Path;

/// What one node of a task does.
#[derive(Debug)]
enum Node {
    /// A processor operator (step index; whether it is the chain's last).
    Process { step: usize, last: bool },
    /// Records are grouped by the key they have.
    GroupByKey,
    /// Re-key by a field.
    GroupByField { pointer: String, table: bool },
    /// Re-key with a processor operator.
    GroupByOperator { step: usize },
    /// A table (source or `to_table`).
    Table(TableNode),
    /// Aggregation without windows.
    Aggregate(KvAggregate),
    /// A windowed aggregation (and its late topic).
    Windows(Box<dyn WindowStep>, Option<String>),
}

/// What a batch (or a flush) produced.
#[derive(Debug, Default)]
pub struct TaskOutput {
    /// Records for the sinks (tag = branch) or the repartition topic.
    pub records: Records,
    /// Records too late for their windows, by late topic.
    pub late: Vec<(String, Records)>,
    /// Store writes to send to changelogs.
    pub changelog: Vec<ChangelogRecord>,
    /// Records operators failed on, taken out by `skip` or `dead-letter`.
    pub rejected: Vec<Rejected>,
}

/// A task's steps and state.
#[derive(Debug)]
pub struct TaskPipeline {
    nodes: Vec<Node>,
    /// The step name of each node.
    names: Vec<String>,
    /// Records in and out of each node, once metrics are known.
    counters: Option<Vec<(Counter, Counter)>>,
    state: Option<TaskState>,
    /// Records skipped for lack of a key, or late.
    pub dropped: Dropped,
    /// Where the output goes.
    pub output: SubOutput,
}

impl TaskPipeline {
    /// Builds sub-topology `sub` of `t` for one task, with its stores under
    /// `dir` (RocksDB) or in memory (no `dir`, or `state.store = memory`).
    pub fn new(t: &Topology, sub: usize, dir: Option<&Path>) -> Result<Self, StateError> {
        let st = &t.subtopologies[sub];
        let mut nodes = Vec::new();
        let mut names = Vec::new();
        let mut stores: Vec<StoreSpec> = Vec::new();
        // (name, windowed, read in key ranges)
        let mut store = |name: &str, windowed: bool, scanned: bool| {
            stores.push(StoreSpec {
                name: name.to_string(),
                windowed,
                scanned,
            });
            stores.len() - 1
        };
        let mut table = false;
        if st.input == SubInput::Sources && t.sources.iter().any(|s| s.table) {
            table = true;
            // A table feeding a grouping needs its old values: keep it.
            if let Some(name) = t.table_source_store() {
                names.push(name.clone());
                nodes.push(Node::Table(TableNode {
                    store: store(&name, false, false),
                    name,
                }));
            }
        }
        // A repartitioned grouped table still carries old values.
        if let SubInput::Repartition(_) = st.input
            && st.steps.start > 0
        {
            table = grouped_table(t, st.steps.start);
        }
        let last_step = t.steps.len().saturating_sub(1);
        for k in st.steps.clone() {
            let s = &t.steps[k];
            let node = match &s.op {
                Op::Process { .. } => {
                    table = false;
                    Node::Process {
                        step: k,
                        last: k == last_step && st.output == SubOutput::Sinks,
                    }
                }
                Op::GroupByKey => Node::GroupByKey,
                Op::GroupBy { field: Some(f) } => Node::GroupByField {
                    pointer: f.clone(),
                    table,
                },
                Op::GroupBy { field: None } => Node::GroupByOperator { step: k },
                Op::ToTable { store: name } => {
                    table = true;
                    Node::Table(TableNode {
                        name: s.name.clone(),
                        store: store(name, false, false),
                    })
                }
                op => {
                    let a = op.aggregation().expect("an aggregation");
                    let fold = match op {
                        Op::Count(_) => Fold::Count,
                        Op::Reduce(_) => Fold::Reduce,
                        _ => Fold::Aggregate,
                    };
                    let was_table = table;
                    table = true;
                    match a.window {
                        None => Node::Aggregate(KvAggregate {
                            name: s.name.clone(),
                            step: k,
                            fold,
                            store: store(&a.store, false, false),
                            table: was_table,
                        }),
                        Some(w) => {
                            let ms = |d: std::time::Duration| d.as_millis() as i64;
                            match w.kind {
                                WindowKind::Tumbling { size } => Node::Windows(
                                    Box::new(TimeWindowAggregate {
                                        name: s.name.clone(),
                                        step: k,
                                        fold,
                                        store: store(&a.store, true, false),
                                        size: ms(size),
                                        advance: ms(size),
                                        grace: ms(w.grace),
                                        emit: a.emit,
                                        stream_time: -1,
                                    }),
                                    a.late_topic.clone(),
                                ),
                                WindowKind::Hopping { size, advance } => Node::Windows(
                                    Box::new(TimeWindowAggregate {
                                        name: s.name.clone(),
                                        step: k,
                                        fold,
                                        store: store(&a.store, true, false),
                                        size: ms(size),
                                        advance: ms(advance),
                                        grace: ms(w.grace),
                                        emit: a.emit,
                                        stream_time: -1,
                                    }),
                                    a.late_topic.clone(),
                                ),
                                WindowKind::Sliding { difference } => Node::Windows(
                                    Box::new(SlidingAggregate {
                                        name: s.name.clone(),
                                        step: k,
                                        fold,
                                        store: store(&a.store, true, true),
                                        difference: ms(difference),
                                        grace: ms(w.grace),
                                        emit: a.emit,
                                        stream_time: -1,
                                        emitted_through: i64::MIN,
                                    }),
                                    a.late_topic.clone(),
                                ),
                                WindowKind::Session { gap } => Node::Windows(
                                    Box::new(SessionAggregate {
                                        name: s.name.clone(),
                                        step: k,
                                        fold,
                                        store: store(&a.store, true, true),
                                        gap: ms(gap),
                                        grace: ms(w.grace),
                                        emit: a.emit,
                                        stream_time: -1,
                                    }),
                                    a.late_topic.clone(),
                                ),
                            }
                        }
                    }
                }
            };
            names.push(s.name.clone());
            nodes.push(node);
        }
        let state = if stores.is_empty() {
            None
        } else {
            Some(TaskState::open(
                t.state.store,
                dir,
                &stores,
                t.state.cache_bytes,
            )?)
        };
        Ok(TaskPipeline {
            nodes,
            names,
            counters: None,
            state,
            dropped: Dropped::default(),
            output: st.output.clone(),
        })
    }

    /// The task's stores, if it keeps any.
    pub fn state(&mut self) -> Option<&mut TaskState> {
        self.state.as_mut()
    }

    /// Runs a batch of source records (numbered 0..n) through the steps.
    pub fn process(&mut self, chain: &mut Chain, input: Records) -> Result<TaskOutput, NodeError> {
        // Rejections left by a batch that failed belong to no output.
        drop(chain.take_rejected());
        let mut out = TaskOutput::default();
        let records = self.run_from(0, chain, input, &mut out)?;
        out.records = records;
        Ok(self.collect(out, chain, true))
    }

    /// Completes `out` with the changelog records and the rejected records
    /// of the work just done; `sourced` when its records came from source
    /// records (their origins then point at them).
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

    /// At a commit: flushes every node's cache, in order, running what each
    /// flush emits through the nodes after it.
    pub fn flush(&mut self, chain: &mut Chain) -> Result<TaskOutput, NodeError> {
        drop(chain.take_rejected());
        let mut out = TaskOutput::default();
        let mut results: Vec<Records> = Vec::new();
        for k in 0..self.nodes.len() {
            let mut em = Emitter::new();
            let Some(state) = self.state.as_mut() else {
                break;
            };
            match &mut self.nodes[k] {
                Node::Table(t) => t.flush(state, &mut em)?,
                Node::Aggregate(a) => a.flush(state, &mut em)?,
                Node::Windows(w, _) => w.flush(state, &mut em)?,
                _ => continue,
            }
            if !em.is_empty() {
                let emitted = em.finish();
                if let Some(c) = &self.counters {
                    c[k].1.inc_by(emitted.len() as u64);
                }
                let r = self.run_from(k + 1, chain, emitted, &mut out)?;
                results.push(r);
            }
        }
        out.records = concat(results);
        // What a flush emits has no source record of its own.
        Ok(self.collect(out, chain, false))
    }

    /// Moves every window step's stream time to at least `ts` (a test
    /// device: in a real run only records move stream time), closing
    /// windows and running their final results through the steps after.
    pub fn advance_time(&mut self, ts: i64, chain: &mut Chain) -> Result<TaskOutput, NodeError> {
        drop(chain.take_rejected());
        let mut out = TaskOutput::default();
        let mut results = Vec::new();
        for k in 0..self.nodes.len() {
            let mut em = Emitter::new();
            match (&mut self.nodes[k], self.state.as_mut()) {
                (Node::Windows(w, _), Some(state)) => w.advance(ts, state, &mut em)?,
                _ => continue,
            }
            if !em.is_empty() {
                results.push(self.run_from(k + 1, chain, em.finish(), &mut out)?);
            }
        }
        out.records = concat(results);
        // What a flush emits has no source record of its own.
        Ok(self.collect(out, chain, false))
    }

    fn run_from(
        &mut self,
        start: usize,
        chain: &mut Chain,
        mut records: Records,
        out: &mut TaskOutput,
    ) -> Result<Records, NodeError> {
        self.init_counters(chain);
        for k in start..self.nodes.len() {
            if records.is_empty() {
                break;
            }
            if let Some(c) = &self.counters {
                c[k].0.inc_by(records.len() as u64);
            }
            let mut em = Emitter::new();
            let state = self.state.as_mut();
            records = match &mut self.nodes[k] {
                Node::Process { step, last } => {
                    let (buf, origins) =
                        chain.process(*step, &records.buf, &records.origins, *last)?;
                    Records::new(buf, origins)
                }
                Node::GroupByKey => records,
                Node::GroupByField { pointer, table } => {
                    group::group_by_field(&records, pointer, *table, &mut self.dropped)
                }
                Node::GroupByOperator { step } => {
                    let (buf, origins) =
                        chain.process(*step, &records.buf, &records.origins, false)?;
                    Records::new(buf, origins)
                }
                Node::Table(t) => {
                    t.process(&records, state.expect("stores"), &mut em, &mut self.dropped)?;
                    em.finish()
                }
                Node::Aggregate(a) => {
                    a.process(
                        &records,
                        state.expect("stores"),
                        chain,
                        &mut em,
                        &mut self.dropped,
                    )?;
                    em.finish()
                }
                Node::Windows(w, late_topic) => {
                    let mut late = Emitter::new();
                    w.process(
                        &records,
                        state.expect("stores"),
                        chain,
                        &mut em,
                        &mut late,
                        &mut self.dropped,
                    )?;
                    push_late(out, late_topic, late);
                    em.finish()
                }
            };
            if let Some(c) = &self.counters {
                c[k].1.inc_by(records.len() as u64);
            }
        }
        Ok(records)
    }

    /// Takes each node's counters from the chain's metrics, once.
    fn init_counters(&mut self, chain: &Chain) {
        if self.counters.is_some() {
            return;
        }
        let Some(m) = chain.metrics() else {
            return;
        };
        let label = |n: &String| NodeLabels { node: n.clone() };
        self.counters = Some(
            self.names
                .iter()
                .map(|n| {
                    (
                        m.node_records_in.get_or_create(&label(n)).clone(),
                        m.node_records_out.get_or_create(&label(n)).clone(),
                    )
                })
                .collect(),
        );
    }
}

/// Adds a window step's late records to the output, if it has a late topic.
fn push_late(out: &mut TaskOutput, topic: &Option<String>, late: Emitter) {
    if let Some(topic) = topic
        && !late.is_empty()
    {
        out.late.push((topic.clone(), late.finish()));
    }
}

/// Whether the records entering step `k` (after a repartition) are a
/// grouped table's changes.
fn grouped_table(t: &Topology, k: usize) -> bool {
    let mut table = t.sources.first().is_some_and(|s| s.table);
    for s in &t.steps[..k] {
        match &s.op {
            Op::Process { .. } => table = false,
            Op::ToTable { .. } | Op::Count(_) | Op::Reduce(_) | Op::Aggregate(_) => table = true,
            Op::GroupByKey | Op::GroupBy { .. } => {}
        }
    }
    table
}

/// Joins batches into one (origins carried along).
fn concat(parts: Vec<Records>) -> Records {
    match parts.len() {
        0 => Records::default(),
        1 => parts.into_iter().next().expect("one"),
        _ => {
            let mut em = Emitter::new();
            for p in &parts {
                for (r, &o) in p.view().iter().zip(&p.origins) {
                    em.emit_tagged(
                        o,
                        r.key,
                        r.value,
                        r.aux,
                        r.tag,
                        r.timestamp,
                        r.headers.iter(),
                    );
                }
            }
            em.finish()
        }
    }
}
