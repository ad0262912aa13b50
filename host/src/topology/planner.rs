//! Cutting the validated graph into the [`Plan`]: which steps repartition,
//! which nodes run together, the stores and internal topics, and each
//! sub-topology's nodes in execution order.

use super::graph::{self, NodeId, Port};
use super::plan::{
    LocalPort, NodeKind, Plan, PlanNode, Repartition, StorePlan, StoreRole, SubInput, SubTopology,
};
use super::{FkPart, JoinShape, Op, Sink, Source, Step, WindowKind};

/// Whether step `k` groups and writes a repartition topic, for each step:
/// a `group_by` always, a `group_by_key` after a step that may have
/// changed keys.
fn cuts(steps: &[Step], order: &[usize]) -> Vec<bool> {
    let changed = graph::keys_changed(steps, order);
    steps
        .iter()
        .map(|s| match &s.op {
            Op::GroupBy { .. } => true,
            Op::GroupByKey => s.inputs.iter().any(|p| match p.node {
                NodeId::Step(j) => changed[j],
                NodeId::Source(_) => false,
            }),
            _ => false,
        })
        .collect()
}

/// Union-find over the nodes (sources, then steps).
struct Parts(Vec<usize>);

impl Parts {
    fn root(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }

    fn join(&mut self, a: usize, b: usize) {
        let (a, b) = (self.root(a), self.root(b));
        // The smaller index is the root: a part's root is its first node.
        if a < b {
            self.0[b] = a;
        } else {
            self.0[a] = b;
        }
    }
}

