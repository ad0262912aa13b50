//! Hot reload on a real broker: new operator versions swapped in while
//! records flow, through the admin API, `eddy reload` and the file on disk;
//! every record processed by exactly one version, the switch monotonic per
//! partition; refused reloads leave the running version.

use crate::eddy_bin;

use eddy_e2e::{
    Eddy, Topics, agent, bootstrap, components, consume, get_text, metric, produce,
    start_with_admin, unique, write_spec,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const STAMP: &[u8] = b"stamp-0000000000";

/// The stamp component with its stamp set to `n`: a new version.
pub(crate) fn stamped(n: u32) -> Vec<u8> {
    let mut bytes = std::fs::read(components::STAMP).unwrap();
    let at: Vec<usize> = bytes
        .windows(STAMP.len())
        .enumerate()
        .filter(|(_, w)| *w == STAMP)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "the stamp appears once in the component");
    let new = format!("stamp-{n:010}");
    bytes[at[0]..at[0] + STAMP.len()].copy_from_slice(new.as_bytes());
    bytes
}

pub(crate) fn spec(dir: &Path, app: &str, input: &str, output: &str, admin: &str) -> String {
    std::fs::write(dir.join("stamp.wasm"), stamped(0)).unwrap();
    let text = format!(
        "application_id = \"{app}\"\n\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\n[runtime]\nworkers = 2\nbatch_size = 64\ncommit_interval = \"500ms\"\n\n{admin}\n\n[[sources]]\ntopic = \"{input}\"\n\n[[steps]]\nname = \"stamp\"\ncomponent = \"stamp.wasm\"\nsettings = {{ label = \"x\" }}\n\n[[sinks]]\ntopic = \"{output}\"\n",
        bootstrap()
    );
    write_spec(dir, &text).to_str().unwrap().to_string()
}

