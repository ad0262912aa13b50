//! `eddy produce` and `eddy consume`: records files in and out of Kafka,
//! for demos and debugging.

use crate::records::{OwnedRecord, write_record};
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Why `eddy produce` did not produce every record.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The client could not be created.
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// Some records were refused (by the client or the broker) or never
    /// acknowledged.
    #[error(
        "{} of {total} record(s) not produced ({acknowledged} acknowledged): {}",
        total - acknowledged,
        describe(failed)
    )]
    Lost {
        /// Records in the file.
        total: usize,
        /// Records the broker acknowledged.
        acknowledged: usize,
        /// The first failures: (record number from 1, why).
        failed: Vec<(usize, String)>,
    },
}

fn describe(failed: &[(usize, String)]) -> String {
    let shown: Vec<String> = (failed.iter().take(5))
        .map(|(n, why)| format!("record {n}: {why}"))
        .collect();
    let more = failed.len().saturating_sub(shown.len());
    let tail = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    format!("{}{tail}", shown.join("; "))
}

/// Counts delivery reports: the record's number travels as the opaque.
#[derive(Default)]
struct Counted {
    acknowledged: AtomicUsize,
    failed: Mutex<Vec<(usize, String)>>,
}

impl ClientContext for Counted {}

impl ProducerContext for Counted {
    type DeliveryOpaque = Box<usize>;

    fn delivery(&self, result: &DeliveryResult<'_>, n: Box<usize>) {
        match result {
            Ok(_) => {
                self.acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, m)) => {
                let why = format!("producing to {} failed: {e}", m.topic());
                self.failed.lock().expect("not poisoned").push((*n, why));
            }
        }
    }
}

/// How long the last records may take to be acknowledged.
const ACK_WAIT: Duration = Duration::from_secs(60);

/// Produces every record to its topic and waits until each is acknowledged
/// or refused: `Ok` only when the broker acknowledged all of them. Waits
/// while the producer's queue is full, so files of any size go through.
pub fn produce(bootstrap: &str, records: &[OwnedRecord]) -> Result<usize, ProduceError> {
    let p: ThreadedProducer<Counted> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .create_with_context(Counted::default())?;
    let mut refused = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let mut rec =
            BaseRecord::<[u8], [u8], Box<usize>>::with_opaque_to(&r.topic, Box::new(i + 1))
                .timestamp(r.timestamp);
        if let Some(k) = &r.key {
            rec = rec.key(k);
        }
        if let Some(v) = &r.value {
            rec = rec.payload(v);
        }
        if !r.headers.is_empty() {
            let mut h = OwnedHeaders::new_with_capacity(r.headers.len());
            for (n, v) in &r.headers {
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
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    rec = back;
                    p.poll(Duration::from_millis(50));
                }
                Err((e, _)) => {
                    refused.push((i + 1, format!("refused by the client: {e}")));
                    break;
                }
            }
        }
    }
    // Unacknowledged records stay counted as lost: no error of its own.
    let _ = p.flush(ACK_WAIT);
    let acknowledged = p.context().acknowledged.load(Ordering::Relaxed);
    let mut failed = std::mem::take(&mut *p.context().failed.lock().expect("not poisoned"));
    failed.extend(refused);
    failed.sort_unstable_by_key(|(n, _)| *n);
    if acknowledged == records.len() {
        return Ok(acknowledged);
    }
    if failed.is_empty() {
        failed.push((
            0,
            format!("not acknowledged within {}s", ACK_WAIT.as_secs()),
        ));
    }
    Err(ProduceError::Lost {
        total: records.len(),
        acknowledged,
        failed,
    })
}

/// Prints records of `topic` from the beginning as JSON lines until `count`
/// were printed or nothing arrived for `idle`.
pub fn consume(
    bootstrap: &str,
    topic: &str,
    count: usize,
    idle: Duration,
    out: &mut impl Write,
) -> Result<usize, KafkaError> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("eddy-consume-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()?;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
        }
    }
    c.assign(&tpl)?;
    let (mut n, mut last) = (0, Instant::now());
    while n < count && last.elapsed() < idle {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let headers = m.headers().map_or_else(Vec::new, |h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                });
                let _ = write_record(
                    out,
                    m.topic(),
                    m.key(),
                    m.payload(),
                    m.timestamp().to_millis().unwrap_or(0),
                    headers.into_iter(),
                );
                n += 1;
                last = Instant::now();
            }
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    Ok(n)
}
