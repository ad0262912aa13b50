//! Joins on a real broker, eddy against Kafka Streams (Java), same broker,
//! data, guarantee (at-least-once), commit interval (1 s), cache (10 MiB),
//! threads (2) and partitions (4):
//!
//! - **enrich**: a stream–table left join. 10,000 customers (a table) are
//!   read first; then RECORDS orders (default 1 M, JSON objects keyed by
//!   customer) are produced while the app runs, after a warm-up of
//!   RECORDS / 5 orders, and the pass lasts until the app has committed
//!   them all. The order gets its customer's row under "customer": eddy's
//!   built-in `merge`, Jackson in Kafka Streams (as its users would write
//!   it).
//! - **window**: a stream–stream inner join of RECORDS / 2 impressions with
//!   RECORDS / 2 clicks keyed by 50,000 ad ids, within 10 s either way
//!   (grace 15 min, longer than the data's ten minutes, so that the result
//!   does not depend on which input a system reads first), keeping the
//!   click. Both inputs are there before the app starts; Kafka Streams
//!   first processes them once under another application id (warm-up).
//!
//! Both systems' outputs must be the same records (values compared as JSON).
//! Run: `scripts/kafka start && cargo run -p eddy-bench --bin
//! joins` (RECORDS, RUNS; ONLY=enrich or ONLY=window; EDDY_ONLY=1 runs
//! eddy alone and EDDY_BENCH_PERF=<file> samples its window pass with
//! `perf record`). Prints one table row per run.

use eddy_e2e::{
    Topics, bootstrap, committed, consume, located_eddy_bin as eddy_bin, produce, root,
    total_records, unique, wait_until,
};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod measure;
use measure::{Measured, caught_up, cpu_seconds, ends, stop};

const PARTITIONS: i32 = 4;
const CUSTOMERS: usize = 10_000;
const ADS: usize = 50_000;
const BASE_TS: i64 = 1_700_000_000_000;

/// The app under test.
enum App {
    Eddy,
    KafkaStreams,
}

