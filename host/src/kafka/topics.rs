//! The application's internal topics: store changelogs
//! (`<application-id>-<store>-changelog`, compacted) and repartition topics
//! (`<application-id>-<step>-repartition`), created by eddy with as many
//! partitions as the sources have, as Kafka Streams does.

use crate::topology::{SubInput, Topics, Topology};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::metadata::Metadata;
use std::time::Duration;

/// An input partition: (index into the consumed topics, partition).
pub type Task = (usize, i32);

/// An internal topic eddy needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTopic {
    /// Its name.
    pub name: String,
    /// A changelog (compacted) rather than a repartition topic.
    pub changelog: bool,
    /// A dead-letter topic: the application's output, not internal state
    /// (created when missing, any partition count, never deleted by reset).
    pub dead_letter: bool,
    /// Its partition count, when not the sources' (see [`repartition_count`]).
    pub partitions: Option<i32>,
}

/// A topic the consumer reads: a source's, or a repartition topic.
#[derive(Debug, Clone)]
pub struct Input {
    /// Topic name.
    pub topic: String,
    /// The sub-topology reading it.
    pub sub: usize,
    /// What the sub-topology reads it as.
    pub read: SubInput,
}

impl Input {
    /// The source it belongs to (none for repartition topics).
    pub fn source(&self) -> Option<usize> {
        match self.read {
            SubInput::Source(i) => Some(i),
            SubInput::Repartition(_) => None,
        }
    }
}

/// The topics to consume: each source's topics (a pattern's matches among
/// the topics the broker has now), then the repartition topics.
pub fn inputs(t: &Topology, md: &Metadata) -> Result<Vec<Input>, String> {
    let mut inputs = Vec::new();
    for (i, s) in t.sources.iter().enumerate() {
        if s.global {
            continue; // read by a consumer of its own (kafka/global.rs)
        }
        let sub = t.plan.source_sub[i];
        let topics: Vec<String> = match &s.topics {
            Topics::Names(n) => n.clone(),
            Topics::Pattern(p) => {
                let mut found: Vec<String> = md
                    .topics()
                    .iter()
                    .filter(|m| m.error().is_none())
                    .map(|m| m.name().to_string())
                    .filter(|name| t.source_of_topic(name) == Some(i))
                    .collect();
                found.sort();
                if found.is_empty() {
                    return Err(format!(
                        "no topic matches the pattern {p:?} of source {:?}; create one first (e.g. scripts/kafka topic-create NAME PARTITIONS)",
                        s.name
                    ));
                }
                found
            }
        };
        inputs.extend(topics.into_iter().map(|topic| Input {
            topic,
            sub,
            read: SubInput::Source(i),
        }));
    }
    for (r, rep) in t.plan.repartitions.iter().enumerate() {
        inputs.push(Input {
            topic: rep.topic.clone(),
            sub: rep.to,
            read: SubInput::Repartition(r),
        });
    }
    Ok(inputs)
}

/// Every internal topic of `t`.
pub fn internal_topics(t: &Topology) -> Vec<InternalTopic> {
    let mut topics: Vec<InternalTopic> = t
        .plan
        .repartitions
        .iter()
        .map(|r| InternalTopic {
            name: r.topic.clone(),
            changelog: false,
            dead_letter: false,
            partitions: None,
        })
        .collect();
    for store in t.stores() {
        topics.push(InternalTopic {
            name: t.changelog_topic(&store),
            changelog: true,
            dead_letter: false,
            partitions: None,
        });
    }
    topics
}

/// The dead-letter topics of sources, steps and sinks with
/// `on_error = "dead-letter"`.
pub fn dead_letter_topics(t: &Topology) -> Vec<InternalTopic> {
    let mut topics: Vec<InternalTopic> = Vec::new();
    let policies = t
        .sources
        .iter()
        .map(|s| &s.on_error)
        .chain(t.steps.iter().map(|s| &s.on_error))
        .chain(t.sinks.iter().map(|s| &s.on_error));
    for policy in policies {
        if let crate::topology::ErrorPolicy::DeadLetter(name) = policy
            && !topics.iter().any(|x| &x.name == name)
        {
            topics.push(InternalTopic {
                name: name.clone(),
                changelog: false,
                dead_letter: true,
                partitions: None,
            });
        }
    }
    topics
}

/// Partitions of `topic` in `md`, if it exists.
fn count(md: &Metadata, topic: &str) -> Option<usize> {
    md.topics()
        .iter()
        .find(|m| m.name() == topic && m.error().is_none())
        .map(|m| m.partitions().len())
}

/// How many partitions repartition topic `r` has: the widest source's
/// (`partitions`), except a foreign-key join's subscription and answer
/// topics, which take the count of the source topics of the sub-topology
/// reading them (the right table's, the left table's), as Kafka Streams
/// sizes them: the two tables of such a join need not be co-partitioned.
pub fn repartition_count(
    t: &Topology,
    inputs: &[Input],
    md: &Metadata,
    partitions: i32,
    r: usize,
) -> i32 {
    let rep = &t.plan.repartitions[r];
    let fk = (t.steps[rep.step].op.join()).is_some_and(|j| j.foreign_key.is_some());
    if !fk {
        return partitions;
    }
    (inputs.iter())
        .filter(|i| i.sub == rep.to && i.source().is_some())
        .filter_map(|i| count(md, &i.topic))
        .max()
        .map_or(partitions, |n| n as i32)
}

