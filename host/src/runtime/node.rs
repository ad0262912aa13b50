//! The nodes a task runs, built from its sub-topology's plan.

use crate::ops::aggregate::KvAggregate;
use crate::ops::fold::Fold;
use crate::ops::join::stream_stream::StreamStream;
use crate::ops::join::{Fk, How, JoinNode};
use crate::ops::table::TableNode;
use crate::ops::versioned::VersionedTable;
use crate::ops::windows::WindowStep;
use crate::ops::windows::session::SessionAggregate;
use crate::ops::windows::sliding::SlidingAggregate;
use crate::ops::windows::time::TimeWindowAggregate;
use crate::state::global::Globals;
use crate::topology::{
    Aggregation, FkPart, JoinShape, NodeId, NodeKind, Op, PlanNode, Topology, WindowKind, graph,
};
use std::sync::Arc;

/// Where records leaving a task go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// These sinks (indices into the topology's sinks).
    Sinks(Arc<[usize]>),
    /// A repartition topic (index into the plan's repartitions).
    Repartition(usize),
}

/// What one node of a task does.
#[derive(Debug)]
pub(super) enum Node {
    /// Records pass on unchanged: a source, a repartition source, `group_by_key`.
    Pass,
    /// A processor operator; `branching` when its outputs carry branch tags.
    Process { step: usize, branching: bool },
    /// Re-key by a field.
    GroupByField { pointer: String, table: bool },
    /// Re-key with a processor operator.
    GroupByOperator { step: usize },
    /// A table (a table source with a store, or `to_table`).
    Table(TableNode),
    /// A versioned table source.
    Versioned(VersionedTable),
    /// Aggregation without windows.
    Aggregate(KvAggregate),
    /// A windowed aggregation (and its late topic).
    Windows(Box<dyn WindowStep>, Option<String>),
    /// A join (its inputs merged, tagged by side).
    Join(JoinNode),
    /// Records leave the task.
    Out(Destination),
}

impl Node {
    /// Tells the node its task's partition (a foreign-key join's
    /// subscriptions name it, for their answers to come back).
    pub(super) fn set_partition(&mut self, partition: i32) {
        if let Node::Join(j) = self {
            j.set_partition(partition);
        }
    }

    /// The node a plan node runs as.
    pub(super) fn new(
        t: &Topology,
        p: &PlanNode,
        store_names: &[String],
        globals: &Arc<Globals>,
    ) -> Node {
        match &p.kind {
            NodeKind::Source(_) | NodeKind::RepartitionSource(_) => Node::Pass,
            NodeKind::TableSource { store, source } => match t.sources[*source].history {
                Some(history) => Node::Versioned(VersionedTable {
                    name: store_names[*store].clone(),
                    store: *store,
                    history,
                }),
                None => Node::Table(TableNode {
                    name: store_names[*store].clone(),
                    store: *store,
                }),
            },
            NodeKind::ToSinks(sinks) => Node::Out(Destination::Sinks(sinks.as_slice().into())),
            NodeKind::ToRepartition(r) => Node::Out(Destination::Repartition(*r)),
            NodeKind::Join {
                step,
                shape,
                own,
                tables,
            } => Node::Join(join_node(t, *step, *shape, (own, *tables), globals)),
            NodeKind::Step { step, store } => {
                let s = &t.steps[*step];
                let store = || store.expect("the plan gives a stateful step a store");
                match &s.op {
                    Op::Process { .. } => Node::Process {
                        step: *step,
                        branching: !s.branches.is_empty(),
                    },
                    Op::GroupByKey => Node::Pass,
                    Op::GroupBy { field: Some(f) } => Node::GroupByField {
                        pointer: f.clone(),
                        table: p.table,
                    },
                    Op::GroupBy { field: None } => Node::GroupByOperator { step: *step },
                    Op::ToTable { .. } => Node::Table(TableNode {
                        name: s.name.clone(),
                        store: store(),
                    }),
                    Op::Join(_) => unreachable!("a join is planned as NodeKind::Join"),
                    op => {
                        let a = op.aggregation().expect("an aggregation");
                        let fold = match op {
                            Op::Count(_) => Fold::Count,
                            Op::Reduce(_) => Fold::Reduce,
                            _ => Fold::Aggregate,
                        };
                        match a.window {
                            None => Node::Aggregate(KvAggregate {
                                name: s.name.clone(),
                                step: *step,
                                fold,
                                store: store(),
                                table: p.table,
                            }),
                            Some(_) => Node::Windows(
                                window_step(&s.name, *step, fold, store(), a),
                                a.late_topic.clone(),
                            ),
                        }
                    }
                }
            }
        }
    }
}

