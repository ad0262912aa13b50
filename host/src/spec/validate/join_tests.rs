//! Join steps in specs: what they lower to, and every refusal with its
//! reason.

use super::tests::errors;
use super::*;
use crate::topology::{JoinKind, JoinShape, JoinWindow, Joiner, NodeKind};

/// A spec with `sources` (`customers` and `prices` read as tables, the
/// others as streams), then `steps`.
fn spec(sources: &[&str], steps: &str) -> String {
    let mut text = String::from("application_id = \"a\"\n");
    for s in sources {
        let table = if matches!(*s, "customers" | "prices") {
            "as = \"table\"\n"
        } else {
            ""
        };
        text.push_str(&format!("[[sources]]\ntopic = \"{s}\"\n{table}"));
    }
    format!("{text}{steps}\n[[sinks]]\ntopic = \"out\"\n")
}

fn join(left: &str, right: &str, extra: &str) -> String {
    let sources: Vec<&str> = [left, right]
        .into_iter()
        .filter(|s| *s != "nowhere")
        .collect();
    spec(
        &sources,
        &format!(
            "[[steps]]\nname = \"j\"\nop = \"join\"\nleft = \"{left}\"\nright = \"{right}\"\n{extra}\n"
        ),
    )
}

fn one_error(text: &str, needle: &str) {
    let e = errors(text);
    assert!(
        e.iter().any(|e| e.contains(needle)),
        "want {needle:?} in {e:#?}"
    );
}

#[test]
fn each_shape_lowers_to_a_join_node_with_its_stores() {
    let t = parse_with(
        Path::new("p.toml"),
        &join(
            "orders",
            "clicks",
            "kind = \"outer\"\njoiner = \"pair\"\nwindow = { before = \"-1s\", after = \"5s\", grace = \"2s\" }",
        ),
        false,
    )
    .unwrap();
    let j = t.steps[0].op.join().unwrap();
    assert_eq!(j.kind, JoinKind::Outer);
    assert_eq!(j.joiner, Joiner::Pair);
    assert_eq!(
        j.window,
        Some(JoinWindow {
            before: -1000,
            after: 5000,
            grace: 2000
        })
    );
    assert_eq!(t.stores(), ["j-left", "j-right", "j-outer"]);
    assert_eq!(t.plan.subtopologies.len(), 1, "both sides in one task");

    let t = parse_with(
        Path::new("p.toml"),
        &join(
            "orders",
            "customers",
            "joiner = \"merge\"\nas = \"customer\"",
        ),
        false,
    )
    .unwrap();
    assert_eq!(
        t.steps[0].op.join().unwrap().joiner,
        Joiner::Merge {
            into: Some("customer".into())
        }
    );
    // The table is kept in a store the join looks rows up in.
    assert_eq!(t.stores(), ["source-customers"]);
    let sub = &t.plan.subtopologies[0];
    let node = sub
        .nodes
        .iter()
        .find_map(|n| match &n.kind {
            NodeKind::Join { shape, tables, .. } => Some((*shape, *tables)),
            _ => None,
        })
        .unwrap();
    assert_eq!(node, (JoinShape::StreamTable, [None, Some(0)]));

    let t = parse_with(
        Path::new("p.toml"),
        &join("customers", "prices", "kind = \"left\"\njoiner = \"right\""),
        false,
    )
    .unwrap();
    assert_eq!(t.stores(), ["source-customers", "source-prices"]);
    assert!(crate::topology::describe(&t).contains("op: join, kind: left, joiner: right"));
}

