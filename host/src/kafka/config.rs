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
    // processing, bounds throughput (docs/performance.md). Not when a task
    // reads several topics in timestamp order: the consumer hands out
    // whole fetches partition by partition, and what it hands out of one
    // waits in memory until the others catch up (kafka/order.rs).
    let fetch = if reads_several(t) {
        "1048576"
    } else {
        "8388608"
    };
    default(&mut c, "max.partition.fetch.bytes", fetch);
    default(&mut c, "queued.min.messages", "1000000");
    // The state of the broker connections, for readiness.
    default(
        &mut c,
        "statistics.interval.ms",
        super::health::STATISTICS_INTERVAL_MS,
    );
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

/// What `eddy run` would refuse about the spec's Kafka settings and state
/// directory, found without connecting: each `[kafka]` property goes
/// through librdkafka's own configuration check (name, type, range), and a
/// stateful topology's state directory must be a directory eddy can create
/// and write.
pub fn check(t: &Topology) -> Vec<String> {
    let spec = t.spec_path.display();
    // One property at a time: librdkafka stops at the first it refuses.
    let mut problems: Vec<String> = (t.kafka.iter())
        .filter_map(|(k, v)| {
            let refused = ClientConfig::new().set(k, v).create_native_config().err()?;
            Some(format!(
                "{spec}: kafka.{k:?}: librdkafka refuses it: {refused}"
            ))
        })
        .collect();
    if !t.stores().is_empty()
        && let Err(why) = writable_dir(&t.state.dir)
    {
        problems.push(format!(
            "{spec}: state.dir = {:?}: {why}",
            t.state.dir.display().to_string()
        ));
    }
    problems
}

/// Whether `dir` is, or can be made, a directory eddy writes in.
fn writable_dir(dir: &std::path::Path) -> Result<(), String> {
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(m) if m.is_dir() => {
                return if m.permissions().readonly() {
                    Err(format!("{} is read-only", at.display()))
                } else {
                    Ok(())
                };
            }
            Ok(_) => return Err(format!("{} is a file, not a directory", at.display())),
            Err(_) => match at.parent() {
                Some(p) if !p.as_os_str().is_empty() => at = p,
                _ => return Ok(()),
            },
        }
    }
}

/// The producer's `message.max.bytes` (librdkafka's default unless the
/// spec sets it).
pub(super) fn producer_max_bytes(t: &Topology) -> usize {
    t.kafka
        .iter()
        .find(|(k, _)| k == "message.max.bytes")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// Whether a task of the topology reads several topics (a join, a merge, a
/// source of several topics).
fn reads_several(t: &Topology) -> bool {
    t.plan.subtopologies.iter().any(|s| s.inputs.len() > 1)
        || t.sources.iter().any(|s| s.topics.single().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(extra: &str) -> Topology {
        let text = format!(
            "application_id = \"c\"\n[[sources]]\ntopic = \"in\"\n\
             [[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"n\"\nop = \"count\"\n\
             [[sinks]]\ntopic = \"out\"\n{extra}"
        );
        crate::spec::validate_text(std::path::Path::new("p.toml"), &text).unwrap()
    }

    #[test]
    fn a_task_reading_several_topics_fetches_in_smaller_chunks() {
        let fetch = |t: &Topology| {
            consumer_config(t)
                .get("max.partition.fetch.bytes")
                .map(str::to_string)
        };
        assert_eq!(fetch(&topology("")).as_deref(), Some("8388608"));
        let join = crate::spec::validate_text(
            std::path::Path::new("p.toml"),
            "application_id = \"j\"\n[[sources]]\ntopic = \"a\"\n[[sources]]\ntopic = \"b\"\nas = \"table\"\n\
             [[steps]]\nname = \"j\"\nop = \"join\"\nleft = \"a\"\nright = \"b\"\njoiner = \"left\"\n\
             [[sinks]]\ntopic = \"out\"\n",
        )
        .unwrap();
        assert_eq!(fetch(&join).as_deref(), Some("1048576"));
        // What the spec sets wins.
        let set = topology("[kafka]\n\"max.partition.fetch.bytes\" = \"2097152\"\n");
        assert_eq!(fetch(&set).as_deref(), Some("2097152"));
    }

    #[test]
    fn librdkafka_checks_the_settings_without_connecting() {
        let ok =
            topology("[kafka]\n\"bootstrap.servers\" = \"127.0.0.1:1\"\n\"linger.ms\" = \"5\"\n");
        assert!(check(&ok).is_empty(), "{:?}", check(&ok));
        let bad = topology("[kafka]\n\"no.such.property\" = \"1\"\n\"linger.ms\" = \"soon\"\n");
        let problems = check(&bad);
        assert_eq!(
            problems.len(),
            2,
            "each refused property once: {problems:?}"
        );
        for key in ["no.such.property", "linger.ms"] {
            let prefix = format!("p.toml: kafka.\"{key}\": librdkafka refuses it:");
            assert!(
                problems.iter().any(|p| p.starts_with(&prefix)),
                "{key}: {problems:?}"
            );
        }
    }

    #[test]
    fn a_state_dir_that_is_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state");
        std::fs::write(&file, "not a dir").unwrap();
        let t = topology(&format!(
            "[state]\ndir = {:?}\n",
            file.join("sub").display().to_string()
        ));
        let problems = check(&t);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("state.dir") && p.contains("is a file, not a directory")),
            "{problems:?}"
        );
        let fine = topology(&format!(
            "[state]\ndir = {:?}\n",
            dir.path().join("new/deeper").display().to_string()
        ));
        assert!(check(&fine).is_empty());
    }
}
