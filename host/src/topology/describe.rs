//! Pictures of the plan: text in the spirit of `Topology#describe()`, JSON
//! for the admin API, and Graphviz DOT.

use super::{
    FkPart, JoinShape, Joiner, NodeKind, Op, PlanNode, Step, SubTopology, Topics, Topology,
    WindowKind,
};
use std::fmt::Write;

/// Describes each sub-topology: its sources, processors and sinks, each
/// with the nodes it feeds (`-->`) and reads (`<--`).
pub fn describe(t: &Topology) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Topologies (application: {}):", t.application_id);
    for sub in &t.plan.subtopologies {
        let _ = writeln!(s, "   Sub-topology: {}", sub.id);
        for (k, n) in sub.nodes.iter().enumerate() {
            match &n.kind {
                NodeKind::Source(i) | NodeKind::TableSource { source: i, .. } => {
                    let src = &t.sources[*i];
                    let mut what = match &src.topics {
                        Topics::Names(names) => format!("topics: [{}]", names.join(", ")),
                        Topics::Pattern(p) => format!("pattern: {p}"),
                    };
                    if src.table {
                        what.push_str(", table");
                    }
                    if let NodeKind::TableSource { store, .. } = n.kind {
                        let _ = write!(what, ", store: {}", t.plan.stores[sub.stores[store]].name);
                    }
                    let _ = writeln!(s, "    Source: {} ({what})", src.name);
                }
                NodeKind::RepartitionSource(r) => {
                    let _ = writeln!(
                        s,
                        "    Source: {} (topics: [{}])",
                        node_name(t, sub, k),
                        t.plan.repartitions[*r].topic
                    );
                }
                NodeKind::Step { step, .. } | NodeKind::Join { step, .. } => {
                    let st = &t.steps[*step];
                    let name = node_name(t, sub, k);
                    let _ = writeln!(s, "    Processor: {name} ({})", what(st));
                }
                NodeKind::ToRepartition(r) => {
                    let _ = writeln!(
                        s,
                        "    Sink: {} (topic: {})",
                        node_name(t, sub, k),
                        t.plan.repartitions[*r].topic
                    );
                }
                NodeKind::ToSinks(sinks) => {
                    for &i in sinks {
                        let _ = writeln!(s, "    Sink: SINK-{i} (topic: {})", t.sinks[i].topic);
                        inputs(&mut s, t, sub, n);
                    }
                    continue;
                }
            }
            for (reader, branch) in readers(sub, k) {
                let b = branch
                    .map(|b| format!(" (branch {})", branch_name(t, n, b)))
                    .unwrap_or_default();
                let _ = writeln!(s, "      --> {}{b}", node_name(t, sub, reader));
            }
            inputs(&mut s, t, sub, n);
        }
    }
    s
}

/// The `<--` lines of node `n`.
fn inputs(s: &mut String, t: &Topology, sub: &SubTopology, n: &PlanNode) {
    for p in &n.inputs {
        let from = &sub.nodes[p.node];
        let b = p
            .branch
            .map(|b| format!(".{}", branch_name(t, from, b)))
            .unwrap_or_default();
        let _ = writeln!(s, "      <-- {}{b}", node_name(t, sub, p.node));
    }
}

/// The nodes reading node `k`, with the branch they read.
fn readers(sub: &SubTopology, k: usize) -> Vec<(usize, Option<usize>)> {
    let mut out = Vec::new();
    for (j, n) in sub.nodes.iter().enumerate() {
        for p in n.inputs.iter().filter(|p| p.node == k) {
            out.push((j, p.branch));
        }
    }
    out.sort_by_key(|&(j, b)| (b, j));
    out
}

fn branch_name<'t>(t: &'t Topology, n: &PlanNode, b: usize) -> &'t str {
    match n.kind {
        NodeKind::Step { step, .. } | NodeKind::Join { step, .. } => &t.steps[step].branches[b],
        _ => "?",
    }
}

