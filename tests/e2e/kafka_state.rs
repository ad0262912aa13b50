//! State on a real broker: aggregations, repartitioning, changelogs and
//! restore.

use crate::eddy_bin;

use eddy_e2e::{
    Eddy, Got, Topics, bootstrap, committed, components, consume, produce, total_records, unique,
    wait_until, write_spec,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The last value per key in a topic (each key lives in one partition, in order).
fn latest(topic: &str, partitions: i32) -> BTreeMap<String, String> {
    let n = total_records(topic, partitions) as usize;
    let mut got: Vec<Got> = consume(topic, partitions, n, Duration::from_secs(30));
    got.sort_by_key(|g| (g.partition, g.offset));
    let mut out = BTreeMap::new();
    for g in got {
        out.insert(
            String::from_utf8(g.key.unwrap()).unwrap(),
            String::from_utf8(g.value.unwrap_or_default()).unwrap(),
        );
    }
    out
}

fn spec(
    dir: &Path,
    app: &str,
    source: &str,
    extra_source: &str,
    steps: &str,
    sink: &str,
) -> String {
    std::fs::copy(components::SUM, dir.join("sum.wasm")).unwrap();
    let text = format!(
        "application_id = \"{app}\"\n\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\n[runtime]\nworkers = 2\ncommit_interval = \"300ms\"\n\n[state]\ndir = \"state\"\n\n[[sources]]\ntopic = \"{source}\"\n{extra_source}\n\n{steps}\n\n[[sinks]]\ntopic = \"{sink}\"\n",
        bootstrap()
    );
    write_spec(dir, &text).to_str().unwrap().to_string()
}

/// Like [`spec`], with the write cache off.
fn uncached_spec(dir: &Path, app: &str, source: &str, steps: &str, sink: &str) -> String {
    let spec = spec(dir, app, source, "", steps, sink);
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("[state]", "[state]\ncache_size = \"0\"");
    std::fs::write(&spec, text).unwrap();
    spec
}

/// A record for `produce`: (partition, key, value, timestamp, headers).
type Input<'a> = (
    Option<i32>,
    Option<&'a [u8]>,
    Option<&'a [u8]>,
    i64,
    &'a [(String, Option<Vec<u8>>)],
);

/// (key, value, timestamp) records, each to its key's partition.
fn kv(records: &[(String, String, i64)]) -> impl Iterator<Item = Input<'_>> {
    records
        .iter()
        .map(|(k, v, ts)| (None, Some(k.as_bytes()), Some(v.as_bytes()), *ts, &[][..]))
}

#[test]
fn summed_as_a_stream_gives_7_as_a_table_gives_5_on_the_broker() {
    for (read_as, want) in [
        ("stream", vec!["2.0", "7.0"]),
        ("table", vec!["2.0", "5.0"]),
    ] {
        let topics = Topics::create(&[("duality-in", 1), ("duality-out", 1)]);
        let (input, output) = (&topics.names[0], &topics.names[1]);
        let dir = tempfile::tempdir().unwrap();
        let steps = "[[steps]]\nname = \"by-key\"\nop = \"group_by_key\"\n\n[[steps]]\nname = \"sum\"\nop = \"aggregate\"\ncomponent = \"sum.wasm\"";
        let spec = spec(
            dir.path(),
            &unique("duality"),
            input,
            &format!("as = \"{read_as}\""),
            steps,
            output,
        )
        .to_string();
        let text = std::fs::read_to_string(&spec)
            .unwrap()
            .replace("[state]", "[state]\ncache_size = \"0\"");
        std::fs::write(&spec, text).unwrap();
        let records = vec![
            ("k1".to_string(), "2".to_string(), 1),
            ("k1".to_string(), "5".to_string(), 2),
        ];
        produce(input, kv(&records));
        let eddy = Eddy::start(eddy_bin(), &["run", &spec]);
        wait_until(Duration::from_secs(90), "two results", || {
            total_records(output, 1) >= 2
        });
        assert!(eddy.stop());
        let got = consume(output, 1, 2, Duration::from_secs(10));
        let values: Vec<String> = got
            .iter()
            .map(|g| String::from_utf8(g.value.clone().unwrap()).unwrap())
            .collect();
        assert_eq!(values, want, "read as a {read_as}");
    }
}

