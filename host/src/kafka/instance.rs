//! What this instance knows of its tasks, for the admin API: which tasks it
//! is assigned and which of them are open, their stores restored (what
//! `/readyz` answers), and interactive queries: a store read by the worker
//! owning the key's task, or the name of the instance that owns it.

use super::delivery::Delivery;
use super::health::Health;
use super::partitioner::partition_of;
use super::worker::{Msg, worker_of};
use crate::runtime::tasks::TaskId;
use crate::state::global::Globals;
use crate::state::query::{Lookup, QueryError, Rows, Stored};
use crate::status::{Answer, AskError, Owner, Readiness, Status};
use crate::topology::Topology;
use crossbeam_channel::{Sender, bounded};
use rdkafka::producer::{Producer, ThreadedProducer};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a query waits for the workers (one may be in a long batch or
/// a restore).
const QUERY_WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Assignment {
    /// The consumer has had its first assignment.
    joined: bool,
    assigned: BTreeSet<TaskId>,
    open: BTreeSet<TaskId>,
    /// Tasks that could not open, and why.
    broken: BTreeMap<TaskId, String>,
}

impl Assignment {
    fn assigned(&mut self, ids: &[TaskId]) {
        self.joined = true;
        self.assigned.extend(ids);
    }

    fn revoked(&mut self, ids: &[TaskId]) {
        for id in ids {
            self.assigned.remove(id);
            self.open.remove(id);
            self.broken.remove(id);
        }
    }

    fn opened(&mut self, id: TaskId) {
        self.broken.remove(&id);
        self.open.insert(id);
    }

    fn readiness(&self) -> Readiness {
        let name = |id: &TaskId| format!("{}_{}", id.0, id.1);
        let restoring: Vec<String> = self
            .assigned
            .iter()
            .filter(|id| !self.open.contains(id) && !self.broken.contains_key(id))
            .map(name)
            .collect();
        let failed: BTreeMap<String, String> = self
            .broken
            .iter()
            .map(|(id, why)| (name(id), why.clone()))
            .collect();
        Readiness {
            ready: self.joined && restoring.is_empty() && failed.is_empty(),
            joined: self.joined,
            tasks: self.assigned.iter().map(name).collect(),
            restoring,
            failed,
            problems: Vec::new(),
        }
    }
}

/// The instance's tasks and how to reach them.
pub struct Instance {
    t: Topology,
    /// Partitions of each consumed topic (sources and repartition topics
    /// have as many).
    partitions: i32,
    /// Per sub-topology, the topic its tasks read first.
    inputs: Vec<String>,
    workers: Mutex<Vec<Sender<Msg>>>,
    status: Mutex<Assignment>,
    producer: Arc<ThreadedProducer<Delivery>>,
    /// This instance's admin API as published to the group.
    advertised: Option<String>,
    /// Whether it makes progress.
    health: Arc<Health>,
    /// The global tables, read whole here.
    globals: Arc<Globals>,
}

impl Instance {
    /// An instance running `t`, whose topics have `partitions` partitions
    /// (`inputs`: per sub-topology, a topic its tasks read), its admin API
    /// published as `advertised`.
    pub fn new(
        t: &Topology,
        partitions: i32,
        inputs: Vec<String>,
        producer: Arc<ThreadedProducer<Delivery>>,
        advertised: Option<String>,
        (health, globals): (Arc<Health>, Arc<Globals>),
    ) -> Self {
        Instance {
            t: t.clone(),
            partitions,
            inputs,
            workers: Mutex::new(Vec::new()),
            status: Mutex::new(Assignment::default()),
            producer,
            advertised,
            health,
            globals,
        }
    }

    /// A global table's row, asked by the table's source name: every
    /// instance holds the whole table, so it answers here.
    fn ask_global(&self, store: &str, lookup: &Lookup) -> Result<Option<Answer>, AskError> {
        let Some(src) = (self.t.sources.iter()).position(|s| s.global && s.name == store) else {
            return Ok(None);
        };
        if lookup.range.is_some() {
            return Err(QueryError::NotWindowed(store.to_string()).into());
        }
        if lookup.at.is_some() {
            return Err(QueryError::NotVersioned(store.to_string()).into());
        }
        let rows = self.globals.read(src);
        let row = rows.get(&lookup.key).map(|(ts, v)| Stored {
            timestamp: *ts,
            value: v.clone(),
        });
        Ok(Some(Answer::Global {
            rows: Rows::Value(row),
        }))
    }

    /// Sets the workers queries go to.
    pub fn set_workers(&self, workers: Vec<Sender<Msg>>) {
        *self.workers.lock().expect("not poisoned") = workers;
    }

    /// Records newly assigned tasks.
    pub fn assigned(&self, ids: &[TaskId]) {
        self.status.lock().expect("not poisoned").assigned(ids);
    }

    /// Records tasks that went to another instance.
    pub fn revoked(&self, ids: &[TaskId]) {
        self.status.lock().expect("not poisoned").revoked(ids);
    }

    /// Records that a task's stores are open and restored.
    pub fn opened(&self, id: TaskId) {
        self.status.lock().expect("not poisoned").opened(id);
    }

    /// Records that a task could not open.
    pub fn broken(&self, id: TaskId, why: &str) {
        let mut s = self.status.lock().expect("not poisoned");
        s.broken.insert(id, why.to_string());
    }

    /// Records that worker `w` of `workers` stopped: its tasks are broken.
    pub fn worker_failed(&self, w: usize, workers: usize, why: &str) {
        let mut s = self.status.lock().expect("not poisoned");
        let ids: Vec<TaskId> = s
            .assigned
            .iter()
            .copied()
            .filter(|id| super::worker::worker_of(*id, workers) == w)
            .collect();
        for id in ids {
            s.broken.insert(id, format!("worker {w} stopped: {why}"));
        }
    }

    /// Asks `workers` for the query's rows (each answers for its open
    /// tasks); the home task's rows first, else any task's that holds the
    /// key. Waits until `deadline`, sending included.
    fn ask_workers(
        &self,
        workers: &[Sender<Msg>],
        query: &Arc<StoreQuery>,
        deadline: Instant,
    ) -> Result<Option<(TaskId, Rows)>, AskError> {
        let (tx, rx) = bounded(workers.len().max(1));
        let mut asked = 0;
        for w in workers {
            let left = deadline.saturating_duration_since(Instant::now());
            match w.send_timeout(Msg::Query(query.clone(), tx.clone()), left) {
                Ok(()) => asked += 1,
                Err(crossbeam_channel::SendTimeoutError::Timeout(_)) => {
                    return Err(AskError::Busy(QUERY_WAIT));
                }
                Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => {}
            }
        }
        drop(tx);
        let mut found = None;
        for _ in 0..asked {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(answers) = rx.recv_timeout(left) else {
                return Err(AskError::Busy(QUERY_WAIT));
            };
            for (id, rows) in answers {
                let rows = rows?;
                if id == query.home || found.is_none() {
                    found = Some((id, rows));
                }
            }
        }
        Ok(found)
    }

    /// The group member assigned `topic`-`partition`, as the group
    /// coordinator last told it.
    fn owner(&self, topic: &str, partition: i32) -> Option<Owner> {
        let groups = self
            .producer
            .client()
            .fetch_group_list(Some(&self.t.application_id), Duration::from_secs(5))
            .map_err(|e| tracing::warn!("looking up the group's members: {e}"))
            .ok()?;
        let group = groups.groups().first()?;
        group.members().iter().find_map(|m| {
            let assigned = parse_assignment(m.assignment()?)?;
            assigned
                .iter()
                .any(|(t, p)| t == topic && *p == partition)
                .then(|| Owner {
                    client_id: m.client_id().to_string(),
                    host: m.client_host().trim_start_matches('/').to_string(),
                    admin: admin_of(m.client_id()).map(|a| reachable(a, m.client_host())),
                })
        })
    }
}

/// A store read the workers answer for their tasks.
#[derive(Debug)]
pub struct StoreQuery {
    /// The store.
    pub store: String,
    /// The sub-topology keeping it.
    pub sub: usize,
    /// The task the key belongs to.
    pub home: TaskId,
    /// What to read.
    pub lookup: Lookup,
}

/// What one worker answers: per task it read, the rows. It reads the key's
/// home task, and its other tasks of the sub-topology (a key a producer
/// placed with another partitioner), reporting those only when they hold
/// something.
pub type WorkerAnswer = Vec<(TaskId, Result<Rows, QueryError>)>;

/// The `client.id` eddy gives its consumer when the admin API is on: other
/// instances read the API's address from it.
pub fn client_id(application_id: &str, admin: &str) -> String {
    format!("{application_id}-consumer@{admin}")
}

fn admin_of(client_id: &str) -> Option<&str> {
    client_id
        .rsplit_once('@')
        .map(|(_, a)| a)
        .filter(|a| !a.is_empty())
}

/// `admin` (`host:port`) with a wildcard host (an API listening on every
/// interface) replaced by the member's host as the broker sees it.
fn reachable(admin: &str, client_host: &str) -> String {
    let host = client_host.trim_start_matches('/');
    match admin.rsplit_once(':') {
        Some(("0.0.0.0" | "[::]" | "::", port)) if !host.is_empty() => {
            if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        }
        _ => admin.to_string(),
    }
}

/// The topic partitions in a consumer protocol assignment (version,
/// then an array of topic name and partition array, then user data).
fn parse_assignment(b: &[u8]) -> Option<Vec<(String, i32)>> {
    let mut at = 2; // version
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = b.get(at..at + n)?;
        at += n;
        Some(s)
    };
    let i32_of = |s: &[u8]| i32::from_be_bytes(s.try_into().expect("4 bytes"));
    let mut out = Vec::new();
    let topics = i32_of(take(4)?);
    for _ in 0..topics.max(0) {
        let len = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let topic = String::from_utf8(take(len.max(0) as usize)?.to_vec()).ok()?;
        let n = i32_of(take(4)?);
        for _ in 0..n.max(0) {
            out.push((topic.clone(), i32_of(take(4)?)));
        }
    }
    Some(out)
}

