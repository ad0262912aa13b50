//! Unit tests of a worker's tasks and their commits, through an I/O layer
//! that keeps what it is sent and completes each record's share when told.

use super::*;
use crate::runtime::dead_letter::{DeadLetter, SourceAt};
use crate::state::ChangelogRecord;
use crate::topology::Sink;
use eddy_batch::RecordRef;
use std::path::PathBuf;
use std::sync::Mutex;

/// What the I/O layer was sent; the shares of the records stay in flight
/// until [`Seen::acknowledge`] or [`Seen::refuse`].
#[derive(Default)]
struct Seen {
    /// (topic, key, value) of sink records.
    sinks: Vec<(String, String, String)>,
    /// (topic, partition) of changelog writes.
    changelog: Vec<(String, i32)>,
    in_flight: Vec<InFlight>,
    /// Acknowledged changelog offsets.
    acked: HashMap<(String, i32), i64>,
}

impl Seen {
    /// Completes every share in flight, the changelog's as offsets 0..n.
    fn acknowledge(&mut self) {
        self.in_flight.clear();
        self.acked.clear();
        for (topic, partition) in &self.changelog {
            *self.acked.entry((topic.clone(), *partition)).or_insert(-1) += 1;
        }
    }

    /// Fails every share in flight, as a broker refusing them.
    fn refuse(&mut self, why: &str) {
        for held in self.in_flight.drain(..) {
            held.ticket().fail(why.to_string());
        }
    }
}

/// An I/O layer that keeps what it is sent, and says so on `sent`.
#[derive(Default)]
struct Kept {
    seen: Arc<Mutex<Seen>>,
    sent: Option<crossbeam_channel::Sender<()>>,
    /// Where stores live (RocksDB), if anywhere.
    dir: Option<PathBuf>,
    /// Opening a task fails with this.
    refuse_open: Option<String>,
}

impl Kept {
    fn keep(&mut self, held: &InFlight, f: impl FnOnce(&mut Seen)) {
        let mut seen = self.seen.lock().unwrap();
        f(&mut seen);
        seen.in_flight.push(held.hold());
        drop(seen);
        if let Some(sent) = &self.sent {
            sent.send(()).unwrap();
        }
    }
}

fn text(r: Option<&[u8]>) -> String {
    String::from_utf8_lossy(r.unwrap_or_default()).into_owned()
}

impl Output for Kept {
    fn to_sink(
        &mut self,
        sink: &Sink,
        r: &RecordRef<'_>,
        _: Option<SourceAt<'_>>,
        held: &InFlight,
    ) {
        let record = (sink.topic.clone(), text(r.key), text(r.value));
        self.keep(held, |s| s.sinks.push(record));
    }

    fn to_topic(&mut self, _: &str, _: Option<i32>, _: &RecordRef<'_>, _: bool, held: &InFlight) {
        self.keep(held, |_| {});
    }

    fn to_changelog(&mut self, topic: &str, partition: i32, _: &ChangelogRecord, held: &InFlight) {
        self.keep(held, |s| s.changelog.push((topic.to_string(), partition)));
    }

    fn dead_letter(&mut self, _: &DeadLetter, held: &InFlight) {
        self.keep(held, |_| {});
    }
}

impl TaskIo for Kept {
    fn open(&mut self, t: &Topology, id: TaskId, _: &[String]) -> Result<Opened, String> {
        if let Some(why) = &self.refuse_open {
            return Err(why.clone());
        }
        let dir = self.dir.as_ref().map(|d| d.join(task_name(id)));
        let pipeline = TaskPipeline::new(
            t,
            id.0,
            dir.as_deref(),
            &crate::state::global::Globals::new([]),
        )
        .map_err(|e| e.to_string())?;
        Ok(Opened {
            pipeline,
            restored_to: HashMap::new(),
        })
    }

    fn acked(&self, topic: &str, partition: i32) -> Option<i64> {
        let seen = self.seen.lock().unwrap();
        seen.acked
            .get(&(topic.to_string(), partition))
            .map(|o| o + 1)
    }
}