/// A plan node's name in the pictures.
fn node_name(t: &Topology, sub: &SubTopology, k: usize) -> String {
    match &sub.nodes[k].kind {
        NodeKind::Source(i) | NodeKind::TableSource { source: i, .. } => t.sources[*i].name.clone(),
        NodeKind::RepartitionSource(r) => {
            format!("{}-repartition-source", t.plan.repartitions[*r].name)
        }
        NodeKind::Join {
            step,
            shape: JoinShape::ForeignKey(part @ (FkPart::Subscribe | FkPart::Answer)),
            ..
        } => {
            let what = if *part == FkPart::Subscribe {
                "subscribe"
            } else {
                "answer"
            };
            format!("{}-{what}", t.steps[*step].name)
        }
        NodeKind::Step { step, .. } | NodeKind::Join { step, .. } => t.steps[*step].name.clone(),
        NodeKind::ToRepartition(r) => {
            format!("{}-repartition-sink", t.plan.repartitions[*r].name)
        }
        NodeKind::ToSinks(sinks) => sinks
            .iter()
            .map(|i| format!("SINK-{i}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// What a step does, in a few words.
fn what(st: &Step) -> String {
    let file = st.component.as_ref().map(|c| {
        c.file_name().map_or_else(
            || c.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        )
    });
    let component = |f: &Option<String>| {
        f.as_ref()
            .map(|f| format!(", component: {f}, interface: {}", st.interface.name()))
            .unwrap_or_default()
    };
    match &st.op {
        Op::Process { keeps_key } => format!(
            "{}{}",
            component(&file).trim_start_matches(", "),
            if *keeps_key { ", keeps keys" } else { "" }
        ),
        Op::GroupByKey => "op: group_by_key".into(),
        Op::GroupBy { field } => format!(
            "op: group_by{}{}",
            field
                .as_ref()
                .map(|f| format!(", key: {f}"))
                .unwrap_or_default(),
            component(&file)
        ),
        Op::ToTable { store } => format!("op: to_table, store: {store}"),
        Op::Join(j) => {
            let joiner = match &j.joiner {
                Joiner::Component => component(&file).trim_start_matches(", ").to_string(),
                Joiner::Merge { into: Some(f) } => format!("joiner: merge as {f}"),
                Joiner::Merge { into: None } => "joiner: merge".into(),
                Joiner::Pair => "joiner: pair".into(),
                Joiner::Left => "joiner: left".into(),
                Joiner::Right => "joiner: right".into(),
            };
            let window = j
                .window
                .map(|w| {
                    format!(
                        ", window: before {}ms after {}ms grace {}ms",
                        w.before, w.after, w.grace
                    )
                })
                .unwrap_or_default();
            let fk = (j.foreign_key.as_ref())
                .map(|f| format!(", foreign key: {f}"))
                .unwrap_or_default();
            format!("op: join, kind: {}, {joiner}{window}{fk}", j.kind.name())
        }
        op => {
            let a = op.aggregation().expect("an aggregation");
            let window = a.window.map(|w| {
                let ms = |d: std::time::Duration| format!("{}ms", d.as_millis());
                let shape = match w.kind {
                    WindowKind::Tumbling { size } => format!("tumbling {}", ms(size)),
                    WindowKind::Hopping { size, advance } => {
                        format!("hopping {} every {}", ms(size), ms(advance))
                    }
                    WindowKind::Sliding { difference } => format!("sliding {}", ms(difference)),
                    WindowKind::Session { gap } => format!("session gap {}", ms(gap)),
                };
                format!(", window: {shape} grace {}", ms(w.grace))
            });
            let emit = match a.emit {
                crate::topology::Emit::Update => "update",
                crate::topology::Emit::Final => "final",
            };
            format!(
                "op: {}{}, store: {}{}, emit: {emit}",
                op.name(),
                component(&file),
                a.store,
                window.unwrap_or_default(),
            )
        }
    }
}

/// The topology as JSON: its nodes with what they read, and the
/// sub-topologies with their topics, nodes and stores.
pub fn to_json(t: &Topology) -> serde_json::Value {
    use serde_json::json;
    let ports = |ps: &[super::Port]| ps.iter().map(|p| t.port_name(*p)).collect::<Vec<_>>();
    let subs: Vec<serde_json::Value> = t
        .plan
        .subtopologies
        .iter()
        .map(|sub| {
            let mut sources = Vec::new();
            let mut repartitions_in = Vec::new();
            let mut sinks = Vec::new();
            let mut repartitions_out = Vec::new();
            for n in &sub.nodes {
                match &n.kind {
                    NodeKind::Source(i) | NodeKind::TableSource { source: i, .. } => {
                        match &t.sources[*i].topics {
                            Topics::Names(names) => sources.extend(names.iter().cloned()),
                            Topics::Pattern(p) => sources.push(format!("pattern:{p}")),
                        }
                    }
                    NodeKind::RepartitionSource(r) => {
                        repartitions_in.push(t.plan.repartitions[*r].topic.clone());
                    }
                    NodeKind::ToRepartition(r) => {
                        repartitions_out.push(t.plan.repartitions[*r].topic.clone());
                    }
                    NodeKind::ToSinks(list) => {
                        sinks.extend(list.iter().map(|&i| t.sinks[i].topic.clone()));
                    }
                    NodeKind::Step { .. } | NodeKind::Join { .. } => {}
                }
            }
            json!({
                "id": sub.id,
                "input": { "sources": sources, "repartitions": repartitions_in },
                "nodes": (0..sub.nodes.len()).map(|k| node_name(t, sub, k)).collect::<Vec<_>>(),
                "output": { "sinks": sinks, "repartitions": repartitions_out },
                "stores": sub.stores.iter().map(|&s| &t.plan.stores[s].name).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "application_id": t.application_id,
        "sources": t.sources.iter().map(|s| {
            let mut v = json!({ "name": s.name, "table": s.table });
            match &s.topics {
                Topics::Names(n) => v["topics"] = json!(n),
                Topics::Pattern(p) => v["pattern"] = json!(p),
            }
            v
        }).collect::<Vec<_>>(),
        "steps": t.steps.iter().map(|s| json!({
            "name": s.name,
            "op": s.op.name(),
            "from": ports(&s.inputs),
            "branches": s.branches,
            "component": s.component.as_ref().map(|c| c.display().to_string()),
            "store": match &s.op {
                Op::ToTable { store } => Some(store.clone()),
                op => op.aggregation().map(|a| a.store.clone()),
            },
        })).collect::<Vec<_>>(),
        "sinks": t.sinks.iter().map(|s| json!({ "topic": s.topic, "from": ports(&s.inputs) })).collect::<Vec<_>>(),
        "subtopologies": subs,
    })
}

/// The topology as a Graphviz DOT graph: topics as ellipses, steps as
/// boxes, each sub-topology a cluster.
pub fn to_dot(t: &Topology) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::new();
    let mut topics: Vec<String> = Vec::new();
    let mut edges: Vec<(String, String, Option<String>)> = Vec::new();
    let _ = writeln!(out, "digraph {} {{", q(&t.application_id));
    let _ = writeln!(out, "  rankdir=LR;");
    for sub in &t.plan.subtopologies {
        let _ = writeln!(out, "  subgraph {} {{", q(&format!("cluster_{}", sub.id)));
        let _ = writeln!(out, "    label={};", q(&format!("sub-topology {}", sub.id)));
        // What each plan node is drawn as: topics it stands for, or a box.
        let drawn: Vec<Vec<String>> = sub
            .nodes
            .iter()
            .map(|n| match &n.kind {
                NodeKind::Source(i) | NodeKind::TableSource { source: i, .. } => {
                    match &t.sources[*i].topics {
                        Topics::Names(names) => {
                            names.iter().map(|n| format!("topic:{n}")).collect()
                        }
                        Topics::Pattern(p) => vec![format!("topic:/{p}/")],
                    }
                }
                NodeKind::RepartitionSource(r) | NodeKind::ToRepartition(r) => {
                    vec![format!("topic:{}", t.plan.repartitions[*r].topic)]
                }
                NodeKind::ToSinks(list) => list
                    .iter()
                    .map(|&i| format!("topic:{}", t.sinks[i].topic))
                    .collect(),
                NodeKind::Step { step, .. } | NodeKind::Join { step, .. } => {
                    vec![format!("step:{}", t.steps[*step].name)]
                }
            })
            .collect();
        for (k, n) in sub.nodes.iter().enumerate() {
            if let NodeKind::Step { step, .. } | NodeKind::Join { step, .. } = n.kind {
                let st = &t.steps[step];
                let _ = writeln!(
                    out,
                    "    {} [label={}, shape=box];",
                    q(&drawn[k][0]),
                    q(&format!("{}\n{}", st.name, st.op.name()))
                );
            } else {
                topics.extend(drawn[k].iter().cloned());
            }
            for p in &n.inputs {
                let label = p
                    .branch
                    .map(|b| branch_name(t, &sub.nodes[p.node], b).to_string());
                for from in &drawn[p.node] {
                    for to in &drawn[k] {
                        edges.push((from.clone(), to.clone(), label.clone()));
                    }
                }
            }
        }
        out.push_str("  }\n");
    }
    topics.sort();
    topics.dedup();
    for id in &topics {
        let label = id.trim_start_matches("topic:");
        let _ = writeln!(out, "  {} [label={}, shape=ellipse];", q(id), q(label));
    }
    for (from, to, label) in edges {
        match label {
            Some(l) => {
                let _ = writeln!(out, "  {} -> {} [label={}];", q(&from), q(&to), q(&l));
            }
            None => {
                let _ = writeln!(out, "  {} -> {};", q(&from), q(&to));
            }
        }
    }
    out.push_str("}\n");
    out
}
