use super::*;
use crate::topology::{
    Emit, ErrorPolicy, NodeId, Port, StoreKind, SubInput, TimestampSource, Topics,
};

pub(super) fn errors(text: &str) -> Vec<String> {
    match parse_with(Path::new("p.toml"), text, false) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

pub(super) fn with_steps(steps: &str) -> String {
    format!(
        "application_id = \"a\"\n[[sources]]\ntopic = \"in\"\n{steps}\n[[sinks]]\ntopic = \"out\"\n"
    )
}

#[test]
fn a_stateful_chain_lowers_to_ops_windows_and_sub_topologies() {
    let text = with_steps(
        "[[steps]]\nname = \"split\"\ncomponent = \"s.wasm\"\n\
         [[steps]]\nname = \"g\"\nop = \"group_by_key\"\n\
         [[steps]]\nname = \"c\"\nop = \"count\"\nstore = \"counts\"\nemit = \"final\"\nlate_topic = \"late\"\n\
         window = { kind = \"hopping\", size = \"10s\", advance = \"5s\", grace = \"1s\" }\n",
    );
    let t = parse_with(Path::new("p.toml"), &text, false).unwrap();
    let a = t.steps[2].op.aggregation().unwrap();
    assert_eq!(a.store, "counts");
    assert_eq!(a.emit, Emit::Final);
    assert_eq!(a.late_topic.as_deref(), Some("late"));
    assert_eq!(a.window.unwrap().grace, std::time::Duration::from_secs(1));
    assert_eq!(
        t.plan.subtopologies.len(),
        2,
        "split may change keys: repartition"
    );
    assert_eq!(t.plan.repartitions[0].topic, "a-g-repartition");
    assert_eq!(t.plan.repartitions[0].from, 0);
    assert_eq!(
        t.plan.subtopologies[1].inputs[0].0,
        SubInput::Repartition(0)
    );
    assert_eq!(t.changelog_topic("counts"), "a-counts-changelog");
}

#[test]
fn sources_and_sinks_take_error_policies_with_their_own_default_topics() {
    let text = "application_id = \"a\"\n[[sources]]\ntopic = \"in\"\ntimestamp = \"/ts\"\non_error = \"dead-letter\"\n\
                [[sinks]]\ntopic = \"out\"\non_error = \"skip\"\n\
                [[sinks]]\ntopic = \"out2\"\non_error = \"dead-letter\"\n";
    let t = parse_with(Path::new("p.toml"), text, false).unwrap();
    assert_eq!(
        t.sources[0].on_error,
        ErrorPolicy::DeadLetter("a-source-in-dead-letters".into())
    );
    assert_eq!(t.sinks[0].on_error, ErrorPolicy::Skip);
    assert_eq!(
        t.sinks[1].on_error,
        ErrorPolicy::DeadLetter("a-sink-out2-dead-letters".into())
    );
    let bad = errors(
        "application_id = \"a\"\n[[sources]]\ntopic = \"in\"\non_error = \"ignore\"\n\
         [[sinks]]\ntopic = \"out\"\non_error = \"dead-letter\"\ndead_letter_topic = \"bad topic\"\n",
    );
    assert!(
        bad.iter()
            .any(|e| e.contains("sources[0].on_error") && e.contains("\"ignore\"")),
        "{bad:?}"
    );
    assert!(
        bad.iter()
            .any(|e| e.contains("sinks[0].dead_letter_topic") && e.contains("not a legal")),
        "{bad:?}"
    );
}

#[test]
fn error_policies_default_to_fail_and_name_their_topic() {
    let t = parse_with(
        Path::new("p.toml"),
        &with_steps(
            "[[steps]]\nname = \"a\"\ncomponent = \"s.wasm\"\non_error = \"skip\"\n\
             [[steps]]\nname = \"b\"\ncomponent = \"s.wasm\"\non_error = \"dead-letter\"\n\
             [[steps]]\nname = \"c\"\ncomponent = \"s.wasm\"\non_error = \"dead-letter\"\ndead_letter_topic = \"bad\"\n\
             [[steps]]\nname = \"d\"\ncomponent = \"s.wasm\"\n",
        ),
        false,
    )
    .unwrap();
    let policies: Vec<_> = t.steps.iter().map(|s| s.on_error.clone()).collect();
    assert_eq!(
        policies,
        [
            ErrorPolicy::Skip,
            ErrorPolicy::DeadLetter("a-b-dead-letters".into()),
            ErrorPolicy::DeadLetter("bad".into()),
            ErrorPolicy::Fail,
        ]
    );
    let cases = [
        (
            "[[steps]]\nname = \"a\"\ncomponent = \"s.wasm\"\non_error = \"retry\"\n",
            "steps[0].on_error",
            "unknown policy \"retry\"",
        ),
        (
            "[[steps]]\nname = \"a\"\ncomponent = \"s.wasm\"\ndead_letter_topic = \"x\"\n",
            "steps[0].dead_letter_topic",
            "set on_error = \"dead-letter\"",
        ),
        (
            "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\non_error = \"skip\"\n",
            "steps[0].on_error",
            "applies to steps that call an operator",
        ),
        (
            "[[steps]]\nname = \"a\"\ncomponent = \"s.wasm\"\nlimits = { fuel = 0 }\n",
            "steps[0].limits.fuel",
            "must be a positive whole number",
        ),
    ];
    for (steps, key, msg) in cases {
        let errs = errors(&with_steps(steps));
        assert!(
            errs.iter().any(|e| e.contains(key) && e.contains(msg)),
            "{steps}: {errs:?}"
        );
    }
}

#[test]
fn misplaced_and_misconfigured_steps_are_named() {
    let cases = [
        (
            "[[steps]]\nname = \"c\"\nop = \"count\"\n",
            "put a step with op = \"group_by_key\"",
        ),
        (
            "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n",
            "must be followed by an aggregation",
        ),
        (
            "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"count\"\nemit = \"final\"\n",
            "needs a window",
        ),
        (
            "[[steps]]\nname = \"x\"\nop = \"explode\"\n",
            "unknown op \"explode\"",
        ),
        (
            "[[steps]]\nname = \"g\"\nop = \"group_by\"\n[[steps]]\nname = \"c\"\nop = \"count\"\n",
            "either `key`",
        ),
        (
            "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\nkey = \"/x\"\n[[steps]]\nname = \"c\"\nop = \"count\"\n",
            "`key` does not apply to op = \"group_by_key\"",
        ),
        (
            "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"count\"\nwindow = { kind = \"tumbling\" }\n",
            "needs `size`",
        ),
        (
            "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"count\"\nwindow = { kind = \"tumbling\", size = \"1m\", gap = \"1s\" }\n",
            "`gap` does not apply to a tumbling window",
        ),
        (
            "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"count\"\nwindow = { kind = \"hopping\", size = \"1m\", advance = \"2m\" }\n",
            "must not exceed `size`",
        ),
        (
            "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"aggregate\"\n",
            "needs `component`",
        ),
        (
            "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"aggregate\"\ncomponent = \"a.wasm\"\ninterface = \"processor\"\n",
            "calls the \"aggregator\" interface",
        ),
        (
            "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"count\"\n[[steps]]\nname = \"g2\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"count\"\n",
            "used twice",
        ),
    ];
    for (steps, want) in cases {
        let errs = errors(&with_steps(steps));
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "{steps}\nwant {want:?} in {errs:#?}"
        );
        assert!(errs.iter().all(|e| e.starts_with("p.toml:")), "{errs:#?}");
    }
}

