//! Interactive queries and readiness on a real broker: `GET /stores/...`
//! answers a key's count and a key's windows as the model computes them,
//! `/readyz` turns ready only once restored stores answer, and a key owned
//! by another instance is redirected to it.

use crate::eddy_bin;

use eddy_e2e::{
    Topics, bootstrap, get_text, metric, produce, start_with_admin, unique, wait_until, write_spec,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const MINUTE: i64 = 60_000;
/// A minute boundary; records start there (a timestamp of 0 would make the
/// producer stamp the wall clock).
const BASE: i64 = 29_400_000 * MINUTE;

fn spec(dir: &Path, app: &str, input: &str, output: &str, step: &str, store: &str) -> String {
    let text = format!(
        "application_id = \"{app}\"\n\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\n[runtime]\nworkers = 2\ncommit_interval = \"300ms\"\n\n[state]\ndir = \"state\"\nstore = \"{store}\"\n\n[[sources]]\ntopic = \"{input}\"\n\n[[steps]]\nname = \"by-key\"\nop = \"group_by_key\"\n\n{step}\n\n[[sinks]]\ntopic = \"{output}\"\n",
        bootstrap()
    );
    write_spec(dir, &text).to_str().unwrap().to_string()
}

/// GET without following redirects: status, Location, JSON body.
fn get(url: &str) -> (u16, Option<String>, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut res = agent.get(url).call().unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    let body = res.body_mut().read_to_string().unwrap();
    (
        status,
        location,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

fn ready(addr: &str) -> Option<Value> {
    let (status, _, body) = get(&format!("http://{addr}/readyz"));
    (status == 200).then_some(body)
}

/// Keys `k0..k29` with uneven counts, timestamps over 5 minutes.
fn sample() -> Vec<(String, i64)> {
    (0..600)
        .map(|i| (format!("k{}", (i * 7) % 30 % (1 + i % 30)), BASE + i * 500))
        .collect()
}

fn feed(topic: &str, records: &[(String, i64)]) {
    produce(
        topic,
        records
            .iter()
            .map(|(k, ts)| (None, Some(k.as_bytes()), Some(&b"x"[..]), *ts, &[][..])),
    );
}

#[test]
fn a_key_count_is_answered_as_the_model_counts_it_and_after_a_restore() {
    let topics = Topics::create(&[("q-count-in", 4), ("q-count-out", 4)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let dir = tempfile::tempdir().unwrap();
    let app = unique("q-count");
    let spec = spec(
        dir.path(),
        &app,
        input,
        output,
        "[[steps]]\nname = \"counts\"\nop = \"count\"",
        "memory",
    );
    let records = sample();
    let mut model: BTreeMap<String, i64> = BTreeMap::new();
    for (k, _) in &records {
        *model.entry(k.clone()).or_default() += 1;
    }
    feed(input, &records);
    let (eddy, addr) = start_with_admin(eddy_bin(), &spec);
    wait_until(Duration::from_secs(60), "readyz to answer 200", || {
        ready(&addr).is_some()
    });
    let r = ready(&addr).unwrap();
    assert_eq!(r["tasks"].as_array().unwrap().len(), 4, "{r}"); // one per partition
    assert_eq!(r["restoring"], serde_json::json!([]));
    let counts = |addr: &str| -> BTreeMap<String, i64> {
        model
            .keys()
            .filter_map(|k| {
                let (status, _, body) = get(&format!("http://{addr}/stores/counts/{k}"));
                (status == 200).then(|| {
                    assert_eq!(body["key"], k.as_str(), "{body}");
                    (k.clone(), body["value"].as_i64().unwrap())
                })
            })
            .collect()
    };
    wait_until(
        Duration::from_secs(60),
        "every count to match the model",
        || counts(&addr) == model,
    );
    // What the store does not hold, and questions it cannot answer.
    let (status, _, body) = get(&format!("http://{addr}/stores/counts/nobody"));
    assert_eq!(status, 404, "{body}");
    assert!(body["partition"].is_i64(), "{body}");
    let (status, _, body) = get(&format!("http://{addr}/stores/nope/k1"));
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("counts"), "{body}");
    let (status, _, body) = get(&format!("http://{addr}/stores/counts/k1?from=0&to=5"));
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = get(&format!("http://{addr}/stores/counts/k1?from=soon"));
    assert_eq!(status, 400, "{body}");
    // A base64 key reads the same entry.
    let (status, _, body) = get(&format!("http://{addr}/stores/counts/azE=?encoding=base64"));
    assert_eq!(
        (status, body["value"].as_i64()),
        (200, Some(model["k1"])),
        "{body}"
    );
    // Records in and out of every node, host steps included; the counts
    // leave through the cache at a commit.
    let node = |dir: &str, name: &str| {
        let metrics = get_text(&addr, "/metrics").1;
        metric(
            &metrics,
            &format!("eddy_node_records_{dir}_total{{node=\"{name}\"}}"),
        )
        .unwrap_or_else(|| panic!("no {dir} count for {name} in\n{metrics}"))
    };
    assert_eq!(node("in", "by-key"), records.len() as f64);
    assert_eq!(node("out", "by-key"), records.len() as f64);
    assert_eq!(node("in", "counts"), records.len() as f64);
    wait_until(Duration::from_secs(30), "the counts emitted", || {
        node("out", "counts") >= model.len() as f64
    });
    assert!(node("out", "counts") <= records.len() as f64);
    assert!(eddy.stop());

    // In-memory stores restore from their changelogs at every start: once
    // ready, with no new input, the counts are all there.
    let (eddy, addr) = start_with_admin(eddy_bin(), &spec);
    wait_until(
        Duration::from_secs(60),
        "readyz to answer 200 again",
        || ready(&addr).is_some(),
    );
    assert_eq!(counts(&addr), model);
    assert!(eddy.stop());
}

#[test]
fn a_key_windows_are_answered_for_a_time_range() {
    let topics = Topics::create(&[("q-win-in", 4), ("q-win-out", 4)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let dir = tempfile::tempdir().unwrap();
    let app = unique("q-win");
    let spec = spec(
        dir.path(),
        &app,
        input,
        output,
        "[[steps]]\nname = \"per-minute\"\nop = \"count\"\nwindow = { kind = \"tumbling\", size = \"1m\", grace = \"10m\" }",
        "rocksdb",
    );
    let records = sample();
    // key -> window start -> count
    let mut model: BTreeMap<String, BTreeMap<i64, i64>> = BTreeMap::new();
    for (k, ts) in &records {
        *model
            .entry(k.clone())
            .or_default()
            .entry(ts - ts % MINUTE)
            .or_default() += 1;
    }
    feed(input, &records);
    let (eddy, addr) = start_with_admin(eddy_bin(), &spec);
    let windows = |k: &str, query: &str| -> Option<BTreeMap<i64, i64>> {
        let (status, _, body) = get(&format!("http://{addr}/stores/per-minute/{k}{query}"));
        assert!(
            status == 200 || status == 503,
            "{k}{query}: {status} {body}"
        );
        (status == 200).then(|| {
            body["windows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| {
                    assert_eq!(
                        w["end"].as_i64().unwrap() - w["start"].as_i64().unwrap(),
                        MINUTE
                    );
                    (w["start"].as_i64().unwrap(), w["value"].as_i64().unwrap())
                })
                .collect()
        })
    };
    wait_until(
        Duration::from_secs(60),
        "every key's windows to match",
        || {
            model
                .iter()
                .all(|(k, w)| windows(k, "").as_ref() == Some(w))
        },
    );
    // Ranges of window starts, inclusive at both ends.
    for (from, to) in [
        (BASE + MINUTE, BASE + 3 * MINUTE),
        (BASE + MINUTE + 1, BASE + 2 * MINUTE),
        (BASE, BASE),
        (0, BASE - 1),
        (BASE + 10 * MINUTE, BASE + 20 * MINUTE),
    ] {
        for (k, w) in &model {
            let want: BTreeMap<i64, i64> = w.range(from..=to).map(|(s, c)| (*s, *c)).collect();
            assert_eq!(
                windows(k, &format!("?from={from}&to={to}")),
                Some(want),
                "{k} in {from}..={to}"
            );
        }
    }
    let (status, _, body) = get(&format!("http://{addr}/stores/per-minute/k1?from=10&to=5"));
    assert_eq!(
        status, 400,
        "an empty range is refused, not a crash: {body}"
    );
    assert!(windows("k1", "").is_some(), "the instance still answers");
    let (status, _, body) = get(&format!("http://{addr}/stores/per-minute/nobody"));
    assert_eq!(
        (status, body["windows"].clone()),
        (200, serde_json::json!([]))
    );
    assert!(eddy.stop());
}

#[test]
fn a_key_owned_by_another_instance_is_redirected_to_it() {
    let topics = Topics::create(&[("q-two-in", 4), ("q-two-out", 4)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let app = unique("q-two");
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let step = "[[steps]]\nname = \"counts\"\nop = \"count\"";
    let specs: Vec<String> = dirs
        .iter()
        .map(|d| spec(d.path(), &app, input, output, step, "rocksdb"))
        .collect();
    let records = sample();
    let mut model: BTreeMap<String, i64> = BTreeMap::new();
    for (k, _) in &records {
        *model.entry(k.clone()).or_default() += 1;
    }
    feed(input, &records);
    let (a, a_addr) = start_with_admin(eddy_bin(), &specs[0]);
    let (b, b_addr) = start_with_admin(eddy_bin(), &specs[1]);
    // Both ready, the 4 tasks split between them.
    wait_until(
        Duration::from_secs(90),
        "both instances ready with 2 tasks each",
        || match (ready(&a_addr), ready(&b_addr)) {
            (Some(x), Some(y)) => {
                x["tasks"].as_array().unwrap().len() == 2
                    && y["tasks"].as_array().unwrap().len() == 2
            }
            _ => false,
        },
    );
    let (mut here, mut redirected) = (0, 0);
    wait_until(
        Duration::from_secs(60),
        "every count to be answered through instance a",
        || {
            here = 0;
            redirected = 0;
            model.iter().all(|(k, want)| {
                let (status, location, body) = get(&format!("http://{a_addr}/stores/counts/{k}"));
                let (status, body) = match status {
                    307 => {
                        let location = location.unwrap();
                        assert_eq!(location, format!("http://{b_addr}/stores/counts/{k}"));
                        assert_eq!(body["owner"]["admin"], b_addr.as_str(), "{body}");
                        redirected += 1;
                        let (status, _, body) = get(&location);
                        (status, body)
                    }
                    _ => {
                        here += 1;
                        (status, body)
                    }
                };
                status == 200 && body["value"].as_i64() == Some(*want)
            })
        },
    );
    assert!(
        here > 0 && redirected > 0,
        "here {here}, redirected {redirected}"
    );
    assert!(a.stop());
    assert!(b.stop());
}
