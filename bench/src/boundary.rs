//! The Wasm boundary: ns per record through a batched identity and a small
//! map (ASCII upper-case) operator, against the same logic as a native
//! closure over the same batch encoding (the operator's own upper-casing
//! function, compiled natively). 16-byte keys, 100-byte values,
//! optionally two headers; batch sizes 1, 64 and 1024.
//!
//! Run: `cargo run -p eddy-bench --bin boundary` (RUNS, TOTAL to change the
//! defaults; COMPONENT to measure another build of the identity operator,
//! e.g. one compiled with `-C target-feature=+simd128`).
//! Prints medians of RUNS runs of TOTAL records each; the overhead is the
//! median of the differences of paired native and Wasm runs.

use eddy::spec;
use eddy::wasm::{LoadedOperator, OperatorEngine, OperatorInstance};
use eddy_batch::{BatchView, BatchWriter};
use std::hint::black_box;
use std::time::Instant;

fn batch(n: usize, headers: bool, seed: usize) -> Vec<u8> {
    let mut w = BatchWriter::new();
    for i in 0..n {
        let key = format!("key-{:012}", seed + i);
        let value: Vec<u8> = (0..100).map(|j| b'a' + ((i + j) % 26) as u8).collect();
        let trace = format!("{:016x}", (seed + i) * 7919);
        let hs: Vec<(&[u8], Option<&[u8]>)> = if headers {
            vec![
                (b"trace-id", Some(trace.as_bytes())),
                (b"src-part", Some(b"p-00000000000001")),
            ]
        } else {
            vec![]
        };
        w.record(
            i as u32,
            Some(key.as_bytes()),
            Some(&value),
            1_700_000_000_000 + i as i64,
            hs,
        );
    }
    w.into_vec()
}

/// Reads every output as a producer would: key, value, headers as slices.
fn consume(out: &[u8]) -> u64 {
    let v = BatchView::new(out).expect("valid");
    let mut acc = 0u64;
    for r in v.iter() {
        acc = acc.wrapping_add(
            r.key.map_or(0, |k| k.len() as u64)
                + r.value.map_or(0, |x| x[0] as u64)
                + r.timestamp as u64,
        );
        for (n, h) in r.headers.iter() {
            acc = acc.wrapping_add(n.len() as u64 + h.map_or(0, |h| h.len() as u64));
        }
    }
    acc
}

fn native(input: &mut [u8], upper: bool) -> u64 {
    // The same work without the boundary: decode, edit in place, read back.
    let spans: Vec<_> = {
        let v = BatchView::new(input).expect("valid");
        (0..v.len()).map(|i| v.entry(i).value).collect()
    };
    if upper {
        for s in spans {
            let at = s.offset as usize;
            identity::upper_ascii(&mut input[at..at + s.len as usize]);
        }
    }
    consume(input)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let total: usize = std::env::var("TOTAL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 18);
    let engine = OperatorEngine::new().expect("engine");
    let dir = std::env::temp_dir().join(format!("eddy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let component =
        std::env::var("COMPONENT").unwrap_or_else(|_| eddy_e2e::components::IDENTITY.to_string());
    std::fs::copy(&component, dir.join("identity.wasm")).unwrap();
    println!("component: {component}");
    let instance = |mode: &str| {
        let text = format!(
            "application_id = \"b\"\n[[sources]]\ntopic = \"i\"\n[[steps]]\nname = \"{mode}\"\ncomponent = \"identity.wasm\"\ninterface = \"processor\"\nsettings = {{ mode = \"{mode}\" }}\n[[sinks]]\ntopic = \"o\"\n"
        );
        let t = spec::validate_text(&dir.join("p.toml"), &text).expect("spec");
        OperatorInstance::new(&LoadedOperator::load(&engine, &t.steps[0]).expect("load"))
            .expect("instance")
    };
    let mut identity = instance("identity");
    let mut upper = instance("upper");
    println!("| op | batch | headers | native ns/rec | wasm ns/rec | overhead ns/rec |");
    println!("|---|---|---|---|---|---|");
    for (name, up) in [("identity", false), ("upper", true)] {
        for headers in [false, true] {
            for size in [1usize, 64, 1024] {
                let batches: Vec<Vec<u8>> =
                    (0..64).map(|b| batch(size, headers, b * size)).collect();
                let calls = total / size;
                let mut nat = Vec::new();
                let mut was = Vec::new();
                for _ in 0..runs {
                    let mut scratch: Vec<Vec<u8>> = batches.clone();
                    let t = Instant::now();
                    for c in 0..calls {
                        black_box(native(&mut scratch[c % 64], up));
                    }
                    nat.push(t.elapsed().as_nanos() as f64 / (calls * size) as f64);
                    let inst = if up { &mut upper } else { &mut identity };
                    let t = Instant::now();
                    for c in 0..calls {
                        let out = inst.call(&batches[c % 64]).expect("call");
                        black_box(consume(&out));
                    }
                    was.push(t.elapsed().as_nanos() as f64 / (calls * size) as f64);
                }
                // The call alone, without reading the output on the host.
                let mut bare = Vec::new();
                for _ in 0..runs {
                    let inst = if up { &mut upper } else { &mut identity };
                    let t = Instant::now();
                    for c in 0..calls {
                        black_box(inst.call(&batches[c % 64]).expect("call").len());
                    }
                    bare.push(t.elapsed().as_nanos() as f64 / (calls * size) as f64);
                }
                eprintln!(
                    "  {name} batch {size} headers {headers}: call only {:.1} ns/rec",
                    median(bare)
                );
                // Native and Wasm runs alternate, so each pair shares the
                // machine's state of the moment: the overhead is the median
                // of the pairs' differences, steadier than a difference of
                // medians on a noisy machine.
                let over = median(was.iter().zip(&nat).map(|(w, n)| w - n).collect());
                let (n, w) = (median(nat), median(was));
                println!(
                    "| {name} | {size} | {} | {n:.1} | {w:.1} | {over:.1} |",
                    if headers { 2 } else { 0 },
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
