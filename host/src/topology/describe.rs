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
