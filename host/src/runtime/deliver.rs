//! Delivering what a task produced, written once for every I/O layer:
//! dead letters and skips for the records operators failed on, late
//! records, records for sinks (in the order of the input records they came
//! from) and repartition topics, and store writes for the changelogs. The
//! I/O layer ([`Output`]: Kafka's producer, or the records file of
//! `eddy test`) only sends; each record it sends carries a share of the
//! batch's ticket.

use super::Destination;
use super::dead_letter::{DeadLetter, SourceAt};
use super::task::TaskOutput;
use super::ticket::InFlight;
use crate::metrics::Metrics;
use crate::ops::join::foreign::answer_partition;
use crate::state::ChangelogRecord;
use crate::topology::{ErrorPolicy, Sink, Topology};
use crate::wasm::Chain;
use eddy_batch::RecordRef;

/// Where a task's records go.
pub trait Output {
    /// Sends `r` to `sink`; a record the client or broker refuses for
    /// itself goes by the sink's `on_error` (`at` names its source record).
    fn to_sink(
        &mut self,
        sink: &Sink,
        r: &RecordRef<'_>,
        at: Option<SourceAt<'_>>,
        held: &InFlight,
    );

    /// Sends `r` to a repartition (`old`: with a table change's old value)
    /// or late topic, to `partition` if given (else by its key).
    fn to_topic(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        r: &RecordRef<'_>,
        old: bool,
        held: &InFlight,
    );

    /// Sends a store write to partition `partition` of its changelog.
    fn to_changelog(&mut self, topic: &str, partition: i32, c: &ChangelogRecord, held: &InFlight);

    /// Sends a dead letter.
    fn dead_letter(&mut self, d: &DeadLetter, held: &InFlight);
}

/// Where a task's records came from: the topic, partition and offset of
/// each input record (none for what a commit's flush emits, or for
/// records read from a repartition topic in `eddy test`).
pub type Source<'a> = Option<(&'a str, i32, &'a [i64])>;

/// What was done with records operators failed on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rejections {
    /// Skipped (`on_error = "skip"`).
    pub skipped: u64,
    /// Written to a dead-letter topic.
    pub dead_lettered: u64,
}

/// The task a delivery is for.
pub struct TaskInfo<'a> {
    /// The topology.
    pub t: &'a Topology,
    /// The task's partition (its changelog partition).
    pub partition: i32,
    /// The changelog topic of each of its stores.
    pub changelogs: &'a [String],
}

/// Delivers `out` through `io`, each record a share of `held`'s batch.
pub fn deliver(
    out: &TaskOutput,
    task: &TaskInfo<'_>,
    chain: &Chain,
    source: Source<'_>,
    held: &InFlight,
    io: &mut impl Output,
    metrics: Option<&Metrics>,
) -> Rejections {
    let at = |origin: u32| {
        source.and_then(|(topic, partition, offsets)| {
            Some((topic, partition, *offsets.get(origin as usize)?))
        })
    };
    let mut done = Rejections::default();
    for r in &out.rejected {
        let from = r.origin.and_then(at);
        let place = from.map_or_else(String::new, |(t, p, o)| format!(" at {t}-{p} offset {o}"));
        match chain.policy(r.step) {
            ErrorPolicy::DeadLetter(topic) => {
                tracing::warn!(
                    step = chain.name(r.step),
                    "dead-lettered a record{place} to {topic}: {}",
                    r.error
                );
                io.dead_letter(&DeadLetter::rejected(topic, r, chain, from), held);
                done.dead_lettered += 1;
            }
            _ => {
                tracing::warn!(
                    step = chain.name(r.step),
                    "skipped a record{place}: {}",
                    r.error
                );
                done.skipped += 1;
            }
        }
    }
    let count = |topic: &str, n: usize| {
        if let Some(m) = metrics {
            m.topic(&m.records_out, topic, n as u64);
        }
    };
    for (topic, late) in &out.late {
        for r in late.view().iter() {
            io.to_topic(topic, None, &r, false, held);
        }
        count(topic, late.len());
    }
    // Sink records in the order of the input records they came from, across
    // the graph's outputs; one output is in that order already.
    let sinks: Vec<(usize, &[usize])> = out
        .outputs
        .iter()
        .enumerate()
        .filter_map(|(o, output)| match &output.to {
            Destination::Sinks(s) => Some((o, &s[..])),
            Destination::Repartition(_) => None,
        })
        .collect();
    let views: Vec<_> = out.outputs.iter().map(|o| o.records.view()).collect();
    let mut send = |o: usize, i: usize, targets: &[usize]| {
        let r = views[o].get(i);
        let origin = out.outputs[o].records.origins[i];
        for &k in targets {
            io.to_sink(&task.t.sinks[k], &r, at(origin), held);
        }
    };
    if let [(o, targets)] = sinks[..] {
        for i in 0..out.outputs[o].records.len() {
            send(o, i, targets);
        }
    } else {
        let mut order: Vec<(u32, usize, usize)> = Vec::new();
        for &(o, _) in &sinks {
            let origins = &out.outputs[o].records.origins;
            order.extend(origins.iter().enumerate().map(|(i, &g)| (g, o, i)));
        }
        order.sort_unstable();
        for (_, o, i) in order {
            let targets = sinks
                .iter()
                .find(|(x, _)| *x == o)
                .map_or(&[][..], |(_, t)| t);
            send(o, i, targets);
        }
    }
    for &(o, targets) in &sinks {
        for &k in targets {
            count(&task.t.sinks[k].topic, out.outputs[o].records.len());
        }
    }
    for (o, output) in out.outputs.iter().enumerate() {
        let Destination::Repartition(rep) = output.to else {
            continue;
        };
        let rep = &task.t.plan.repartitions[rep];
        for r in views[o].iter() {
            // A foreign-key join's answers name the partition that asked.
            let partition = (rep.by_value)
                .then(|| r.value.and_then(answer_partition))
                .flatten();
            io.to_topic(&rep.topic, partition, &r, true, held);
        }
        count(&rep.topic, output.records.len());
    }
    for c in &out.changelog {
        io.to_changelog(&task.changelogs[c.store], task.partition, c, held);
    }
    done
}
