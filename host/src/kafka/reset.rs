//! `eddy reset`: returns an application to the start, as Kafka Streams'
//! application reset tool plus `KafkaStreams#cleanUp()` do:
//!
//! 1. refuses while the consumer group (the application id) has members;
//! 2. moves the group's offsets on the source topics to the earliest
//!    offsets (or to the first offsets at or after a given time);
//! 3. deletes the internal topics (`<application-id>-…-changelog` and
//!    `…-repartition`);
//! 4. deletes the local state directory `<state dir>/<application-id>`.
//!
//! With `dry_run`, it only says what it would do.

use super::topics;
use crate::topology::Topology;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::time::Duration;

/// Why a reset did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// An instance still runs.
    #[error(
        "consumer group '{group}' is still active and has members {members:?}: stop every running instance of the application (eddy run) before resetting it"
    )]
    Active {
        /// The group.
        group: String,
        /// Its members' client ids.
        members: Vec<String>,
    },
    /// The broker refused or could not be reached.
    #[error("Kafka: {0}")]
    Kafka(String),
    /// The spec lacks something.
    #[error("{0}")]
    Config(String),
    /// The state directory could not be removed.
    #[error("removing {path}: {reason}")]
    Io {
        /// The directory.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// Where to move the source offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    /// The earliest offset of each partition.
    Earliest,
    /// The first offset whose timestamp is at or after this (ms).
    Time(i64),
}

/// Resets the application; returns what was (or would be) done, a line each.
pub fn reset(t: &Topology, to: ResetTo, dry_run: bool) -> Result<Vec<String>, ResetError> {
    let kafka = |e: rdkafka::error::KafkaError| ResetError::Kafka(e.to_string());
    let mut base = ClientConfig::new();
    for (k, v) in &t.kafka {
        base.set(k, v);
    }
    if base.get("bootstrap.servers").is_none() {
        return Err(ResetError::Config(format!(
            "{}: set kafka.\"bootstrap.servers\"",
            t.spec_path.display()
        )));
    }
    let group = &t.application_id;
    let consumer: BaseConsumer = base
        .clone()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(kafka)?;
    let groups = consumer
        .fetch_group_list(Some(group), Duration::from_secs(10))
        .map_err(kafka)?;
    if let Some(g) = groups.groups().iter().find(|g| g.name() == group)
        && !g.members().is_empty()
    {
        return Err(ResetError::Active {
            group: group.clone(),
            members: g
                .members()
                .iter()
                .map(|m| format!("{}@{}", m.client_id(), m.client_host()))
                .collect(),
        });
    }
    let mut done = Vec::new();
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(kafka)?;

    // Source offsets.
    let mut tpl = TopicPartitionList::new();
    // The sources' topics: those named, and those a pattern matches now.
    let mut source_topics = t.source_topics();
    for m in md.topics() {
        let name = m.name().to_string();
        if !source_topics.contains(&name) && t.source_of_topic(&name).is_some() {
            source_topics.push(name);
        }
    }
    for topic in &source_topics {
        let Some(m) = md.topics().iter().find(|m| m.name() == topic) else {
            done.push(format!(
                "source topic {topic} does not exist: nothing to reset"
            ));
            continue;
        };
        for p in m.partitions() {
            let offset = match to {
                ResetTo::Earliest => {
                    let (low, _) = consumer
                        .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                        .map_err(kafka)?;
                    low
                }
                ResetTo::Time(ms) => {
                    let mut q = TopicPartitionList::new();
                    q.add_partition_offset(topic, p.id(), Offset::Offset(ms))
                        .map_err(kafka)?;
                    let found = consumer
                        .offsets_for_times(q, Duration::from_secs(10))
                        .map_err(kafka)?;
                    match found.find_partition(topic, p.id()).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => o,
                        // No record at or after the time: the end.
                        _ => {
                            consumer
                                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                                .map_err(kafka)?
                                .1
                        }
                    }
                }
            };
            tpl.add_partition_offset(topic, p.id(), Offset::Offset(offset))
                .map_err(kafka)?;
            done.push(format!(
                "offset of {}-{} for group {group}: {offset}",
                topic,
                p.id()
            ));
        }
    }
    if !dry_run && tpl.count() > 0 {
        consumer.commit(&tpl, CommitMode::Sync).map_err(kafka)?;
    }

    // Internal topics: those the topology names, and any other this
    // application left (an older version of the spec).
    let mut internal: Vec<String> = topics::internal_topics(t)
        .into_iter()
        .map(|i| i.name)
        .collect();
    let prefix = format!("{group}-");
    for m in md.topics() {
        let n = m.name();
        if n.starts_with(&prefix)
            && (n.ends_with("-changelog") || n.ends_with("-repartition"))
            && !internal.iter().any(|i| i == n)
        {
            internal.push(n.to_string());
        }
    }
    let existing: Vec<&String> = internal
        .iter()
        .filter(|n| md.topics().iter().any(|m| m.name() == n.as_str()))
        .collect();
    for n in &existing {
        done.push(format!("delete internal topic {n}"));
    }
    if !dry_run && !existing.is_empty() {
        let admin: AdminClient<DefaultClientContext> = base.create().map_err(kafka)?;
        let names: Vec<&str> = existing.iter().map(|s| s.as_str()).collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let res = futures_executor::block_on(admin.delete_topics(&names, &opts)).map_err(kafka)?;
        for r in res {
            if let Err((name, e)) = r {
                return Err(ResetError::Kafka(format!("deleting {name}: {e}")));
            }
        }
        // Deletion finishes in the background; a run right after a reset
        // must be able to create the topics again.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let md = consumer
                .fetch_metadata(None, Duration::from_secs(10))
                .map_err(kafka)?;
            let left: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| md.topics().iter().any(|m| m.name() == *n))
                .collect();
            if left.is_empty() {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(ResetError::Kafka(format!(
                    "topics {left:?} were not deleted within 60s"
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // Local state.
    let dir = t.state.dir.join(&t.application_id);
    if dir.exists() {
        done.push(format!("delete local state {}", dir.display()));
        if !dry_run {
            std::fs::remove_dir_all(&dir).map_err(|e| ResetError::Io {
                path: dir.display().to_string(),
                reason: e.to_string(),
            })?;
        }
    }
    Ok(done)
}