#[test]
fn joins_that_cannot_work_are_refused_with_what_to_change() {
    one_error(
        &join("orders", "clicks", "joiner = \"pair\""),
        "two streams join within a window",
    );
    one_error(
        &join(
            "orders",
            "customers",
            "joiner = \"pair\"\nwindow = { difference = \"1m\" }",
        ),
        "only a join of two streams has a window",
    );
    one_error(
        &join("orders", "customers", "kind = \"outer\"\njoiner = \"pair\""),
        "no outer stream–table join",
    );
    one_error(
        &join("customers", "orders", "joiner = \"pair\""),
        "swap `left`",
    );
    one_error(&join("orders", "customers", ""), "a join needs `joiner`");
    one_error(
        &join("orders", "customers", "joiner = \"zip\""),
        "\"zip\": expected \"merge\"",
    );
    one_error(
        &join(
            "orders",
            "customers",
            "joiner = \"pair\"\ncomponent = \"j.wasm\"",
        ),
        "not both",
    );
    one_error(
        &join("orders", "customers", "joiner = \"pair\"\nas = \"c\""),
        "`as` applies to joiner = \"merge\"",
    );
    one_error(
        &join("orders", "nowhere", "joiner = \"pair\""),
        "no node named \"nowhere\"",
    );
    one_error(
        &join(
            "orders",
            "clicks",
            "joiner = \"pair\"\nwindow = { before = \"-5s\", after = \"1s\" }",
        ),
        "is negative",
    );
    one_error(
        &join(
            "orders",
            "clicks",
            "joiner = \"pair\"\nwindow = { kind = \"tumbling\", size = \"1m\" }",
        ),
        "does not apply to a join's window",
    );
    one_error(
        &spec(
            &["orders", "customers"],
            "[[steps]]\nname = \"j\"\nop = \"join\"\nfrom = \"orders\"\nright = \"customers\"\njoiner = \"pair\"\n",
        ),
        "a join needs `left`",
    );
    // A table made of records whose keys may have changed.
    one_error(
        &spec(
            &["orders", "customers"],
            "[[steps]]\nname = \"rekey\"\nfrom = \"customers\"\ncomponent = \"r.wasm\"\n\
             [[steps]]\nname = \"t\"\nop = \"to_table\"\n\
             [[steps]]\nname = \"j\"\nop = \"join\"\nleft = \"orders\"\nright = \"t\"\njoiner = \"pair\"\n",
        ),
        "keeps_key = true",
    );
}

#[test]
fn a_side_whose_keys_changed_is_repartitioned_before_the_join() {
    let rekeyed = |keeps: &str| {
        parse_with(
            Path::new("p.toml"),
            &spec(
                &["orders", "customers"],
                &format!(
                    "[[steps]]\nname = \"rekey\"\nfrom = \"orders\"\ncomponent = \"r.wasm\"\n{keeps}\n\
                     [[steps]]\nname = \"j\"\nop = \"join\"\nleft = \"rekey\"\nright = \"customers\"\njoiner = \"pair\"\n"
                ),
            ),
            false,
        )
        .unwrap()
    };
    let t = rekeyed("");
    assert_eq!(t.plan.repartitions.len(), 1);
    let r = &t.plan.repartitions[0];
    assert_eq!(r.topic, "a-j-left-repartition");
    assert_eq!(
        (r.from, r.to),
        (0, 1),
        "the join runs where the topic is read"
    );
    let text = crate::topology::describe(&t);
    assert!(
        text.contains("Sink: j-left-repartition-sink (topic: a-j-left-repartition)"),
        "{text}"
    );
    assert!(text.contains("Source: j-left-repartition-source"), "{text}");
    // A processor that keeps keys needs none.
    assert!(rekeyed("keeps_key = true").plan.repartitions.is_empty());
}

#[test]
fn a_global_table_is_looked_up_by_a_key_from_the_stream_and_only_by_joins() {
    let text = |join: &str, extra: &str| {
        format!(
            "application_id = \"a\"\n\
             [[sources]]\ntopic = \"orders\"\n\
             [[sources]]\ntopic = \"products\"\nas = \"global-table\"\n\
             [[steps]]\nname = \"j\"\nop = \"join\"\n{join}\njoiner = \"pair\"\n{extra}\n\
             [[sinks]]\ntopic = \"out\"\n"
        )
    };
    let t = parse_with(
        Path::new("p.toml"),
        &text(
            "left = \"orders\"\nright = \"products\"\nkey = \"/product_id\"",
            "",
        ),
        false,
    )
    .unwrap();
    assert_eq!(
        t.steps[0].op.join().unwrap().key.as_deref(),
        Some("/product_id")
    );
    // No task reads the global topic, and it keeps no store of a task.
    assert_eq!(t.plan.subtopologies.len(), 1);
    assert_eq!(t.plan.subtopologies[0].inputs.len(), 1);
    assert_eq!(t.plan.source_sub[1], usize::MAX);
    assert!(t.stores().is_empty());

    one_error(
        &text("left = \"products\"\nright = \"orders\"", ""),
        "a global table goes on the right",
    );
    one_error(
        &text(
            "left = \"orders\"\nright = \"products\"\nkind = \"outer\"",
            "",
        ),
        "no outer join with a GlobalKTable",
    );
    one_error(
        &text(
            "left = \"orders\"\nright = \"products\"\nkey = \"product_id\"",
            "",
        ),
        "is not a JSON pointer",
    );
    // Another join does not take `key`.
    one_error(
        &join("orders", "customers", "joiner = \"pair\"\nkey = \"/x\""),
        "chooses what a stream record looks up in a global table",
    );
    // A sink reading a global table directly.
    one_error(
        &format!(
            "{}[[sinks]]\ntopic = \"copy\"\nfrom = \"products\"\n",
            text("left = \"orders\"\nright = \"products\"", "")
        ),
        "only a join looks it up",
    );
}

