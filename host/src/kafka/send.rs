//! Handing records to the producer: waiting out a full queue, failing the
//! record's batch when the client refuses it, telling which refusals are
//! the record's own fault, and sending dead letters.

use super::delivery::Delivery;
use crate::runtime::dead_letter::DeadLetter;
use crate::runtime::ticket::InFlight;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A producer context whose records each carry a share of their batch.
pub trait Sending: ProducerContext<DeliveryOpaque = InFlight> {}

impl<C: ProducerContext<DeliveryOpaque = InFlight>> Sending for C {}

/// Whether a production error is about the record itself (its size or
/// contents) rather than the broker or the connection: only those go by
/// a sink's `on_error`.
pub fn record_refused(e: &KafkaError) -> bool {
    matches!(
        e,
        KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::MessageBatchTooLarge
                | RDKafkaErrorCode::InvalidTimestamp
                | RDKafkaErrorCode::InvalidRecord
        )
    )
}

/// Whether a production error is about the record's size: its dead letter
/// then goes without the value (it would be refused too).
pub fn too_large(e: &KafkaError) -> bool {
    matches!(
        e,
        KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::MessageBatchTooLarge
        )
    )
}

/// Sends a dead letter as the share `held` of its batch, cut to fit what
/// its topic and the producer take.
pub fn send_dead(producer: &ThreadedProducer<Delivery>, held: InFlight, d: &DeadLetter) {
    let max = producer.context().dead_letter_max.load(Ordering::Relaxed);
    let mut fitted;
    let d = if d.size() > max.saturating_sub(512) {
        fitted = d.clone();
        fitted.fit(max);
        &fitted
    } else {
        d
    };
    let mut h = OwnedHeaders::new_with_capacity(d.headers.len());
    for (name, value) in &d.headers {
        h = h.insert(Header {
            key: name,
            value: value.as_deref(),
        });
    }
    let mut rec = BaseRecord::<[u8], [u8], InFlight>::with_opaque_to(&d.topic, held)
        .timestamp(d.timestamp)
        .headers(h);
    if let Some(k) = &d.key {
        rec = rec.key(k);
    }
    if let Some(v) = &d.value {
        rec = rec.payload(v);
    }
    send_with_retry(producer, &d.topic, rec);
}

/// Hands a record to the producer, waiting while its queue is full; a
/// refusal fails the record's batch.
pub fn send_with_retry<'a, C: Sending>(
    producer: &ThreadedProducer<C>,
    topic: &str,
    rec: BaseRecord<'a, [u8], [u8], InFlight>,
) {
    if let Err(refusal) = try_send(producer, rec) {
        let (e, refused) = *refusal;
        refused
            .delivery_opaque
            .ticket()
            .fail(format!("producing to {topic} failed: {e}"));
    }
}

/// A record the producer would not take, and why.
pub type Refusal<'a> = (KafkaError, BaseRecord<'a, [u8], [u8], InFlight>);

/// Hands a record to the producer; while its queue is full, serves
/// delivery reports (which make room) and tries again.
pub fn try_send<'a, C: Sending>(
    producer: &ThreadedProducer<C>,
    mut rec: BaseRecord<'a, [u8], [u8], InFlight>,
) -> Result<(), Box<Refusal<'a>>> {
    loop {
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                producer.poll(Duration::from_millis(1));
            }
            Err(refusal) => return Err(Box::new(refusal)),
        }
    }
}
