//! The producer's side: delivery reports complete each record's share of
//! its batch, remember changelog offsets, and apply a sink's `on_error` to
//! records the broker refused; their dead letters go out from a thread of
//! their own.

use super::send::{record_refused, send_dead, too_large};
use crate::runtime::dead_letter::{DeadLetter, Parts};
use crate::runtime::ticket::InFlight;
use crate::topology::ErrorPolicy;
use crossbeam_channel::Sender;
use rdkafka::ClientContext;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Changelog offsets acknowledged by the broker: (topic, partition) → offset.
pub type ChangelogOffsets = Arc<Mutex<HashMap<(String, i32), i64>>>;

/// Producer callbacks: completes tickets, remembers changelog offsets, and
/// applies a sink's `on_error` to records the broker refused.
pub struct Delivery {
    pub(super) changelogs: HashSet<String>,
    pub(super) offsets: ChangelogOffsets,
    /// Sinks that skip or dead-letter refused records, by topic.
    pub(super) sinks: HashMap<String, ErrorPolicy>,
    pub(super) metrics: Arc<crate::metrics::Metrics>,
    /// Refused records to dead-letter, each with a share of its batch's
    /// work; a thread of their own sends them.
    pub(super) dead: Sender<Letter>,
    /// The largest dead letter the topics and the producer take, bytes
    /// (known once the topics are described).
    pub(super) dead_letter_max: std::sync::atomic::AtomicUsize,
}

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    type DeliveryOpaque = InFlight;

    /// Completes the record's share of its batch when `held` drops.
    fn delivery(&self, result: &DeliveryResult<'_>, held: InFlight) {
        match result {
            Err((e, m)) => {
                let why = format!("producing to {} failed: {e}", m.topic());
                let policy = self.sinks.get(m.topic()).filter(|_| record_refused(e));
                match policy {
                    None | Some(ErrorPolicy::Fail) => held.ticket().fail(why),
                    Some(ErrorPolicy::Skip) => {
                        tracing::warn!("skipped a record: {why}");
                        self.count(m.topic(), "skip");
                    }
                    Some(ErrorPolicy::DeadLetter(topic)) => {
                        tracing::warn!("dead-lettered a record to {topic}: {why}");
                        self.count(m.topic(), "dead-letter");
                        let headers = owned_headers(m);
                        let d = DeadLetter::refused(
                            topic,
                            m.topic(),
                            parts(m, &headers),
                            &why,
                            too_large(e),
                            None,
                        );
                        // The dead letter's own share; back here (and
                        // dropped) when the thread is gone.
                        if let Err(e) = self.dead.send(Letter::Send(held.hold(), d)) {
                            held.ticket().fail(why);
                            drop(e);
                        }
                    }
                }
            }
            Ok(m) if self.changelogs.contains(m.topic()) => {
                let mut o = self.offsets.lock().expect("not poisoned");
                let at = o
                    .entry((m.topic().to_string(), m.partition()))
                    .or_insert(-1);
                *at = (*at).max(m.offset());
            }
            Ok(_) => {}
        }
    }
}

impl Delivery {
    fn count(&self, topic: &str, policy: &str) {
        self.metrics
            .records_unwritable
            .get_or_create(&crate::metrics::TopicPolicyLabels {
                topic: topic.to_string(),
                policy: policy.to_string(),
            })
            .inc();
    }
}

/// A message's headers, owned.
pub(super) fn owned_headers(
    m: &rdkafka::message::BorrowedMessage<'_>,
) -> Vec<(String, Option<Vec<u8>>)> {
    m.headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default()
}

/// A message's parts, its headers given owned.
pub(super) fn parts<'m>(
    m: &'m rdkafka::message::BorrowedMessage<'_>,
    headers: &'m [(String, Option<Vec<u8>>)],
) -> Parts<'m> {
    Parts {
        key: m.key(),
        value: m.payload(),
        timestamp: m.timestamp().to_millis().unwrap_or(0),
        headers,
    }
}

/// What the dead-letter thread is asked to do.
pub(super) enum Letter {
    /// Send a dead letter, completing the share when it is delivered.
    Send(InFlight, DeadLetter),
    /// Answer once everything asked before is handed to the producer.
    Flush(Sender<()>),
}

/// Sends the dead letters of sink records the broker refused, from a thread
/// of its own: neither the delivery callback (which must not block) nor the
/// poll loop (which may be waiting for those very tickets) can. It ends
/// when the producer (whose callback holds the other end) is gone.
pub(super) fn spawn_dead_letters(
    producer: std::sync::Weak<ThreadedProducer<Delivery>>,
    letters: crossbeam_channel::Receiver<Letter>,
) {
    let spawned = std::thread::Builder::new()
        .name("eddy-dead-letters".into())
        .spawn(move || {
            while let Ok(letter) = letters.recv() {
                match letter {
                    Letter::Send(held, d) => match producer.upgrade() {
                        Some(p) => send_dead(&p, held, &d),
                        None => held
                            .ticket()
                            .fail(format!("dead letter to {} not sent: stopping", d.topic)),
                    },
                    Letter::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("starting the dead-letter thread: {e}");
    }
}