#[test]
fn table_sources_and_state_settings() {
    let text = "application_id = \"a\"\n[[sources]]\ntopic = \"accounts\"\nas = \"table\"\ntimestamp = \"/ts\"\n\
                [[steps]]\nname = \"g\"\nop = \"group_by\"\nkey = \"/region\"\n[[steps]]\nname = \"c\"\nop = \"count\"\n\
                [[sinks]]\ntopic = \"out\"\n[state]\ndir = \"st\"\ncache_size = \"0\"\nstore = \"memory\"\n";
    let t = parse_with(Path::new("/x/p.toml"), text, false).unwrap();
    assert!(t.sources[0].table);
    assert_eq!(t.sources[0].timestamp, TimestampSource::Field("/ts".into()));
    assert_eq!(t.state.cache_bytes, 0);
    assert_eq!(t.state.store, StoreKind::Memory);
    assert_eq!(t.state.dir, Path::new("/x/st"));
    let windowed = text.replace(
        "op = \"count\"\n",
        "op = \"count\"\nwindow = { kind = \"tumbling\", size = \"1m\" }\n",
    );
    assert!(
        errors(&windowed)
            .iter()
            .any(|e| e.contains("cannot be windowed"))
    );
    let bad = text
        .replace("as = \"table\"", "as = \"tabel\"")
        .replace("store = \"memory\"", "store = \"disk\"");
    let errs = errors(&bad);
    assert!(
        errs.iter().any(|e| e.contains("`sources[0].as`")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("`state.store`")),
        "{errs:#?}"
    );
}

fn graph(sources: &str, steps: &str, sinks: &str) -> String {
    format!("application_id = \"a\"\n{sources}\n{steps}\n{sinks}\n")
}

const TWO_SOURCES: &str = "[[sources]]\ntopic = \"orders-a\"\n[[sources]]\ntopic = \"orders-b\"\n";

