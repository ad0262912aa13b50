//! Helpers for eddy's end-to-end tests: built components, the `eddy`
//! binary, and a real Kafka broker (started by `scripts/kafka start`).
#![allow(missing_docs, clippy::missing_panics_doc)]

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod admin;
mod broker;
mod offline;
pub use admin::{agent, generated_token, get_text, metric, start_with_admin};
pub use broker::PrivateBroker;
pub use offline::{batch_values, eddy_test, eddy_test_run, hostile_chain, value_batch};

/// Paths of the components built by build.rs.
pub mod components {
    include!(concat!(env!("OUT_DIR"), "/components.rs"));
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `eddy` binary beside the running executable, for the benchmarks
/// (the tests use Cargo's own, `CARGO_BIN_EXE_eddy`).
pub fn located_eddy_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    // Tests run from target/<profile>/deps, benchmarks from target/<profile>.
    let dir = exe.parent().expect("target/<profile>[/deps]");
    let bin = if dir.ends_with("deps") {
        dir.parent().expect("target/<profile>").join("eddy")
    } else {
        dir.join("eddy")
    };
    assert!(
        bin.is_file(),
        "{} is missing: build it first (cargo build -p eddy)",
        bin.display()
    );
    bin
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// The broker the tests use.
pub fn bootstrap() -> String {
    std::env::var("EDDY_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Topics created for one test and deleted when it ends.
pub struct Topics {
    admin: AdminClient<DefaultClientContext>,
    pub names: Vec<String>,
}

impl Topics {
    /// Creates each (name, partitions) topic; names get a unique suffix.
    pub fn create(specs: &[(&str, i32)]) -> Topics {
        Topics::create_on(&bootstrap(), specs)
    }

    /// Creates the topics on the broker at `bootstrap`.
    pub fn create_on(bootstrap: &str, specs: &[(&str, i32)]) -> Topics {
        Topics::create_configured(bootstrap, specs, &[])
    }

    /// Creates the topics, each with the topic settings `configs`.
    pub fn create_configured(
        bootstrap: &str,
        specs: &[(&str, i32)],
        configs: &[(&str, &str)],
    ) -> Topics {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .expect("admin client");
        let names: Vec<String> = specs.iter().map(|(n, _)| unique(n)).collect();
        // No time-based retention: test records carry old timestamps (the
        // examples' 1, 2, 3 …), and the broker would delete them mid-test.
        let new: Vec<NewTopic<'_>> = names
            .iter()
            .zip(specs)
            .map(|(n, (_, p))| {
                configs.iter().fold(
                    NewTopic::new(n, *p, TopicReplication::Fixed(1)).set("retention.ms", "-1"),
                    |t, (k, v)| t.set(k, v),
                )
            })
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let res =
            futures_executor::block_on(admin.create_topics(&new, &opts)).unwrap_or_else(|e| {
                panic!(
                    "creating topics on {bootstrap} failed: {e}; start the broker with scripts/kafka start"
                )
            });
        for r in res {
            r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
        }
        // Created by the controller is not yet known to every broker's
        // metadata: wait until a client sees each with its partitions.
        let consumer: BaseConsumer = (ClientConfig::new().set("bootstrap.servers", bootstrap))
            .create()
            .expect("consumer");
        let seen = |n: &String, p: i32| {
            let md = consumer.fetch_metadata(Some(n), Duration::from_secs(5));
            md.is_ok_and(|md| {
                let t = md.topics().first().filter(|t| t.error().is_none());
                t.is_some_and(|t| t.partitions().len() == p as usize)
            })
        };
        let all_seen = || names.iter().zip(specs).all(|(n, (_, p))| seen(n, *p));
        wait_until(
            Duration::from_secs(30),
            "the new topics in the metadata",
            all_seen,
        );
        Topics { admin, names }
    }
}

impl Drop for Topics {
    fn drop(&mut self) {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let _ = futures_executor::block_on(self.admin.delete_topics(&names, &AdminOptions::new()));
    }
}

/// A record read back from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Produces records (partition or none for the key's partition, key, value,
/// timestamp, headers) and waits until all are acknowledged.
pub fn produce<'a>(
    topic: &str,
    records: impl IntoIterator<
        Item = (
            Option<i32>,
            Option<&'a [u8]>,
            Option<&'a [u8]>,
            i64,
            &'a [(String, Option<Vec<u8>>)],
        ),
    >,
) {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("linger.ms", "5")
        // Idempotent, so a retried request (a topic's leader is often not
        // ready right after creation) cannot reorder the input.
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    for (partition, key, value, ts, headers) in records {
        let mut rec = BaseRecord::<[u8], [u8]>::to(topic).timestamp(ts);
        if let Some(pt) = partition {
            rec = rec.partition(pt);
        }
        if let Some(k) = key {
            rec = rec.key(k);
        }
        if let Some(v) = value {
            rec = rec.payload(v);
        }
        if !headers.is_empty() {
            let mut h = OwnedHeaders::new();
            for (n, v) in headers {
                h = h.insert(Header {
                    key: n,
                    value: v.as_deref(),
                });
            }
            rec = rec.headers(h);
        }
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
    p.flush(Duration::from_secs(60))
        .expect("all input acknowledged");
}

/// Reads `topic` from the beginning until `count` records arrived or
/// `timeout` passed (then it returns what it has; callers assert).
pub fn consume(topic: &str, partitions: i32, count: usize, timeout: Duration) -> Vec<Got> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).expect("assign");
    let mut got = Vec::new();
    let end = Instant::now() + timeout;
    while got.len() < count && Instant::now() < end {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            got.push(Got {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                timestamp: m.timestamp().to_millis().unwrap_or(-1),
                headers: m.headers().map_or_else(Vec::new, |h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                }),
            });
        }
    }
    got
}