/// A keyed count of topic `in` into `counts`, stores as `state` says.
fn counting(state: &str) -> Topology {
    let text = format!(
        "application_id = \"app\"\n[[sources]]\ntopic = \"in\"\n\
         [[steps]]\nname = \"g\"\nop = \"group_by_key\"\n\
         [[steps]]\nname = \"c\"\nop = \"count\"\n\
         [[sinks]]\ntopic = \"counts\"\n[state]\n{state}\n"
    );
    crate::spec::validate_text(std::path::Path::new("t.toml"), &text).unwrap()
}

fn keys(keys: &[&str]) -> Records {
    let mut w = eddy_batch::BatchWriter::new();
    for (i, k) in keys.iter().enumerate() {
        w.record(i as u32, Some(k.as_bytes()), Some(b"v"), 10, []);
    }
    Records::new(w.into_vec(), (0..keys.len() as u32).collect())
}

fn tasks(t: &Topology, io: Kept) -> Tasks<Kept> {
    Tasks::new(t.clone(), Chain::new(&[]).unwrap(), io, None)
}

/// Tasks of an uncached keyed count whose stores are RocksDB under `dir`.
fn persistent(dir: &std::path::Path) -> Tasks<Kept> {
    let t = counting("cache_size = \"0\"\nstore = \"rocksdb\"");
    let io = Kept {
        dir: Some(dir.to_path_buf()),
        ..Kept::default()
    };
    tasks(&t, io)
}

/// Runs `records` as a batch of task (0, 3) read from partition 3 of `in`.
fn run(tasks: &mut Tasks<Kept>, records: Records) -> Arc<BatchTicket> {
    let (ticket, held) = BatchTicket::new(1);
    let offsets: Vec<i64> = (0..records.len() as i64).collect();
    let source = Some(("in", 3, &offsets[..]));
    (tasks.run((0, 3), SubInput::Source(0), records, source, &held)).unwrap();
    ticket
}

#[test]
fn a_batch_is_done_only_when_every_record_it_sent_is_acknowledged() {
    let t = counting("cache_size = \"0\"\nstore = \"memory\"");
    let mut tasks = tasks(&t, Kept::default());
    let ticket = run(&mut tasks, keys(&["a", "b", "a"]));
    let seen = tasks.io().seen.clone();
    let counts: Vec<_> = (seen.lock().unwrap().sinks.iter())
        .map(|(_, k, v)| (k.clone(), v.clone()))
        .collect();
    let count = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(counts, [count("a", "1"), count("b", "1"), count("a", "2")]);
    assert_eq!(seen.lock().unwrap().changelog.len(), 3);
    assert_eq!(ticket.finished(), Ok(false), "outputs still in flight");
    seen.lock().unwrap().acknowledge();
    assert_eq!(ticket.finished(), Ok(true));
}

#[test]
fn a_commit_waits_for_what_its_cache_flush_sent() {
    let t = counting("cache_size = \"1MiB\"\nstore = \"memory\"");
    let (sent, sends) = crossbeam_channel::unbounded();
    let io = Kept {
        sent: Some(sent),
        ..Kept::default()
    };
    let seen = io.seen.clone();
    let mut tasks = tasks(&t, io);
    let ticket = run(&mut tasks, keys(&["a", "b", "a"]));
    assert!(seen.lock().unwrap().sinks.is_empty(), "held in the cache");
    assert_eq!(ticket.finished(), Ok(true), "nothing in flight");
    // The latest count of each key, and each count to the changelog: the
    // commit may return only once all four are acknowledged.
    let acknowledger = std::thread::spawn(move || {
        for _ in 0..4 {
            sends.recv_timeout(Duration::from_secs(10)).expect("sent");
        }
        let mut seen = seen.lock().unwrap();
        let unacknowledged = seen.in_flight.len();
        seen.acknowledge();
        (unacknowledged, seen.sinks.clone())
    });
    let (_, errors) = tasks.commit(&[(0, 3)], false);
    assert!(errors.is_empty(), "{errors:?}");
    let (unacknowledged, sinks) = acknowledger.join().unwrap();
    assert_eq!(unacknowledged, 4, "the commit waited for all four");
    let count = |k: &str, v: &str| ("counts".to_string(), k.to_string(), v.to_string());
    assert_eq!(
        sinks,
        [count("b", "1"), count("a", "2")],
        "the latest count per key, least recently written first"
    );
}

