//! What the broker benchmarks share: CPU time of a process, the end of a
//! pass (a group's committed offsets reaching the end of its input), and
//! stopping an app cleanly.

use eddy_e2e::committed;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// One measured pass.
pub struct Measured {
    /// Wall-clock seconds.
    pub secs: f64,
    /// CPU seconds (user + system) of the process under test.
    pub cpu: f64,
}

/// CPU seconds (user + system) a process used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces).
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15; here 0-based after ") ": 11, 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// A whole number from environment variable `name`, or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether `group` committed `topic`'s partitions up to `end`.
pub fn caught_up(group: &str, topic: &str, end: &[i64]) -> bool {
    committed(group, topic, end.len() as i32)
        .iter()
        .zip(end)
        .all(|(c, e)| c.is_some_and(|c| c >= *e))
}

/// The end offset of each of `topic`'s partitions.
pub fn ends(topic: &str, partitions: i32) -> Vec<i64> {
    let c: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", eddy_e2e::bootstrap())
        .create()
        .unwrap();
    (0..partitions)
        .map(|p| {
            rdkafka::consumer::Consumer::fetch_watermarks(&c, topic, p, Duration::from_secs(10))
                .unwrap()
                .1
        })
        .collect()
}

/// Waits until a Kafka Streams bench app says its measured pass starts
/// (after its warm-up), then keeps draining its output.
pub fn wait_for_measuring(child: &mut Child) {
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    loop {
        let line = lines
            .next()
            .expect("the Kafka Streams app said nothing")
            .unwrap();
        if line.contains("\"measuring\"") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
}

/// Stops an app with SIGTERM (both eddy and Kafka Streams then flush and
/// leave their groups), killing it after a minute.
pub fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `perf record -g` sampling a process, when EDDY_BENCH_PERF names the
/// output file; stopped (and its file written) on drop.
pub struct Perf(Option<Child>);

impl Perf {
    /// Starts sampling `pid` if EDDY_BENCH_PERF is set.
    pub fn start(pid: u32) -> Self {
        Perf(std::env::var("EDDY_BENCH_PERF").ok().map(|out| {
            Command::new("perf")
                .args(["record", "-q", "-F", "499", "-g", "-o", &out, "-p"])
                .arg(pid.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("perf record")
        }))
    }
}

impl Drop for Perf {
    fn drop(&mut self) {
        if let Some(perf) = self.0.as_mut() {
            let _ = Command::new("kill")
                .args(["-INT", &perf.id().to_string()])
                .status();
            let _ = perf.wait();
        }
    }
}
