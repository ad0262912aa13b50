//! The process's metrics, in Prometheus text format at `GET /metrics`.
//!
//! Updated per batch, never per record: a counter is bumped by the size of
//! a batch, a histogram observes a batch's size and time.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// Labels of a topic and an error policy.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicPolicyLabels {
    /// Topic name.
    pub topic: String,
    /// `skip` or `dead-letter`.
    pub policy: String,
}

/// Labels of a per-topic metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    /// The topic.
    pub topic: String,
}

/// Labels of a per-partition metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: String,
}

/// Labels of a per-node metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    /// The step name (`source-<topic>` for a table source's node).
    pub node: String,
}

/// Labels of a per-operator metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperatorLabels {
    /// The step name.
    pub operator: String,
}

/// Labels of an operator failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The step name.
    pub operator: String,
    /// `trap`, `timeout`, `out-of-fuel`, `out-of-memory`, `failed` or
    /// `bad-batch`.
    pub kind: String,
}

/// Labels of a record taken out by an error policy.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    /// The step name.
    pub operator: String,
    /// `skip` or `dead-letter`.
    pub policy: String,
}

/// Labels of the running version of an operator.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    /// The step name.
    pub operator: String,
    /// The version id.
    pub version: String,
}

/// Labels of a per-task store metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    /// The store.
    pub store: String,
    /// The task (`<sub-topology>_<partition>`).
    pub task: String,
}

/// Labels of a per-task metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// The task (`<sub-topology>_<partition>`).
    pub task: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds() -> Histogram {
    // 10 µs … ~40 s.
    Histogram::new(exponential_buckets(1e-5, 4.0, 12))
}

fn sizes() -> Histogram {
    // 1 … 16,384 records.
    Histogram::new(exponential_buckets(1.0, 2.0, 15))
}

/// Every metric eddy keeps.
pub struct Metrics {
    registry: Registry,
    /// Records read, per input topic.
    pub records_in: Family<TopicLabels, Counter>,
    /// Records written, per output topic (sinks, repartition, changelog,
    /// late and dead-letter topics).
    pub records_out: Family<TopicLabels, Counter>,
    /// Records into each operator.
    pub operator_records_in: Family<OperatorLabels, Counter>,
    /// Records out of each operator.
    pub operator_records_out: Family<OperatorLabels, Counter>,
    /// Records into each node of the topology (operators, groupings,
    /// aggregations, tables).
    pub node_records_in: Family<NodeLabels, Counter>,
    /// Records out of each node (for aggregations: the updates they emit,
    /// at once or when their cache flushes).
    pub node_records_out: Family<NodeLabels, Counter>,
    /// Consumer lag per input partition (high watermark − position).
    pub lag: Family<PartitionLabels, Gauge>,
    /// Records per batch.
    pub batch_records: Histogram,
    /// Time to process a batch on a worker, seconds.
    pub batch_seconds: Histogram,
    /// Time of one Wasm call, seconds, per operator.
    pub wasm_call_seconds: Histograms<OperatorLabels>,
    /// Operator failures (traps, timeouts, out-of-memory, errors).
    pub operator_failures: Family<FailureLabels, Counter>,
    /// Records taken out by `skip` or `dead-letter`.
    pub records_rejected: Family<PolicyLabels, Counter>,
    /// Source records whose event time could not be read, skipped or
    /// dead-lettered.
    pub records_unreadable: Family<TopicPolicyLabels, Counter>,
    /// Sink records the client or broker refused, skipped or
    /// dead-lettered.
    pub records_unwritable: Family<TopicPolicyLabels, Counter>,
    /// 1 for the running version of each operator.
    pub operator_version: Family<VersionLabels, Gauge>,
    /// Reloads per operator.
    pub reloads: Family<OperatorLabels, Counter>,
    /// Estimated live bytes per store and task.
    pub store_bytes: Family<StoreLabels, Gauge>,
    /// Changelog records restored per task.
    pub restored_records: Family<TaskLabels, Counter>,
    /// Changelog records still to restore per task (0 when done).
    pub restore_remaining: Family<TaskLabels, Gauge>,
    /// Worker threads that stopped on a panic (eddy then stops).
    pub workers_failed: Counter,
}

