//! Which input offsets may be committed: a batch's offsets become
//! committable only once every output it produced has been acknowledged,
//! and only after every earlier batch of the same partition.
//!
//! A batch's [`BatchTicket`] counts its work in flight as [`InFlight`]
//! shares: one while the batch is processed, one per output handed to the
//! I/O layer. A share completes when it is dropped — after a delivery
//! report or a refusal — so no path can forget to count one down; a share
//! dropped while its thread panics fails the batch, so nothing past it is
//! ever committed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// One batch in flight.
#[derive(Debug)]
pub struct BatchTicket {
    /// Shares not yet completed.
    remaining: AtomicUsize,
    /// Why the batch can never complete, once something failed.
    failure: Mutex<Option<String>>,
    /// Signalled when the last share completes or the batch fails.
    changed: Condvar,
    /// The offset to commit once this batch is done (its last offset + 1).
    pub next_offset: i64,
    /// When it was handed over.
    pub created: std::time::Instant,
}

/// A share of a batch's work in flight; completes when dropped.
#[derive(Debug)]
#[must_use = "the share completes as soon as it is dropped"]
pub struct InFlight(Arc<BatchTicket>);

impl BatchTicket {
    /// A ticket for a batch whose last record has offset `next_offset - 1`,
    /// and the share its processing holds.
    pub fn new(next_offset: i64) -> (Arc<Self>, InFlight) {
        let ticket = Arc::new(BatchTicket {
            remaining: AtomicUsize::new(1),
            failure: Mutex::new(None),
            changed: Condvar::new(),
            next_offset,
            created: std::time::Instant::now(),
        });
        (ticket.clone(), InFlight(ticket))
    }

    /// One more share: an output handed to the I/O layer.
    pub fn hold(self: &Arc<Self>) -> InFlight {
        self.remaining.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    fn complete(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Taken so a waiter between its check and its wait sees this.
            let _f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            self.changed.notify_all();
        }
    }

    /// The batch can never complete: an output failed or the operator did.
    pub fn fail(&self, why: String) {
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(why);
        }
        self.changed.notify_all();
    }

    /// Whether every share completed; an error if the batch failed.
    pub fn finished(&self) -> Result<bool, String> {
        if let Some(f) = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return Err(f.clone());
        }
        Ok(self.remaining.load(Ordering::Acquire) == 0)
    }

    /// Waits until every share completed (true), the batch failed (an
    /// error) or `deadline` passed (false).
    pub fn wait(&self, deadline: Instant) -> Result<bool, String> {
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(why) = f.as_ref() {
                return Err(why.clone());
            }
            if self.remaining.load(Ordering::Acquire) == 0 {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            f = self
                .changed
                .wait_timeout(f, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl InFlight {
    /// The batch this share belongs to.
    pub fn ticket(&self) -> &Arc<BatchTicket> {
        &self.0
    }

    /// Another share of the same batch.
    pub fn hold(&self) -> InFlight {
        self.0.hold()
    }

    /// Moves the share into a raw pointer (for a client library's opaque
    /// delivery argument); [`InFlight::from_raw`] takes it back.
    pub fn into_raw(self) -> *const BatchTicket {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again: its Arc moves into
        // the pointer, which `from_raw` turns back into this share.
        let arc = unsafe { std::ptr::read(&this.0) };
        Arc::into_raw(arc)
    }

    /// The share [`InFlight::into_raw`] gave away.
    ///
    /// # Safety
    /// `p` comes from `into_raw` and is taken back once.
    pub unsafe fn from_raw(p: *const BatchTicket) -> Self {
        // SAFETY: by the caller's promise, `p` is an `Arc` given away by
        // `into_raw` and not taken back before.
        InFlight(unsafe { Arc::from_raw(p) })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0
                .fail("the worker stopped (panicked) while the batch was in flight".into());
        }
        self.0.complete();
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

    /// The oldest batch still in flight.
    pub fn oldest(&self) -> Option<&Arc<BatchTicket>> {
        self.pending.front()
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
    use std::time::Duration;

    #[test]
    fn offsets_commit_only_after_every_output_of_every_earlier_batch() {
        let mut l = PartitionLedger::default();
        let (a, a_processing) = BatchTicket::new(10);
        let (b, b_processing) = BatchTicket::new(20);
        l.push(a.clone());
        l.push(b);
        let output = a.hold();
        drop(a_processing); // processing finished, one output still in flight
        drop(b_processing); // b had no outputs and is finished
        l.advance().unwrap();
        assert_eq!(
            l.committable, None,
            "a is still waiting for an acknowledgement"
        );
        drop(output); // the output is acknowledged
        l.advance().unwrap();
        assert_eq!(l.committable, Some(20));
        assert!(l.idle());
        assert_eq!(l.to_commit(), Some(20));
        l.committed = Some(20);
        assert_eq!(l.to_commit(), None, "nothing new to commit");
    }

    #[test]
    fn a_failed_batch_blocks_commits_past_it() {
        let mut l = PartitionLedger::default();
        let (a, processing) = BatchTicket::new(5);
        l.push(a.clone());
        a.fail("delivery failed".into());
        drop(processing);
        assert_eq!(l.advance(), Err("delivery failed".into()));
        assert_eq!(l.committable, None);
    }

    #[test]
    fn a_share_given_away_as_a_pointer_completes_when_taken_back_and_dropped() {
        let (t, processing) = BatchTicket::new(1);
        let p = t.hold().into_raw();
        drop(processing);
        assert_eq!(t.finished(), Ok(false));
        // SAFETY: `p` came from `into_raw` just above.
        drop(unsafe { InFlight::from_raw(p) });
        assert_eq!(t.finished(), Ok(true));
    }

    #[test]
    fn waiting_wakes_when_the_last_share_completes_on_another_thread() {
        let (t, processing) = BatchTicket::new(1);
        let out = t.hold();
        drop(processing);
        let deadline = Instant::now() + Duration::from_secs(10);
        let acker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            drop(out);
        });
        assert_eq!(t.wait(deadline), Ok(true));
        assert!(Instant::now() < deadline, "woken, not timed out");
        acker.join().unwrap();
        let (t2, _held) = BatchTicket::new(1);
        assert_eq!(
            t2.wait(Instant::now() + Duration::from_millis(10)),
            Ok(false)
        );
        t2.fail("refused".into());
        assert_eq!(
            t2.wait(Instant::now() + Duration::from_secs(10)),
            Err("refused".into())
        );
    }

    #[test]
    fn a_share_dropped_by_a_panic_fails_its_batch() {
        let (t, processing) = BatchTicket::new(1);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _processing = processing;
            panic!("a bug in the worker");
        }));
        assert!(r.is_err());
        assert!(t.finished().unwrap_err().contains("panicked"));
        let mut l = PartitionLedger::default();
        l.push(t);
        assert!(l.advance().is_err(), "nothing past it commits");
        assert_eq!(l.committable, None);
    }
}
