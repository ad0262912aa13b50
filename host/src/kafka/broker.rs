//! Talking to the broker outside the poll loop: checking it answers and
//! every topic exists at start.

use super::error::RunError;
use super::rebalance::Ctx;
use crate::topology::Topology;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Waits `d` before the next attempt, or less once `shutdown` is set (a
/// signal handler's flag: there is nothing to wait on but the flag).
fn back_off(d: Duration, shutdown: &AtomicBool) {
    let until = Instant::now() + d;
    while !shutdown.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Attempts to reach the broker at start.
const CONNECT_ATTEMPTS: u32 = 5;

/// Checks the broker answers and every topic exists, with bounded retries;
/// none when `shutdown` was set meanwhile (a signal stops eddy at start too).
pub(super) fn check_topics(
    consumer: &BaseConsumer<Ctx>,
    t: &Topology,
    servers: &str,
    shutdown: &AtomicBool,
) -> Result<Option<rdkafka::metadata::Metadata>, RunError> {
    let start = Instant::now();
    let mut last = String::new();
    for attempt in 1..=CONNECT_ATTEMPTS {
        if shutdown.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match consumer.fetch_metadata(None, Duration::from_secs(5)) {
            Ok(md) => {
                let known: HashSet<&str> = md
                    .topics()
                    .iter()
                    .filter(|tp| tp.error().is_none())
                    .map(|tp| tp.name())
                    .collect();
                let named = t.source_topics();
                let missing: Vec<String> = named
                    .iter()
                    .chain(t.sinks.iter().map(|s| &s.topic))
                    .chain(
                        t.steps
                            .iter()
                            .filter_map(|s| s.op.aggregation()?.late_topic.as_ref()),
                    )
                    .filter(|n| !known.contains(n.as_str()))
                    .cloned()
                    .collect();
                if missing.is_empty() {
                    return Ok(Some(md));
                }
                return Err(RunError::MissingTopics(missing));
            }
            Err(e) => {
                last = e.to_string();
                tracing::warn!(
                    "Kafka at {servers} not answering (attempt {attempt}/{CONNECT_ATTEMPTS}): {e}"
                );
                if attempt < CONNECT_ATTEMPTS {
                    back_off(Duration::from_secs(1 << (attempt - 1)), shutdown);
                }
            }
        }
    }
    Err(RunError::Unreachable {
        servers: servers.to_string(),
        attempts: CONNECT_ATTEMPTS,
        secs: start.elapsed().as_secs(),
        last,
    })
}
