//! Which input offsets may be committed: a batch's offsets become
//! committable only once every output it produced has been acknowledged by
//! the broker, and only after every earlier batch of the same partition.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One batch in flight: counts outputs not yet acknowledged.
#[derive(Debug)]
pub struct BatchTicket {
    /// Outputs in flight, plus one while the batch is still being processed.
    remaining: AtomicUsize,
    failure: Mutex<Option<String>>,
    /// The offset to commit once this batch is done (its last offset + 1).
    pub next_offset: i64,
}

impl BatchTicket {
    /// A ticket for a batch whose last record has offset `next_offset - 1`.
    pub fn new(next_offset: i64) -> Arc<Self> {
        Arc::new(BatchTicket {
            remaining: AtomicUsize::new(1),
            failure: Mutex::new(None),
            next_offset,
        })
    }

    /// One more output was handed to the producer.
    pub fn add(&self) {
        self.remaining.fetch_add(1, Ordering::AcqRel);
    }

    /// An output was acknowledged (or the batch finished processing).
    pub fn done(&self) {
        self.remaining.fetch_sub(1, Ordering::AcqRel);
    }

    /// The batch can never complete: an output failed or the operator did.
    pub fn fail(&self, why: String) {
        let mut f = self.failure.lock().expect("not poisoned");
        if f.is_none() {
            *f = Some(why);
        }
    }

    /// Whether every output was acknowledged and processing finished; an
    /// error if the batch failed.
    pub fn finished(&self) -> Result<bool, String> {
        if let Some(f) = self.failure.lock().expect("not poisoned").as_ref() {
            return Err(f.clone());
        }
        Ok(self.remaining.load(Ordering::Acquire) == 0)
    }
}

/// The batches of one input partition, oldest first.
#[derive(Debug, Default)]
pub struct PartitionLedger {
    pending: VecDeque<Arc<BatchTicket>>,
    /// Highest offset safe to commit.
    pub committable: Option<i64>,
    /// The last offset committed.
    pub committed: Option<i64>,
}

impl PartitionLedger {
    /// Records a batch handed to a worker.
    pub fn push(&mut self, t: Arc<BatchTicket>) {
        self.pending.push_back(t);
    }

    /// Moves past completed batches; an error if the oldest one failed.
    pub fn advance(&mut self) -> Result<(), String> {
        while let Some(front) = self.pending.front() {
            if !front.finished()? {
                break;
            }
            self.committable = Some(front.next_offset);
            self.pending.pop_front();
        }
        Ok(())
    }

    /// Whether no batch is in flight.
    pub fn idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// The offset to commit if it moved since the last commit.
    pub fn to_commit(&self) -> Option<i64> {
        self.committable.filter(|c| Some(*c) != self.committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_commit_only_after_every_output_of_every_earlier_batch() {
        let mut l = PartitionLedger::default();
        let a = BatchTicket::new(10);
        let b = BatchTicket::new(20);
        l.push(a.clone());
        l.push(b.clone());
        a.add();
        a.done(); // processing finished, one output still in flight
        b.done(); // b had no outputs and is finished
        l.advance().unwrap();
        assert_eq!(
            l.committable, None,
            "a is still waiting for an acknowledgement"
        );
        a.done(); // the output is acknowledged
        l.advance().unwrap();
        assert_eq!(l.committable, Some(20));
        assert!(l.idle());
    }

    #[test]
    fn a_failed_batch_blocks_commits_past_it() {
        let mut l = PartitionLedger::default();
        let a = BatchTicket::new(5);
        l.push(a.clone());
        a.fail("delivery failed".into());
        a.done();
        assert_eq!(l.advance(), Err("delivery failed".into()));
        assert_eq!(l.committable, None);
    }
}
