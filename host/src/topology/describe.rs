//! A text picture of the topology, in the spirit of `Topology#describe()`.

use super::Topology;
use std::fmt::Write;

/// Describes sources, steps and sinks with their links.
pub fn describe(t: &Topology) -> String {
    let mut s = String::new();
    let source = "SOURCE";
    let sink_name = |i: usize| format!("SINK-{i}");
    let first = t
        .steps
        .first()
        .map_or_else(|| sinks_list(t, None), |st| st.name.clone());
    let _ = writeln!(s, "Topologies:");
    let _ = writeln!(s, "   Sub-topology: 0 (application: {})", t.application_id);
    let _ = writeln!(
        s,
        "    Source: {source} (topics: [{}])",
        t.sources.join(", ")
    );
    let _ = writeln!(s, "      --> {first}");
    for (i, st) in t.steps.iter().enumerate() {
        let prev = if i == 0 {
            source.to_string()
        } else {
            t.steps[i - 1].name.clone()
        };
        let next = match t.steps.get(i + 1) {
            Some(n) => n.name.clone(),
            None => sinks_list(t, None),
        };
        let file = st.component.file_name().map_or_else(
            || st.component.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        let _ = writeln!(
            s,
            "    Processor: {} (component: {file}, interface: {})",
            st.name,
            st.interface.name()
        );
        if st.branches.is_empty() {
            let _ = writeln!(s, "      --> {next}");
        } else {
            for (b, name) in st.branches.iter().enumerate() {
                let _ = writeln!(s, "      --> {} (branch {name})", sinks_list(t, Some(b)));
            }
        }
        let _ = writeln!(s, "      <-- {prev}");
    }
    let last = t
        .steps
        .last()
        .map_or(source.to_string(), |st| st.name.clone());
    for (i, sk) in t.sinks.iter().enumerate() {
        let _ = writeln!(s, "    Sink: {} (topic: {})", sink_name(i), sk.topic);
        let _ = writeln!(s, "      <-- {last}");
    }
    s
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