/// Plans a validated graph (no cycle, every input known).
pub fn plan(application_id: &str, sources: &[Source], steps: &[Step], sinks: &[Sink]) -> Plan {
    let order = graph::step_order(steps).unwrap_or_else(|_| (0..steps.len()).collect());
    let flows = graph::flows(sources, steps, &order);
    let cut = cuts(steps, &order);
    // A join side whose keys may have changed is repartitioned by its key.
    let changed = graph::keys_changed(steps, &order);
    let side_cut: Vec<[bool; 2]> = steps
        .iter()
        .map(|s| {
            let cut_side = |i: usize| {
                s.op.join().is_some()
                    && s.inputs.get(i).is_some_and(|p| {
                        matches!(p.node, NodeId::Step(j) if changed[j])
                            && !graph::port_flow(sources, &flows, *p).is_table()
                    })
            };
            [cut_side(0), cut_side(1)]
        })
        .collect();
    let ns = sources.len();
    let ord = |n: NodeId| match n {
        NodeId::Source(i) => i,
        NodeId::Step(k) => ns + k,
    };
    // A foreign-key join's right table answers from its own sub-topology.
    let fk: Vec<bool> = steps
        .iter()
        .map(|s| {
            matches!(
                graph::join_shape(sources, &flows, s),
                Some(JoinShape::ForeignKey(_))
            )
        })
        .collect();
    let mut parts = Parts((0..ns + steps.len()).collect());
    let mut group_readers: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (k, s) in steps.iter().enumerate() {
        for (i, p) in s.inputs.iter().enumerate() {
            match p.node {
                NodeId::Step(g) if cut[g] => group_readers[g].push(k),
                _ if side_cut[k].get(i) == Some(&true) => {}
                _ if fk[k] && i == 1 => {}
                // A global table belongs to no sub-topology.
                NodeId::Source(src) if sources[src].global => {}
                n => parts.join(ord(n), ns + k),
            }
        }
    }
    // The readers of one repartition topic run in one sub-topology.
    for readers in &group_readers {
        for w in readers.windows(2) {
            parts.join(ns + w[0], ns + w[1]);
        }
    }
    for s in sinks {
        for w in s.inputs.windows(2) {
            parts.join(ord(w[0].node), ord(w[1].node));
        }
    }
    let global = |i: usize| i < ns && sources[i].global;
    let mut roots: Vec<usize> = (0..ns + steps.len()).map(|i| parts.root(i)).collect();
    let mut firsts: Vec<usize> = (0..roots.len())
        .filter(|&i| !global(i))
        .map(|i| roots[i])
        .collect();
    firsts.sort_unstable();
    firsts.dedup();
    for (i, r) in roots.iter_mut().enumerate() {
        *r = if global(i) {
            usize::MAX
        } else {
            firsts.binary_search(r).expect("a root")
        };
    }
    let sub_of = |n: NodeId| roots[ord(n)];

    let mut repartitions = Vec::new();
    let mut repartition_of = vec![None; steps.len()];
    for (g, readers) in group_readers.iter().enumerate() {
        if !cut[g] {
            continue;
        }
        repartition_of[g] = Some(repartitions.len());
        repartitions.push(Repartition {
            topic: format!("{application_id}-{}-repartition", steps[g].name),
            step: g,
            name: steps[g].name.clone(),
            from: sub_of(NodeId::Step(g)),
            to: readers.first().map_or(0, |&k| sub_of(NodeId::Step(k))),
            table: flows[g].is_table(),
            by_value: false,
        });
    }
    // (join, side, port) of each join side's repartition topic, by index.
    let mut side_reps: Vec<(usize, usize, Port)> = Vec::new();
    let mut side_rep_of = vec![[None; 2]; steps.len()];
    for (k, sides) in side_cut.iter().enumerate() {
        for (i, side) in ["left", "right"].iter().enumerate() {
            if !sides[i] {
                continue;
            }
            let p = steps[k].inputs[i];
            let name = format!("{}-{side}", steps[k].name);
            side_rep_of[k][i] = Some(repartitions.len());
            side_reps.push((k, i, p));
            repartitions.push(Repartition {
                topic: format!("{application_id}-{name}-repartition"),
                step: k,
                name,
                from: sub_of(p.node),
                to: sub_of(NodeId::Step(k)),
                table: false,
                by_value: false,
            });
        }
    }

    // Each foreign-key join's subscription and answer topics.
    let mut fk_reps = vec![None; steps.len()];
    for (k, s) in steps.iter().enumerate().filter(|(k, _)| fk[*k]) {
        let (a, b) = (sub_of(s.inputs[0].node), sub_of(s.inputs[1].node));
        fk_reps[k] = Some((repartitions.len(), repartitions.len() + 1));
        for (what, from, to) in [("subscription", a, b), ("response", b, a)] {
            let name = format!("{}-{what}", s.name);
            repartitions.push(Repartition {
                topic: format!("{application_id}-{name}-repartition"),
                step: k,
                name,
                from,
                to,
                table: false,
                by_value: what == "response",
            });
        }
    }

    let mut subs: Vec<SubTopology> = (0..firsts.len())
        .map(|id| SubTopology {
            id,
            inputs: Vec::new(),
            nodes: Vec::new(),
            stores: Vec::new(),
        })
        .collect();
    let mut stores: Vec<StorePlan> = Vec::new();
    // Local node index of each graph node, and of each repartition source.
    let mut local = vec![usize::MAX; ns + steps.len()];
    let mut rep_local = vec![usize::MAX; repartitions.len()];
    // Stores whose names say what they hold: `source-<topic>` of a
    // versioned table, and a stream–stream join's own stores.
    let versioned_store = |name: &str| {
        sources.iter().find_map(|s| {
            let topic = s.topics.single()?;
            (name == format!("source-{topic}"))
                .then_some(s.history)
                .flatten()
        })
    };
    let join_buffers: Vec<String> = (steps.iter())
        .filter_map(|s| Some((s, s.op.join()?)))
        .flat_map(|(s, j)| {
            match graph::join_shape(sources, &flows, s) {
                Some(JoinShape::StreamStream) => vec!["left", "right", "outer"],
                Some(JoinShape::ForeignKey(_)) => vec!["subscriptions"],
                _ => Vec::new(),
            }
            .into_iter()
            .map(|x| format!("{}-{x}", j.store))
        })
        .collect();
    let mut add_store = |sub: &mut SubTopology, name: &str, windowed: bool, scanned: bool| {
        // A join's own stores and versioned tables are marked below.
        let role = if let Some(history) = versioned_store(name) {
            StoreRole::Versioned { history }
        } else if join_buffers.iter().any(|b| b == name) {
            StoreRole::JoinBuffer
        } else {
            StoreRole::Plain
        };
        stores.push(StorePlan {
            name: name.to_string(),
            role,
            windowed,
            scanned,
            sub: sub.id,
        });
        sub.stores.push(stores.len() - 1);
        sub.stores.len() - 1
    };
    let readers_of = |n: NodeId| {
        steps
            .iter()
            .filter(move |s| s.inputs.iter().any(|p| p.node == n))
    };
    for (i, src) in sources.iter().enumerate() {
        if src.global {
            continue;
        }
        let sub = &mut subs[sub_of(NodeId::Source(i))];
        // Groupings need a table's old values; joins look rows up.
        let grouped =
            readers_of(NodeId::Source(i)).any(|s| s.op.is_grouping() || s.op.join().is_some());
        let kind = match src.topics.single() {
            Some(topic) if src.table && grouped => NodeKind::TableSource {
                source: i,
                // A versioned table's versions are read in key ranges.
                store: add_store(
                    sub,
                    &format!("source-{topic}"),
                    false,
                    src.history.is_some(),
                ),
            },
            _ => NodeKind::Source(i),
        };
        local[i] = sub.nodes.len();
        sub.inputs.push((SubInput::Source(i), sub.nodes.len()));
        sub.nodes.push(PlanNode {
            kind,
            inputs: Vec::new(),
            table: src.table,
        });
    }
    let port_flow = |p: &Port| graph::port_flow(sources, &flows, *p);
    for &k in &order {
        let s = &steps[k];
        let sub = &mut subs[sub_of(NodeId::Step(k))];
        let mut inputs = Vec::new();
        for (i, p) in s.inputs.iter().enumerate() {
            let node = match p.node {
                _ if side_rep_of[k].get(i).is_some_and(Option::is_some) => {
                    let r = side_rep_of[k][i].expect("checked");
                    rep_local[r] = sub.nodes.len();
                    sub.inputs.push((SubInput::Repartition(r), sub.nodes.len()));
                    sub.nodes.push(PlanNode {
                        kind: NodeKind::RepartitionSource(r),
                        inputs: Vec::new(),
                        table: false,
                    });
                    rep_local[r]
                }
                NodeId::Step(g) if cut[g] => {
                    let r = repartition_of[g].expect("a cut grouping");
                    if rep_local[r] == usize::MAX {
                        rep_local[r] = sub.nodes.len();
                        sub.inputs.push((SubInput::Repartition(r), sub.nodes.len()));
                        sub.nodes.push(PlanNode {
                            kind: NodeKind::RepartitionSource(r),
                            inputs: Vec::new(),
                            table: repartitions[r].table,
                        });
                    }
                    rep_local[r]
                }
                NodeId::Source(src) if sources[src].global => continue,
                n => local[ord(n)],
            };
            // A repartition source's records are the whole topic's.
            let branch = if side_rep_of[k].get(i).is_some_and(Option::is_some) {
                None
            } else {
                p.branch
            };
            inputs.push(LocalPort { node, branch });
        }
        if let (Op::Join(j), Some((reg, resp))) = (&s.op, fk_reps[k]) {
            let (a, b) = (sub_of(NodeId::Step(k)), sub_of(s.inputs[1].node));
            let table_store = |sub: &SubTopology, p: &LocalPort| match &sub.nodes[p.node].kind {
                NodeKind::TableSource { store, .. } => Some(*store),
                NodeKind::Step { store, .. } => *store,
                _ => None,
            };
            let left = table_store(&subs[a], &inputs[0]);
            let right = table_store(&subs[b], &inputs[1]);
            let port = |node| LocalPort { node, branch: None };
            let node = |sub: &mut SubTopology, kind, inputs, table| {
                sub.nodes.push(PlanNode {
                    kind,
                    inputs,
                    table,
                });
                sub.nodes.len() - 1
            };
            let fk = |part, own, tables| NodeKind::Join {
                step: k,
                shape: JoinShape::ForeignKey(part),
                own,
                tables,
            };
            // The left table's changes subscribe.
            let sa = &mut subs[a];
            let subscribe = fk(FkPart::Subscribe, Vec::new(), [left, None]);
            let at = node(sa, subscribe, vec![inputs[0]], true);
            node(sa, NodeKind::ToRepartition(reg), vec![port(at)], false);
            // The right table's sub-topology keeps and answers them.
            let sb = &mut subs[b];
            let entry = node(sb, NodeKind::RepartitionSource(reg), Vec::new(), false);
            sb.inputs.push((SubInput::Repartition(reg), entry));
            let own = vec![add_store(
                sb,
                &format!("{}-subscriptions", j.store),
                false,
                true,
            )];
            let at = node(
                sb,
                fk(FkPart::Answer, own, [None, right]),
                vec![port(entry), inputs[1]],
                false,
            );
            node(sb, NodeKind::ToRepartition(resp), vec![port(at)], false);
            // The answers come back to the left table's sub-topology.
            let sa = &mut subs[a];
            let entry = node(sa, NodeKind::RepartitionSource(resp), Vec::new(), false);
            sa.inputs.push((SubInput::Repartition(resp), entry));
            // Old results need the results kept (a grouping reads the join).
            let own = if graph::old_values_read(steps, k) {
                vec![add_store(sa, &format!("{}-result", j.store), false, false)]
            } else {
                Vec::new()
            };
            local[ns + k] = node(
                sa,
                fk(FkPart::Result, own, [left, None]),
                vec![port(entry)],
                true,
            );
            continue;
        }
        if let Op::Join(j) = &s.op
            && let Some(shape) = graph::join_shape(sources, &flows, s)
        {
            let own = shape
                .own_stores(j.kind)
                .into_iter()
                .map(|(suffix, windowed, scanned)| {
                    add_store(sub, &format!("{}-{suffix}", j.store), windowed, scanned)
                })
                .collect();
            let table_store = |p: &LocalPort| match &sub.nodes[p.node].kind {
                NodeKind::TableSource { store, .. } => Some(*store),
                NodeKind::Step { store, .. } => *store,
                _ => None,
            };
            let tables = [
                inputs.first().and_then(table_store),
                inputs.get(1).and_then(table_store),
            ];
            local[ns + k] = sub.nodes.len();
            sub.nodes.push(PlanNode {
                kind: NodeKind::Join {
                    step: k,
                    shape,
                    own,
                    tables,
                },
                inputs,
                table: shape == JoinShape::TableTable,
            });
            continue;
        }
        let store = match &s.op {
            Op::ToTable { store } => Some(add_store(sub, store, false, false)),
            op => op.aggregation().map(|a| {
                let windowed = a.window.is_some();
                let scanned = a.window.is_some_and(|w| {
                    matches!(
                        w.kind,
                        WindowKind::Sliding { .. } | WindowKind::Session { .. }
                    )
                });
                add_store(sub, &a.store, windowed, scanned)
            }),
        };
        let table = s.inputs.first().is_some_and(|p| port_flow(p).is_table());
        local[ns + k] = sub.nodes.len();
        sub.nodes.push(PlanNode {
            kind: NodeKind::Step { step: k, store },
            inputs,
            table,
        });
        if let Some(r) = repartition_of[k] {
            let from = sub.nodes.len() - 1;
            sub.nodes.push(PlanNode {
                kind: NodeKind::ToRepartition(r),
                inputs: vec![LocalPort {
                    node: from,
                    branch: None,
                }],
                table,
            });
        }
        // Join sides reading this step through a repartition topic.
        let from = local[ns + k];
        for (r, (_, _, p)) in side_reps.iter().enumerate() {
            if p.node == NodeId::Step(k) {
                let r = repartitions.len() - side_reps.len() + r;
                sub.nodes.push(PlanNode {
                    kind: NodeKind::ToRepartition(r),
                    inputs: vec![LocalPort {
                        node: from,
                        branch: p.branch,
                    }],
                    table: false,
                });
            }
        }
    }
    // Sinks reading the same single port share one output node.
    let mut done = vec![false; sinks.len()];
    for (i, sink) in sinks.iter().enumerate() {
        if done[i] || sink.inputs.is_empty() {
            continue;
        }
        let mut group = vec![i];
        if sink.inputs.len() == 1 {
            for (j, other) in sinks.iter().enumerate().skip(i + 1) {
                if other.inputs == sink.inputs {
                    group.push(j);
                }
            }
        }
        for &j in &group {
            done[j] = true;
        }
        let sub = &mut subs[sub_of(sink.inputs[0].node)];
        let inputs = sink
            .inputs
            .iter()
            .map(|p| LocalPort {
                node: local[ord(p.node)],
                branch: p.branch,
            })
            .collect();
        sub.nodes.push(PlanNode {
            kind: NodeKind::ToSinks(group),
            inputs,
            table: sink.inputs.iter().all(|p| port_flow(p).is_table()),
        });
    }
    Plan {
        source_sub: (0..ns).map(|i| sub_of(NodeId::Source(i))).collect(),
        subtopologies: subs,
        stores,
        repartitions,
    }
}
