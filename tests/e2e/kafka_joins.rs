//! Joins on a real broker, each kind over topics of 4 partitions, checked
//! against a model of what they must give (a stream–table join of a
//! backlog in timestamp order, too); a join of topics with other
//! partition counts, refused; a foreign-key join of tables on 4 and 2
//! partitions, which needs no co-partitioning.

use crate::eddy_bin;

use eddy_e2e::{
    Eddy, Got, Topics, bootstrap, committed, consume, get_text, produce, start_with_admin,
    total_records, unique, wait_until, write_spec,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// A spec reading `left` and `right` (each with its `as`) into `step`,
/// writing `out`.
fn spec(dir: &Path, app: &str, sources: [(&str, &str); 2], step: &str, out: &str) -> String {
    let source = |(topic, read_as): (&str, &str)| {
        format!("[[sources]]\ntopic = \"{topic}\"\nas = \"{read_as}\"\n")
    };
    let text = format!(
        "application_id = \"{app}\"\n\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\n[runtime]\nworkers = 2\ncommit_interval = \"300ms\"\n\n[state]\ndir = \"state\"\n\n{}{}\n[[steps]]\nname = \"join\"\nop = \"join\"\nleft = \"{}\"\nright = \"{}\"\n{step}\n\n[[sinks]]\ntopic = \"{out}\"\n",
        bootstrap(),
        source(sources[0]),
        source(sources[1]),
        sources[0].0,
        sources[1].0,
    );
    write_spec(dir, &text).to_str().unwrap().to_string()
}

/// (key, value, timestamp) records, each to its key's partition.
fn send(topic: &str, records: &[(String, Option<String>, i64)]) {
    produce(
        topic,
        records.iter().map(|(k, v, ts)| {
            (
                None,
                Some(k.as_bytes()),
                v.as_ref().map(String::as_bytes),
                *ts,
                &[][..],
            )
        }),
    );
}

fn text(b: &Option<Vec<u8>>) -> Option<String> {
    b.as_ref().map(|b| String::from_utf8(b.clone()).unwrap())
}

/// Everything in `topic`, as (key, value, timestamp), sorted.
fn all(topic: &str, n: usize) -> Vec<(String, Option<String>, i64)> {
    let got: Vec<Got> = consume(topic, 4, n, Duration::from_secs(60));
    let mut out: Vec<_> = got
        .iter()
        .map(|g| (text(&g.key).unwrap(), text(&g.value), g.timestamp))
        .collect();
    out.sort();
    out
}

#[test]
fn stream_table_left_join_enriches_orders_over_four_partitions() {
    let topics = Topics::create(&[("orders", 4), ("customers", 4), ("enriched", 4)]);
    let (orders, customers, out) = (&topics.names[0], &topics.names[1], &topics.names[2]);
    let dir = tempfile::tempdir().unwrap();
    let app = unique("enrich");
    let spec = spec(
        dir.path(),
        &app,
        [(orders, "stream"), (customers, "table")],
        "kind = \"left\"\njoiner = \"merge\"\nas = \"customer\"",
        out,
    );
    // Customers 0..80 exist (customer 7 deleted again); orders name 0..100.
    let mut table: Vec<(String, Option<String>, i64)> = (0..80)
        .map(|c| (format!("c{c}"), Some(format!("{{\"name\":\"n{c}\"}}")), 1))
        .collect();
    table.push(("c7".into(), None, 2));
    send(customers, &table);
    let eddy = Eddy::start(eddy_bin(), &["run", &spec]);
    // The table is read before the orders arrive, so every order sees it whole.
    wait_until(Duration::from_secs(90), "the customers read", || {
        committed(&app, customers, 4).iter().flatten().sum::<i64>() == table.len() as i64
    });
    let stream: Vec<(String, Option<String>, i64)> = (0..2_000)
        .map(|i| {
            (
                format!("c{}", i % 100),
                Some(format!("{{\"order\":{i}}}")),
                10 + i,
            )
        })
        .collect();
    send(orders, &stream);
    wait_until(Duration::from_secs(90), "2000 enriched orders", || {
        total_records(out, 4) >= 2_000
    });
    assert!(eddy.stop());
    let mut want: Vec<_> = stream
        .iter()
        .map(|(k, v, ts)| {
            let c: usize = k[1..].parse().unwrap();
            let customer = if c < 80 && c != 7 {
                format!("{{\"name\":\"n{c}\"}}")
            } else {
                "null".into()
            };
            let order = v.as_deref().unwrap();
            let order = &order[1..order.len() - 1];
            (
                k.clone(),
                Some(format!("{{\"customer\":{customer},{order}}}")),
                *ts,
            )
        })
        .collect();
    want.sort();
    assert_eq!(all(out, 2_000), want);
}

#[test]
fn a_stream_table_join_on_a_backlog_reads_its_inputs_in_timestamp_order() {
    let topics = Topics::create(&[("orders", 4), ("prices", 4), ("priced", 4)]);
    let (orders, prices, out) = (&topics.names[0], &topics.names[1], &topics.names[2]);
    let dir = tempfile::tempdir().unwrap();
    let path = spec(
        dir.path(),
        &unique("as-of"),
        [(orders, "stream"), (prices, "table")],
        "kind = \"left\"\njoiner = \"pair\"",
        out,
    );
    // One record per batch: Kafka Streams' order record by record.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("[runtime]\n", "[runtime]\nbatch_size = 1\n"),
    )
    .unwrap();
    // Both topics are written before eddy starts, the prices first, so
    // each partition's records come in one fetch: read in fetch order,
    // every order would see its key's last price, or none.
    let keys: Vec<String> = (0..8).map(|k| format!("k{k}")).collect();
    let table: Vec<(String, Option<String>, i64)> = (1..=3)
        .flat_map(|p| {
            keys.iter()
                .map(move |k| (k.clone(), Some(format!("p{p}")), 2_000 * p - 1_000))
        })
        .collect();
    send(prices, &table);
    let stream: Vec<(String, Option<String>, i64)> = (0..4)
        .flat_map(|o| {
            keys.iter()
                .map(move |k| (k.clone(), Some(format!("o{o}")), 500 + 2_000 * o))
        })
        .collect();
    send(orders, &stream);
    let eddy = Eddy::start(eddy_bin(), &["run", &path]);
    wait_until(Duration::from_secs(90), "every order joined", || {
        total_records(out, 4) >= stream.len() as i64
    });
    assert!(eddy.stop());
    // Order o at 500 + 2000·o sees price p (at 2000·p − 1000) for p = o.
    let mut want: Vec<_> = stream
        .iter()
        .map(|(k, v, ts)| {
            let o: i64 = v.as_deref().unwrap()[1..].parse().unwrap();
            let right = if o == 0 {
                "null".into()
            } else {
                format!("\"p{o}\"")
            };
            let pair = format!("{{\"left\":\"o{o}\",\"right\":{right}}}");
            (k.clone(), Some(pair), *ts)
        })
        .collect();
    want.sort();
    assert_eq!(all(out, stream.len()), want);
}

