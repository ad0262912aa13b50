//! Stateful pipelines on a real broker, eddy against Kafka Streams (Java):
//! a keyed count and a tumbling one-minute window count over RECORDS records
//! (default 1 M; 10,000 keys, 16-byte values, 4 partitions, timestamps over
//! ten minutes), with the write cache on (10 MiB) and off, the same commit
//! interval (1 s), at-least-once, on the same topics and data.
//!
//! Kafka Streams runs in one JVM: first a warm-up pass over the same input
//! under another application id, then the measured pass. A pass is done when
//! the group's committed offsets reach the end of the input; time and CPU
//! seconds (from /proc) cover the measured pass only. Both write counts as
//! decimal text and windowed keys as eddy's JSON, and the final count per
//! key of both outputs must agree.
//!
//! Run: `scripts/kafka start && cargo run -p eddy-bench --bin state`
//! (RECORDS, RUNS to change the defaults; ONLY=count or ONLY=window to run
//! one pipeline, CACHE=10MiB or CACHE=0 one cache setting; EDDY_ONLY=1 runs
//! eddy alone and EDDY_BENCH_PERF=<file> samples it with `perf record`).
//! Prints one table row per run.

use eddy_e2e::{
    Topics, bootstrap, committed, located_eddy_bin as eddy_bin, produce, root, unique, wait_until,
};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod measure;
use measure::{Measured, cpu_seconds, stop};

const PARTITIONS: i32 = 4;

fn caught_up(group: &str, topic: &str, end: &[i64]) -> bool {
    measure::caught_up(group, topic, end)
}

/// The last value per key of a topic.
fn latest(topic: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let n = eddy_e2e::total_records(topic, PARTITIONS) as usize;
    let mut got = eddy_e2e::consume(topic, PARTITIONS, n, Duration::from_secs(120));
    got.sort_by_key(|g| (g.partition, g.offset));
    got.into_iter()
        .filter_map(|g| Some((g.key?, g.value?)))
        .collect()
}

