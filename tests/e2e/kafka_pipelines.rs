//! Pipelines on a real broker: a map over 100,000 records on 4 partitions,
//! and the flat-map, filter and branch examples record for record.

use crate::eddy_bin;

use eddy::records::read_records;
use eddy_e2e::{
    Eddy, Topics, components, consume, kafka_spec, produce, root, total_records, unique,
};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

#[test]
fn map_100k_records_over_4_partitions_each_exactly_once_in_order() {
    let topics = Topics::create(&[("map-in", 4), ("map-out", 4)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    const N: usize = 100_000;
    const T0: i64 = 1_700_000_000_000; // 0 would mean "now" to the producer
    let keys: Vec<Vec<u8>> = (0..4).map(|p| format!("p{p}").into_bytes()).collect();
    let values: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            format!(
                "{{\"User\":\" u{} \",\"Seq\":{},\"P\":{}}}",
                i % 10,
                i / 4,
                i % 4
            )
            .into_bytes()
        })
        .collect();
    produce(
        input,
        (0..N).map(|i| {
            (
                Some((i % 4) as i32),
                Some(&keys[i % 4][..]),
                Some(&values[i][..]),
                T0 + i as i64,
                &[][..],
            )
        }),
    );

    let dir = tempfile::tempdir().unwrap();
    let app = unique("map");
    let spec = kafka_spec(
        dir.path(),
        &app,
        input,
        "normalize",
        components::NORMALIZE_JSON,
        "",
        &format!("[[sinks]]\ntopic = \"{output}\""),
    );
    let eddy = Eddy::start(eddy_bin(), &["run", spec.to_str().unwrap()]);
    let got = consume(output, 4, N, Duration::from_secs(240));
    assert_eq!(got.len(), N, "all {N} outputs arrive");
    assert!(eddy.stop(), "graceful stop exits 0");
    assert_eq!(total_records(output, 4), N as i64, "no record twice");

    let mut seen = HashSet::new();
    let mut last: BTreeMap<(i32, u64), i64> = BTreeMap::new(); // (output partition, input partition) -> last seq
    for g in &got {
        let v: serde_json::Value = serde_json::from_slice(g.value.as_deref().unwrap()).unwrap();
        let (p, seq) = (v["p"].as_u64().unwrap(), v["seq"].as_i64().unwrap());
        assert_eq!(
            g.key.as_deref(),
            Some(format!("p{p}").as_bytes()),
            "key carried"
        );
        assert_eq!(
            v["user"].as_str().unwrap().trim(),
            v["user"].as_str().unwrap(),
            "normalised"
        );
        assert_eq!(g.timestamp, T0 + seq * 4 + p as i64, "timestamp carried");
        assert!(seen.insert((p, seq)), "({p}, {seq}) twice");
        let prev = last.insert((g.partition, p), seq);
        assert!(
            prev.is_none_or(|s| s < seq),
            "partition {p}: seq {seq} after {prev:?}"
        );
    }
    assert_eq!(seen.len(), N);
}

