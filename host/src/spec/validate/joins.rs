//! The rules of join steps: what each side may be, the window and key
//! they need, co-partitioned inputs, and global tables read only by joins.

use super::Validator;
use crate::spec::model::{SpecFile, StepSpec};
use crate::topology::graph::{self, Flow, NodeId, Port};
use crate::topology::{Join, JoinKind, JoinShape, Op, Sink, Source, Step};
use toml::Spanned;

impl Validator<'_> {
    /// What a join may read: a stream and a stream (in a window), a stream
    /// and a table, or two tables; tables kept in stores; keys as their
    /// topics were partitioned.
    pub(super) fn join_rules(
        &mut self,
        at: &Spanned<StepSpec>,
        i: usize,
        j: &Join,
        sources: &[Source],
        steps: &[Step],
        (flows, changed): (&[Flow], &[bool]),
    ) {
        let st = &steps[i];
        let [l, r] = st.inputs.as_slice() else {
            return; // a side is missing or unknown: reported already
        };
        let flow = |p: &Port| graph::port_flow(sources, flows, *p);
        let name = |p: &Port| self.port_text(sources, steps, *p);
        let mut errs: Vec<(String, String)> = Vec::new();
        for (side, p) in [("left", l), ("right", r)] {
            match flow(p) {
                Flow::Grouped { .. } => errs.push((side.into(), format!("{:?} is grouped records; a join reads a stream or a table (join the aggregation's output instead)", name(p)))),
                Flow::WindowedTable => errs.push((side.into(), format!("{:?} is a windowed aggregation's results, which eddy cannot join yet; join the stream before the windows", name(p)))),
                _ => {}
            }
            // A stream whose keys changed is repartitioned before the join;
            // a table made of one is not.
            if let NodeId::Step(k) = p.node
                && matches!(steps[k].op, Op::ToTable { .. })
                && steps[k]
                    .inputs
                    .iter()
                    .any(|q| matches!(q.node, NodeId::Step(j) if changed[j]))
            {
                errs.push((side.into(), format!("{:?} is a table of records whose keys may differ from those their topic was partitioned by (a processor without keeps_key = true is upstream); set keeps_key = true on processors that keep keys, or join the stream before `to_table`", name(p))));
            }
        }
        match graph::join_shape(sources, flows, st) {
            Some(JoinShape::StreamStream) if j.window.is_none() => errs.push(("window".into(), "two streams join within a window: add e.g. window = { difference = \"5m\", grace = \"1m\" } (or `before` and `after`)".into())),
            Some(JoinShape::StreamTable | JoinShape::TableTable | JoinShape::ForeignKey(_)) if j.window.is_some() => errs.push(("window".into(), "only a join of two streams has a window; a table holds its latest row per key".into())),
            Some(JoinShape::StreamGlobalTable) if j.window.is_some() => errs.push(("window".into(), "only a join of two streams has a window; a global table holds its latest row per key".into())),
            Some(JoinShape::StreamGlobalTable) if j.kind == JoinKind::Outer => errs.push(("kind".into(), "a join with a global table is \"inner\" or \"left\" (Kafka Streams has no outer join with a GlobalKTable)".into())),
            Some(JoinShape::ForeignKey(_)) if j.kind == JoinKind::Outer => errs.push(("kind".into(), "a foreign-key join is \"inner\" or \"left\" (Kafka Streams has no outer foreign-key join)".into())),
            Some(JoinShape::StreamTable) if j.kind == JoinKind::Outer => errs.push(("kind".into(), "a stream–table join is \"inner\" or \"left\": a table row alone never produces output (Kafka Streams has no outer stream–table join)".into())),
            None if flow(l) == Flow::GlobalTable => errs.push(("left".into(), format!("a global table goes on the right: swap `left` ({:?}) and `right` ({:?})", name(l), name(r)))),
            None if flow(r) == Flow::GlobalTable => errs.push(("left".into(), format!("a global table is joined from a stream; {:?} is not one", name(l)))),
            None if flow(l).is_table() && flow(r) == Flow::Stream => errs.push(("left".into(), format!("the stream goes on the left of a stream–table join: swap `left` ({:?}) and `right` ({:?})", name(l), name(r)))),
            _ => {}
        }
        let shape = graph::join_shape(sources, flows, st);
        if let Some(k) = &j.key
            && shape != Some(JoinShape::StreamGlobalTable)
        {
            errs.push(("key".into(), format!("`key` ({k:?}) chooses what a stream record looks up in a global table; other joins match records by their keys")));
        }
        if let Some(fk) = &j.foreign_key
            && !matches!(shape, Some(JoinShape::ForeignKey(_)))
        {
            errs.push(("foreign_key".into(), format!("`foreign_key` ({fk:?}) joins two tables, each left row with the right row its value names; {:?} and {:?} are not two tables", name(l), name(r))));
        }
        if matches!(
            shape,
            Some(JoinShape::StreamTable | JoinShape::TableTable | JoinShape::ForeignKey(_))
        ) {
            let tables: &[(&str, &Port)] = if shape != Some(JoinShape::StreamTable) {
                &[("left", l), ("right", r)]
            } else {
                &[("right", r)]
            };
            for (side, p) in tables {
                let stored = match p.node {
                    NodeId::Source(s) => sources[s].topics.single().is_some(),
                    NodeId::Step(k) => {
                        matches!(steps[k].op, Op::ToTable { .. })
                            || steps[k].op.aggregation().is_some()
                    }
                };
                if !stored {
                    errs.push(((*side).into(), format!("{:?} is a table eddy does not keep in a store (a table source reads one topic; a join's result is not stored); join a table source, a to_table step or an aggregation", name(p))));
                }
            }
        }
        for (field, why) in errs {
            self.err(at, format!("steps[{i}].{field}"), why);
        }
    }

    /// A versioned table is looked up as of each record's time: only the
    /// right side of stream–table joins reads it.
    pub(super) fn versioned_readers(
        &mut self,
        spec: &SpecFile,
        sources: &[Source],
        steps: &[Step],
        sinks: &[Sink],
        flows: &[Flow],
    ) {
        for (i, src) in sources
            .iter()
            .enumerate()
            .filter(|(_, s)| s.history.is_some())
        {
            let n = NodeId::Source(i);
            let looked_up = |s: &Step| {
                s.op.join().is_some()
                    && s.inputs.get(1).is_some_and(|p| p.node == n)
                    && graph::join_shape(sources, flows, s) == Some(JoinShape::StreamTable)
            };
            let wrong = steps
                .iter()
                .any(|s| s.inputs.iter().any(|p| p.node == n) && !looked_up(s))
                || sinks.iter().any(|s| s.inputs.iter().any(|p| p.node == n));
            if wrong {
                self.err(&spec.sources[i], format!("sources[{i}].history"), format!("{:?} is a versioned table (`history`): only stream–table joins read it, as their `right`, looking rows up as of each record's time; remove `history` to process its changes", src.name));
            }
        }
    }

    /// A global table is only looked up: the right side of joins.
    pub(super) fn global_readers(
        &mut self,
        spec: &SpecFile,
        sources: &[Source],
        steps: &[Step],
        sinks: &[Sink],
    ) {
        for (i, src) in sources.iter().enumerate().filter(|(_, s)| s.global) {
            let n = NodeId::Source(i);
            let looked_up = |s: &Step| {
                s.op.join().is_some()
                    && s.inputs.get(1).is_some_and(|p| p.node == n)
                    && s.inputs.first().is_some_and(|p| p.node != n)
            };
            let wrong = steps
                .iter()
                .any(|s| s.inputs.iter().any(|p| p.node == n) && !looked_up(s))
                || sinks.iter().any(|s| s.inputs.iter().any(|p| p.node == n));
            if wrong {
                self.err(&spec.sources[i], format!("sources[{i}].as"), format!("{:?} is a global table: only a join looks it up, as its `right`; read the topic with as = \"table\" to process its changes", src.name));
            }
        }
    }
}