/// POSTs a component; returns the status and the JSON answer.
pub(crate) fn post(
    addr: &str,
    name: &str,
    bytes: &[u8],
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut req = agent()
        .post(format!("http://{addr}/operators/{name}"))
        .header("Content-Type", "application/wasm");
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut res = req.send(bytes).unwrap();
    let status = res.status().as_u16();
    let body = res.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// Writes `bytes` to `file` and reloads operator `stamp` from it with
/// `eddy reload`; returns the JSON answer, failing if the reload fails.
pub(crate) fn eddy_reload(file: &Path, bytes: &[u8], addr: &str) -> serde_json::Value {
    std::fs::write(file, bytes).unwrap();
    let out = std::process::Command::new(eddy_bin())
        .args(["reload", "stamp"])
        .arg(file)
        .args(["--admin", addr])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub(crate) fn running_version(addr: &str) -> String {
    let mut res = agent()
        .get(format!("http://{addr}/operators"))
        .call()
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    v[0]["version"].as_str().unwrap().to_string()
}

/// The per-worker pauses of a reload answer, µs.
fn pauses(answer: &serde_json::Value) -> Vec<u64> {
    answer["pauses_us"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect()
}

/// The stamp number of an output value `<input>|stamp-<n>`.
fn stamp_of(value: &[u8]) -> (String, u32) {
    let text = String::from_utf8(value.to_vec()).unwrap();
    let (input, stamp) = text.rsplit_once("|stamp-").unwrap();
    (input.to_string(), stamp.parse().unwrap())
}

#[test]
fn ten_swaps_under_load_process_every_record_once_and_switch_once_per_partition() {
    let topics = Topics::create(&[("reload-in", 4), ("reload-out", 4)]);
    let (input, output) = (topics.names[0].clone(), topics.names[1].clone());
    let dir = tempfile::tempdir().unwrap();
    let app = unique("reload");
    let spec = spec(dir.path(), &app, &input, &output, "");
    let (mut eddy, addr) = start_with_admin(eddy_bin(), &spec);
    let token = eddy_e2e::generated_token(&addr);

    // Records flow the whole time: chunks of 100 per partition, each
    // partition's records with one key, so its order survives to the output.
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let values: Vec<(i32, String)> = (0..400)
                    .map(|j| ((j % 4) as i32, format!("p{}-{:07}", j % 4, sent + j / 4)))
                    .collect();
                let keys: Vec<String> = (0..4).map(|p| format!("k{p}")).collect();
                produce(
                    &input,
                    values.iter().map(|(p, v)| {
                        (
                            Some(*p),
                            Some(keys[*p as usize].as_bytes()),
                            Some(v.as_bytes()),
                            1,
                            &[][..],
                        )
                    }),
                );
                sent += 100;
                std::thread::sleep(Duration::from_millis(20));
            }
            sent
        })
    };
    let seen_stamp = |n: u32| {
        eddy_e2e::wait_until(
            Duration::from_secs(60),
            &format!("output of version {n}"),
            || {
                let total = eddy_e2e::total_records(&output, 4) as usize;
                consume(&output, 4, total, Duration::from_secs(10))
                    .iter()
                    .any(|g| g.value.as_deref().is_some_and(|v| stamp_of(v).1 == n))
            },
        );
    };
    seen_stamp(0);
    let mut pauses_us: Vec<u64> = Vec::new();
    for n in 1..=10u32 {
        let bytes = stamped(n);
        let version = eddy::wasm::version_of(&bytes);
        match n % 3 {
            // Through the admin API.
            1 => {
                let (status, answer) = post(&addr, "stamp", &bytes, Some(&token));
                assert_eq!(status, 200, "{answer}");
                assert_eq!(answer["version"], version.as_str());
                pauses_us.extend(pauses(&answer));
            }
            // Through `eddy reload`.
            2 => {
                let file = dir.path().join(format!("v{n}.wasm"));
                let answer = eddy_reload(&file, &bytes, &addr);
                assert_eq!(answer["version"], version.as_str());
                pauses_us.extend(pauses(&answer));
            }
            // By replacing the file the spec names (as a build would).
            _ => {
                let tmp = dir.path().join("stamp.wasm.new");
                std::fs::write(&tmp, &bytes).unwrap();
                std::fs::rename(&tmp, dir.path().join("stamp.wasm")).unwrap();
                let line =
                    eddy.wait_for_log(&format!("version={version}"), Duration::from_secs(60));
                let list = line.rsplit("pauses_us=[").next().unwrap();
                let list = list.split(']').next().unwrap();
                pauses_us.extend(list.split(',').map(|p| p.trim().parse::<u64>().unwrap()));
            }
        }
        assert_eq!(running_version(&addr), version);
        seen_stamp(n);
    }
    stop.store(true, Ordering::Relaxed);
    let sent = feeder.join().unwrap();
    let total = sent * 4;
    eddy_e2e::wait_until(Duration::from_secs(120), "every record processed", || {
        eddy_e2e::total_records(&output, 4) as usize >= total
    });
    assert!(eddy.alive(), "the host stays up");
    assert!(eddy.stop());

    let got = consume(&output, 4, total, Duration::from_secs(60));
    assert_eq!(got.len(), total, "no record twice");
    // Per input partition: every record once, in order, versions never going back.
    let mut per_key: BTreeMap<Vec<u8>, Vec<(String, u32)>> = BTreeMap::new();
    let mut ordered = got;
    ordered.sort_by_key(|g| (g.partition, g.offset));
    for g in &ordered {
        per_key
            .entry(g.key.clone().unwrap())
            .or_default()
            .push(stamp_of(g.value.as_deref().unwrap()));
    }
    assert_eq!(per_key.len(), 4);
    for (key, records) in &per_key {
        let p = String::from_utf8_lossy(key)[1..].to_string();
        let inputs: Vec<String> = records.iter().map(|(i, _)| i.clone()).collect();
        let want: Vec<String> = (0..sent).map(|i| format!("p{p}-{i:07}")).collect();
        assert_eq!(
            inputs, want,
            "partition {p}: every record exactly once, in order"
        );
        let stamps: Vec<u32> = records.iter().map(|(_, s)| *s).collect();
        assert!(
            stamps.windows(2).all(|w| w[0] <= w[1]),
            "partition {p}: the switch is monotonic"
        );
    }
    pauses_us.sort_unstable();
    assert_eq!(pauses_us.len(), 20, "10 swaps on 2 workers");
    eprintln!(
        "swap pauses over 10 swaps × 2 workers: median {} µs, worst {} µs (all: {pauses_us:?})",
        pauses_us[pauses_us.len() / 2],
        pauses_us[pauses_us.len() - 1]
    );
}