/// Runs an example's spec on Kafka with its sample input and compares each
/// sink with the expected output file: record for record with one source
/// topic; per key when several are merged (the broker does not order
/// records of different topics).
fn example_on_kafka(example: &str, component: &str) {
    let dir = root().join("examples").join(example);
    let spec_text = std::fs::read_to_string(dir.join("pipeline.toml")).unwrap();
    let input = read_records(&dir.join("input.jsonl")).unwrap();
    let expected = read_records(&dir.join("expected.jsonl")).unwrap();
    let source_names: Vec<String> = input
        .iter()
        .map(|r| r.topic.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let sink_names: Vec<String> = expected
        .iter()
        .map(|r| r.topic.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let all: Vec<(&str, i32)> = source_names
        .iter()
        .chain(&sink_names)
        .map(|n| (n.as_str(), 1))
        .collect();
    let topics = Topics::create(&all);
    let rename = |name: &str| -> String {
        all.iter()
            .position(|(n, _)| *n == name)
            .map(|i| topics.names[i].clone())
            .unwrap()
    };

    // The example's own spec, pointed at this test's topics and broker.
    let tmp = tempfile::tempdir().unwrap();
    let mut text = spec_text.replace("127.0.0.1:9092", &eddy_e2e::bootstrap());
    for (n, _) in &all {
        // A source keeps its name (steps read it by that name).
        let name = if source_names.contains(&n.to_string()) {
            format!("\nname = \"{n}\"")
        } else {
            String::new()
        };
        text = text.replace(
            &format!("topic = \"{n}\""),
            &format!("topic = \"{}\"{name}", rename(n)),
        );
    }
    let file = std::path::Path::new(component).file_name().unwrap();
    text = text
        .lines()
        .map(|l| {
            if l.starts_with("component = ") {
                format!("component = {:?}", file.to_str().unwrap())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    text = text.replace(
        &format!("application_id = \"{example}\""),
        &format!("application_id = \"{}\"", unique(example)),
    );
    std::fs::copy(component, tmp.path().join(file)).unwrap();
    let spec = eddy_e2e::write_spec(tmp.path(), &text);

    for r in &input {
        produce(
            &rename(&r.topic),
            [(
                Some(0),
                r.key.as_deref(),
                r.value.as_deref(),
                r.timestamp,
                &r.headers[..],
            )],
        );
    }
    let eddy = Eddy::start(eddy_bin(), &["run", spec.to_str().unwrap()]);
    for sink in &sink_names {
        let want: Vec<_> = expected.iter().filter(|r| &r.topic == sink).collect();
        let got = consume(&rename(sink), 1, want.len(), Duration::from_secs(60));
        let got: Vec<_> = got
            .iter()
            .map(|g| {
                (
                    g.key.clone(),
                    g.value.clone(),
                    g.timestamp,
                    g.headers.clone(),
                )
            })
            .collect();
        let mut want: Vec<_> = want
            .iter()
            .map(|r| {
                (
                    r.key.clone(),
                    r.value.clone(),
                    r.timestamp,
                    r.headers.clone(),
                )
            })
            .collect();
        let mut got = got;
        if source_names.len() > 1 {
            // Per key, in order: a stable sort by key keeps each key's order.
            got.sort_by(|a, b| a.0.cmp(&b.0));
            want.sort_by(|a, b| a.0.cmp(&b.0));
        }
        assert_eq!(got, want, "sink {sink} of example {example}");
    }
    assert!(eddy.stop());
    for sink in &sink_names {
        let n = expected.iter().filter(|r| &r.topic == sink).count() as i64;
        assert_eq!(
            total_records(&rename(sink), 1),
            n,
            "nothing extra in {sink}"
        );
    }
}

#[test]
fn flat_map_splits_sentences_into_words() {
    example_on_kafka("split-words", components::SPLIT_WORDS);
}

#[test]
fn filter_keeps_only_severe_events() {
    example_on_kafka("filter-severity", components::FILTER_SEVERITY);
}

#[test]
fn branch_routes_to_two_sinks() {
    example_on_kafka("route-by-size", components::ROUTE_BY_SIZE);
}

#[test]
fn merge_branch_fan_out_and_repartition_on_the_broker() {
    example_on_kafka("orders", components::VALIDATE_ORDERS);
}

#[test]
fn list_and_pattern_sources_merge_into_one_step() {
    let prefix = unique("pat");
    // Two topics a pattern matches, two named in a list, one sink.
    let topics = Topics::create(&[
        (&format!("{prefix}-m-1"), 2),
        (&format!("{prefix}-m-2"), 2),
        (&format!("{prefix}-l-a"), 2),
        (&format!("{prefix}-l-b"), 2),
        (&format!("{prefix}-out"), 2),
    ]);
    let names = &topics.names;
    const PER_TOPIC: usize = 250;
    let values: Vec<Vec<Vec<u8>>> = (0..4)
        .map(|t| {
            (0..PER_TOPIC)
                .map(|i| format!("{{\"Src\":{t},\"Seq\":{i}}}").into_bytes())
                .collect()
        })
        .collect();
    for (t, vs) in values.iter().enumerate() {
        produce(
            &names[t],
            vs.iter()
                .enumerate()
                .map(|(i, v)| (Some((i % 2) as i32), None, Some(&v[..]), 1, &[][..])),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(components::NORMALIZE_JSON, dir.path().join("n.wasm")).unwrap();
    let app = unique("pattern");
    let spec = eddy_e2e::write_spec(
        dir.path(),
        &format!(
            "application_id = \"{app}\"\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\
             [runtime]\ncommit_interval = \"500ms\"\n\
             [[sources]]\nname = \"matched\"\npattern = \"{prefix}-m-.+\"\n\
             [[sources]]\nname = \"listed\"\ntopics = [\"{}\", \"{}\"]\n\
             [[steps]]\nname = \"normalize\"\ncomponent = \"n.wasm\"\nfrom = [\"matched\", \"listed\"]\n\
             [[sinks]]\ntopic = \"{}\"\n",
            eddy_e2e::bootstrap(),
            names[2],
            names[3],
            names[4]
        ),
    );
    let eddy = Eddy::start(eddy_bin(), &["run", spec.to_str().unwrap()]);
    let got = consume(&names[4], 2, 4 * PER_TOPIC, Duration::from_secs(120));
    assert!(eddy.stop());
    let mut seen: Vec<(u64, u64)> = got
        .iter()
        .map(|g| {
            let v: serde_json::Value = serde_json::from_slice(g.value.as_deref().unwrap()).unwrap();
            (v["src"].as_u64().unwrap(), v["seq"].as_u64().unwrap())
        })
        .collect();
    seen.sort_unstable();
    let want: Vec<(u64, u64)> = (0..4u64)
        .flat_map(|t| (0..PER_TOPIC as u64).map(move |i| (t, i)))
        .collect();
    assert_eq!(seen, want, "every record of the four topics, once");
    assert_eq!(total_records(&names[4], 2), (4 * PER_TOPIC) as i64);
}
