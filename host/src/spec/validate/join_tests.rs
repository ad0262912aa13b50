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
