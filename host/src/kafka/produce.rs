//! Kafka as the I/O layer of a worker's tasks: their output goes to the
//! producer, each record carrying a share of its batch's ticket as the
//! delivery opaque; a task opens with its stores restored from their
//! changelogs; changelog offsets count as written once acknowledged.

use super::delivery::{ChangelogOffsets, Delivery};
use super::limits::TopicLimits;
use super::restore;
use super::send::{record_refused, send_dead, send_with_retry, too_large, try_send};
use crate::metrics::Metrics;
use crate::runtime::dead_letter::{DeadLetter, Parts, SourceAt, batch_headers};
use crate::runtime::deliver::Output;
use crate::runtime::task::TaskPipeline;
use crate::runtime::tasks::{Opened, TaskId, TaskIo, task_name};
use crate::runtime::ticket::InFlight;
use crate::state::ChangelogRecord;
use crate::state::global::Globals;
use crate::topology::{ErrorPolicy, Sink, StoreKind, Topology};
use eddy_batch::RecordRef;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, ThreadedProducer};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// The header a repartitioned table change carries its old value in.
pub const OLD_VALUE_HEADER: &str = "__eddy.old";

/// Kafka as a worker's I/O layer.
#[derive(Clone)]
pub struct Producing {
    /// The producer.
    pub producer: Arc<ThreadedProducer<Delivery>>,
    /// The process's metrics.
    pub metrics: Arc<Metrics>,
    /// Acknowledged changelog offsets.
    pub changelog_offsets: ChangelogOffsets,
    /// Settings for restore consumers.
    pub restore_client: ClientConfig,
    /// `<state dir>/<application id>`.
    pub state_root: PathBuf,
    /// What each sink topic accepts.
    pub limits: Arc<HashMap<String, TopicLimits>>,
    /// The global tables joins look up.
    pub globals: Arc<Globals>,
}

impl TaskIo for Producing {
    fn open(&mut self, t: &Topology, id: TaskId, changelogs: &[String]) -> Result<Opened, String> {
        let s = &*self;
        if changelogs.is_empty() {
            let pipeline =
                TaskPipeline::new(t, id.0, None, &s.globals).map_err(|e| e.to_string())?;
            let restored_to = HashMap::new();
            return Ok(Opened {
                pipeline,
                restored_to,
            });
        }
        let dir = s.state_root.join(task_name(id));
        let checkpoint = if t.state.store == StoreKind::RocksDb {
            restore::prepare_dir(&dir, changelogs, id.1)
        } else {
            None
        };
        let opening = Instant::now();
        let mut pipeline =
            TaskPipeline::new(t, id.0, Some(&dir), &s.globals).map_err(|e| e.to_string())?;
        let opened_ms = opening.elapsed().as_millis() as u64;
        let state = pipeline.state().expect("stores");
        let started = Instant::now();
        let restored = restore::restore(
            rdkafka::producer::Producer::client(s.producer.as_ref()),
            &s.restore_client,
            state,
            changelogs,
            id.1,
            checkpoint.as_ref(),
            &restore::Progress {
                task: &task_name(id),
                metrics: &s.metrics,
            },
        )?;
        let task_labels = crate::metrics::TaskLabels {
            task: task_name(id),
        };
        (s.metrics.restored_records.get_or_create(&task_labels)).inc_by(restored.records);
        s.metrics
            .restore_remaining
            .get_or_create(&task_labels)
            .set(0);
        tracing::info!(
            task = %task_name(id),
            records = restored.records,
            from = ?restored.from,
            open_ms = opened_ms,
            took_ms = started.elapsed().as_millis() as u64,
            "restored"
        );
        let restored_to = restored.to.into_iter().map(|(t, _, o)| (t, o)).collect();
        Ok(Opened {
            pipeline,
            restored_to,
        })
    }

    fn acked(&self, topic: &str, partition: i32) -> Option<i64> {
        let acked = self.changelog_offsets.lock().expect("not poisoned");
        acked.get(&(topic.to_string(), partition)).map(|o| o + 1)
    }
}

impl Output for Producing {
    fn to_sink(
        &mut self,
        sink: &Sink,
        r: &RecordRef<'_>,
        at: Option<SourceAt<'_>>,
        held: &InFlight,
    ) {
        send_to_sink(self, held, sink, r, at);
    }

    fn to_topic(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        r: &RecordRef<'_>,
        old: bool,
        held: &InFlight,
    ) {
        send(self, held, topic, partition, r, old);
    }

    fn to_changelog(&mut self, topic: &str, partition: i32, c: &ChangelogRecord, held: &InFlight) {
        let mut rec = BaseRecord::<[u8], [u8], InFlight>::with_opaque_to(topic, held.hold())
            .partition(partition)
            .key(&c.key)
            .timestamp(c.timestamp);
        if let Some(v) = &c.value {
            rec = rec.payload(v);
        }
        send_record(self, topic, rec);
    }

