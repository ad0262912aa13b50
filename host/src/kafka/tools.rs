//! `eddy produce` and `eddy consume`: records files in and out of Kafka,
//! for demos and debugging.

use crate::records::{OwnedRecord, write_record};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::io::Write;
use std::time::{Duration, Instant};

/// Produces every record to its topic and waits until all are acknowledged.
pub fn produce(bootstrap: &str, records: &[OwnedRecord]) -> Result<(), KafkaError> {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .create()?;
    for r in records {
        let mut rec = BaseRecord::<[u8], [u8]>::to(&r.topic).timestamp(r.timestamp);
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
        p.send(rec).map_err(|(e, _)| e)?;
    }
    p.flush(Duration::from_secs(30))
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