#[test]
fn stream_stream_inner_join_finds_every_pair_in_the_window_over_four_partitions() {
    let topics = Topics::create(&[("impressions", 4), ("clicks", 4), ("attributed", 4)]);
    let (imps, clicks, out) = (&topics.names[0], &topics.names[1], &topics.names[2]);
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        &unique("attribute"),
        [(imps, "stream"), (clicks, "stream")],
        "joiner = \"pair\"\nwindow = { before = \"0s\", after = \"10s\", grace = \"1h\" }",
        out,
    );
    // Ad a shows every second; clicks come 0–15 s later: within 10 s they
    // join. (Time starts after 0, which a producer takes for "now".)
    let impressions: Vec<(String, Option<String>, i64)> = (0..600)
        .map(|i| {
            (
                format!("ad{}", i % 40),
                Some(format!("i{i}")),
                1_000 * (i + 1),
            )
        })
        .collect();
    let click_list: Vec<(String, Option<String>, i64)> = (0..600)
        .map(|i| {
            let ts = 1_000 * (i + 1) + (i * 7_919 % 15_000);
            (format!("ad{}", i % 40), Some(format!("c{i}")), ts)
        })
        .collect();
    let mut want = Vec::new();
    for (ik, iv, its) in &impressions {
        for (ck, cv, cts) in &click_list {
            if ik == ck && *cts >= *its && *cts <= its + 10_000 {
                let v = format!(
                    "{{\"left\":\"{}\",\"right\":\"{}\"}}",
                    iv.as_deref().unwrap(),
                    cv.as_deref().unwrap()
                );
                want.push((ik.clone(), Some(v), (*its).max(*cts)));
            }
        }
    }
    want.sort();
    assert!(want.len() > 100, "the model has {} pairs", want.len());
    send(imps, &impressions);
    send(clicks, &click_list);
    let eddy = Eddy::start(eddy_bin(), &["run", &spec]);
    wait_until(Duration::from_secs(90), "every pair", || {
        total_records(out, 4) >= want.len() as i64
    });
    assert!(eddy.stop());
    let got: Vec<_> = all(out, want.len())
        .into_iter()
        .map(|(k, v, ts)| {
            // Compare values as JSON: the joiner writes compact objects.
            let v: serde_json::Value = serde_json::from_str(v.as_deref().unwrap()).unwrap();
            (k, Some(v.to_string()), ts)
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn table_table_outer_join_ends_at_the_join_of_the_final_tables() {
    let topics = Topics::create(&[("tt-left", 4), ("tt-right", 4), ("tt-out", 4)]);
    let (left, right, out) = (&topics.names[0], &topics.names[1], &topics.names[2]);
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        &unique("tables"),
        [(left, "table"), (right, "table")],
        "kind = \"outer\"\njoiner = \"pair\"",
        out,
    );
    let mut l = Vec::new();
    let mut r = Vec::new();
    for i in 0..1_000i64 {
        let k = format!("k{}", i % 50);
        let v = |s: &str| (i % 11 != 3).then(|| format!("{s}{i}"));
        if i % 3 == 0 {
            r.push((k, v("r"), i + 1));
        } else {
            l.push((k, v("l"), i + 1));
        }
    }
    send(left, &l);
    send(right, &r);
    // The final row of each table, and the outer join of the two.
    let last = |rows: &[(String, Option<String>, i64)]| -> BTreeMap<String, Option<String>> {
        rows.iter()
            .map(|(k, v, _)| (k.clone(), v.clone()))
            .collect()
    };
    let (lf, rf) = (last(&l), last(&r));
    let mut want: BTreeMap<String, Option<String>> = BTreeMap::new();
    for k in lf.keys().chain(rf.keys()) {
        let (a, b) = (lf.get(k).cloned().flatten(), rf.get(k).cloned().flatten());
        let v = (a.is_some() || b.is_some()).then(|| {
            let side = |s: Option<String>| s.map_or("null".into(), |s| format!("\"{s}\""));
            format!("{{\"left\":{},\"right\":{}}}", side(a), side(b))
        });
        want.insert(k.clone(), v);
    }
    let eddy = Eddy::start(eddy_bin(), &["run", &spec]);
    let app_done = || {
        let n = total_records(out, 4) as usize;
        let mut latest: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut got = consume(out, 4, n, Duration::from_secs(30));
        got.sort_by_key(|g| (g.partition, g.offset));
        for g in got {
            let v = text(&g.value).map(|v| {
                serde_json::from_str::<serde_json::Value>(&v)
                    .unwrap()
                    .to_string()
            });
            latest.insert(text(&g.key).unwrap(), v);
        }
        // A key whose rows are all gone may end with a tombstone or never show.
        want.iter()
            .all(|(k, v)| latest.get(k).cloned().flatten() == *v)
    };
    wait_until(
        Duration::from_secs(90),
        "the join of the final tables",
        app_done,
    );
    assert!(eddy.stop());
}

#[test]
fn a_global_table_on_four_partitions_is_looked_up_from_a_stream_on_two() {
    let topics = Topics::create(&[("lines", 2), ("catalogue", 4), ("priced", 2)]);
    let (lines, catalogue, out) = (&topics.names[0], &topics.names[1], &topics.names[2]);
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        &unique("lookup"),
        [(lines, "stream"), (catalogue, "global-table")],
        "kind = \"left\"\nkey = \"/product\"\njoiner = \"right\"",
        out,
    );
    // The catalogue is there before eddy starts: it is read whole first.
    let products: Vec<(String, Option<String>, i64)> = (0..200)
        .map(|p| (format!("p{p}"), Some(format!("price-{p}")), 1))
        .collect();
    send(catalogue, &products);
    let stream: Vec<(String, Option<String>, i64)> = (0..1_000)
        .map(|i| {
            let v = format!("{{\"product\":\"p{}\"}}", i % 250);
            (format!("line{i}"), Some(v), 10 + i)
        })
        .collect();
    send(lines, &stream);
    let (eddy, admin) = start_with_admin(eddy_bin(), &spec);
    wait_until(Duration::from_secs(90), "1000 priced lines", || {
        total_records(out, 2) >= 1_000
    });
    // Kept current while running: a new price reaches the lookups.
    send(catalogue, &[("p0".into(), Some("price-0-new".into()), 2)]);
    let mut n = 1_000;
    let mut probes = 0;
    wait_until(Duration::from_secs(60), "the new price looked up", || {
        let probe = format!("probe{probes}");
        probes += 1;
        send(
            lines,
            &[(probe.clone(), Some("{\"product\":\"p0\"}".into()), 5_000)],
        );
        n += 1;
        wait_until(Duration::from_secs(30), "the probe joined", || {
            total_records(out, 2) >= n
        });
        consume(out, 2, n as usize, Duration::from_secs(30))
            .iter()
            .any(|g| {
                text(&g.key) == Some(probe.clone())
                    && text(&g.value).as_deref() == Some("price-0-new")
            })
    });
    // Every instance answers queries on a global table from its own copy.
    let (status, body) = get_text(&admin, &format!("/stores/{catalogue}/p0"));
    assert_eq!(status, 200, "{body}");
    let row: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(row["global"], true, "{body}");
    assert!(body.contains("price-0-new"), "{body}");
    let (status, body) = get_text(&admin, &format!("/stores/{catalogue}/p999"));
    assert_eq!(status, 404, "{body}");
    let (status, body) = get_text(&admin, &format!("/stores/{catalogue}/p1?from=0&to=5"));
    assert_eq!(status, 400, "{body}");
    assert!(eddy.stop());
    let mut want: Vec<_> = (0..1_000i64)
        .map(|i| {
            let p = i % 250;
            let price = (p < 200).then(|| format!("price-{p}"));
            (format!("line{i}"), price, 10 + i)
        })
        .collect();
    want.sort();
    let got: Vec<Got> = consume(out, 2, n as usize, Duration::from_secs(60));
    let mut got: Vec<_> = got
        .iter()
        .map(|g| (text(&g.key).unwrap(), text(&g.value), g.timestamp))
        .filter(|(k, _, _)| k.starts_with("line"))
        .collect();
    got.sort();
    assert_eq!(got, want);
}

