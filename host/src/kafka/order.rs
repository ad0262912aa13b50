//! Which batch of a task with several inputs goes next (Kafka Streams'
//! `PartitionGroup`): a join's two sides, or a merge of topics, are
//! processed in timestamp order, batch by batch, so one input never runs
//! far ahead of the others in event time.
//!
//! The batches of such a task wait here; the one whose first record is the
//! oldest goes first. While one input has nothing waiting, the others wait
//! for it unless it has caught up with its partition's end (the consumer's
//! cached high watermark), or has sent nothing for [`IDLE_AFTER`] (
//! [`BEHIND_WAIT`] when it is known to have records to fetch), or what
//! waits has reached [`HELD_MAX`] bytes: then batches go in timestamp order
//! regardless, as Kafka Streams' enforced processing does. Waiting for an
//! input that is behind holds what the consumer fetched of the others (it
//! hands out whole fetches partition by partition) in memory.

use super::topics::Task;
use crate::runtime::dead_letter::DeadLetter;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// An input partition whose lag is not known yet (not fetched from) that
/// has sent nothing for this long is not waited for.
pub(super) const IDLE_AFTER: Duration = Duration::from_secs(1);

/// An input partition with records to fetch that has sent nothing for this
/// long is not waited for (a safety net: the consumer fetches them well
/// within it).
pub(super) const BEHIND_WAIT: Duration = Duration::from_secs(30);

/// The most bytes of batches held back across all tasks (librdkafka's own
/// default prefetch bound).
pub(super) const HELD_MAX: usize = 64 << 20;

/// Past this many bytes held, batches that may go wait for room at their
/// workers (the poll loop stops taking records meanwhile); below it, they go
/// only to workers with room, so a busy worker never keeps the others idle.
pub(super) const BACKPRESSURE: usize = 64 << 20;

/// One input partition's records, closed and ready to be dispatched.
pub(super) struct Chunk {
    /// The encoded batch.
    pub batch: Vec<u8>,
    /// The offset of each record in the batch.
    pub offsets: Vec<i64>,
    /// The offset after the last record taken.
    pub next: i64,
    /// Records that go to a dead-letter topic under its ticket.
    pub dead: Vec<DeadLetter>,
    /// The timestamp of its first record (none: nothing to process).
    pub head: Option<i64>,
}

/// A chunk held back, since when.
struct Waiting {
    chunk: Chunk,
    since: Instant,
}

/// What one input of a task offers next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Head {
    /// A batch whose first record has this timestamp (none: only skipped
    /// or dead-lettered records, which need no ordering).
    Batch(Option<i64>),
    /// Nothing waits; `ready`: nothing is expected soon either.
    Empty { ready: bool },
}

/// The input whose batch goes next: the oldest first record, unless an
/// input without a batch may still send an older one (and `forced` is not
/// set). None: nothing goes now.
pub(super) fn pick(heads: &[Head], forced: bool) -> Option<usize> {
    if !forced && heads.contains(&Head::Empty { ready: false }) {
        // Batches without records commit offsets only: never held.
        return heads.iter().position(|h| *h == Head::Batch(None));
    }
    heads
        .iter()
        .enumerate()
        .filter_map(|(i, h)| match h {
            Head::Batch(ts) => Some((ts.unwrap_or(i64::MIN), i)),
            Head::Empty { .. } => None,
        })
        .min()
        .map(|(_, i)| i)
}

/// For each input (given by its sub-topology), the inputs of its
/// sub-topology when there are several, which its tasks read in timestamp
/// order (empty otherwise).
pub(super) fn groups(subs: &[usize]) -> Vec<Vec<usize>> {
    subs.iter()
        .map(|s| {
            let group: Vec<usize> = (0..subs.len()).filter(|&i| subs[i] == *s).collect();
            if group.len() > 1 { group } else { Vec::new() }
        })
        .collect()
}

/// The batches held back, per input partition of the tasks with several
/// inputs.
pub(super) struct Held {
    /// [`groups`] of the inputs.
    groups: Vec<Vec<usize>>,
    queues: HashMap<Task, VecDeque<Waiting>>,
    /// When each input partition last sent a record.
    seen: HashMap<Task, Instant>,
    bytes: usize,
}

impl Held {
    /// Nothing held yet; `subs` gives each input's sub-topology.
    pub fn new(subs: &[usize]) -> Self {
        Held {
            groups: groups(subs),
            queues: HashMap::new(),
            seen: HashMap::new(),
            bytes: 0,
        }
    }

    /// Whether `input`'s batches wait for the other inputs of its task.
    pub fn ordered(&self, input: usize) -> bool {
        !self.groups[input].is_empty()
    }

