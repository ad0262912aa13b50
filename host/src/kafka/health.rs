//! Whether the instance is making progress, beyond its assignment: the
//! broker reachable (librdkafka's statistics), the poll loop turning, and
//! no task with a batch that has been in flight too long. `/readyz` reports
//! each problem with its reason. The statistics also give the consumer lag
//! of every assigned partition, from the first fetch on.

use crate::metrics::{Metrics, PartitionLabels};
use crate::runtime::tasks::{TaskId, task_name};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often librdkafka reports the state of its broker connections.
pub const STATISTICS_INTERVAL_MS: &str = "1000";

/// The instance's progress, as the poll loop and librdkafka report it.
pub struct Health {
    start: Instant,
    /// How long a batch may be in flight, or the poll loop stand still,
    /// before the instance is not ready.
    stall_after: Duration,
    /// Milliseconds since `start` when the poll loop last turned, plus one
    /// (0: not yet).
    beat_ms: AtomicU64,
    /// Whether the last statistics saw a broker connection up.
    broker_up: AtomicBool,
    /// Since when no broker has been reachable, and the brokers' states.
    down: Mutex<Option<(Instant, String)>>,
    /// Tasks whose oldest batch has been in flight too long, and for how long.
    stalled: Mutex<BTreeMap<TaskId, Duration>>,
    /// Where the lag goes.
    metrics: Arc<Metrics>,
}

/// The parts of librdkafka's statistics read here (STATISTICS.md).
#[derive(serde::Deserialize)]
struct Statistics {
    #[serde(default)]
    brokers: BTreeMap<String, Broker>,
    #[serde(default)]
    topics: BTreeMap<String, TopicStats>,
}

#[derive(serde::Deserialize)]
struct TopicStats {
    #[serde(default)]
    partitions: BTreeMap<String, PartitionStats>,
}

#[derive(serde::Deserialize)]
struct PartitionStats {
    partition: i32,
    /// "none" unless the partition is assigned to this consumer.
    fetch_state: String,
    /// The high watermark (-1: not known yet).
    hi_offset: i64,
    /// The offset after the last record handed to the application.
    app_offset: i64,
    /// The committed offset.
    committed_offset: i64,
    /// The next offset to fetch.
    next_offset: i64,
}

impl PartitionStats {
    /// High watermark minus the position: the last record taken, else the
    /// committed offset, else where fetching starts.
    fn lag(&self) -> Option<i64> {
        let position = [self.app_offset, self.committed_offset, self.next_offset]
            .into_iter()
            .find(|o| *o >= 0)?;
        (self.partition >= 0 && self.fetch_state != "none" && self.hi_offset >= 0)
            .then(|| (self.hi_offset - position).max(0))
    }
}

#[derive(serde::Deserialize)]
struct Broker {
    state: String,
    nodeid: i32,
}

impl Health {
    /// Health that calls a batch stuck after `stall_after`, its lag
    /// reported in `metrics`.
    pub fn new(stall_after: Duration, metrics: Arc<Metrics>) -> Self {
        Health {
            start: Instant::now(),
            stall_after,
            beat_ms: AtomicU64::new(0),
            broker_up: AtomicBool::new(true),
            down: Mutex::new(None),
            stalled: Mutex::new(BTreeMap::new()),
            metrics,
        }
    }

    /// How long a batch may be in flight before its task counts as stuck.
    pub fn stall_after(&self) -> Duration {
        self.stall_after
    }

    /// The poll loop turned.
    pub fn beat(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.beat_ms.store(ms + 1, Ordering::Relaxed);
    }

    /// Reads librdkafka's statistics (JSON): reachable when a broker of the
    /// cluster (not a bootstrap address) has its connection up; the lag of
    /// each assigned partition.
    pub fn statistics(&self, json: &[u8]) {
        let Ok(stats) = serde_json::from_slice::<Statistics>(json) else {
            return;
        };
        self.metrics.lag.clear();
        for (topic, t) in &stats.topics {
            for p in t.partitions.values() {
                if let Some(lag) = p.lag() {
                    let labels = PartitionLabels {
                        topic: topic.clone(),
                        partition: p.partition.to_string(),
                    };
                    self.metrics.lag.get_or_create(&labels).set(lag);
                }
            }
        }
        let known: Vec<&Broker> = stats.brokers.values().filter(|b| b.nodeid >= 0).collect();
        let up = known.iter().any(|b| b.state == "UP");
        self.broker(up, || {
            stats
                .brokers
                .iter()
                .map(|(name, b)| format!("{name}: {}", b.state))
                .collect::<Vec<_>>()
                .join(", ")
        });
    }

    fn broker(&self, up: bool, states: impl FnOnce() -> String) {
        let was_up = self.broker_up.swap(up, Ordering::Relaxed);
        let mut down = self.down.lock().expect("not poisoned");
        if up {
            if !was_up {
                tracing::info!("Kafka: a broker is reachable again");
            }
            *down = None;
        } else if down.is_none() {
            let states = states();
            tracing::warn!("Kafka: no broker reachable ({states})");
            *down = Some((Instant::now(), states));
        }
    }