#[test]
fn group_by_a_new_key_over_four_partitions_matches_the_model() {
    let topics = Topics::create(&[("regroup-in", 4), ("regroup-out", 4)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let dir = tempfile::tempdir().unwrap();
    let app = unique("regroup");
    let steps = "[[steps]]\nname = \"by-region\"\nop = \"group_by\"\nkey = \"/region\"\n\n[[steps]]\nname = \"count\"\nop = \"count\"";
    let spec = spec(dir.path(), &app, input, "", steps, output);
    let regions = ["eu", "us", "apac", "latam", "africa"];
    let mut model: BTreeMap<String, u64> = BTreeMap::new();
    let mut records = Vec::new();
    for i in 0..5_000usize {
        let region = regions[(i * 7 + i / 13) % regions.len()];
        *model.entry(region.to_string()).or_default() += 1;
        records.push((
            format!("user-{}", i % 97),
            format!("{{\"region\":\"{region}\",\"n\":{i}}}"),
            i as i64,
        ));
    }
    produce(input, kv(&records));
    let eddy = Eddy::start(eddy_bin(), &["run", &spec]);
    let want: BTreeMap<String, String> = model
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    wait_until(Duration::from_secs(120), "counts per region", || {
        latest(output, 4) == want
    });
    assert!(eddy.stop());
    // The repartition topic was created by eddy with the sources' partitions.
    assert_eq!(
        total_records(&format!("{app}-by-region-repartition"), 4),
        5_000
    );
}

/// Records restored by a run: the sum over its tasks' "restored" log
/// lines (one per task, so at least one must be there).
fn restored(eddy: &Eddy, tasks: usize) -> u64 {
    eddy.wait_for_log("restored task=", Duration::from_secs(30));
    let lines = eddy.log.lock().unwrap().clone();
    let counts: Vec<u64> = lines
        .iter()
        .filter(|l| l.contains("restored task=") && l.contains(" records="))
        .map(|l| {
            let at = l.find(" records=").unwrap() + " records=".len();
            l[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .collect();
    assert_eq!(
        counts.len(),
        tasks,
        "one restore line per task in {lines:#?}"
    );
    counts.iter().sum()
}

#[test]
fn counts_continue_after_restarts_from_checkpoint_or_changelog() {
    let topics = Topics::create(&[("restore-in", 2), ("restore-out", 2)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let dir = tempfile::tempdir().unwrap();
    let app = unique("restore");
    let steps = "[[steps]]\nname = \"by-key\"\nop = \"group_by_key\"\n\n[[steps]]\nname = \"counts\"\nop = \"count\"";
    let spec = spec(dir.path(), &app, input, "", steps, output);
    let keys: Vec<String> = (0..50).map(|k| format!("key-{k}")).collect();
    let mut model: BTreeMap<String, u64> = BTreeMap::new();
    let round = |n: usize, offset: usize, model: &mut BTreeMap<String, u64>| {
        let records: Vec<(String, String, i64)> = (0..n)
            .map(|i| {
                let k = keys[(i * 31 + offset) % keys.len()].clone();
                *model.entry(k.clone()).or_default() += 1;
                (k, "x".to_string(), (offset + i) as i64)
            })
            .collect();
        produce(input, kv(&records));
    };
    let expect = |model: &BTreeMap<String, u64>| -> BTreeMap<String, String> {
        model
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    };

    // 1. A first run counts 2,000 records, then stops cleanly (checkpoint).
    round(2_000, 0, &mut model);
    let first = Eddy::start(eddy_bin(), &["run", &spec]);
    wait_until(Duration::from_secs(120), "first counts", || {
        latest(output, 2) == expect(&model)
    });
    assert_eq!(
        restored(&first, 2),
        0,
        "nothing to restore on a first start"
    );
    assert!(first.stop());
    let changelog = format!("{app}-counts-changelog");
    let logged = total_records(&changelog, 2);
    assert!(logged > 0, "the store writes to {changelog}");

    // 2. Restart with the state intact: nothing read back from the changelog.
    round(1_000, 2_000, &mut model);
    let second = Eddy::start(eddy_bin(), &["run", &spec]);
    wait_until(Duration::from_secs(120), "counts after a restart", || {
        latest(output, 2) == expect(&model)
    });
    assert_eq!(
        restored(&second, 2),
        0,
        "restored from the checkpoint, not from zero"
    );
    assert!(second.stop());

    // 3. Lose the local state: the counts come back from the changelog.
    std::fs::remove_dir_all(dir.path().join("state")).unwrap();
    round(1_000, 3_000, &mut model);
    let third = Eddy::start(eddy_bin(), &["run", &spec]);
    wait_until(
        Duration::from_secs(120),
        "counts after losing the state",
        || latest(output, 2) == expect(&model),
    );
    let n = restored(&third, 2);
    assert!(third.stop());
    assert!(
        n >= keys.len() as u64,
        "restored {n} records, at least one per key"
    );
    assert!(n <= total_records(&changelog, 2) as u64);
}

/// (partition, key, value) of an output record.
type Row = (i32, Option<Vec<u8>>, Option<Vec<u8>>);

fn eddy_reset(spec: &str, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(crate::eddy_bin())
        .args(["reset", spec])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_reset_application_gives_the_same_results_again() {
    let topics = Topics::create(&[("reset-in", 2), ("reset-out", 2)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let dir = tempfile::tempdir().unwrap();
    let app = unique("reset");
    let steps = "[[steps]]\nname = \"by-key\"\nop = \"group_by\"\nkey = \"/k\"\n\n[[steps]]\nname = \"counts\"\nop = \"count\"";
    let spec = uncached_spec(dir.path(), &app, input, steps, output);
    let records: Vec<(String, String, i64)> = (0..600)
        .map(|i| {
            (
                format!("r{i}"),
                format!("{{\"k\":\"g{}\"}}", i % 7),
                i as i64,
            )
        })
        .collect();
    produce(input, kv(&records));
    let run = || {
        let before = total_records(output, 2);
        let eddy = Eddy::start(eddy_bin(), &["run", &spec]);
        wait_until(Duration::from_secs(120), "600 counts", || {
            total_records(output, 2) >= before + 600
        });
        // While it runs, a reset is refused.
        let refused = eddy_reset(&spec, &[]);
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("still active"));
        assert!(eddy.stop());
        let mut got = consume(output, 2, (before + 600) as usize, Duration::from_secs(30));
        got.sort_by_key(|g| (g.partition, g.offset));
        got.into_iter()
            .map(|g| (g.partition, g.key, g.value))
            .collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first.len(), 600);

    let dry = eddy_reset(&spec, &["--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let said = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        said.contains(&format!(
            "would: delete internal topic {app}-by-key-repartition"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "would: delete internal topic {app}-counts-changelog"
        )),
        "{said}"
    );
    assert!(said.contains("would: delete local state"), "{said}");
    assert!(
        said.contains(&format!("would: offset of {input}-0 for group {app}: 0")),
        "{said}"
    );

    let done = eddy_reset(&spec, &[]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(!dir.path().join("state").join(&app).exists());

    let both = run();
    assert_eq!(both.len(), 1200);
    // Per key (records of different input partitions interleave in the
    // repartition topic as they come, so only each key's order is fixed):
    // the second run's results repeat the first run's.
    let per_key = |records: &[Row]| {
        let mut m: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
        for (_, k, v) in records {
            m.entry(k.clone().unwrap())
                .or_default()
                .push(v.clone().unwrap());
        }
        m
    };
    let (first_runs, all_runs) = (per_key(&first), per_key(&both));
    assert_eq!(first_runs.len(), 7, "7 groups");
    for (key, values) in &first_runs {
        let all = &all_runs[key];
        assert_eq!(all.len(), 2 * values.len());
        assert_eq!(
            &all[values.len()..],
            &values[..],
            "{} after the reset",
            String::from_utf8_lossy(key)
        );
    }
}

#[test]
fn reset_to_a_time_moves_offsets_to_the_first_record_at_or_after_it() {
    let topics = Topics::create(&[("reset-time-in", 1), ("reset-time-out", 1)]);
    let (input, output) = (&topics.names[0], &topics.names[1]);
    let dir = tempfile::tempdir().unwrap();
    let app = unique("reset-time");
    let steps = "[[steps]]\nname = \"by-key\"\nop = \"group_by_key\"\n\n[[steps]]\nname = \"counts\"\nop = \"count\"";
    let spec = uncached_spec(dir.path(), &app, input, steps, output);
    // Record i at time 1,000 + 10·i: time 1,500 is record 50's.
    let records: Vec<(String, String, i64)> = (0..100)
        .map(|i| ("k".to_string(), format!("v{i}"), 1_000 + 10 * i as i64))
        .collect();
    produce(input, kv(&records));
    let eddy = Eddy::start(eddy_bin(), &["run", &spec]);
    wait_until(Duration::from_secs(120), "the input committed", || {
        committed(&app, input, 1) == [Some(100)]
    });
    assert!(eddy.stop());

    let dry = eddy_reset(&spec, &["--dry-run", "--to-time", "1495"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let said = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        said.contains(&format!("would: offset of {input}-0 for group {app}: 50")),
        "{said}"
    );
    assert_eq!(
        committed(&app, input, 1),
        [Some(100)],
        "a dry run moves nothing"
    );
    let done = eddy_reset(&spec, &["--to-time", "1495"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(committed(&app, input, 1), [Some(50)]);

    // The rerun counts from an empty store, from record 50 on.
    let eddy = Eddy::start(eddy_bin(), &["run", &spec]);
    wait_until(Duration::from_secs(120), "150 counts", || {
        total_records(output, 1) >= 150
    });
    assert!(eddy.stop());
    let got = consume(output, 1, 150, Duration::from_secs(30));
    let rerun: Vec<String> = got[100..]
        .iter()
        .map(|g| String::from_utf8(g.value.clone().unwrap()).unwrap())
        .collect();
    let want: Vec<String> = (1..=50).map(|i| i.to_string()).collect();
    assert_eq!(rerun, want);
}