#[test]
fn a_versioned_table_serves_stream_table_joins_only() {
    let text = |steps: &str, history: &str| {
        format!(
            "application_id = \"a\"\n\
             [[sources]]\ntopic = \"orders\"\n\
             [[sources]]\ntopic = \"rates\"\nas = \"table\"\nhistory = \"{history}\"\n\
             {steps}\n[[sinks]]\ntopic = \"out\"\n"
        )
    };
    let join = "[[steps]]\nname = \"j\"\nop = \"join\"\nleft = \"orders\"\nright = \"rates\"\njoiner = \"pair\"\n";
    let t = parse_with(Path::new("p.toml"), &text(join, "1h"), false).unwrap();
    assert_eq!(t.sources[1].history, Some(3_600_000));
    assert_eq!(t.stores(), ["source-rates"]);
    assert!(t.plan.stores[0].scanned, "versions are read in ranges");
    one_error(&text(join, "0s"), "more than zero");
    one_error(
        &text(
            "[[steps]]\nname = \"g\"\nfrom = \"rates\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"count\"\n",
            "1h",
        ),
        "is a versioned table",
    );
    one_error(
        "application_id = \"a\"\n[[sources]]\ntopic = \"s\"\nhistory = \"1h\"\n[[sinks]]\ntopic = \"out\"\n",
        "use it with as = \"table\"",
    );
}

#[test]
fn a_foreign_key_join_runs_in_the_sub_topologies_of_its_two_tables() {
    let text = join(
        "customers",
        "prices",
        "kind = \"left\"\njoiner = \"pair\"\nforeign_key = \"/sku\"",
    );
    let t = parse_with(Path::new("p.toml"), &text, false).unwrap();
    assert_eq!(
        t.steps[0].op.join().unwrap().foreign_key.as_deref(),
        Some("/sku")
    );
    let plan = &t.plan;
    assert_eq!(plan.subtopologies.len(), 2);
    let topics: Vec<(&str, usize, usize, bool)> = (plan.repartitions.iter())
        .map(|r| (r.topic.as_str(), r.from, r.to, r.by_value))
        .collect();
    assert_eq!(
        topics,
        [
            ("a-j-subscription-repartition", 0, 1, false),
            ("a-j-response-repartition", 1, 0, true),
        ]
    );
    let parts = |sub: usize| -> Vec<JoinShape> {
        (plan.subtopologies[sub].nodes.iter())
            .filter_map(|n| match n.kind {
                NodeKind::Join { shape, .. } => Some(shape),
                _ => None,
            })
            .collect()
    };
    use crate::topology::FkPart;
    assert_eq!(
        parts(0),
        [
            JoinShape::ForeignKey(FkPart::Subscribe),
            JoinShape::ForeignKey(FkPart::Result)
        ]
    );
    assert_eq!(parts(1), [JoinShape::ForeignKey(FkPart::Answer)]);
    // The subscriptions are kept by the right table's tasks; no result
    // store unless a grouping reads the join.
    assert_eq!(plan.sub_of_store("j-subscriptions"), Some(1));
    let role = |name: &str| plan.stores.iter().find(|s| s.name == name).map(|s| s.role);
    assert_eq!(
        role("j-subscriptions"),
        Some(crate::topology::StoreRole::JoinBuffer)
    );
    assert_eq!(plan.sub_of_store("j-result"), None);
}

#[test]
fn a_grouping_after_a_foreign_key_join_keeps_its_results() {
    let text = join(
        "customers",
        "prices",
        "joiner = \"left\"\nforeign_key = \"/sku\"\n[[steps]]\nname = \"g\"\nop = \"group_by\"\nfrom = \"j\"\nkey = \"/region\"\n[[steps]]\nname = \"c\"\nop = \"count\"",
    );
    let t = parse_with(Path::new("p.toml"), &text, false).unwrap();
    assert_eq!(t.plan.sub_of_store("j-result"), Some(0));
}

#[test]
fn foreign_key_joins_refuse_what_cannot_work() {
    one_error(
        &join(
            "orders",
            "prices",
            "joiner = \"pair\"\nforeign_key = \"/sku\"",
        ),
        "joins two tables",
    );
    one_error(
        &join(
            "customers",
            "prices",
            "kind = \"outer\"\njoiner = \"pair\"\nforeign_key = \"/sku\"",
        ),
        "a foreign-key join is \"inner\" or \"left\"",
    );
    one_error(
        &join(
            "customers",
            "prices",
            "joiner = \"pair\"\nforeign_key = \"/sku\"\nwindow = { difference = \"1s\" }",
        ),
        "only a join of two streams has a window",
    );
    one_error(
        &join(
            "customers",
            "prices",
            "joiner = \"pair\"\nforeign_key = \"sku\"",
        ),
        "not a JSON pointer",
    );
}