impl Metrics {
    /// A fresh set of metrics.
    pub fn new() -> Arc<Self> {
        let mut r = Registry::with_prefix("eddy");
        let m = Metrics {
            records_in: Family::default(),
            records_out: Family::default(),
            operator_records_in: Family::default(),
            operator_records_out: Family::default(),
            node_records_in: Family::default(),
            node_records_out: Family::default(),
            lag: Family::default(),
            batch_records: sizes(),
            batch_seconds: seconds(),
            wasm_call_seconds: Family::new_with_constructor(seconds),
            operator_failures: Family::default(),
            records_rejected: Family::default(),
            records_unreadable: Family::default(),
            records_unwritable: Family::default(),
            operator_version: Family::default(),
            reloads: Family::default(),
            store_bytes: Family::default(),
            restored_records: Family::default(),
            restore_remaining: Family::default(),
            workers_failed: Counter::default(),
            registry: Registry::default(),
        };
        r.register(
            "records_in",
            "Records read, per input topic",
            m.records_in.clone(),
        );
        r.register(
            "records_out",
            "Records written, per output topic",
            m.records_out.clone(),
        );
        r.register(
            "operator_records_in",
            "Records into each operator",
            m.operator_records_in.clone(),
        );
        r.register(
            "operator_records_out",
            "Records out of each operator",
            m.operator_records_out.clone(),
        );
        r.register(
            "node_records_in",
            "Records into each node of the topology",
            m.node_records_in.clone(),
        );
        r.register(
            "node_records_out",
            "Records out of each node of the topology",
            m.node_records_out.clone(),
        );
        r.register(
            "consumer_lag",
            "Records behind the end, per input partition",
            m.lag.clone(),
        );
        r.register(
            "batch_records",
            "Records per batch",
            m.batch_records.clone(),
        );
        r.register(
            "batch_seconds",
            "Time to process a batch on a worker",
            m.batch_seconds.clone(),
        );
        r.register(
            "wasm_call_seconds",
            "Time of one Wasm call, per operator",
            m.wasm_call_seconds.clone(),
        );
        r.register(
            "operator_failures",
            "Operator traps, timeouts, out-of-memory and errors",
            m.operator_failures.clone(),
        );
        r.register(
            "records_rejected",
            "Records taken out by on_error = skip or dead-letter",
            m.records_rejected.clone(),
        );
        r.register(
            "records_unreadable",
            "Source records whose event time could not be read, taken out by on_error",
            m.records_unreadable.clone(),
        );
        r.register(
            "records_unwritable",
            "Sink records the client or broker refused, taken out by on_error",
            m.records_unwritable.clone(),
        );
        r.register(
            "operator_version",
            "1 for the running version of each operator",
            m.operator_version.clone(),
        );
        r.register(
            "workers_failed",
            "Worker threads that stopped on a panic",
            m.workers_failed.clone(),
        );
        r.register(
            "operator_reloads",
            "Hot reloads per operator",
            m.reloads.clone(),
        );
        r.register(
            "store_bytes",
            "Estimated live bytes per store and task",
            m.store_bytes.clone(),
        );
        r.register(
            "restored_records",
            "Changelog records restored, per task",
            m.restored_records.clone(),
        );
        r.register(
            "restore_remaining_records",
            "Changelog records left to restore, per task",
            m.restore_remaining.clone(),
        );
        Arc::new(Metrics { registry: r, ..m })
    }

    /// Everything, in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }

    /// Records a Wasm call of `operator` that took `took`.
    pub fn wasm_call(&self, operator: &str, took: Duration) {
        self.wasm_call_seconds
            .get_or_create(&OperatorLabels {
                operator: operator.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Marks `version` as the running version of `operator` (and `old`, if
    /// any, as no longer running).
    pub fn set_version(&self, operator: &str, version: &str, old: Option<&str>) {
        if let Some(old) = old {
            self.operator_version.remove(&VersionLabels {
                operator: operator.to_string(),
                version: old.to_string(),
            });
        }
        self.operator_version
            .get_or_create(&VersionLabels {
                operator: operator.to_string(),
                version: version.to_string(),
            })
            .set(1);
    }

    /// Counts `n` records of `topic` in or out.
    pub fn topic(&self, family: &Family<TopicLabels, Counter>, topic: &str, n: u64) {
        if n > 0 {
            family
                .get_or_create(&TopicLabels {
                    topic: topic.to_string(),
                })
                .inc_by(n);
        }
    }
}