/// Starts `app` on the pipeline; returns it with its group id once it is
/// past its warm-up (Kafka Streams prints when).
fn start(
    app: &App,
    pipeline: &str,
    inputs: [&str; 2],
    output: &str,
    expect: usize,
) -> (Child, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let group = unique(&format!("bench-{pipeline}"));
    match app {
        App::Eddy => {
            let (right_as, step) = if pipeline == "enrich" {
                (
                    "table",
                    "kind = \"left\"\njoiner = \"merge\"\nas = \"customer\"",
                )
            } else {
                (
                    "stream",
                    "joiner = \"right\"\nwindow = { difference = \"10s\", grace = \"15m\" }",
                )
            };
            let spec = format!(
                "application_id = \"{group}\"\n\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\n[runtime]\nworkers = 2\ncommit_interval = \"1s\"\n\n[state]\ndir = \"state\"\n\n\
                 [[sources]]\ntopic = \"{}\"\n\n[[sources]]\ntopic = \"{}\"\nas = \"{right_as}\"\n\n\
                 [[steps]]\nname = \"join\"\nop = \"join\"\nleft = \"{}\"\nright = \"{}\"\n{step}\n\n[[sinks]]\ntopic = \"{output}\"\n",
                bootstrap(),
                inputs[0],
                inputs[1],
                inputs[0],
                inputs[1],
            );
            let path = dir.path().join("pipeline.toml");
            std::fs::write(&path, spec).unwrap();
            let child = Command::new(eddy_bin())
                .args(["run", path.to_str().unwrap()])
                .env("EDDY_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            (child, group, dir)
        }
        App::KafkaStreams => {
            let mut args = vec![
                "--bootstrap".to_string(),
                bootstrap(),
                "--app-id".into(),
                group.clone(),
                "--input".into(),
                inputs[0].into(),
                "--right".into(),
                inputs[1].into(),
                "--output".into(),
                output.into(),
                "--pipeline".into(),
                if pipeline == "enrich" {
                    "enrich"
                } else {
                    "window-join"
                }
                .into(),
                "--cache-bytes".into(),
                (10u64 << 20).to_string(),
                "--commit-ms".into(),
                "1000".into(),
                "--threads".into(),
                "2".into(),
                "--state-dir".into(),
                dir.path().to_str().unwrap().into(),
                "--window-ms".into(),
                "10000".into(),
                "--grace-ms".into(),
                "900000".into(),
                "--expect".into(),
                expect.to_string(),
                // Enrich is fed in phases: the app must not leave in between.
                // The window warm-up ends when its input has been idle 3 s.
                "--idle-exit-ms".into(),
                if pipeline == "enrich" {
                    "600000"
                } else {
                    "3000"
                }
                .into(),
            ];
            if pipeline == "window" {
                args.push("--warmup".into());
            }
            let mut child = Command::new(root().join("bench/kstreams/run"))
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            if pipeline == "window" {
                // The measured pass starts after the warm-up.
                measure::wait_for_measuring(&mut child);
            }
            (child, group, dir)
        }
    }
}

/// The i-th order: keyed by a customer (a fifth of them unknown).
fn order(i: usize) -> (Vec<u8>, Vec<u8>) {
    let c = (i * 7_919) % (CUSTOMERS + CUSTOMERS / 4);
    let key = format!("c-{c:05}").into_bytes();
    let value = format!("{{\"order\":{i},\"amount\":{}.{:02}}}", i % 500, i % 100).into_bytes();
    (key, value)
}

fn send_orders(topic: &str, range: std::ops::Range<usize>) {
    let rows: Vec<(Vec<u8>, Vec<u8>)> = range.clone().map(order).collect();
    produce(
        topic,
        rows.iter().zip(range).map(|((k, v), i)| {
            (
                None,
                Some(&k[..]),
                Some(&v[..]),
                BASE_TS + 1_000 + i as i64,
                &[][..],
            )
        }),
    );
}

/// One enrich pass of `app`: its own orders topic, fed live.
fn enrich(app: &App, customers: &str, n: usize) -> (Measured, Topics) {
    let t = Topics::create(&[("bench-orders", PARTITIONS), ("bench-enriched", PARTITIONS)]);
    let (orders, out) = (&t.names[0], &t.names[1]);
    let warm = n / 5;
    let (mut child, group, _dir) = start(app, "enrich", [orders, customers], out, warm + n);
    let table_end = ends(customers, PARTITIONS);
    wait_until(Duration::from_secs(300), "the customers read", || {
        caught_up(&group, customers, &table_end)
    });
    send_orders(orders, 0..warm);
    let end = ends(orders, PARTITIONS);
    wait_until(Duration::from_secs(600), "the warm-up orders", || {
        caught_up(&group, orders, &end)
    });
    let (start, cpu0) = (Instant::now(), cpu_seconds(child.id()));
    send_orders(orders, warm..warm + n);
    let end = ends(orders, PARTITIONS);
    wait_until(Duration::from_secs(900), "every order", || {
        caught_up(&group, orders, &end)
    });
    let m = Measured {
        secs: start.elapsed().as_secs_f64(),
        cpu: cpu_seconds(child.id()) - cpu0,
    };
    stop(&mut child);
    (m, t)
}

/// One window pass of `app` over the shared inputs.
fn window(app: &App, inputs: [&str; 2], n: usize) -> (Measured, Topics) {
    let t = Topics::create(&[("bench-attributed", PARTITIONS)]);
    let out = t.names[0].clone();
    let (mut child, group, _dir) = start(app, "window", inputs, &out, n / 2);
    let (start, cpu0) = (Instant::now(), cpu_seconds(child.id()));
    let ends_of = [ends(inputs[0], PARTITIONS), ends(inputs[1], PARTITIONS)];
    // EDDY_BENCH_PERF=<file>: sample eddy once it has committed (all its
    // threads exist by then).
    let sampled = matches!(app, App::Eddy) && std::env::var("EDDY_BENCH_PERF").is_ok();
    if sampled {
        wait_until(Duration::from_secs(300), "eddy's first commit", || {
            committed(&group, inputs[0], PARTITIONS)
                .iter()
                .any(Option::is_some)
        });
    }
    let perf = sampled.then(|| measure::Perf::start(child.id()));
    wait_until(Duration::from_secs(900), "both inputs", || {
        caught_up(&group, inputs[0], &ends_of[0]) && caught_up(&group, inputs[1], &ends_of[1])
    });
    let m = Measured {
        secs: start.elapsed().as_secs_f64(),
        cpu: cpu_seconds(child.id()) - cpu0,
    };
    drop(perf);
    stop(&mut child);
    (m, t)
}

/// A topic's distinct records as sorted (key, value as JSON text,
/// timestamp): Kafka Streams' warm-up pass writes every result once more,
/// and at-least-once allows duplicates.
fn contents(topic: &str) -> Vec<(Vec<u8>, String, i64)> {
    let n = total_records(topic, PARTITIONS) as usize;
    let mut got: Vec<_> = consume(topic, PARTITIONS, n, Duration::from_secs(300))
        .into_iter()
        .map(|g| {
            let v = g.value.unwrap_or_default();
            let v = serde_json::from_slice::<serde_json::Value>(&v).map_or_else(
                |_| String::from_utf8_lossy(&v).into_owned(),
                |j| j.to_string(),
            );
            (g.key.unwrap_or_default(), v, g.timestamp)
        })
        .collect();
    got.sort();
    got.dedup();
    got
}

fn main() {
    let n = measure::env_number("RECORDS", 1_000_000);
    let runs = measure::env_number("RUNS", 1);
    let only = std::env::var("ONLY").unwrap_or_default();
    println!("{n} records, {PARTITIONS} partitions; commit interval 1 s; cache 10 MiB; 2 threads");
    println!(
        "| pipeline | run | eddy s | eddy rec/s | eddy CPU s/M | KS s | KS rec/s | KS CPU s/M | eddy/KS (rec/s) | same results |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let per_m = |cpu: f64| cpu * 1_000_000.0 / n as f64;
    let row = |name: &str, run: usize, e: &Measured, k: &Measured, same: bool| {
        println!(
            "| {name} | {run} | {:.1} | {:.0} | {:.1} | {:.1} | {:.0} | {:.1} | {:.2} | {} |",
            e.secs,
            n as f64 / e.secs,
            per_m(e.cpu),
            k.secs,
            n as f64 / k.secs,
            per_m(k.cpu),
            k.secs / e.secs,
            if same { "yes" } else { "NO" }
        );
    };
    // EDDY_ONLY=1: eddy's side alone, for profiling; not a comparison.
    let eddy_only = std::env::var("EDDY_ONLY").is_ok_and(|v| v == "1");
    let eddy_row = |name: &str, run: usize, e: &Measured| {
        println!(
            "| {name} | {run} | {:.1} | {:.0} | {:.1} | | | | | |",
            e.secs,
            n as f64 / e.secs,
            per_m(e.cpu)
        );
    };
    if only.is_empty() || only == "enrich" {
        let t = Topics::create(&[("bench-customers", PARTITIONS)]);
        let customers = &t.names[0];
        let rows: Vec<(Vec<u8>, Vec<u8>)> = (0..CUSTOMERS)
            .map(|c| {
                let tier = ["gold", "silver", "bronze"][c % 3];
                (
                    format!("c-{c:05}").into_bytes(),
                    format!("{{\"name\":\"customer {c}\",\"tier\":\"{tier}\"}}").into_bytes(),
                )
            })
            .collect();
        produce(
            customers,
            rows.iter()
                .map(|(k, v)| (None, Some(&k[..]), Some(&v[..]), BASE_TS, &[][..])),
        );
        for run in 1..=runs {
            let (e, eo) = enrich(&App::Eddy, customers, n);
            if eddy_only {
                eddy_row("stream–table enrich", run, &e);
                continue;
            }
            let (k, ko) = enrich(&App::KafkaStreams, customers, n);
            let same = contents(&eo.names[1]) == contents(&ko.names[1]);
            row("stream–table enrich", run, &e, &k, same);
        }
    }
    if only.is_empty() || only == "window" {
        let t = Topics::create(&[
            ("bench-impressions", PARTITIONS),
            ("bench-clicks", PARTITIONS),
        ]);
        let (imps, clicks) = (&t.names[0], &t.names[1]);
        let half = n / 2;
        let span = 600_000i64;
        let imp: Vec<(Vec<u8>, i64)> = (0..half)
            .map(|i| {
                (
                    format!("ad-{:05}", (i * 7_919) % ADS).into_bytes(),
                    BASE_TS + i as i64 * span / half as i64,
                )
            })
            .collect();
        let value = b"0123456789abcdef".to_vec();
        produce(
            imps,
            imp.iter()
                .map(|(k, ts)| (None, Some(&k[..]), Some(&value[..]), *ts, &[][..])),
        );
        let click_values: Vec<Vec<u8>> = (0..half)
            .map(|i| format!("click-{i:09}").into_bytes())
            .collect();
        produce(
            clicks,
            imp.iter()
                .zip(&click_values)
                .enumerate()
                .map(|(i, ((k, ts), v))| {
                    (
                        None,
                        Some(&k[..]),
                        Some(&v[..]),
                        ts + ((i * 7_919) % 15_000) as i64,
                        &[][..],
                    )
                }),
        );
        for run in 1..=runs {
            let (e, eo) = window(&App::Eddy, [imps, clicks], n);
            if eddy_only {
                eddy_row("stream–stream 10 s window", run, &e);
                continue;
            }
            let (k, ko) = window(&App::KafkaStreams, [imps, clicks], n);
            let same = contents(&eo.names[0]) == contents(&ko.names[0]);
            row("stream–stream 10 s window", run, &e, &k, same);
        }
    }
}
