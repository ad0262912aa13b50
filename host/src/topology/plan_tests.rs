//! Unit tests of the plan.

use super::*;
use crate::topology::graph::{NodeId, Port};
use crate::topology::{Aggregation, Emit, ErrorPolicy, TimestampSource, Topics};
use crate::topology::{Op, Sink, Source};

fn source(topic: &str, table: bool) -> Source {
    Source {
        name: topic.into(),
        topics: Topics::Names(vec![topic.into()]),
        table,
        global: false,
        history: None,
        timestamp: TimestampSource::Record,
        on_error: ErrorPolicy::Fail,
    }
}

use crate::topology::test_step as step;

fn sink(from: NodeId) -> Sink {
    Sink {
        topic: "out".into(),
        inputs: vec![Port::of(from)],
        on_error: ErrorPolicy::Fail,
    }
}

fn count(store: &str) -> Op {
    Op::Count(Aggregation {
        store: store.into(),
        window: None,
        emit: Emit::Update,
        late_topic: None,
    })
}

use NodeId::{Source as So, Step as St};

#[test]
fn group_by_key_at_the_source_needs_no_repartition() {
    let steps = [
        step("g", Op::GroupByKey, &[So(0)]),
        step("c", count("c"), &[St(0)]),
    ];
    let p = plan("app", &[source("in", false)], &steps, &[sink(St(1))]);
    assert_eq!(p.subtopologies.len(), 1);
    assert!(p.repartitions.is_empty());
    let kinds: Vec<_> = p.subtopologies[0].nodes.iter().map(|n| &n.kind).collect();
    assert_eq!(
        kinds,
        [
            &NodeKind::Source(0),
            &NodeKind::Step {
                step: 0,
                store: None
            },
            &NodeKind::Step {
                step: 1,
                store: Some(0)
            },
            &NodeKind::ToSinks(vec![0]),
        ]
    );
    let steps = [
        step("m", Op::Process { keeps_key: true }, &[So(0)]),
        step("g", Op::GroupByKey, &[St(0)]),
        step("c", count("c"), &[St(1)]),
    ];
    let p = plan("app", &[source("in", false)], &steps, &[sink(St(2))]);
    assert_eq!(p.subtopologies.len(), 1);
}

#[test]
fn key_changes_and_group_by_cut_at_the_grouping() {
    let steps = [
        step("split", Op::Process { keeps_key: false }, &[So(0)]),
        step("g", Op::GroupByKey, &[St(0)]),
        step("c", count("c"), &[St(1)]),
        step("by-count", Op::GroupBy { field: None }, &[St(2)]),
        step("c2", count("c2"), &[St(3)]),
    ];
    let p = plan("app", &[source("in", false)], &steps, &[sink(St(4))]);
    assert_eq!(p.subtopologies.len(), 3);
    let topics: Vec<_> = p.repartitions.iter().map(|r| r.topic.as_str()).collect();
    assert_eq!(topics, ["app-g-repartition", "app-by-count-repartition"]);
    assert_eq!((p.repartitions[0].from, p.repartitions[0].to), (0, 1));
    assert_eq!((p.repartitions[1].from, p.repartitions[1].to), (1, 2));
    assert_eq!(
        p.subtopologies[1].inputs,
        [(SubInput::Repartition(0), 0)],
        "the aggregation's sub-topology reads the repartition topic first"
    );
    assert_eq!(p.store_names(1), ["c"]);
    assert_eq!(p.store_names(2), ["c2"]);
    assert_eq!(p.sub_of_store("c2"), Some(2));
}

#[test]
fn a_merge_of_a_source_and_a_repartitioned_aggregate_is_one_sub_topology() {
    let steps = [
        step("split", Op::Process { keeps_key: false }, &[So(0)]),
        step("g", Op::GroupByKey, &[St(0)]),
        step("c", count("c"), &[St(1)]),
        step("both", Op::Process { keeps_key: true }, &[St(2), So(1)]),
    ];
    let sources = [source("a", false), source("b", false)];
    let p = plan("app", &sources, &steps, &[sink(St(3))]);
    assert_eq!(p.subtopologies.len(), 2);
    assert_eq!(p.source_sub, [0, 1]);
    assert_eq!(
        p.subtopologies[1].inputs.len(),
        2,
        "b and the repartition topic"
    );
}

#[test]
fn disconnected_parts_are_sub_topologies_numbered_by_their_first_node() {
    let steps = [
        step("pb", Op::Process { keeps_key: true }, &[So(1)]),
        step("pa", Op::Process { keeps_key: true }, &[So(0)]),
    ];
    let sources = [source("a", false), source("b", false)];
    let sinks = [sink(St(1)), sink(St(0))];
    let p = plan("app", &sources, &steps, &sinks);
    assert_eq!(p.source_sub, [0, 1]);
    assert_eq!(p.subtopologies[0].nodes.len(), 3, "a, pa, its sink");
}

#[test]
fn a_table_source_read_by_a_grouping_keeps_its_rows() {
    let steps = [
        step(
            "g",
            Op::GroupBy {
                field: Some("/r".into()),
            },
            &[So(0)],
        ),
        step("c", count("c"), &[St(0)]),
    ];
    let p = plan("app", &[source("acc", true)], &steps, &[sink(St(1))]);
    assert_eq!(p.store_names(0), ["source-acc"]);
    assert!(
        p.repartitions[0].table,
        "old values travel with the records"
    );
    assert!(p.subtopologies[1].nodes[1].table);
}
