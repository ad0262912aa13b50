//! Taking a source record in, the same for Kafka and the records file: its
//! event time, and the source's `on_error` for a record without a readable
//! one (skip it, dead-letter it, or fail its partition). Records with a
//! negative event time are skipped, as Kafka Streams does.

use super::dead_letter::{DeadLetter, Parts, SourceAt, unreadable_why};
use crate::metrics::{Metrics, TopicPolicyLabels};
use crate::time::extract::{TimestampError, extract};
use crate::topology::{ErrorPolicy, Source};

/// What becomes of a source record.
#[derive(Debug, PartialEq, Eq)]
pub enum Intake {
    /// Processed, at this event time.
    Take(i64),
    /// Passed over (its offset still counts as done).
    Skip,
    /// Passed over, with this dead letter to send first.
    Dead(DeadLetter),
    /// Its partition stops here: the source's `on_error` is `fail`.
    Fail(TimestampError),
}

/// Headers as a dead letter carries them.
pub type OwnedHeaders = Vec<(String, Option<Vec<u8>>)>;

/// Takes in the record at `at` of `source`: `record_ts` is its Kafka
/// timestamp; `headers` gives its headers, asked for only when it must be
/// dead-lettered.
pub fn take(
    source: &Source,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    record_ts: i64,
    headers: impl FnOnce() -> OwnedHeaders,
    at: SourceAt<'_>,
    metrics: Option<&Metrics>,
) -> Intake {
    let error = match extract(&source.timestamp, record_ts, value) {
        Ok(ts) if ts < 0 => {
            let (topic, partition, offset) = at;
            tracing::warn!(%topic, partition, offset, "skipping a record with a negative timestamp ({ts})");
            return Intake::Skip;
        }
        Ok(ts) => return Intake::Take(ts),
        Err(e) => e,
    };
    let why = unreadable_why(&error, at);
    let (intake, policy) = match &source.on_error {
        ErrorPolicy::Fail => return Intake::Fail(error),
        ErrorPolicy::Skip => {
            tracing::warn!("skipped a record: {why}");
            (Intake::Skip, "skip")
        }
        ErrorPolicy::DeadLetter(topic) => {
            tracing::warn!("dead-lettered a record to {topic}: {why}");
            let headers = headers();
            let parts = Parts {
                key,
                value,
                timestamp: record_ts,
                headers: &headers,
            };
            let letter = DeadLetter::unreadable(topic, parts, &error, at);
            (Intake::Dead(letter), "dead-letter")
        }
    };
    if let Some(m) = metrics {
        m.records_unreadable
            .get_or_create(&TopicPolicyLabels {
                topic: at.0.to_string(),
                policy: policy.to_string(),
            })
            .inc();
    }
    intake
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{TimestampSource, Topics};

    fn source(timestamp: TimestampSource, on_error: ErrorPolicy) -> Source {
        Source {
            name: "in".into(),
            topics: Topics::Names(vec!["in".into()]),
            table: false,
            global: false,
            history: None,
            timestamp,
            on_error,
        }
    }

    fn headers() -> OwnedHeaders {
        vec![("h".into(), Some(b"1".to_vec()))]
    }

    #[test]
    fn a_readable_time_is_taken_and_a_negative_one_skipped() {
        let s = source(TimestampSource::Record, ErrorPolicy::Fail);
        let at = ("in", 0, 3);
        assert_eq!(
            take(&s, None, None, 42, headers, at, None),
            Intake::Take(42)
        );
        assert_eq!(take(&s, None, None, -1, headers, at, None), Intake::Skip);
    }

    #[test]
    fn an_unreadable_time_goes_by_the_sources_policy() {
        let field = || TimestampSource::Field("/ts".into());
        let at = ("in", 2, 9);
        let value = Some(&b"not json"[..]);
        let failing = source(field(), ErrorPolicy::Fail);
        assert!(matches!(
            take(&failing, None, value, 1, headers, at, None),
            Intake::Fail(TimestampError::Field { .. })
        ));
        let skipping = source(field(), ErrorPolicy::Skip);
        let metrics = Metrics::new();
        assert_eq!(
            take(&skipping, None, value, 1, headers, at, Some(&metrics)),
            Intake::Skip
        );
        let counted = metrics
            .records_unreadable
            .get_or_create(&TopicPolicyLabels {
                topic: "in".into(),
                policy: "skip".into(),
            })
            .get();
        assert_eq!(counted, 1);
        let dead = source(field(), ErrorPolicy::DeadLetter("dead".into()));
        let Intake::Dead(letter) = take(&dead, Some(b"k"), value, 1, headers, at, None) else {
            panic!("dead-lettered");
        };
        assert_eq!(letter.topic, "dead");
        assert_eq!(letter.value.as_deref(), Some(&b"not json"[..]));
        assert_eq!(letter.key.as_deref(), Some(&b"k"[..]));
        assert!(letter.headers.contains(&("h".into(), Some(b"1".to_vec()))));
        let offset = letter
            .headers
            .iter()
            .find(|(k, _)| k == "eddy.source.offset");
        assert_eq!(offset.and_then(|(_, v)| v.clone()), Some(b"9".to_vec()));
    }
}
