//! Generated join cases: small key sets, time moving forward with
//! out-of-order bursts and very late records, timestamps on window bounds
//! ±1 ms, tombstones on tables, null keys and values, random windows
//! (asymmetric and with negative bounds too), caching on and off; for
//! foreign-key joins, left rows that change their foreign key often or
//! have none (missing, JSON null, not JSON) and primary keys whose byte
//! order is not their length order.

use super::{eddy, oracle, records};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Every join kind the generator covers: (shape, kind); a kind ending in
/// `+versioned` joins a versioned table (a random history).
const KINDS: &[(&str, &str)] = &[
    ("stream-stream", "inner"),
    ("stream-stream", "left"),
    ("stream-stream", "outer"),
    ("stream-table", "inner"),
    ("stream-table", "left"),
    ("stream-table", "inner+versioned"),
    ("stream-table", "left+versioned"),
    ("stream-globaltable", "inner"),
    ("stream-globaltable", "left"),
    ("table-table", "inner"),
    ("table-table", "left"),
    ("table-table", "outer"),
    ("foreign-key", "inner"),
    ("foreign-key", "left"),
];

/// The right table's keys in a foreign-key join, which the left values
/// point to at `/p`: "ab" shares a prefix with "a", and "1" is also
/// pointed to by the JSON number 1.
const FOREIGN_KEYS: [&str; 4] = ["a", "b", "ab", "1"];

