//! Talking to the broker outside the poll loop: checking it answers and
//! every topic exists at start, and the lag of each assigned partition.

use super::error::RunError;
use super::rebalance::Ctx;
use crate::topology::Topology;
use rdkafka::Offset;
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

/// Sets the lag gauge of each assigned partition: the high watermark the
/// consumer last saw minus its position (both known locally, no request).
pub(super) fn record_lag(consumer: &BaseConsumer<Ctx>, metrics: &crate::metrics::Metrics) {
    let Ok(position) = consumer.position() else {
        return;
    };
    metrics.lag.clear();
    for e in position.elements() {
        let Offset::Offset(at) = e.offset() else {
            continue;
        };
        if let Some(high) = cached_high_watermark(consumer, e.topic(), e.partition()) {
            metrics
                .lag
                .get_or_create(&crate::metrics::PartitionLabels {
                    topic: e.topic().to_string(),
                    partition: e.partition().to_string(),
                })
                .set((high - at).max(0));
        }
    }
}

/// The high watermark of a partition as the consumer last saw it (from
/// its fetches: no request to the broker).
fn cached_high_watermark(consumer: &BaseConsumer<Ctx>, topic: &str, partition: i32) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: a live client handle and a NUL-terminated topic name; the
    // call only reads librdkafka's local state into the two integers.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}