/// Writes a pipeline spec into `dir` and returns its path.
pub fn write_spec(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `eddy` process whose stderr is collected.
pub struct Eddy {
    child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Eddy {
    /// Starts `eddy <args>`.
    pub fn start(bin: &Path, args: &[&str]) -> Eddy {
        let mut child = Command::new(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn eddy");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("  eddy| {line}");
                sink.lock().unwrap().push(line);
            }
        });
        Eddy { child, log }
    }

    /// Waits until a log line contains `needle`, and returns it.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let mut found = None;
        wait_until(timeout, &format!("eddy to log {needle:?}"), || {
            found = self
                .log
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
                .cloned();
            found.is_some()
        });
        found.unwrap()
    }

    /// The process's resident memory (VmRSS), bytes.
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status");
        kib * 1024
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns its success.
    pub fn stop(mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(
                Instant::now() < end,
                "eddy did not stop within 60 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process at once (SIGKILL): no flush, no commit.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Eddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Number of records in a topic (sum over partitions of high - low watermark).
pub fn total_records(topic: &str, partitions: i32) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("consumer");
    (0..partitions)
        .map(|p| {
            c.fetch_watermarks(topic, p, Duration::from_secs(10))
                .map_or(0, |(lo, hi)| hi - lo)
        })
        .sum()
}

/// The offsets committed by consumer group `group` for `topic`'s partitions.
pub fn committed(group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    // The group coordinator may still be moving or loading (NotCoordinator,
    // CoordinatorLoadInProgress) right after the broker starts: ask again.
    let end = Instant::now() + Duration::from_secs(30);
    let got = loop {
        match c.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(got) => break got,
            Err(e) if Instant::now() < end => {
                eprintln!("committed offsets of {group}: {e}; asking again");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("committed offsets of {group}: {e}"),
        }
    };
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        })
        .collect()
}

/// A spec that reads `source`, runs `component` as step `name`, writes `sinks`.
pub fn kafka_spec(
    dir: &Path,
    app: &str,
    source: &str,
    name: &str,
    component: &str,
    step_extra: &str,
    sinks: &str,
) -> PathBuf {
    let file = Path::new(component)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    std::fs::copy(component, dir.join(&file)).unwrap();
    write_spec(
        dir,
        &format!(
            "application_id = \"{app}\"\n\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\n[runtime]\nworkers = 2\ncommit_interval = \"500ms\"\n\n[[sources]]\ntopic = \"{source}\"\n\n[[steps]]\nname = \"{name}\"\ncomponent = \"{file}\"\ninterface = \"processor\"\n{step_extra}\n\n{sinks}\n",
            bootstrap()
        ),
    )
}

/// Produces `values` to `topic` round-robin over `partitions` in chunks,
/// pausing between chunks so the input arrives as a stream while a test
/// stops and starts eddy. Returns the feeding thread.
pub fn feed(
    topic: &str,
    partitions: i32,
    values: Vec<Vec<u8>>,
    chunk: usize,
) -> std::thread::JoinHandle<()> {
    let topic = topic.to_string();
    std::thread::spawn(move || {
        for (c, part) in values.chunks(chunk).enumerate() {
            let records = part.iter().enumerate().map(|(i, v)| {
                (
                    Some(((c * chunk + i) as i32) % partitions),
                    None,
                    Some(&v[..]),
                    1,
                    &[][..],
                )
            });
            produce(&topic, records);
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// Waits until `topic` holds `n` distinct values (duplicates allowed) and returns them.
pub fn wait_for_distinct_values(
    topic: &str,
    partitions: i32,
    n: usize,
    timeout: Duration,
) -> std::collections::HashSet<Vec<u8>> {
    let mut distinct = std::collections::HashSet::new();
    wait_until(timeout, &format!("{n} distinct values in {topic}"), || {
        let total = total_records(topic, partitions) as usize;
        if total < n {
            return false;
        }
        distinct = consume(topic, partitions, total, Duration::from_secs(60))
            .into_iter()
            .filter_map(|g| g.value)
            .collect();
        eprintln!(
            "{topic}: {total} records, {} distinct of {n}",
            distinct.len()
        );
        distinct.len() == n
    });
    distinct
}

/// The value of header `name` of a record read back, as text.
pub fn header(g: &Got, name: &str) -> String {
    g.headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.clone())
        .map(|v| String::from_utf8(v).unwrap())
        .unwrap_or_else(|| panic!("no header {name}: {:?}", g.headers))
}
