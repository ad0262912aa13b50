//! What the topics eddy writes accept, as their configuration says: the
//! timestamps the broker takes (`message.timestamp.*`) and the largest
//! record. A record the broker would refuse is dealt with before it is sent:
//! a refused record takes the others of its request with it.

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use std::collections::HashMap;
use std::time::Duration;

/// Kafka's own defaults (4.x) for a topic whose configuration cannot be read.
const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;
const DEFAULT_AFTER_MAX_MS: i64 = 3_600_000;

/// How far before the broker's bound a past timestamp is already refused
/// here: the record reaches the broker a little after it is checked.
const IN_TRANSIT_MS: i64 = 30_000;

/// The topic setting that lets a topic take any timestamp eddy accepts
/// (the broker's default refuses times more than an hour ahead).
pub const ANY_TIMESTAMP: (&str, &str) = ("message.timestamp.after.max.ms", "9223372036854775807");

/// What a topic accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLimits {
    /// The broker checks producers' timestamps (`CreateTime`), rather than
    /// stamping records itself (`LogAppendTime`).
    pub create_time: bool,
    /// How far in the past a timestamp may be, ms.
    pub before_max_ms: i64,
    /// How far in the future a timestamp may be, ms.
    pub after_max_ms: i64,
    /// The largest record batch the topic takes (`max.message.bytes`).
    pub max_message_bytes: usize,
}

impl Default for TopicLimits {
    fn default() -> Self {
        TopicLimits {
            create_time: true,
            before_max_ms: i64::MAX,
            after_max_ms: DEFAULT_AFTER_MAX_MS,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

impl TopicLimits {
    /// Why the broker would refuse timestamp `ts` at wall-clock time `now`
    /// (ms); none when it takes it.
    pub fn refuses_timestamp(&self, ts: i64, now: i64) -> Option<String> {
        if !self.create_time {
            return None;
        }
        if ts > now.saturating_add(self.after_max_ms) {
            return Some(format!(
                "timestamp {ts} is more than message.timestamp.after.max.ms = {} ms ahead of the broker's clock",
                self.after_max_ms
            ));
        }
        let earliest = now
            .saturating_sub(self.before_max_ms)
            .saturating_add(IN_TRANSIT_MS);
        if self.before_max_ms != i64::MAX && ts < earliest {
            return Some(format!(
                "timestamp {ts} is more than message.timestamp.before.max.ms = {} ms behind the broker's clock",
                self.before_max_ms
            ));
        }
        None
    }

    fn from_entries(get: impl Fn(&str) -> Option<String>) -> Self {
        let d = TopicLimits::default();
        let num = |name: &str| get(name).and_then(|v| v.parse::<i64>().ok());
        TopicLimits {
            create_time: get("message.timestamp.type").is_none_or(|t| t != "LogAppendTime"),
            before_max_ms: num("message.timestamp.before.max.ms").unwrap_or(d.before_max_ms),
            after_max_ms: num("message.timestamp.after.max.ms").unwrap_or(d.after_max_ms),
            max_message_bytes: num("max.message.bytes")
                .and_then(|b| usize::try_from(b).ok())
                .unwrap_or(d.max_message_bytes),
        }
    }
}

/// Reads the limits of `topics` from the broker; a topic whose
/// configuration cannot be read gets Kafka's defaults (with a warning).
pub fn describe(
    admin: &AdminClient<DefaultClientContext>,
    topics: &[String],
) -> HashMap<String, TopicLimits> {
    let mut out: HashMap<String, TopicLimits> = topics
        .iter()
        .map(|t| (t.clone(), TopicLimits::default()))
        .collect();
    if topics.is_empty() {
        return out;
    }
    let specs: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    match futures_executor::block_on(admin.describe_configs(&specs, &opts)) {
        Ok(results) => {
            for (topic, r) in topics.iter().zip(results) {
                match r {
                    Ok(c) => {
                        let limits = TopicLimits::from_entries(|name| {
                            c.get(name).and_then(|e| e.value.clone())
                        });
                        out.insert(topic.clone(), limits);
                    }
                    Err(e) => tracing::warn!(
                        "reading the configuration of topic {topic}: {e}; assuming Kafka's defaults"
                    ),
                }
            }
        }
        Err(e) => tracing::warn!("reading topic configurations: {e}; assuming Kafka's defaults"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(entries: &[(&str, &str)]) -> TopicLimits {
        TopicLimits::from_entries(|name| {
            entries
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_string())
        })
    }

    #[test]
    fn timestamps_the_broker_would_refuse() {
        let now = 1_700_000_000_000;
        let d = limits(&[]);
        assert_eq!(d, TopicLimits::default());
        assert_eq!(d.refuses_timestamp(now + 3_600_000, now), None);
        assert!(
            d.refuses_timestamp(now + 3_600_001, now)
                .unwrap()
                .contains("after.max.ms")
        );
        assert_eq!(
            d.refuses_timestamp(0, now),
            None,
            "no bound in the past by default"
        );
        assert_eq!(d.refuses_timestamp(253_402_300_799_999, i64::MAX), None);

        let strict = limits(&[
            ("message.timestamp.before.max.ms", "86400000"),
            ("message.timestamp.after.max.ms", "1000"),
            ("max.message.bytes", "2048"),
        ]);
        assert_eq!(strict.max_message_bytes, 2048);
        assert!(
            strict
                .refuses_timestamp(now - 86_400_000, now)
                .unwrap()
                .contains("before.max.ms")
        );
        // Refused a little early: it reaches the broker later.
        assert!(
            strict
                .refuses_timestamp(now - 86_400_000 + 20_000, now)
                .is_some()
        );
        assert_eq!(
            strict.refuses_timestamp(now - 86_400_000 + 40_000, now),
            None
        );

        let stamped = limits(&[
            ("message.timestamp.type", "LogAppendTime"),
            ("message.timestamp.after.max.ms", "0"),
        ]);
        assert_eq!(stamped.refuses_timestamp(now + 10_000_000, now), None);
        let any = limits(&[ANY_TIMESTAMP]);
        assert_eq!(any.refuses_timestamp(253_402_300_799_999, now), None);
    }
}