    /// The tasks whose oldest batch has been in flight longer than
    /// `stall_after`, with its age (the poll loop's view, every second).
    pub fn set_stalled(&self, stalled: BTreeMap<TaskId, Duration>) {
        *self.stalled.lock().expect("not poisoned") = stalled;
    }

    /// Why the instance is not making progress, for the tasks in `open`
    /// (restoring ones are reported as such); empty when it is.
    pub fn problems(&self, open: impl Fn(TaskId) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((since, states)) = &*self.down.lock().expect("not poisoned") {
            out.push(format!(
                "no Kafka broker reachable for {} s ({states})",
                since.elapsed().as_secs()
            ));
        }
        let beat = self.beat_ms.load(Ordering::Relaxed);
        let still = self
            .start
            .elapsed()
            .saturating_sub(Duration::from_millis(beat.saturating_sub(1)));
        if beat > 0 && still > self.stall_after {
            out.push(format!(
                "the poll loop has not turned for {} s (runtime.stall_after = {:?})",
                still.as_secs(),
                self.stall_after
            ));
        }
        for (id, age) in self.stalled.lock().expect("not poisoned").iter() {
            if open(*id) {
                out.push(format!(
                    "task {}: a batch has been in flight for {} s with no result (runtime.stall_after = {:?}); its worker or its outputs are stuck",
                    task_name(*id),
                    age.as_secs(),
                    self.stall_after
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(stall_after: Duration) -> Health {
        Health::new(stall_after, Metrics::new())
    }

    #[test]
    fn lag_of_assigned_partitions_from_the_position_librdkafka_knows() {
        let h = health(Duration::from_secs(60));
        let part = |p: i32, state: &str, hi: i64, app: i64, committed: i64, next: i64| {
            serde_json::json!({"partition": p, "fetch_state": state, "hi_offset": hi,
                "app_offset": app, "committed_offset": committed, "next_offset": next, "msgq_cnt": 0})
        };
        let stats = serde_json::json!({"topics": {"in": {"topic": "in", "partitions": {
            "0": part(0, "active", 100, 40, 10, 90),
            "1": part(1, "active", 100, -1001, 70, 100),
            "2": part(2, "active", 0, -1001, -1001, 0),
            "3": part(3, "none", 100, -1001, -1001, -1001),
            "-1": part(-1, "none", -1, -1001, -1001, -1001),
        }}}});
        h.statistics(&serde_json::to_vec(&stats).unwrap());
        let text = h.metrics.render();
        let lag = |p: &str| {
            let prefix = format!("eddy_consumer_lag{{topic=\"in\",partition=\"{p}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .map(|v| v.parse::<i64>().unwrap())
        };
        assert_eq!(lag("0"), Some(60), "{text}");
        assert_eq!(lag("1"), Some(30));
        assert_eq!(
            lag("2"),
            Some(0),
            "an empty partition has a lag of 0 from the start"
        );
        assert_eq!(lag("3"), None, "not assigned here");
        assert_eq!(lag("-1"), None);
    }

    #[test]
    fn reachable_when_a_cluster_broker_is_up() {
        let h = health(Duration::from_secs(60));
        let stats = |states: &[(&str, i32, &str)]| {
            let brokers: serde_json::Map<String, serde_json::Value> = states
                .iter()
                .map(|(n, id, s)| {
                    (
                        (*n).to_string(),
                        serde_json::json!({"state": s, "nodeid": id, "rtt": {}}),
                    )
                })
                .collect();
            serde_json::to_vec(&serde_json::json!({"name": "c", "brokers": brokers})).unwrap()
        };
        assert!(h.problems(|_| true).is_empty());
        h.statistics(&stats(&[
            ("bootstrap", -1, "UP"),
            ("127.0.0.1:9092/1", 1, "CONNECT"),
        ]));
        let p = h.problems(|_| true);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("no Kafka broker reachable") && p[0].contains("CONNECT"),
            "{p:?}"
        );
        h.statistics(&stats(&[("127.0.0.1:9092/1", 1, "UP")]));
        assert!(h.problems(|_| true).is_empty());
        // Statistics it cannot read change nothing.
        h.statistics(b"{not json");
        assert!(h.problems(|_| true).is_empty());
    }

    #[test]
    fn stuck_batches_of_open_tasks_and_a_still_poll_loop_are_problems() {
        let h = health(Duration::from_millis(10));
        h.beat();
        h.set_stalled(BTreeMap::from([
            ((0, 3), Duration::from_secs(75)),
            ((1, 0), Duration::from_secs(80)),
        ]));
        let p = h.problems(|id| id == (0, 3));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("task 0_3: a batch has been in flight for 75 s"),
            "{p:?}"
        );
        std::thread::sleep(Duration::from_millis(30));
        let p = h.problems(|_| false);
        assert!(p[0].starts_with("the poll loop has not turned"), "{p:?}");
    }
}