#[test]
fn steps_read_named_nodes_merge_branch_and_fan_out() {
    let text = graph(
        TWO_SOURCES,
        "[[steps]]\nname = \"parse\"\ncomponent = \"p.wasm\"\nfrom = [\"orders-a\", \"orders-b\"]\nbranches = [\"ok\", \"bad\"]\n\
         [[steps]]\nname = \"enrich\"\ncomponent = \"e.wasm\"\nfrom = \"parse.ok\"\n\
         [[steps]]\nname = \"audit\"\ncomponent = \"e.wasm\"\nfrom = \"parse.ok\"\n",
        "[[sinks]]\ntopic = \"good\"\nfrom = \"enrich\"\n\
         [[sinks]]\ntopic = \"errors\"\nfrom = \"parse.bad\"\n\
         [[sinks]]\ntopic = \"all\"\nfrom = [\"audit\", \"parse.bad\"]\n",
    );
    let t = parse_with(Path::new("p.toml"), &text, false).unwrap();
    let (a, b) = (Port::of(NodeId::Source(0)), Port::of(NodeId::Source(1)));
    assert_eq!(t.steps[0].inputs, [a, b]);
    let ok = Port {
        node: NodeId::Step(0),
        branch: Some(0),
    };
    let bad = Port {
        node: NodeId::Step(0),
        branch: Some(1),
    };
    assert_eq!(t.steps[1].inputs, [ok]);
    assert_eq!(t.steps[2].inputs, [ok]);
    assert_eq!(t.sinks[1].inputs, [bad]);
    assert_eq!(t.sinks[2].inputs, [Port::of(NodeId::Step(2)), bad]);
    assert_eq!(t.port_name(bad), "parse.bad");
    assert_eq!(t.plan.subtopologies.len(), 1);
}

#[test]
fn a_step_without_from_reads_the_step_before_and_the_first_reads_every_source() {
    let text = graph(
        TWO_SOURCES,
        "[[steps]]\nname = \"x\"\ncomponent = \"p.wasm\"\n[[steps]]\nname = \"y\"\ncomponent = \"p.wasm\"\n",
        "[[sinks]]\ntopic = \"out\"\n",
    );
    let t = parse_with(Path::new("p.toml"), &text, false).unwrap();
    assert_eq!(t.steps[0].inputs.len(), 2);
    assert_eq!(t.steps[1].inputs, [Port::of(NodeId::Step(0))]);
    assert_eq!(t.sinks[0].inputs, [Port::of(NodeId::Step(1))]);
}

#[test]
fn sources_read_lists_and_patterns_by_name() {
    let text = graph(
        "[[sources]]\nname = \"orders\"\ntopics = [\"o1\", \"o2\"]\n\
         [[sources]]\nname = \"clicks\"\npattern = \"clicks-[0-9]+\"\n",
        "[[steps]]\nname = \"m\"\ncomponent = \"p.wasm\"\nfrom = [\"orders\", \"clicks\"]\n",
        "[[sinks]]\ntopic = \"out\"\n",
    );
    let t = parse_with(Path::new("p.toml"), &text, false).unwrap();
    assert_eq!(
        t.sources[0].topics,
        Topics::Names(vec!["o1".into(), "o2".into()])
    );
    assert_eq!(t.source_of_topic("o2"), Some(0));
    assert_eq!(t.source_of_topic("clicks-17"), Some(1));
    assert_eq!(
        t.source_of_topic("clicks-17x"),
        None,
        "the whole name matches"
    );
    assert_eq!(t.source_of_topic("out"), None);
    assert_eq!(t.source_topics(), ["o1", "o2"]);
}

#[test]
fn a_pattern_never_reads_what_the_pipeline_writes() {
    let text = graph(
        "[[sources]]\nname = \"all\"\npattern = \".*\"\n",
        "[[steps]]\nname = \"g\"\nop = \"group_by\"\nkey = \"/k\"\n[[steps]]\nname = \"c\"\nop = \"count\"\n",
        "[[sinks]]\ntopic = \"out\"\non_error = \"dead-letter\"\n",
    );
    let t = parse_with(Path::new("p.toml"), &text, false).unwrap();
    for own in [
        "out",
        "a-g-repartition",
        "a-c-changelog",
        "a-sink-out-dead-letters",
    ] {
        assert_eq!(t.source_of_topic(own), None, "{own}");
    }
    assert_eq!(t.source_of_topic("anything"), Some(0));
}

