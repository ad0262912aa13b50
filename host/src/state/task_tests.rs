//! Unit tests of a task's stores.

use super::*;

fn specs() -> Vec<StoreSpec> {
    vec![
        StoreSpec {
            name: "counts".into(),
            windowed: false,
            scanned: false,
            buffer: false,
        },
        StoreSpec {
            name: "windows".into(),
            windowed: true,
            scanned: false,
            buffer: false,
        },
    ]
}

fn open(dir: &Path, cache: usize) -> TaskState {
    TaskState::open(StoreKind::RocksDb, Some(dir), &specs(), cache).unwrap()
}

#[test]
fn uncached_writes_go_to_the_changelog_at_once_and_to_the_store_at_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), 0);
    s.put(0, b"k", Some(keys::encode_value(1, b"1")), 1);
    s.put(0, b"k", Some(keys::encode_value(2, b"2")), 2);
    // Every update is a changelog record, in order.
    let log = s.take_changelog();
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[1].value.as_deref(),
        Some(&keys::encode_value(2, b"2")[..])
    );
    // Reads see the newest write; the store has not been written yet.
    assert_eq!(s.get(0, b"k").unwrap(), Some(keys::encode_value(2, b"2")));
    assert!(!s.writes_due());
    drop(s);
    assert_eq!(open(dir.path(), 0).get(0, b"k").unwrap(), None);
    // The commit's flush writes it, without a second changelog record.
    let mut s = open(dir.path(), 0);
    s.put(0, b"k", Some(keys::encode_value(3, b"3")), 3);
    s.take_changelog();
    s.flush_store(0).unwrap();
    assert!(s.take_changelog().is_empty());
    drop(s);
    assert_eq!(
        open(dir.path(), 0).get(0, b"k").unwrap(),
        Some(keys::encode_value(3, b"3"))
    );
}

#[test]
fn uncached_writes_are_due_past_the_write_behind_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), 0);
    let value = vec![7u8; 1024];
    let mut i = 0u32;
    while !s.writes_due() {
        s.put(0, &i.to_be_bytes(), Some(value.clone()), 0);
        i += 1;
    }
    let per_entry = 4 + value.len();
    assert!(i as usize * per_entry > WRITE_BEHIND_BYTES / 2);
    assert!((i as usize) * per_entry <= WRITE_BEHIND_BYTES + per_entry);
    s.flush_store(0).unwrap();
    assert!(!s.writes_due());
}

#[test]
fn cached_writes_reach_the_changelog_at_the_flush_newest_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), 1 << 20);
    s.put(0, b"a", Some(keys::encode_value(1, b"1")), 1);
    s.put(0, b"b", Some(keys::encode_value(2, b"x")), 2);
    s.put(0, b"a", Some(keys::encode_value(3, b"2")), 3);
    assert!(s.take_changelog().is_empty());
    let flushed = s.flush_store(0).unwrap();
    let keys_in_order: Vec<_> = flushed.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys_in_order, vec![b"b".to_vec(), b"a".to_vec()]);
    let log = s.take_changelog();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].timestamp, 3);
}

#[test]
fn the_time_index_lists_windows_by_end_once_per_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path(), 0);
    s.put_window(1, b"k", 0, 10, Some(keys::encode_value(1, b"1")), 1);
    s.put(
        1,
        &keys::window_key(b"k", 0, 10),
        Some(keys::encode_value(2, b"2")),
        2,
    );
    s.put_window(1, b"j", 10, 20, Some(keys::encode_value(3, b"1")), 3);
    s.flush_store(1).unwrap();
    let mut ends = Vec::new();
    s.scan(1, true, &keys::time_key_from(i64::MIN), None, |k, _| {
        ends.push(keys::split_time_key(k).unwrap().2);
        true
    })
    .unwrap();
    assert_eq!(ends, vec![10, 20]);
    assert_eq!(s.windows_deleted_through(1), i64::MIN);
    s.set_windows_deleted_through(1, 10);
    s.set_windows_deleted_through(1, 5);
    assert_eq!(s.windows_deleted_through(1), 10, "never moves back");
}

#[test]
fn a_scan_merges_pending_writes_over_the_store_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    for rocks in [true, false] {
        let spec = [StoreSpec {
            name: "s".into(),
            windowed: false,
            scanned: true,
            buffer: false,
        }];
        let kind = if rocks {
            StoreKind::RocksDb
        } else {
            StoreKind::Memory
        };
        let sub = dir.path().join(if rocks { "r" } else { "m" });
        let mut s = TaskState::open(kind, Some(&sub), &spec, 1 << 20).unwrap();
        for k in ["b", "d", "f", "h"] {
            s.put(0, k.as_bytes(), Some(format!("old-{k}").into_bytes()), 1);
        }
        s.flush_store(0).unwrap();
        // Pending: a new key before, between and after; one overridden; one deleted.
        s.put(0, b"a", Some(b"new-a".to_vec()), 2);
        s.put(0, b"d", Some(b"new-d".to_vec()), 2);
        s.put(0, b"e", Some(b"new-e".to_vec()), 2);
        s.put(0, b"f", None, 2);
        s.put(0, b"z", Some(b"new-z".to_vec()), 2);
        let all = |stop_after: usize| {
            let mut seen = Vec::new();
            s.scan(0, false, b"a", Some(b"zz"), |k, v| {
                seen.push(format!(
                    "{}={}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                ));
                seen.len() < stop_after
            })
            .unwrap();
            seen
        };
        assert_eq!(
            all(usize::MAX),
            [
                "a=new-a", "b=old-b", "d=new-d", "e=new-e", "h=old-h", "z=new-z"
            ],
            "rocksdb: {rocks}"
        );
        assert_eq!(all(3), ["a=new-a", "b=old-b", "d=new-d"], "stops when told");
        assert_eq!(all(1), ["a=new-a"]);
    }
}

#[test]
fn a_join_buffer_is_logged_at_once_even_when_caching_and_written_through_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let spec = [StoreSpec {
        name: "join-left".into(),
        windowed: true,
        scanned: true,
        buffer: true,
    }];
    let mut s = TaskState::open(StoreKind::RocksDb, Some(dir.path()), &spec, 10 << 20).unwrap();
    for (ts, v) in [(30, "c"), (10, "a"), (20, "b")] {
        s.put_window(
            0,
            b"k",
            ts,
            ts,
            Some(keys::encode_value(ts, v.as_bytes())),
            ts,
        );
    }
    // Logged at once, in write order, though the task caches its tables.
    let logged: Vec<i64> = (s.take_changelog().iter())
        .map(|r| keys::split_window_key(&r.key).unwrap().1)
        .collect();
    assert_eq!(logged, [30, 10, 20]);
    let starts = |s: &TaskState| {
        let mut seen = Vec::new();
        let from = keys::window_key_from(b"k", 15);
        s.scan(0, false, &from, None, |k, _| {
            seen.push(keys::split_window_key(k).unwrap().1);
            true
        })
        .unwrap();
        seen
    };
    assert!(s.pending(0));
    assert_eq!(starts(&s), [20, 30], "pending writes read in key order");
    s.write_through(0).unwrap();
    assert!(!s.pending(0));
    assert_eq!(starts(&s), [20, 30], "the same from the backend");
    s.flush_store(0).unwrap();
    assert!(s.take_changelog().is_empty(), "never logged twice");
    let mut ends = Vec::new();
    s.scan(0, true, &[], None, |k, _| {
        ends.push(k.to_vec());
        true
    })
    .unwrap();
    assert_eq!(ends.len(), 3, "the time index is written through too");
}