/// Gives each foreign-key join's internal topics in `topics` their count.
pub fn size_repartitions(
    t: &Topology,
    inputs: &[Input],
    md: &Metadata,
    partitions: i32,
    topics: &mut [InternalTopic],
) {
    for (r, rep) in t.plan.repartitions.iter().enumerate() {
        let n = repartition_count(t, inputs, md, partitions, r);
        if n != partitions
            && let Some(it) = topics.iter_mut().find(|it| it.name == rep.topic)
        {
            it.partitions = Some(n);
        }
    }
}

/// Checks that the topics each join reads have one partition count: a
/// join runs partition *p* of its left input with partition *p* of its
/// right, so another count would join records that never meet.
///
/// A repartition topic a join reads is created with `partitions` (the
/// widest source's count), so the join's source topics need that count too.
pub fn check_copartitioned(
    t: &Topology,
    inputs: &[Input],
    md: &Metadata,
    partitions: i32,
) -> Result<(), String> {
    for sub in &t.plan.subtopologies {
        let Some(step) = sub.nodes.iter().find_map(|n| match n.kind {
            crate::topology::NodeKind::Join { step, .. } => Some(step),
            _ => None,
        }) else {
            continue;
        };
        let mut counts: Vec<(String, usize)> = inputs
            .iter()
            .filter(|i| i.sub == sub.id)
            .filter_map(|i| match i.read {
                SubInput::Source(_) => Some((i.topic.clone(), count(md, &i.topic)?)),
                SubInput::Repartition(r) => {
                    let n = repartition_count(t, inputs, md, partitions, r);
                    Some((i.topic.clone(), n as usize))
                }
            })
            .collect();
        counts.sort();
        if counts.windows(2).any(|w| w[0].1 != w[1].1) {
            let listed: Vec<String> = counts.iter().map(|(t, n)| format!("{t}={n}")).collect();
            return Err(format!(
                "join {:?} reads topics that are not co-partitioned: [{}]; a join needs the same number of partitions on both sides: give the topics one partition count (recreate one, or add partitions with kafka-topics --alter before any data is keyed to them)",
                t.steps[step].name,
                listed.join(", ")
            ));
        }
    }
    Ok(())
}

/// Number of partitions of the widest source topic (the number of tasks of
/// every sub-topology).
pub fn source_partitions(t: &Topology, md: &Metadata) -> i32 {
    md.topics()
        .iter()
        .filter(|m| m.error().is_none() && t.source_of_topic(m.name()).is_some())
        .map(|m| m.partitions().len() as i32)
        .max()
        .unwrap_or(1)
}

/// Waits (at most `timeout`) until every topic of `names` shows in the
/// cluster's metadata with a leader for each partition. A topic created a
/// moment ago may not yet; a consumer subscribing to it then would not
/// read it until its next metadata refresh, minutes later.
pub fn wait_visible<C: rdkafka::consumer::ConsumerContext>(
    consumer: &rdkafka::consumer::BaseConsumer<C>,
    names: &[String],
    timeout: Duration,
) -> Result<(), String> {
    use rdkafka::consumer::Consumer;
    let end = std::time::Instant::now() + timeout;
    for name in names {
        loop {
            let md = consumer.fetch_metadata(Some(name), Duration::from_secs(5));
            let ready = md.as_ref().is_ok_and(|md| {
                md.topics().iter().any(|m| {
                    m.name() == name
                        && m.error().is_none()
                        && !m.partitions().is_empty()
                        && m.partitions().iter().all(|p| p.leader() >= 0)
                })
            });
            if ready {
                break;
            }
            if std::time::Instant::now() >= end {
                return Err(format!(
                    "internal topic {name} was created but the broker does not list it after {}s; check the broker's log",
                    timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// Creates the internal topics that do not exist yet, with `partitions`
/// partitions; an existing one with another partition count is an error
/// (the application was started with other sources: reset it first).
pub fn ensure(
    admin: &AdminClient<DefaultClientContext>,
    md: &Metadata,
    topics: &[InternalTopic],
    partitions: i32,
) -> Result<(), String> {
    let mut missing = Vec::new();
    for it in topics {
        match md
            .topics()
            .iter()
            .find(|m| m.name() == it.name && m.error().is_none())
        {
            Some(m)
                if !it.dead_letter
                    && m.partitions().len() as i32 != it.partitions.unwrap_or(partitions) =>
            {
                return Err(format!(
                    "internal topic {} has {} partitions but the sources have {}; \
                     reset the application (eddy reset) after changing the sources' partitions",
                    it.name,
                    m.partitions().len(),
                    it.partitions.unwrap_or(partitions)
                ));
            }
            Some(_) => {}
            None => missing.push(it),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let new: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|it| {
            // Any event time eddy takes, also one more than an hour ahead.
            let (k, v) = super::limits::ANY_TIMESTAMP;
            let n = it.partitions.unwrap_or(partitions);
            let t = NewTopic::new(&it.name, n, TopicReplication::Fixed(-1)).set(k, v);
            if it.dead_letter {
                t
            } else if it.changelog {
                t.set("cleanup.policy", "compact")
            } else {
                // Kafka Streams' repartition topics: kept until consumed.
                t.set("cleanup.policy", "delete").set("retention.ms", "-1")
            }
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let res = futures_executor::block_on(admin.create_topics(&new, &opts))
        .map_err(|e| format!("creating internal topics: {e}"))?;
    for r in res {
        match r {
            Ok(name) => tracing::info!(topic = %name, "created internal topic"),
            Err((name, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic = %name, "internal topic created meanwhile");
            }
            Err((name, e)) => return Err(format!("creating internal topic {name}: {e}")),
        }
    }
    Ok(())
}