fn run_eddy(input: &str, output: &str, windowed: bool, cache: &str, end: &[i64]) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let app = unique("bench-eddy");
    let window = if windowed {
        "window = { kind = \"tumbling\", size = \"1m\" }\n"
    } else {
        ""
    };
    let spec = format!(
        "application_id = \"{app}\"\n\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n{}\n\n[runtime]\nworkers = 2\ncommit_interval = \"1s\"\n\n[state]\ndir = \"state\"\ncache_size = \"{cache}\"\n\n[[sources]]\ntopic = \"{input}\"\n\n[[steps]]\nname = \"by-key\"\nop = \"group_by_key\"\n\n[[steps]]\nname = \"counts\"\nop = \"count\"\n{window}\n[[sinks]]\ntopic = \"{output}\"\n",
        bootstrap(),
        std::env::var("EDDY_BENCH_KAFKA")
            .unwrap_or_default()
            .replace(';', "\n"),
    );
    let path = dir.path().join("pipeline.toml");
    std::fs::write(&path, spec).unwrap();
    let start = Instant::now();
    let mut child = Command::new(eddy_bin())
        .args(["run", path.to_str().unwrap()])
        .env(
            "EDDY_LOG",
            std::env::var("EDDY_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // EDDY_BENCH_PERF=<file>: sample eddy once its first offsets are
    // committed (all its threads exist by then).
    if std::env::var("EDDY_BENCH_PERF").is_ok() {
        wait_until(Duration::from_secs(300), "eddy's first commit", || {
            committed(&app, input, PARTITIONS)
                .iter()
                .any(Option::is_some)
        });
    }
    let perf = measure::Perf::start(child.id());
    wait_until(
        Duration::from_secs(900),
        "eddy to commit the whole input",
        || caught_up(&app, input, end),
    );
    let m = Measured {
        secs: start.elapsed().as_secs_f64(),
        cpu: cpu_seconds(child.id()),
    };
    drop(perf);
    stop(&mut child);
    m
}

fn run_kstreams(input: &str, output: &str, windowed: bool, cache: u64, end: &[i64]) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let app = unique("bench-ks");
    let mut child: Child = Command::new(root().join("bench/kstreams/run"))
        .args([
            "--bootstrap",
            &bootstrap(),
            "--app-id",
            &app,
            "--input",
            input,
            "--output",
            output,
            "--pipeline",
            if windowed { "window-count" } else { "count" },
            "--cache-bytes",
            &cache.to_string(),
            "--commit-ms",
            "1000",
            "--threads",
            "2",
            "--state-dir",
            dir.path().to_str().unwrap(),
            "--warmup",
            "--expect",
            &end.iter().sum::<i64>().to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // The measured pass starts when the app says so, after its warm-up.
    measure::wait_for_measuring(&mut child);
    let start = Instant::now();
    let cpu0 = cpu_seconds(child.id());
    wait_until(
        Duration::from_secs(900),
        "Kafka Streams to commit the whole input",
        || caught_up(&app, input, end),
    );
    let m = Measured {
        secs: start.elapsed().as_secs_f64(),
        cpu: cpu_seconds(child.id()) - cpu0,
    };
    stop(&mut child);
    m
}

fn main() {
    let n = measure::env_number("RECORDS", 1_000_000);
    let runs = measure::env_number("RUNS", 1);
    let topics = Topics::create(&[("state-bench-in", PARTITIONS)]);
    let input = &topics.names[0];
    let keys: Vec<Vec<u8>> = (0..10_000)
        .map(|k| format!("user-{k:05}").into_bytes())
        .collect();
    let value = b"0123456789abcdef".to_vec();
    let span_ms = 600_000i64;
    produce(
        input,
        (0..n).map(|i| {
            (
                None,
                Some(keys[(i * 7919) % keys.len()].as_slice()),
                Some(value.as_slice()),
                1_700_000_000_000 + (i as i64 * span_ms) / n as i64,
                &[][..],
            )
        }),
    );
    let end = measure::ends(input, PARTITIONS);
    println!(
        "{n} records, {} keys, {PARTITIONS} partitions; commit interval 1 s; cache 10 MiB or 0",
        keys.len()
    );
    println!(
        "| pipeline | cache | run | eddy s | eddy rec/s | eddy CPU s/M | KS s | KS rec/s | KS CPU s/M | eddy/KS (rec/s) | same results |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let only = std::env::var("ONLY").unwrap_or_default();
    let cache_only = std::env::var("CACHE").unwrap_or_default();
    // EDDY_ONLY=1: eddy's side alone, for profiling; not a comparison.
    let eddy_only = std::env::var("EDDY_ONLY").is_ok_and(|v| v == "1");
    for windowed in [false, true] {
        if (only == "count" && windowed) || (only == "window" && !windowed) {
            continue;
        }
        for (cache_name, cache_eddy, cache_ks) in [("10MiB", "10MiB", 10u64 << 20), ("0", "0", 0)] {
            if !cache_only.is_empty() && cache_only != cache_name {
                continue;
            }
            for run in 1..=runs {
                let outs = Topics::create(&[
                    ("state-bench-eddy", PARTITIONS),
                    ("state-bench-ks", PARTITIONS),
                ]);
                let e = run_eddy(input, &outs.names[0], windowed, cache_eddy, &end);
                let pipeline = if windowed {
                    "tumbling 1m count"
                } else {
                    "count"
                };
                let per_m = |cpu: f64| cpu * 1_000_000.0 / n as f64;
                let eddy_cols = format!(
                    "| {pipeline} | {cache_name} | {run} | {:.1} | {:.0} | {:.1} |",
                    e.secs,
                    n as f64 / e.secs,
                    per_m(e.cpu)
                );
                if eddy_only {
                    println!("{eddy_cols} - | - | - | - | - |");
                    continue;
                }
                let k = run_kstreams(input, &outs.names[1], windowed, cache_ks, &end);
                let same = latest(&outs.names[0]) == latest(&outs.names[1]);
                println!(
                    "{eddy_cols} {:.1} | {:.0} | {:.1} | {:.2} | {} |",
                    k.secs,
                    n as f64 / k.secs,
                    per_m(k.cpu),
                    k.secs / e.secs,
                    if same { "yes" } else { "NO" }
                );
            }
        }
    }
}
