//! A text picture of the topology, in the spirit of `Topology#describe()`.

use super::{Op, Step, SubInput, SubOutput, Topology, WindowKind};
use std::fmt::Write;

/// Describes each sub-topology: its source, steps and sinks with their links.
pub fn describe(t: &Topology) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Topologies (application: {}):", t.application_id);
    for sub in &t.subtopologies {
        let _ = writeln!(s, "   Sub-topology: {}", sub.id);
        let (source, topics) = match &sub.input {
            SubInput::Sources => {
                let topics: Vec<String> = t
                    .sources
                    .iter()
                    .map(|x| {
                        if x.table {
                            format!("{} as table", x.topic)
                        } else {
                            x.topic.clone()
                        }
                    })
                    .collect();
                ("SOURCE".to_string(), topics.join(", "))
            }
            SubInput::Repartition(topic) => {
                (format!("REPARTITION-SOURCE-{}", sub.id), topic.clone())
            }
        };
        let steps = &t.steps[sub.steps.clone()];
        let sinks = |branch: Option<usize>| match &sub.output {
            SubOutput::Sinks => sinks_list(t, branch),
            SubOutput::Repartition(_) => format!("REPARTITION-SINK-{}", sub.id),
        };
        let first = steps
            .first()
            .map_or_else(|| sinks(None), |st| st.name.clone());
        let _ = writeln!(s, "    Source: {source} (topics: [{topics}])");
        let _ = writeln!(s, "      --> {first}");
        for (i, st) in steps.iter().enumerate() {
            let prev = if i == 0 {
                source.clone()
            } else {
                steps[i - 1].name.clone()
            };
            let next = steps
                .get(i + 1)
                .map_or_else(|| sinks(None), |n| n.name.clone());
            let _ = writeln!(s, "    Processor: {} ({})", st.name, what(st));
            if st.branches.is_empty() {
                let _ = writeln!(s, "      --> {next}");
            } else {
                for (b, name) in st.branches.iter().enumerate() {
                    let _ = writeln!(s, "      --> {} (branch {name})", sinks(Some(b)));
                }
            }
            let _ = writeln!(s, "      <-- {prev}");
        }
        let last = steps.last().map_or(source, |st| st.name.clone());
        match &sub.output {
            SubOutput::Repartition(topic) => {
                let _ = writeln!(s, "    Sink: REPARTITION-SINK-{} (topic: {topic})", sub.id);
                let _ = writeln!(s, "      <-- {last}");
            }
            SubOutput::Sinks => {
                for (i, sk) in t.sinks.iter().enumerate() {
                    let _ = writeln!(s, "    Sink: SINK-{i} (topic: {})", sk.topic);
                    let _ = writeln!(s, "      <-- {last}");
                }
            }
        }
    }
    s
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

fn sinks_list(t: &Topology, branch: Option<usize>) -> String {
    let names: Vec<String> = t
        .sinks
        .iter()
        .enumerate()
        .filter(|(_, sk)| branch.is_none() || sk.branch == branch)
        .map(|(i, _)| format!("SINK-{i}"))
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The topology as JSON: sources, steps, sinks and sub-topologies.
pub fn to_json(t: &Topology) -> serde_json::Value {
    let subs: Vec<serde_json::Value> = t
        .subtopologies
        .iter()
        .map(|sub| {
            let input = match &sub.input {
                SubInput::Sources => serde_json::json!({ "sources": t.source_topics() }),
                SubInput::Repartition(topic) => serde_json::json!({ "repartition": topic }),
            };
            let output = match &sub.output {
                SubOutput::Sinks => serde_json::json!({ "sinks": t.sinks.iter().map(|s| &s.topic).collect::<Vec<_>>() }),
                SubOutput::Repartition(topic) => serde_json::json!({ "repartition": topic }),
            };
            serde_json::json!({
                "id": sub.id,
                "input": input,
                "steps": t.steps[sub.steps.clone()].iter().map(|s| &s.name).collect::<Vec<_>>(),
                "output": output,
            })
        })
        .collect();
    serde_json::json!({
        "application_id": t.application_id,
        "sources": t.sources.iter().map(|s| serde_json::json!({ "topic": s.topic, "table": s.table })).collect::<Vec<_>>(),
        "steps": t.steps.iter().map(|s| serde_json::json!({
            "name": s.name,
            "op": s.op.name(),
            "component": s.component.as_ref().map(|c| c.display().to_string()),
            "store": s.op.aggregation().map(|a| a.store.clone()),
        })).collect::<Vec<_>>(),
        "sinks": t.sinks.iter().map(|s| &s.topic).collect::<Vec<_>>(),
        "subtopologies": subs,
    })
}

/// The topology as a Graphviz DOT graph: topics as ellipses, steps as boxes.
pub fn to_dot(t: &Topology) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", q(&t.application_id));
    let _ = writeln!(out, "  rankdir=LR;");
    for sub in &t.subtopologies {
        let inputs: Vec<String> = match &sub.input {
            SubInput::Sources => t.source_topics(),
            SubInput::Repartition(topic) => vec![topic.clone()],
        };
        let steps = &t.steps[sub.steps.clone()];
        let mut prev: Vec<String> = inputs
            .iter()
            .map(|topic| format!("topic:{topic}"))
            .collect();
        for topic in &inputs {
            let _ = writeln!(
                out,
                "  {} [label={}, shape=ellipse];",
                q(&format!("topic:{topic}")),
                q(topic)
            );
        }
        for st in steps {
            let id = format!("step:{}", st.name);
            let _ = writeln!(
                out,
                "  {} [label={}, shape=box];",
                q(&id),
                q(&format!("{}\n{}", st.name, st.op.name()))
            );
            for p in &prev {
                let _ = writeln!(out, "  {} -> {};", q(p), q(&id));
            }
            prev = vec![id];
        }
        let outputs: Vec<String> = match &sub.output {
            SubOutput::Sinks => t.sinks.iter().map(|s| s.topic.clone()).collect(),
            SubOutput::Repartition(topic) => vec![topic.clone()],
        };
        for topic in &outputs {
            let id = format!("topic:{topic}");
            let _ = writeln!(out, "  {} [label={}, shape=ellipse];", q(&id), q(topic));
            for p in &prev {
                let _ = writeln!(out, "  {} -> {};", q(p), q(&id));
            }
        }
    }
    out.push_str("}\n");
    out
}