#[test]
fn graph_errors_name_the_file_line_and_key() {
    let proc = |name: &str, from: &str| {
        format!("[[steps]]\nname = \"{name}\"\ncomponent = \"p.wasm\"\nfrom = {from}\n")
    };
    let sink = "[[sinks]]\ntopic = \"out\"\n";
    let one = "[[sources]]\ntopic = \"in\"\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            graph(
                one,
                &format!("{}{}", proc("a", "\"b\""), proc("b", "\"a\"")),
                &format!("{sink}from = \"b\"\n"),
            ),
            "steps[0].from",
            "cycle: a -> b -> a",
        ),
        (
            graph(one, &proc("a", "\"nope\""), sink),
            "steps[0].from",
            "no node named \"nope\"",
        ),
        (
            graph(
                one,
                &format!("{}branches = [\"x\", \"y\"]\n", proc("a", "\"in\"")),
                &format!("{sink}from = \"a.z\"\n"),
            ),
            "sinks[0].from",
            "no branch \"z\"",
        ),
        (
            graph(
                one,
                &format!("{}branches = [\"x\", \"x\"]\n", proc("a", "\"in\"")),
                &format!("{sink}from = \"a.x\"\n"),
            ),
            "steps[0].branches",
            "\"x\" is used twice",
        ),
        (
            graph(TWO_SOURCES, &proc("a", "\"orders-a\""), sink),
            "sources[1]",
            "\"orders-b\" is read by no step or sink",
        ),
        (
            graph(
                one,
                &format!("{}{}", proc("a", "\"in\""), proc("b", "\"in\"")),
                &format!("{sink}from = \"b\"\n"),
            ),
            "steps[0]",
            "the output of \"a\" goes nowhere",
        ),
        (
            graph(
                one,
                &format!("{}branches = [\"x\", \"y\"]\n", proc("a", "\"in\"")),
                &format!("{sink}from = \"a.x\"\n"),
            ),
            "steps[0].branches",
            "branch \"y\" feeds no sink or step",
        ),
        (
            graph(one, &proc("a", "\"in\""), &format!("{sink}from = []\n")),
            "sinks[0].from",
            "names nothing",
        ),
        (
            graph(
                one,
                &format!("{}branches = [\"x\", \"y\"]\n", proc("a", "\"in\"")),
                &format!("{sink}from = \"a\"\n"),
            ),
            "sinks[0].from",
            "read one of its branches: \"a.x\", \"a.y\"",
        ),
        (
            graph(
                one,
                &format!(
                    "{}branches = [\"x\", \"y\"]\n[[steps]]\nname = \"b\"\ncomponent = \"p.wasm\"\n",
                    proc("a", "\"in\"")
                ),
                sink,
            ),
            "steps[1].from",
            "the step before, \"a\" branches",
        ),
        (
            graph(
                "[[sources]]\ntopic = \"t\"\nas = \"table\"\n[[sources]]\ntopic = \"s\"\n",
                &proc("m", "[\"t\", \"s\"]"),
                sink,
            ),
            "steps[0].from",
            "merging needs streams",
        ),
        (
            graph(
                "[[sources]]\nname = \"x\"\ntopics = [\"p\", \"q\"]\n[[sources]]\nname = \"x\"\ntopic = \"r\"\n",
                &proc("m", "[\"x\"]"),
                sink,
            ),
            "sources[1].name",
            "another source is named \"x\"",
        ),
        (
            graph("[[sources]]\ntopics = [\"p\", \"q\"]\n", "", sink),
            "sources[0].name",
            "needs a `name`",
        ),
        (
            graph("[[sources]]\nname = \"p\"\npattern = \"(\"\n", "", sink),
            "sources[0].pattern",
            "not a regular expression",
        ),
        (
            graph(
                "[[sources]]\nname = \"p\"\ntopic = \"a\"\npattern = \"b\"\n",
                "",
                sink,
            ),
            "sources[0]",
            "both `topic` and `pattern`",
        ),
        (
            graph(one, &proc("in", "\"in\""), sink),
            "steps[0].name",
            "\"in\" names a source too",
        ),
    ];
    for (text, key, want) in cases {
        let errs = errors(&text);
        assert!(
            errs.iter()
                .any(|e| e.contains(&format!("`{key}`")) && e.contains(want)),
            "{text}\nwant `{key}` and {want:?} in {errs:#?}"
        );
        assert!(
            errs.iter()
                .all(|e| e.starts_with("p.toml:") && !e.starts_with("p.toml:1:")),
            "every error has its line: {errs:#?}"
        );
    }
}

#[test]
fn old_specs_still_mean_what_they_meant() {
    // A sink's `from` naming a branch of the last step, as before `from`
    // could name nodes.
    let text = with_steps(
        "[[steps]]\nname = \"route\"\ncomponent = \"r.wasm\"\nbranches = [\"small\", \"large\"]\n",
    )
    .replace(
        "[[sinks]]\ntopic = \"out\"\n",
        "[[sinks]]\ntopic = \"s\"\nfrom = \"small\"\n[[sinks]]\ntopic = \"l\"\nfrom = \"large\"\n",
    );
    let t = parse_with(Path::new("p.toml"), &text, false).unwrap();
    assert_eq!(t.sinks[0].inputs[0].branch, Some(0));
    assert_eq!(t.sinks[1].inputs[0].branch, Some(1));
}