#[test]
fn a_join_of_topics_with_other_partition_counts_is_refused() {
    let topics = Topics::create(&[("cp-left", 2), ("cp-right", 3), ("cp-out", 2)]);
    let (left, right, out) = (&topics.names[0], &topics.names[1], &topics.names[2]);
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        &unique("copart"),
        [(left, "stream"), (right, "table")],
        "joiner = \"pair\"",
        out,
    );
    let run = std::process::Command::new(eddy_bin())
        .args(["run", &spec])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("not co-partitioned")
            && err.contains(&format!("{left}=2"))
            && err.contains(&format!("{right}=3")),
        "{err}"
    );
}

#[test]
fn a_foreign_key_join_of_tables_on_four_and_two_partitions_ends_at_the_join_of_the_final_tables() {
    // Not co-partitioned: a foreign-key join does not need it.
    let topics = Topics::create(&[("fk-orders", 4), ("fk-products", 2), ("fk-out", 4)]);
    let (orders, products, out) = (&topics.names[0], &topics.names[1], &topics.names[2]);
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        &unique("foreign"),
        [(orders, "table"), (products, "table")],
        "kind = \"left\"\njoiner = \"pair\"\nforeign_key = \"/product\"",
        out,
    );
    // Orders change products often (some lose theirs, some are deleted);
    // products change and some are deleted, interleaved with the orders.
    let (mut o, mut p) = (Vec::new(), Vec::new());
    for i in 0..1_500i64 {
        if i % 4 == 0 {
            let v = (i % 13 != 4).then(|| format!("price-{i}"));
            p.push((format!("p{}", i % 30), v, i + 1));
        } else {
            let v = match i % 17 {
                5 => None,
                9 => Some(format!("{{\"n\":{i}}}")),
                _ => Some(format!("{{\"product\":\"p{}\",\"n\":{i}}}", (i * 7) % 31)),
            };
            o.push((format!("o{}", i % 100), v, i + 1));
        }
    }
    let eddy = Eddy::start(eddy_bin(), &["run", &spec]);
    for (a, b) in o.chunks(250).zip(p.chunks(90)) {
        send(orders, a);
        send(products, b);
    }
    let last = |rows: &[(String, Option<String>, i64)]| -> BTreeMap<String, Option<String>> {
        rows.iter()
            .map(|(k, v, _)| (k.clone(), v.clone()))
            .collect()
    };
    let (of, pf) = (last(&o), last(&p));
    let want: BTreeMap<String, Option<serde_json::Value>> = of
        .iter()
        .map(|(k, v)| {
            let joined = v.as_ref().map(|v| {
                let left: serde_json::Value = serde_json::from_str(v).unwrap();
                let right = (left.get("product").and_then(|p| p.as_str()))
                    .and_then(|p| pf.get(p).cloned().flatten());
                serde_json::json!({ "left": left, "right": right })
            });
            (k.clone(), joined)
        })
        .collect();
    wait_until(
        Duration::from_secs(120),
        "the foreign-key join of the final tables",
        || {
            let n = total_records(out, 4) as usize;
            let mut got = consume(out, 4, n, Duration::from_secs(30));
            got.sort_by_key(|g| (g.partition, g.offset));
            let mut latest: BTreeMap<String, Option<serde_json::Value>> = BTreeMap::new();
            for g in got {
                let v = text(&g.value).map(|v| serde_json::from_str(&v).unwrap());
                latest.insert(text(&g.key).unwrap(), v);
            }
            // A deleted order ends with a tombstone or never shows.
            want.iter()
                .all(|(k, v)| latest.get(k).cloned().flatten() == *v)
        },
    );
    assert!(eddy.stop());
}