#[test]
fn refused_reloads_leave_the_running_version_and_say_why() {
    let topics = Topics::create(&[("reload-bad-in", 1), ("reload-bad-out", 1)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let dir = tempfile::tempdir().unwrap();
    let app = unique("reload-bad");
    let token = "a-token-of-some-length";
    let spec = spec(
        dir.path(),
        &app,
        input,
        output,
        &format!("[admin]\nlisten = \"0.0.0.0:0\"\ntoken = \"{token}\""),
    );
    let eddy = Eddy::start(eddy_bin(), &["run", &spec]);
    let line = eddy.wait_for_log("admin API listening on http://", Duration::from_secs(60));
    let port = line.rsplit(':').next().unwrap().trim();
    let addr = format!("127.0.0.1:{port}");
    let before = running_version(&addr);
    assert_eq!(before, eddy::wasm::version_of(&stamped(0)));

    // Beyond loopback, changing anything needs the token.
    let (status, _) = post(&addr, "stamp", &stamped(1), None);
    assert_eq!(status, 401);
    let (status, _) = post(
        &addr,
        "stamp",
        &stamped(1),
        Some("wrong-token-of-some-length"),
    );
    assert_eq!(status, 403);

    let cases: [(&str, Vec<u8>, u16, &str); 4] = [
        (
            "stamp",
            b"not wasm at all".to_vec(),
            422,
            "is not a WebAssembly component",
        ),
        (
            "stamp",
            std::fs::read(components::SUM).unwrap(),
            422,
            "does not export `eddy:operator/processor@0.1.0#process`",
        ),
        (
            "stamp",
            std::fs::read(components::HOSTILE).unwrap(),
            422,
            "init failed",
        ),
        ("nope", stamped(1), 404, "no operator named `nope`"),
    ];
    for (name, bytes, want_status, want_msg) in cases {
        let (status, answer) = post(&addr, name, &bytes, Some(token));
        assert_eq!(status, want_status, "{answer}");
        let msg = answer["error"].as_str().unwrap();
        assert!(msg.contains(want_msg), "{msg}");
        assert_eq!(running_version(&addr), before, "the running version stays");
    }

    // The old version still processes records.
    produce(input, [(Some(0), None, Some(&b"x"[..]), 1, &[][..])]);
    let got = consume(output, 1, 1, Duration::from_secs(60));
    assert_eq!(got[0].value.as_deref(), Some(&b"x|stamp-0000000000"[..]));

    // With the token, a good version goes in.
    let (status, answer) = post(&addr, "stamp", &stamped(1), Some(token));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["previous"], before.as_str());
    assert_eq!(running_version(&addr), eddy::wasm::version_of(&stamped(1)));
    assert!(eddy.stop());
}

#[test]
fn the_admin_api_serves_health_topology_and_moving_metrics() {
    let topics = Topics::create(&[("admin-in", 2), ("admin-out", 2)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let dir = tempfile::tempdir().unwrap();
    let app = unique("admin");
    let spec = spec(dir.path(), &app, input, output, "");
    let (eddy, addr) = start_with_admin(eddy_bin(), &spec);
    assert_eq!(get_text(&addr, "/healthz"), (200, "ok\n".to_string()));

    let (status, json) = get_text(&addr, "/topology");
    assert_eq!(status, 200);
    let t: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(t["application_id"], app.as_str());
    assert_eq!(t["steps"][0]["name"], "stamp");
    assert_eq!(t["subtopologies"][0]["input"]["sources"][0], input.as_str());
    let (status, dot) = get_text(&addr, "/topology?format=dot");
    assert_eq!(status, 200);
    assert!(
        dot.starts_with("digraph") && dot.contains(&format!("\"topic:{input}\" -> \"step:stamp\"")),
        "{dot}"
    );

    let feed = |n: usize, from: usize| {
        let values: Vec<String> = (from..from + n).map(|i| format!("v{i}")).collect();
        produce(
            input,
            values
                .iter()
                .enumerate()
                .map(|(i, v)| (Some((i % 2) as i32), None, Some(v.as_bytes()), 1, &[][..])),
        );
    };
    let scrape = || get_text(&addr, "/metrics").1;
    let records_in = format!("eddy_records_in_total{{topic=\"{input}\"}}");
    let wait_for = |what: &str, want: f64| {
        eddy_e2e::wait_until(
            Duration::from_secs(60),
            &format!("{what} to reach {want}"),
            || metric(&scrape(), what).is_some_and(|v| v >= want),
        );
    };
    feed(100, 0);
    wait_for(&records_in, 100.0);
    let text = scrape();
    let version = eddy::wasm::version_of(&stamped(0));
    for (line, at_least) in [
        ("eddy_operator_records_in_total{operator=\"stamp\"}", 100.0),
        ("eddy_operator_records_out_total{operator=\"stamp\"}", 100.0),
        ("eddy_wasm_call_seconds_count{operator=\"stamp\"}", 1.0),
        ("eddy_batch_records_count", 1.0),
        ("eddy_batch_seconds_count", 1.0),
        (
            &format!("eddy_operator_version{{operator=\"stamp\",version=\"{version}\"}}"),
            1.0,
        ),
    ] {
        assert!(
            metric(&text, line).is_some_and(|v| v >= at_least),
            "{line} in\n{text}"
        );
    }
    wait_for(
        &format!("eddy_records_out_total{{topic=\"{output}\"}}"),
        100.0,
    );
    // Lag is reported per partition after a commit.
    wait_for(
        &format!("eddy_consumer_lag{{topic=\"{input}\",partition=\"0\"}}"),
        0.0,
    );
    // They move.
    feed(50, 100);
    wait_for(&records_in, 150.0);
    assert!(eddy.stop());
}
