//! Unit tests of the stream–stream join's buffers.

use super::*;
use crate::ops::join::RIGHT;
use crate::state::StoreSpec;
use crate::topology::StoreKind;
use eddy_batch::BatchWriter;

fn state() -> TaskState {
    let spec = |name: &str| StoreSpec {
        name: name.into(),
        windowed: false,
        scanned: true,
        buffer: true,
    };
    TaskState::open(StoreKind::Memory, None, &[spec("l"), spec("r")], 0).unwrap()
}

/// Runs one batch of (tag, key, time) records; returns the number of results.
fn run(join: &mut StreamStream, state: &mut TaskState, records: &[(u32, &str, i64)]) -> usize {
    let mut w = BatchWriter::new();
    for (i, (tag, k, ts)) in records.iter().enumerate() {
        w.record_full(
            i as u32,
            Some(k.as_bytes()),
            Some(b"v"),
            None,
            *tag,
            *ts,
            [],
        );
    }
    let input = Records::new(w.into_vec(), (0..records.len() as u32).collect());
    let (mut outs, mut dropped) = (Outputs::default(), Dropped::default());
    join.process("j", JoinKind::Inner, &input, state, &mut outs, &mut dropped)
        .unwrap();
    outs.results()
}

/// The times held in store `store`.
fn held(state: &TaskState, store: usize) -> Vec<i64> {
    let mut times = Vec::new();
    state
        .scan(store, false, &[], None, |k, _| {
            times.push(keys::split_window_key(k).unwrap().1);
            true
        })
        .unwrap();
    times
}

#[test]
fn expired_records_are_swept_out_as_new_ones_come_and_never_match() {
    let window = JoinWindow {
        before: 10,
        after: 10,
        grace: 0,
    };
    let mut join = StreamStream::new(window, [0, 1], None);
    let mut state = state();
    let old: Vec<(u32, String, i64)> = (0..50).map(|i| (LEFT, format!("k{i}"), i)).collect();
    let old: Vec<(u32, &str, i64)> = old.iter().map(|(t, k, ts)| (*t, k.as_str(), *ts)).collect();
    run(&mut join, &mut state, &old);
    // Already at the end of the batch, those 20 ms behind the newest are gone.
    assert_eq!(held(&state, 0), (30..50).collect::<Vec<i64>>());
    // Much later left records: retention is 20 ms, so every old one expires.
    for ts in 1_000..1_030 {
        run(&mut join, &mut state, &[(LEFT, "new", ts)]);
    }
    // The old ones are gone; a newly expired one may wait for the sweep to
    // come round again.
    let left = held(&state, 0);
    assert!(left.iter().all(|&ts| ts >= 1_000), "{left:?}");
    assert!(
        left.ends_with(&(1_010..1_030).collect::<Vec<i64>>()),
        "{left:?}"
    );
    // A right record in the window of new records matches them only.
    assert_eq!(run(&mut join, &mut state, &[(RIGHT, "new", 1_025)]), 15);
    assert_eq!(run(&mut join, &mut state, &[(RIGHT, "k49", 49)]), 0, "late");
}

#[test]
fn a_reopened_join_finds_what_its_store_held_and_what_came_since() {
    let window = JoinWindow {
        before: 100,
        after: 100,
        grace: 1_000,
    };
    let mut state = state();
    let mut join = StreamStream::new(window, [0, 1], None);
    run(&mut join, &mut state, &[(LEFT, "a", 10), (LEFT, "a", 50)]);
    // A new join over the same stores, as after a restart: records stored
    // before are read from the store, newer ones from memory, the same
    // (key, time) from both.
    let mut join = StreamStream::new(window, [0, 1], None);
    run(&mut join, &mut state, &[(LEFT, "a", 50), (LEFT, "a", 60)]);
    assert_eq!(run(&mut join, &mut state, &[(RIGHT, "a", 55)]), 4);
    // From 55 on, from memory: the record at 60 only.
    assert_eq!(run(&mut join, &mut state, &[(RIGHT, "a", 155)]), 1);
    // Far later, the memory copy has moved on: older records still match
    // from the store while their retention lasts.
    for ts in [900, 950] {
        run(&mut join, &mut state, &[(LEFT, "b", ts)]);
    }
    assert_eq!(run(&mut join, &mut state, &[(RIGHT, "a", 100)]), 4);
}