/// SplitMix64: small, and the same cases on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A foreign-key join's left value: mostly `{"p":FK,"n":i}` with FK one of
/// the first `count` foreign keys, sometimes the number 1, and sometimes no
/// foreign key at all (`p` missing or null, or a value that is not JSON).
fn fk_value(rng: &mut Rng, count: usize, i: i64) -> String {
    match rng.below(100) {
        0..75 => {
            let fk = FOREIGN_KEYS[rng.below(count as u64) as usize];
            format!(r#"{{"p":"{fk}","n":{i}}}"#)
        }
        75..83 => format!(r#"{{"p":1,"n":{i}}}"#),
        83..89 => format!(r#"{{"n":{i}}}"#),
        89..95 => format!(r#"{{"p":null,"n":{i}}}"#),
        _ => format!("\"l{i}\""),
    }
}

/// One case: the oracle arguments (without `--input`) and the input lines.
pub fn case(shape: &str, kind: &str, seed: u64) -> (String, String) {
    let mut rng = Rng(seed);
    let (kind, versioned) = match kind.strip_suffix("+versioned") {
        Some(k) => (k, true),
        None => (kind, false),
    };
    let mut args = format!("--join {shape}:{kind} --left left --right right --sink out");
    if versioned {
        let history = [1, 5, 10, 30, 100][rng.below(5) as usize];
        let _ = write!(args, " --history {history}");
    }
    let (mut before, mut after) = (0, 0);
    if shape == "stream-stream" {
        before = rng.below(25) - 5;
        after = rng.below(25);
        if before + after < 0 {
            after = -before;
        }
        let grace = [0, 0, 5, 10, 20][rng.below(5) as usize];
        let _ = write!(
            args,
            " --window before:{before},after:{after},grace:{grace}"
        );
    }
    let foreign = shape == "foreign-key";
    if foreign {
        args.push_str(" --foreign-key /p");
    }
    if (shape == "table-table" || foreign) && rng.chance(30) {
        args.push_str(" --cache-bytes 10485760");
    }
    // A foreign-key join's left table is keyed by primary keys sorting
    // "p1" < "p10" < "p2" < "q" as bytes, its right by FOREIGN_KEYS.
    let keys = if foreign {
        ["p1", "p10", "p2", "q"]
    } else {
        ["a", "b", "c", "d"]
    };
    let key_count = 1 + rng.below(4) as usize;
    let fk_count = if foreign {
        1 + rng.below(4) as usize
    } else {
        0
    };
    let n = 6 + rng.below(30);
    let mut time = rng.below(20);
    let mut seen: Vec<i64> = Vec::new();
    let mut input = String::new();
    for i in 0..n {
        let ts = match rng.below(100) {
            0..60 => {
                time += rng.below(6);
                time
            }
            60..78 => time - rng.below(15),
            78..84 => time - 40 - rng.below(60),
            84..95 if !seen.is_empty() => {
                let at = seen[rng.below(seen.len() as u64) as usize];
                let bound = [before, -before, after, -after, 0][rng.below(5) as usize];
                at + bound + rng.below(3) - 1
            }
            _ => {
                time += 20 + rng.below(40);
                time
            }
        }
        .max(0);
        seen.push(ts);
        let left = rng.chance(50);
        let table = match shape {
            "table-table" | "foreign-key" => true,
            "stream-table" | "stream-globaltable" => !left,
            _ => false,
        };
        let key = if rng.chance(6) {
            "null".to_string()
        } else if foreign && !left {
            format!("\"{}\"", FOREIGN_KEYS[rng.below(fk_count as u64) as usize])
        } else {
            format!("\"{}\"", keys[rng.below(key_count as u64) as usize])
        };
        let value = if rng.chance(if table { 15 } else { 5 }) {
            "null".to_string()
        } else if foreign && left {
            fk_value(&mut rng, fk_count, i)
        } else {
            format!("\"{}{i}\"", if left { "l" } else { "r" })
        };
        let topic = if left { "left" } else { "right" };
        let _ = writeln!(
            input,
            r#"{{"topic":"{topic}","key":{key},"value":{value},"timestamp":{ts}}}"#
        );
    }
    (args, input)
}

#[test]
fn generated_join_cases_match_kafka_streams() {
    if std::env::var_os("EDDY_SKIP_ORACLE").is_some() {
        eprintln!("EDDY_SKIP_ORACLE set: not running Kafka Streams");
        return;
    }
    let per_kind: u64 = std::env::var("EDDY_JOIN_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let first: u64 = std::env::var("EDDY_JOIN_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let tmp = tempfile::tempdir().unwrap();
    let mut cases: Vec<(String, u64, PathBuf, String)> = Vec::new();
    for (shape, kind) in KINDS {
        for seed in first..first + per_kind {
            let (args, input) = case(shape, kind, seed);
            let path = tmp.path().join(format!("{shape}-{kind}-{seed}.jsonl"));
            std::fs::write(&path, input).unwrap();
            cases.push((format!("{shape}:{kind}"), seed, path, args));
        }
    }
    let runs: Vec<(PathBuf, String)> = cases.iter().map(|c| (c.2.clone(), c.3.clone())).collect();
    let expected = oracle(&runs, tmp.path());
    let kept = std::env::temp_dir().join("eddy-join-diffs");
    let mut differ = Vec::new();
    let work = tempfile::tempdir().unwrap();
    // The cases must exercise the joins: matches, results with a null
    // side, and tombstones all come out.
    let (mut with_output, mut null_side, mut tombstones) = (0, 0, 0);
    for ((kind, seed, input, args), want) in cases.iter().zip(expected) {
        let want = want.unwrap_or_else(|e| panic!("{kind} seed {seed}: Kafka Streams failed: {e}"));
        let recs = records(&want);
        with_output += usize::from(!recs.is_empty());
        for r in &recs {
            match &r["value"] {
                serde_json::Value::Null => tombstones += 1,
                v if v["left"].is_null() || v["right"].is_null() => null_side += 1,
                _ => {}
            }
        }
        let got = eddy(args, input, work.path()).unwrap_or_else(|e| format!("eddy failed: {e}"));
        if got.starts_with("eddy failed") || records(&got) != records(&want) {
            let dir = kept.join(format!("{}-{seed}", kind.replace(':', "-")));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(input, dir.join("input.jsonl")).unwrap();
            std::fs::write(dir.join("args"), args).unwrap();
            std::fs::write(dir.join("expected.jsonl"), &want).unwrap();
            std::fs::write(dir.join("eddy.jsonl"), &got).unwrap();
            differ.push(format!("{kind} seed {seed} (kept in {})", dir.display()));
        }
    }
    assert!(
        with_output * 10 >= cases.len() * 7 && null_side > 0 && tombstones > 0,
        "the generated cases are too tame: {with_output} of {} give output, {null_side} results with a null side, {tombstones} tombstones",
        cases.len()
    );
    assert!(
        differ.is_empty(),
        "{} of {} generated cases differ from Kafka Streams:\n{}",
        differ.len(),
        cases.len(),
        differ.join("\n")
    );
}