    /// Notes that `task` sent records just now.
    pub fn saw(&mut self, task: Task, now: Instant) {
        self.seen.insert(task, now);
    }

    /// Holds `chunk` of `task` back, from `now`.
    pub fn hold(&mut self, task: Task, chunk: Chunk, now: Instant) {
        self.bytes += chunk.batch.len();
        let waiting = Waiting { chunk, since: now };
        self.queues.entry(task).or_default().push_back(waiting);
    }

    /// Drops what `task` holds (revoked or failed).
    pub fn drop_task(&mut self, task: Task) {
        if let Some(q) = self.queues.remove(&task) {
            self.bytes -= q.iter().map(|w| w.chunk.batch.len()).sum::<usize>();
        }
        self.seen.remove(&task);
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether anything is held.
    pub fn is_empty(&self) -> bool {
        self.queues.values().all(VecDeque::is_empty)
    }

    /// Takes the held batches that may go now, in the order they go.
    /// `caught_up(task)` says whether an input partition has nothing more
    /// to fetch (none: not known); `room(task)` whether its worker takes
    /// one more batch now; `all` releases everything (stopping).
    pub fn release(
        &mut self,
        now: Instant,
        all: bool,
        caught_up: impl Fn(Task) -> Option<bool>,
        mut room: impl FnMut(Task) -> bool,
    ) -> Vec<(Task, Chunk)> {
        let forced = all || self.bytes > HELD_MAX;
        let mut tasks: Vec<(usize, i32)> = self
            .queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(t, _)| (self.groups[t.0][0], t.1))
            .collect();
        tasks.sort_unstable();
        tasks.dedup();
        let mut out = Vec::new();
        for (first, partition) in tasks {
            let group = self.groups[first].clone();
            loop {
                let fronts: Vec<Option<&Waiting>> = group
                    .iter()
                    .map(|&i| self.queues.get(&(i, partition)).and_then(VecDeque::front))
                    .collect();
                // How long the group's batches have waited for an input
                // without one: since the oldest was held back, or since
                // that input last sent a record if that came later.
                let Some(waiting) = fronts.iter().flatten().map(|w| w.since).min() else {
                    break;
                };
                let heads: Vec<Head> = fronts
                    .iter()
                    .zip(&group)
                    .map(|(front, &i)| match front {
                        Some(w) => Head::Batch(w.chunk.head),
                        None => {
                            let seen = self.seen.get(&(i, partition)).copied();
                            let quiet =
                                now.duration_since(seen.map_or(waiting, |s| s.max(waiting)));
                            Head::Empty {
                                ready: match caught_up((i, partition)) {
                                    Some(true) => true,
                                    Some(false) => quiet >= BEHIND_WAIT,
                                    None => quiet >= IDLE_AFTER,
                                },
                            }
                        }
                    })
                    .collect();
                let Some(k) = pick(&heads, forced) else { break };
                let task = (group[k], partition);
                if !room(task) {
                    break;
                }
                let chunk = self
                    .queues
                    .get_mut(&task)
                    .and_then(VecDeque::pop_front)
                    .expect("picked a batch")
                    .chunk;
                self.bytes -= chunk.batch.len();
                out.push((task, chunk));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(head: Option<i64>, bytes: usize) -> Chunk {
        Chunk {
            batch: vec![0; bytes],
            offsets: Vec::new(),
            next: 0,
            dead: Vec::new(),
            head,
        }
    }

    #[test]
    fn the_oldest_first_record_goes_first_and_an_input_that_may_send_older_is_waited_for() {
        use Head::*;
        assert_eq!(pick(&[Batch(Some(5)), Batch(Some(3))], false), Some(1));
        assert_eq!(pick(&[Batch(Some(3)), Batch(Some(3))], false), Some(0));
        assert_eq!(
            pick(&[Batch(Some(5)), Empty { ready: true }], false),
            Some(0)
        );
        assert_eq!(pick(&[Batch(Some(5)), Empty { ready: false }], false), None);
        assert_eq!(
            pick(&[Batch(Some(5)), Empty { ready: false }], true),
            Some(0)
        );
        // Offsets only: never held, and first.
        assert_eq!(pick(&[Batch(None), Empty { ready: false }], false), Some(0));
        assert_eq!(pick(&[Batch(Some(1)), Batch(None)], false), Some(1));
        assert_eq!(
            pick(&[Empty { ready: true }, Empty { ready: true }], false),
            None
        );
    }

    #[test]
    fn held_batches_of_two_inputs_go_in_timestamp_order_once_both_sent() {
        // Inputs 0 and 1 feed sub-topology 0; input 2 alone feeds 1.
        let mut held = Held::new(&[0, 0, 1]);
        assert!(held.ordered(0) && held.ordered(1) && !held.ordered(2));
        let t0 = Instant::now();
        held.saw((0, 3), t0);
        held.hold((0, 3), chunk(Some(10), 100), t0);
        held.hold((0, 3), chunk(Some(30), 100), t0);
        // Input 1 may still send older records: nothing goes.
        assert!(held.release(t0, false, |_| None, |_| true).is_empty());
        held.hold((1, 3), chunk(Some(20), 50), t0);
        let order: Vec<_> = held
            .release(t0, false, |_| None, |_| true)
            .into_iter()
            .map(|(t, c)| (t, c.head))
            .collect();
        // 10 and 20 go; 30 waits for input 1, which may send older ones.
        assert_eq!(order, vec![((0, 3), Some(10)), ((1, 3), Some(20))]);
        // Input 1 caught up: 30 goes.
        let rest = held.release(t0, false, |t| Some(t == (1, 3)), |_| true);
        assert_eq!(rest.len(), 1);
        assert!(held.is_empty());
    }

    #[test]
    fn an_idle_input_is_not_waited_for_and_stopping_releases_everything() {
        let mut held = Held::new(&[0, 0]);
        let t0 = Instant::now();
        held.hold((1, 0), chunk(Some(7), 10), t0);
        // Input 0 is first waited for now …
        assert!(held.release(t0, false, |_| None, |_| true).is_empty());
        // … and not after IDLE_AFTER without a record.
        assert_eq!(
            held.release(t0 + IDLE_AFTER, false, |_| None, |_| true)
                .len(),
            1
        );
        held.saw((0, 0), t0 + IDLE_AFTER);
        held.hold((1, 0), chunk(Some(8), 10), t0);
        assert!(
            held.release(t0 + IDLE_AFTER, false, |_| None, |_| true)
                .is_empty()
        );
        assert_eq!(
            held.release(t0 + IDLE_AFTER, true, |_| None, |_| true)
                .len(),
            1
        );
        held.hold((1, 0), chunk(Some(9), 10), t0);
        held.drop_task((1, 0));
        assert!(held.is_empty());
    }

    #[test]
    fn an_input_known_to_have_records_to_fetch_is_waited_for_longer() {
        let mut held = Held::new(&[0, 0]);
        let t0 = Instant::now();
        held.hold((1, 0), chunk(Some(7), 10), t0);
        assert!(
            held.release(t0, false, |_| Some(false), |_| true)
                .is_empty()
        );
        let later = t0 + IDLE_AFTER;
        assert!(
            held.release(later, false, |_| Some(false), |_| true)
                .is_empty()
        );
        assert_eq!(held.release(later, false, |_| None, |_| true).len(), 1);
        held.hold((1, 0), chunk(Some(8), 10), t0);
        assert_eq!(
            held.release(t0 + BEHIND_WAIT, false, |_| Some(false), |_| true)
                .len(),
            1
        );
        // An input long quiet is waited for from when a batch waits for it.
        held.saw((0, 0), t0);
        let late = t0 + 2 * BEHIND_WAIT;
        held.hold((1, 0), chunk(Some(9), 10), late);
        assert!(
            held.release(late, false, |_| Some(false), |_| true)
                .is_empty()
        );
    }

    #[test]
    fn a_batch_waits_while_its_worker_has_no_room() {
        let mut held = Held::new(&[0, 0]);
        let t0 = Instant::now();
        held.hold((0, 0), chunk(Some(1), 10), t0);
        held.hold((1, 0), chunk(Some(2), 10), t0);
        let mut slots = 1;
        let mut room = |_| {
            slots -= 1;
            slots >= 0
        };
        let first = held.release(t0, false, |_| Some(true), &mut room);
        assert_eq!(
            first.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            vec![(0, 0)]
        );
        let rest = held.release(t0, false, |_| Some(true), |_| true);
        assert_eq!(
            rest.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            vec![(1, 0)]
        );
    }

    #[test]
    fn more_than_the_bound_held_goes_regardless() {
        let mut held = Held::new(&[0, 0]);
        let t0 = Instant::now();
        held.saw((0, 0), t0);
        held.hold((1, 0), chunk(Some(2), HELD_MAX / 2), t0);
        held.hold((1, 0), chunk(Some(1), HELD_MAX / 2 + 1), t0);
        let order: Vec<_> = held
            .release(t0, false, |_| None, |_| true)
            .into_iter()
            .map(|(_, c)| c.head)
            .collect();
        // In each input's order; across inputs by first record.
        assert_eq!(order, vec![Some(2), Some(1)]);
    }
}