#[test]
fn a_checkpoint_never_covers_a_refused_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut tasks = persistent(dir.path());
    let ticket = run(&mut tasks, keys(&["a"]));
    tasks.io().seen.lock().unwrap().refuse("broker said no");
    assert_eq!(ticket.finished(), Err("broker said no".into()));
    // The commit's own flush sends nothing more: it checkpoints what was
    // acknowledged, which is nothing of the refused write.
    let (_, errors) = tasks.commit(&[(0, 3)], true);
    assert!(errors.is_empty(), "{errors:?}");
    let cp = Checkpoint::read(&dir.path().join("0_3")).expect("checkpoint written");
    let topic = "app-c-changelog".to_string();
    assert_eq!(
        cp.offsets.get(&(topic, 3)),
        Some(&0),
        "nothing acknowledged"
    );
}

#[test]
fn checkpoints_cover_acknowledged_changelog_offsets_and_wait_for_enough_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut tasks = persistent(dir.path());
    run(&mut tasks, keys(&["a", "b", "a"]));
    tasks.io().seen.lock().unwrap().acknowledge();
    let task_dir = dir.path().join("0_3");
    let (_, errors) = tasks.commit(&[(0, 3)], false);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        Checkpoint::read(&task_dir).is_none(),
        "3 writes are fewer than a checkpoint waits for"
    );
    let errors = tasks.close(&[(0, 3)]);
    assert!(errors.is_empty(), "{errors:?}");
    let cp = Checkpoint::read(&task_dir).expect("closing checkpoints");
    assert_eq!(
        cp.offsets.get(&("app-c-changelog".to_string(), 3)),
        Some(&3),
        "the offset after the last acknowledged write"
    );
    assert!(tasks.ids().is_empty(), "closed");
}

#[test]
fn a_busy_task_checkpoints_at_most_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let mut tasks = persistent(dir.path());
    let names: Vec<String> = (0..CHECKPOINT_EVERY + 1).map(|i| format!("k{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    run(&mut tasks, keys(&names));
    tasks.io().seen.lock().unwrap().acknowledge();
    let task_dir = dir.path().join("0_3");
    let (_, errors) = tasks.commit(&[(0, 3)], false);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        Checkpoint::read(&task_dir).is_none(),
        "enough writes, but the task opened less than an interval ago"
    );
    let task = tasks.tasks.get_mut(&(0, 3)).unwrap();
    task.checkpointed_at = Instant::now()
        .checked_sub(CHECKPOINT_INTERVAL)
        .expect("the clock runs longer than an interval");
    let (_, errors) = tasks.commit(&[(0, 3)], false);
    assert!(errors.is_empty(), "{errors:?}");
    let cp = Checkpoint::read(&task_dir).expect("an interval passed");
    assert_eq!(
        cp.offsets.get(&("app-c-changelog".to_string(), 3)),
        Some(&(CHECKPOINT_EVERY + 1))
    );
}

#[test]
fn a_task_that_cannot_open_fails_its_batch_naming_the_task() {
    let t = counting("store = \"memory\"");
    let io = Kept {
        refuse_open: Some("disk full".into()),
        ..Kept::default()
    };
    let mut tasks = tasks(&t, io);
    let (_, held) = BatchTicket::new(1);
    let err = tasks
        .run((0, 3), SubInput::Source(0), keys(&["a"]), None, &held)
        .unwrap_err();
    assert_eq!(err.to_string(), "task 0_3 could not start: disk full");
}
