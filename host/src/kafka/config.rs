//! librdkafka settings for eddy's consumer and producer.
//!
//! The spec's `[kafka]` settings are passed to both clients under their own
//! names; eddy then fixes what its guarantees depend on.

use crate::topology::Topology;
use rdkafka::ClientConfig;

fn base(t: &Topology) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in &t.kafka {
        c.set(k, v);
    }
    c
}

fn default(c: &mut ClientConfig, key: &str, value: &str) {
    if c.get(key).is_none() {
        c.set(key, value);
    }
}

/// The consumer: a member of the group `application_id`, committing only
/// what eddy tells it to.
pub fn consumer_config(t: &Topology) -> ClientConfig {
    let mut c = base(t);
    c.set("group.id", &t.application_id);
    c.set("enable.auto.commit", "false");
    c.set("enable.auto.offset.store", "false");
    // Kafka Streams' defaults: read from the beginning when there is no
    // committed offset; rebalance cooperatively so unaffected partitions
    // keep running.
    default(&mut c, "auto.offset.reset", "earliest");
    default(
        &mut c,
        "partition.assignment.strategy",
        "cooperative-sticky",
    );
    // Fetch ahead in large chunks: with librdkafka's defaults (1 MiB per
    // partition and fetch, 100k messages queued) the consumer, not the
    // processing, bounds throughput (docs/performance.md).
    default(&mut c, "max.partition.fetch.bytes", "8388608");
    default(&mut c, "queued.min.messages", "1000000");
    default(
        &mut c,
        "client.id",
        &format!("{}-consumer", t.application_id),
    );
    c
}

/// The producer: acknowledged by all in-sync replicas, idempotent (so
/// retries keep per-partition order), and partitioning keys like the Java
/// client, so eddy and Kafka Streams agree on where a key lives.
pub fn producer_config(t: &Topology) -> ClientConfig {
    let mut c = base(t);
    default(&mut c, "enable.idempotence", "true");
    default(&mut c, "acks", "all");
    default(&mut c, "partitioner", "murmur2_random");
    default(&mut c, "linger.ms", "5");
    default(&mut c, "queue.buffering.max.messages", "1000000");
    default(
        &mut c,
        "client.id",
        &format!("{}-producer", t.application_id),
    );
    c
}

/// An admin client for internal topics.
pub fn admin_config(t: &Topology) -> ClientConfig {
    let mut c = base(t);
    default(&mut c, "client.id", &format!("{}-admin", t.application_id));
    c
}

/// A consumer that reads changelogs by assignment, outside the group.
pub fn restore_config(t: &Topology) -> ClientConfig {
    let mut c = base(t);
    c.set("group.id", format!("{}-restore", t.application_id));
    default(
        &mut c,
        "client.id",
        &format!("{}-restore-consumer", t.application_id),
    );
    c
}
