//! What the poll loop does to input partitions: commits their offsets,
//! stops a failed one, and reads where a partition ends.

use super::rebalance::{Ctx, Partitions, describe};
use super::topics::Task;
use super::worker::Input;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Mutex;

/// Commits every partition whose committable offset moved.
pub(super) fn commit(
    consumer: &BaseConsumer<Ctx>,
    shared: &Mutex<Partitions>,
    inputs: &[Input],
    mode: CommitMode,
) {
    let mut tpl = TopicPartitionList::new();
    let mut failures = Vec::new();
    {
        let mut s = shared.lock().expect("not poisoned");
        let Partitions {
            ledgers, failed, ..
        } = &mut *s;
        for (task, l) in ledgers.iter_mut() {
            if let Err(why) = l.advance()
                && !failed.contains(task)
            {
                failures.push((*task, why));
            }
            if let Some(o) = l.to_commit() {
                let _ = tpl.add_partition_offset(&inputs[task.0].topic, task.1, Offset::Offset(o));
                l.committed = Some(o);
            }
        }
    }
    for (task, why) in failures {
        fail_task(consumer, shared, inputs, task, &why);
    }
    if tpl.count() > 0 {
        match consumer.commit(&tpl, mode) {
            Ok(()) => tracing::debug!(offsets = %describe(&tpl), "committed"),
            Err(e) => tracing::warn!("commit failed (will retry at the next interval): {e}"),
        }
    }
}

/// A partition's low and high watermarks as of the consumer's last fetch
/// from it (none before one): librdkafka's cached values, no request.
pub(super) fn watermarks(
    consumer: &BaseConsumer<Ctx>,
    topic: &str,
    partition: i32,
) -> Option<(i64, i64)> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer lives as long as `consumer`; the topic is
    // a NUL-terminated string that outlives the call.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some((low, high))
}

/// Stops one task: pauses its partition and reports why.
pub(super) fn fail_task(
    consumer: &BaseConsumer<Ctx>,
    shared: &Mutex<Partitions>,
    inputs: &[Input],
    task: Task,
    why: &str,
) {
    if !shared.lock().expect("not poisoned").failed.insert(task) {
        return;
    }
    let topic = &inputs[task.0].topic;
    if let Some(instance) = consumer.context().instance.get() {
        instance.broken(
            (inputs[task.0].sub, task.1),
            &format!("{topic}-{}: {why}", task.1),
        );
    }
    tracing::error!(
        "task {topic}-{} stopped: {why}. The partition is paused and its offset is not committed past the failure; \
         other partitions go on. Fix the operator (or the record) and restart eddy to resume from the last committed offset.",
        task.1
    );
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, task.1);
    if let Err(e) = consumer.pause(&tpl) {
        tracing::warn!("pausing {topic}-{}: {e}", task.1);
    }
}
