//! The in-process test driver behind `eddy test`: the same topology and the
//! same components, fed from a records file instead of Kafka (Kafka
//! Streams' TopologyTestDriver). Every input is partition 0 of its topic;
//! records are processed in file order, in batches of `runtime.batch_size`.

use super::chain::{Chain, ChainError};
use crate::records::{OwnedRecord, write_record};
use crate::topology::Topology;
use crate::wasm::{LoadError, LoadedOperator, OperatorEngine};
use eddy_batch::{BatchView, BatchWriter};
use std::io::Write;

/// Why a test run stopped.
#[derive(Debug, thiserror::Error)]
pub enum TestDriverError {
    /// A record names a topic the pipeline does not read.
    #[error(
        "input record {index} (topic {topic:?}): not a source of this pipeline; its sources are {sources:?}"
    )]
    UnknownTopic {
        /// 0-based position in the input.
        index: usize,
        /// The topic.
        topic: String,
        /// The pipeline's sources.
        sources: Vec<String>,
    },
    /// An operator failed to load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// An operator failed on a record.
    #[error(
        "{error}, on input record {} (topic {topic:?}, offset {offset})",
        index
    )]
    Operator {
        /// The failure.
        error: ChainError,
        /// 0-based position of the record in the input.
        index: usize,
        /// Its topic.
        topic: String,
        /// Its offset within the topic (position among that topic's records).
        offset: usize,
    },
    /// Writing output failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs `records` through the topology and writes every output record to `out`.
/// Returns how many records were written.
pub fn run(
    topology: &Topology,
    engine: &OperatorEngine,
    records: &[OwnedRecord],
    out: &mut impl Write,
) -> Result<usize, TestDriverError> {
    for (index, r) in records.iter().enumerate() {
        if !topology.sources.contains(&r.topic) {
            return Err(TestDriverError::UnknownTopic {
                index,
                topic: r.topic.clone(),
                sources: topology.sources.clone(),
            });
        }
    }
    let ops = topology
        .steps
        .iter()
        .map(|s| LoadedOperator::load(engine, s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut chain = Chain::new(&ops)?;
    let mut writer = BatchWriter::new();
    let mut written = 0;
    for (chunk_no, chunk) in records.chunks(topology.runtime.batch_size).enumerate() {
        writer.clear();
        for (i, r) in chunk.iter().enumerate() {
            writer.record(
                i as u32,
                r.key.as_deref(),
                r.value.as_deref(),
                r.timestamp,
                r.headers.iter().map(|(n, v)| (n.as_bytes(), v.as_deref())),
            );
        }
        let first = chunk_no * topology.runtime.batch_size;
        let output = chain.run(writer.finish(), chunk.len()).map_err(|error| {
            let index = first + error.input_index.unwrap_or(0) as usize;
            let topic = records[index].topic.clone();
            let offset = records[..index].iter().filter(|r| r.topic == topic).count();
            TestDriverError::Operator {
                error,
                index,
                topic,
                offset,
            }
        })?;
        let view = BatchView::already_checked(&output.batch).expect("the chain checked it");
        for r in view.iter() {
            for sink in topology.sinks.iter().filter(|s| s.takes(r.tag)) {
                let headers = r.headers.iter().map(|(n, v)| {
                    (
                        String::from_utf8_lossy(n).into_owned(),
                        v.map(<[u8]>::to_vec),
                    )
                });
                write_record(out, &sink.topic, r.key, r.value, r.timestamp, headers)?;
                written += 1;
            }
        }
    }
    Ok(written)
}