/// Routes a worker's answer for `q` from its open tasks.
pub fn answer<'a>(
    q: &StoreQuery,
    tasks: impl Iterator<Item = (TaskId, Option<&'a crate::state::TaskState>)>,
) -> WorkerAnswer {
    let mut out = Vec::new();
    for (id, state) in tasks {
        if id.0 != q.sub {
            continue;
        }
        let Some(state) = state else { continue };
        let Some(store) = state.store_named(&q.store) else {
            continue;
        };
        let rows = crate::state::query::read(state, store, &q.lookup);
        let keep = id == q.home
            || match &rows {
                Ok(Rows::Value(v)) => v.is_some(),
                Ok(Rows::Windows(w)) => !w.is_empty(),
                Err(_) => false,
            };
        if keep {
            out.push((id, rows));
        }
    }
    out
}

impl Status for Instance {
    fn readiness(&self) -> Readiness {
        let s = self.status.lock().expect("not poisoned");
        let mut r = s.readiness();
        // A stopped task is reported as failed, not as stuck.
        r.problems = self
            .health
            .problems(|id| s.open.contains(&id) && !s.broken.contains_key(&id));
        r.ready &= r.problems.is_empty();
        r
    }

    fn ask(&self, store: &str, lookup: Lookup) -> Result<Answer, AskError> {
        if let Some(answer) = self.ask_global(store, &lookup)? {
            return Ok(answer);
        }
        let Some(sub) = self.t.plan.sub_of_store(store) else {
            let globals = (self.t.sources.iter())
                .filter(|s| s.global)
                .map(|s| s.name.clone());
            let known: Vec<String> = self.t.stores().into_iter().chain(globals).collect();
            return Err(AskError::UnknownStore {
                name: store.to_string(),
                known: known.join(", "),
            });
        };
        let partition = partition_of(&lookup.key, self.partitions);
        let home = (sub, partition);
        let query = Arc::new(StoreQuery {
            store: store.to_string(),
            sub,
            home,
            lookup,
        });
        let workers = self.workers.lock().expect("not poisoned").clone();
        let deadline = Instant::now() + QUERY_WAIT;
        // The worker of the key's own task first; the others only when the
        // task is not here (a key a producer placed with another
        // partitioner may still be in one of their tasks).
        let home_worker = worker_of(home, workers.len());
        let mut found = self.ask_workers(&workers[home_worker..=home_worker], &query, deadline)?;
        if found.as_ref().is_none_or(|(id, _)| *id != home) {
            let others: Vec<Sender<Msg>> = workers
                .iter()
                .enumerate()
                .filter(|(w, _)| *w != home_worker)
                .map(|(_, s)| s.clone())
                .collect();
            if found.is_none() {
                found = self.ask_workers(&others, &query, deadline)?;
            }
        }
        if let Some((id, rows)) = found {
            return Ok(Answer::Here {
                partition: id.1,
                rows,
            });
        }
        {
            let status = self.status.lock().expect("not poisoned");
            if let Some(why) = status.broken.get(&home) {
                return Err(AskError::Broken(why.clone()));
            }
            if status.assigned.contains(&home) {
                return Ok(Answer::Restoring { partition });
            }
        }
        let owner = self.owner(&self.inputs[sub], partition);
        if owner
            .as_ref()
            .is_some_and(|o| o.admin.is_some() && o.admin == self.advertised)
        {
            // The group gave the task here; the assignment is on its way.
            return Ok(Answer::Restoring { partition });
        }
        Ok(Answer::Elsewhere { partition, owner })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_joined_and_every_assigned_task_is_open() {
        let mut s = Assignment::default();
        assert!(!s.readiness().ready, "not before the first assignment");
        s.assigned(&[]);
        assert!(s.readiness().ready, "an empty assignment is ready");
        s.assigned(&[(0, 0), (0, 1)]);
        let r = s.readiness();
        assert_eq!(
            (r.ready, r.restoring),
            (false, vec!["0_0".to_string(), "0_1".into()])
        );
        s.opened((0, 0));
        assert_eq!(s.readiness().restoring, ["0_1"]);
        s.broken.insert((0, 1), "disk full".into());
        let r = s.readiness();
        assert!(!r.ready && r.restoring.is_empty() && r.failed["0_1"] == "disk full");
        s.revoked(&[(0, 1)]);
        let r = s.readiness();
        assert!(r.ready, "{r:?}");
        assert_eq!(r.tasks, ["0_0"]);
        // A task assigned again restores again.
        s.revoked(&[(0, 0)]);
        s.assigned(&[(0, 0)]);
        assert!(!s.readiness().ready);
    }

    #[test]
    fn reads_a_consumer_protocol_assignment() {
        let mut b = vec![0, 1]; // version 1
        b.extend(2i32.to_be_bytes());
        for (topic, parts) in [("in", &[0i32, 3][..]), ("app-x-repartition", &[1][..])] {
            b.extend((topic.len() as i16).to_be_bytes());
            b.extend(topic.as_bytes());
            b.extend((parts.len() as i32).to_be_bytes());
            for p in parts {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend((-1i32).to_be_bytes()); // no user data
        assert_eq!(
            parse_assignment(&b).unwrap(),
            [
                ("in".into(), 0),
                ("in".into(), 3),
                ("app-x-repartition".into(), 1)
            ]
        );
        assert_eq!(parse_assignment(&b[..9]), None);
        assert_eq!(
            admin_of(&client_id("app", "10.0.0.5:9470")),
            Some("10.0.0.5:9470")
        );
        assert_eq!(admin_of("app-consumer"), None);
        assert_eq!(reachable("0.0.0.0:9470", "/10.0.0.7"), "10.0.0.7:9470");
        assert_eq!(reachable("[::]:9470", "/fd00::7"), "[fd00::7]:9470");
        assert_eq!(reachable("10.0.0.5:9470", "/10.0.0.7"), "10.0.0.5:9470");
    }
}
