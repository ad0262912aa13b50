//! Cutting the chain into sub-topologies at repartition points.
//!
//! A grouping needs every record of a key in one task. Source records are
//! partitioned by their key, so a `group_by_key` right after the sources (or
//! after steps that keep keys) groups in place. A `group_by`, or a
//! `group_by_key` after a step that may have changed keys, writes the records
//! to `<application-id>-<step>-repartition`, keyed by the grouping key, and
//! the rest of the chain reads them from there (Kafka Streams does the same).

use super::{Op, Step};
use std::ops::Range;

/// Where a sub-topology reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubInput {
    /// The pipeline's source topics.
    Sources,
    /// An internal repartition topic.
    Repartition(String),
}

/// Where a sub-topology's outputs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubOutput {
    /// The pipeline's sinks.
    Sinks,
    /// An internal repartition topic (keyed by the grouping key).
    Repartition(String),
}

/// A piece of the chain that runs as its own tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubTopology {
    /// Position, from 0: tasks are named `<id>_<partition>`.
    pub id: usize,
    /// What it reads.
    pub input: SubInput,
    /// Its steps, as indices into the chain.
    pub steps: Range<usize>,
    /// Where its outputs go.
    pub output: SubOutput,
}

/// Cuts `steps` where a grouping needs a repartition.
pub fn plan(application_id: &str, steps: &[Step]) -> Vec<SubTopology> {
    let mut subs = Vec::new();
    let mut start = 0;
    let mut input = SubInput::Sources;
    let mut keys_changed = false;
    for (i, step) in steps.iter().enumerate() {
        let cut = match &step.op {
            Op::Process { keeps_key } => {
                keys_changed |= !keeps_key;
                false
            }
            Op::GroupBy { .. } => true,
            Op::GroupByKey => keys_changed,
            // Aggregates and tables are keyed by their group: partitioned right.
            Op::Count(_) | Op::Reduce(_) | Op::Aggregate(_) | Op::ToTable { .. } => {
                keys_changed = false;
                false
            }
        };
        if cut {
            let topic = format!("{application_id}-{}-repartition", step.name);
            subs.push(SubTopology {
                id: subs.len(),
                input: std::mem::replace(&mut input, SubInput::Repartition(topic.clone())),
                steps: start..i + 1,
                output: SubOutput::Repartition(topic),
            });
            start = i + 1;
            keys_changed = false;
        }
    }
    subs.push(SubTopology {
        id: subs.len(),
        input,
        steps: start..steps.len(),
        output: SubOutput::Sinks,
    });
    subs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{Aggregation, Emit, Grants, Interface, Limits};

    fn step(name: &str, op: Op) -> Step {
        Step {
            name: name.into(),
            op,
            component: None,
            interface: Interface::Processor,
            settings: vec![],
            branches: vec![],
            limits: Limits::default(),
            grants: Grants::default(),
            on_error: crate::topology::ErrorPolicy::Fail,
            line: 1,
        }
    }

    fn count() -> Op {
        Op::Count(Aggregation {
            store: "c".into(),
            window: None,
            emit: Emit::Update,
            late_topic: None,
        })
    }

    #[test]
    fn group_by_key_at_the_source_needs_no_repartition() {
        let steps = [step("g", Op::GroupByKey), step("c", count())];
        let p = plan("app", &steps);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].steps, 0..2);
        assert_eq!(p[0].output, SubOutput::Sinks);
        let steps = [
            step("m", Op::Process { keeps_key: true }),
            step("g", Op::GroupByKey),
            step("c", count()),
        ];
        assert_eq!(plan("app", &steps).len(), 1);
    }

    #[test]
    fn key_changes_and_group_by_cut_at_the_grouping() {
        let steps = [
            step("split", Op::Process { keeps_key: false }),
            step("g", Op::GroupByKey),
            step("c", count()),
            step("by-count", Op::GroupBy { field: None }),
            step("c2", count()),
        ];
        let p = plan("app", &steps);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].steps, 0..2);
        assert_eq!(
            p[0].output,
            SubOutput::Repartition("app-g-repartition".into())
        );
        assert_eq!(
            p[1].input,
            SubInput::Repartition("app-g-repartition".into())
        );
        assert_eq!(p[1].steps, 2..4);
        assert_eq!(
            p[1].output,
            SubOutput::Repartition("app-by-count-repartition".into())
        );
        assert_eq!(p[2].steps, 4..5);
        assert_eq!(p[2].output, SubOutput::Sinks);
    }
}