    fn dead_letter(&mut self, d: &DeadLetter, held: &InFlight) {
        send_dead(&self.producer, held.hold(), d);
    }
}

/// Sends one record; `old` puts a table change's old value in a header.
fn send(
    s: &Producing,
    held: &InFlight,
    topic: &str,
    partition: Option<i32>,
    r: &RecordRef<'_>,
    old: bool,
) {
    let mut rec = record(held.hold(), topic, r, old);
    if let Some(p) = partition {
        rec = rec.partition(p);
    }
    send_record(s, topic, rec);
}

/// `r` as a record for `topic`, carrying the share `held`; `old` puts a
/// table change's old value in a header.
fn record<'a>(
    held: InFlight,
    topic: &'a str,
    r: &RecordRef<'a>,
    old: bool,
) -> BaseRecord<'a, [u8], [u8], InFlight> {
    let mut rec =
        BaseRecord::<[u8], [u8], InFlight>::with_opaque_to(topic, held).timestamp(r.timestamp);
    if let Some(k) = r.key {
        rec = rec.key(k);
    }
    if let Some(v) = r.value {
        rec = rec.payload(v);
    }
    let carry_old = old && r.aux.is_some();
    if !r.headers.is_empty() || carry_old {
        let mut h = copy_headers(r, 1);
        if carry_old {
            h = h.insert(Header {
                key: OLD_VALUE_HEADER,
                value: r.aux,
            });
        }
        rec = rec.headers(h);
    }
    rec
}

/// Sends a sink record; one the client refuses on its own account (too
/// large, say) goes by the sink's `on_error`.
fn send_to_sink(
    s: &Producing,
    held: &InFlight,
    sink: &Sink,
    r: &RecordRef<'_>,
    from: Option<(&str, i32, i64)>,
) {
    if let Some(refusal) = s
        .limits
        .get(&sink.topic)
        .and_then(|l| l.refuses_timestamp(r.timestamp, crate::time::extract::now_ms()))
    {
        // Refused here, not by the broker: it would take the records
        // sent with it in the same request along.
        let why = format!("producing to {} refused: {refusal}", sink.topic);
        let e = KafkaError::MessageProduction(RDKafkaErrorCode::InvalidTimestamp);
        if !refused(s, held, sink, &why, &e, r, from) {
            held.ticket().fail(why);
        }
        return;
    }
    let rec = record(held.hold(), &sink.topic, r, false);
    if let Err(refusal) = try_send(&s.producer, rec) {
        let (e, refused_record) = *refusal;
        drop(refused_record); // its share: the outcome is decided here
        let why = format!("producing to {} failed: {e}", sink.topic);
        if !refused(s, held, sink, &why, &e, r, from) {
            held.ticket().fail(why);
        }
    }
}

/// Applies `sink`'s policy to a record it could not take: false when the
/// policy is to fail (or the error is not the record's).
fn refused(
    s: &Producing,
    held: &InFlight,
    sink: &Sink,
    why: &str,
    e: &KafkaError,
    r: &RecordRef<'_>,
    from: Option<(&str, i32, i64)>,
) -> bool {
    if !record_refused(e) {
        return false;
    }
    let policy = match &sink.on_error {
        ErrorPolicy::Fail => return false,
        ErrorPolicy::Skip => {
            tracing::warn!("skipped a record: {why}");
            "skip"
        }
        ErrorPolicy::DeadLetter(topic) => {
            tracing::warn!("dead-lettered a record to {topic}: {why}");
            let headers = batch_headers(r);
            let parts = Parts {
                key: r.key,
                value: r.value,
                timestamp: r.timestamp,
                headers: &headers,
            };
            let letter = DeadLetter::refused(topic, &sink.topic, parts, why, too_large(e), from);
            send_dead(&s.producer, held.hold(), &letter);
            "dead-letter"
        }
    };
    s.metrics
        .records_unwritable
        .get_or_create(&crate::metrics::TopicPolicyLabels {
            topic: sink.topic.clone(),
            policy: policy.to_string(),
        })
        .inc();
    true
}

/// `r`'s headers, with room for `more`.
fn copy_headers(r: &RecordRef<'_>, more: usize) -> OwnedHeaders {
    let mut h = OwnedHeaders::new_with_capacity(r.headers.len() + more);
    for (name, value) in r.headers.iter() {
        h = h.insert(Header {
            key: std::str::from_utf8(name).unwrap_or("?"),
            value,
        });
    }
    h
}

fn send_record<'a>(s: &Producing, topic: &str, rec: BaseRecord<'a, [u8], [u8], InFlight>) {
    send_with_retry(&s.producer, topic, rec);
}