/// The node of a join step.
fn join_node(
    t: &Topology,
    step: usize,
    shape: JoinShape,
    (own, tables): (&[usize], [Option<usize>; 2]),
    globals: &Arc<Globals>,
) -> JoinNode {
    let s = &t.steps[step];
    let j = s.op.join().expect("a join step");
    let table = |side: usize| tables[side].expect("the plan keeps a joined table in a store");
    let how = match shape {
        JoinShape::StreamStream => How::Streams(StreamStream::new(
            j.window.expect("validated: two streams join in a window"),
            [own[0], own[1]],
            own.get(2).copied(),
        )),
        JoinShape::StreamTable => How::StreamTable {
            table: table(1),
            history: match s.inputs[1].node {
                NodeId::Source(i) => t.sources[i].history,
                NodeId::Step(_) => None,
            },
        },
        JoinShape::StreamGlobalTable => How::GlobalTable {
            globals: globals.clone(),
            source: match s.inputs[1].node {
                NodeId::Source(i) => i,
                NodeId::Step(_) => unreachable!("a global table is a source"),
            },
            pointer: j.key.clone(),
        },
        JoinShape::ForeignKey(part) => How::ForeignKey(match part {
            FkPart::Subscribe => Fk::Subscribe {
                pointer: (j.foreign_key.clone()).expect("validated: a foreign-key join has one"),
                partition: 0,
            },
            FkPart::Answer => Fk::Answer {
                subscriptions: own[0],
                right: table(1),
            },
            FkPart::Result => Fk::Result {
                left: table(0),
                table: own.first().map(|&store| TableNode {
                    name: s.name.clone(),
                    store,
                }),
            },
        }),
        JoinShape::TableTable => How::Tables {
            left: table(0),
            right: table(1),
            // A grouping after the join needs each row's old result.
            send_old: graph::old_values_read(&t.steps, step),
        },
    };
    JoinNode {
        name: s.name.clone(),
        step,
        kind: j.kind,
        joiner: j.joiner.clone(),
        how,
    }
}

/// The node of a windowed aggregation.
fn window_step(
    name: &str,
    step: usize,
    fold: Fold,
    store: usize,
    a: &Aggregation,
) -> Box<dyn WindowStep> {
    let w = a.window.expect("windowed");
    let ms = |d: std::time::Duration| d.as_millis() as i64;
    let name = name.to_string();
    match w.kind {
        WindowKind::Tumbling { size } => Box::new(TimeWindowAggregate {
            name,
            step,
            fold,
            store,
            size: ms(size),
            advance: ms(size),
            grace: ms(w.grace),
            emit: a.emit,
            stream_time: -1,
        }),
        WindowKind::Hopping { size, advance } => Box::new(TimeWindowAggregate {
            name,
            step,
            fold,
            store,
            size: ms(size),
            advance: ms(advance),
            grace: ms(w.grace),
            emit: a.emit,
            stream_time: -1,
        }),
        WindowKind::Sliding { difference } => Box::new(SlidingAggregate {
            name,
            step,
            fold,
            store,
            difference: ms(difference),
            grace: ms(w.grace),
            emit: a.emit,
            stream_time: -1,
            emitted_through: i64::MIN,
        }),
        WindowKind::Session { gap } => Box::new(SessionAggregate {
            name,
            step,
            fold,
            store,
            gap: ms(gap),
            grace: ms(w.grace),
            emit: a.emit,
            stream_time: -1,
        }),
    }
}
