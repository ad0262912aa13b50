//! The stores of one task: a backend, a write cache per table, and the
//! changelog records their writes produce.
//!
//! Writes land in the cache. With caching off (size 0) every write is also
//! a changelog record at once, and the cache is written to the backend at
//! the commit (or sooner, past [`WRITE_BEHIND_BYTES`]); with caching on, writes reach the backend and the
//! changelog only when the cache is flushed (at a commit, or when it outgrows
//! its size), newest value per key — as Kafka Streams' caching stores do.

use super::keys;
use super::{Backend, Cache, CacheEntry, Checkpoint, StateError, Write};
use crate::topology::plan::StorePlan;
use crate::topology::{StoreKind, StoreRole};
use std::path::{Path, PathBuf};

/// With caching off, a task's writes wait in its cache for the commit until
/// they pass this size: every update still goes downstream and to the
/// changelog at once, but the backend sees one write per key per commit
/// instead of one per update, and reads of hot keys stay in memory.
pub const WRITE_BEHIND_BYTES: usize = 4 << 20;

/// A store a task keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    /// Store name (its changelog is `<application-id>-<name>-changelog`).
    pub name: String,
    /// Whether it is a window store (it then has a time index table too).
    pub windowed: bool,
    /// Whether its keys are read in ranges (session and sliding windows).
    pub scanned: bool,
    /// Whether it is a join buffer: never cached (as in Kafka Streams),
    /// every write logged at once and written to the backend at the end of
    /// its node's batch ([`TaskState::write_through`]).
    pub buffer: bool,
}

impl From<&StorePlan> for StoreSpec {
    fn from(s: &StorePlan) -> Self {
        StoreSpec {
            name: s.name.clone(),
            windowed: s.windowed,
            scanned: s.scanned,
            buffer: s.role == StoreRole::JoinBuffer,
        }
    }
}

/// A write to send to a store's changelog topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogRecord {
    /// Index of the store.
    pub store: usize,
    /// The store key.
    pub key: Vec<u8>,
    /// The stored bytes, or none for a delete (a tombstone).
    pub value: Option<Vec<u8>>,
    /// Timestamp of the update.
    pub timestamp: i64,
}

/// Tables of one store in the backend.
#[derive(Debug, Clone, Copy)]
struct Tables {
    data: usize,
    index: Option<usize>,
    buffer: bool,
}

/// A task's stores.
#[derive(Debug)]
pub struct TaskState {
    backend: Backend,
    /// Store names, in index order.
    names: Vec<String>,
    tables: Vec<Tables>,
    caches: Vec<Cache>,
    cache_bytes: usize,
    changelog: Vec<ChangelogRecord>,
    dir: Option<PathBuf>,
    /// Per store: windows ending at or before this are deleted (none can
    /// come back: a window that ends there only gets late records).
    deleted_through: Vec<i64>,
    /// Per store: the largest timestamp written (a versioned table's time).
    observed: Vec<i64>,
    /// Per store: what it holds, for queries.
    roles: Vec<StoreRole>,
}

impl TaskState {
    /// Opens a task's stores: RocksDB under `dir` (which must be given), or
    /// in memory. `cache_bytes` is the write cache size (0: off).
    pub fn open(
        kind: StoreKind,
        dir: Option<&Path>,
        specs: &[StoreSpec],
        cache_bytes: usize,
    ) -> Result<Self, StateError> {
        let mut names = Vec::new();
        let store_names = specs.iter().map(|s| s.name.clone()).collect();
        let mut tables = Vec::new();
        let mut caches = Vec::new();
        for s in specs {
            let data = names.len();
            names.push(s.name.clone());
            // A buffer's pending writes reach the backend before it is
            // read in ranges, so they need no key order.
            caches.push(Cache::new(s.scanned && !s.buffer));
            let index = s.windowed.then(|| {
                names.push(format!("{}.by-end", s.name));
                // Closing windows reads the index in end order.
                caches.push(Cache::new(!s.buffer));
                names.len() - 1
            });
            tables.push(Tables {
                data,
                index,
                buffer: s.buffer,
            });
        }
        let backend = match (kind, dir) {
            (StoreKind::RocksDb, Some(d)) => Backend::open_rocks(&d.join("rocksdb"), &names)?,
            _ => Backend::memory(names.len()),
        };
        Ok(TaskState {
            backend,
            names: store_names,
            caches,
            deleted_through: vec![i64::MIN; tables.len()],
            observed: vec![-1; tables.len()],
            roles: vec![StoreRole::Plain; tables.len()],
            tables,
            cache_bytes,
            changelog: Vec::new(),
            dir: dir.map(Path::to_path_buf),
        })
    }

    /// The index of the store named `name`.
    pub fn store_named(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The name of store `store`.
    pub fn store_name(&self, store: usize) -> &str {
        &self.names[store]
    }

    /// Whether store `store` is a window store.
    pub fn windowed(&self, store: usize) -> bool {
        self.tables[store].index.is_some()
    }

    /// The task directory, for persistent stores.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref().filter(|_| self.backend.persistent())
    }

    /// Whether writes wait in the cache until a commit.
    pub fn caching(&self) -> bool {
        self.cache_bytes > 0
    }

    /// Whether the caches hold more than their size.
    pub fn over_budget(&self) -> bool {
        self.caching() && self.pending_bytes() > self.cache_bytes
    }

    /// Whether pending writes should reach the backend at the end of this
    /// batch: the cache is over its size or, with caching off, the writes
    /// waiting for the commit (already in the changelog and sent
    /// downstream) pass [`WRITE_BEHIND_BYTES`].
    pub fn writes_due(&self) -> bool {
        let limit = if self.caching() {
            self.cache_bytes
        } else {
            WRITE_BEHIND_BYTES
        };
        self.pending_bytes() > limit
    }

    fn pending_bytes(&self) -> usize {
        self.caches.iter().map(Cache::bytes).sum()
    }

    fn lookup(&self, table: usize, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.caches[table].get(key) {
            Some(e) => Ok(e.value.clone()),
            None => self.backend.get(table, key),
        }
    }

    /// The stored bytes (timestamp + value) of `key` in store `store`.
    pub fn get(&self, store: usize, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.lookup(self.tables[store].data, key)
    }

    /// Whether store `store`'s writes go to the changelog as they are made
    /// (rather than when its cache is flushed).
    fn logged_at_once(&self, store: usize) -> bool {
        !self.caching() || self.tables[store].buffer
    }

    /// Writes (or deletes, with none) `key` in store `store`.
    pub fn put(&mut self, store: usize, key: &[u8], value: Option<Vec<u8>>, timestamp: i64) {
        if self.logged_at_once(store) {
            self.changelog.push(ChangelogRecord {
                store,
                key: key.to_vec(),
                value: value.clone(),
                timestamp,
            });
        }
        self.caches[self.tables[store].data].put(key, value, timestamp);
    }

    /// Writes window `[start, end]` of `key` in window store `store`, with
    /// its time index entry.
    pub fn put_window(
        &mut self,
        store: usize,
        key: &[u8],
        start: i64,
        end: i64,
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) {
        let present = value.as_ref().map(|_| Vec::new());
        self.put(store, &keys::window_key(key, start, end), value, timestamp);
        if let Some(index) = self.tables[store].index {
            self.caches[index].put(&keys::time_key(key, start, end), present, timestamp);
        }
    }

    /// Estimated bytes store `store` holds on disk or in memory (its time
    /// index included), not counting pending cache entries.
    pub fn store_bytes(&self, store: usize) -> u64 {
        let t = self.tables[store];
        self.backend.size(t.data) + t.index.map_or(0, |i| self.backend.size(i))
    }

    /// What store `store` holds, for queries.
    pub fn role(&self, store: usize) -> StoreRole {
        self.roles[store]
    }

    /// Says what store `store` holds (plain until said).
    pub fn set_role(&mut self, store: usize, role: StoreRole) {
        self.roles[store] = role;
    }

    /// The largest timestamp written to store `store` (restored ones too);
    /// -1 before any.
    pub fn observed(&self, store: usize) -> i64 {
        self.observed[store]
    }

    /// Notes a write at `ts` to store `store`.
    pub fn observe(&mut self, store: usize, ts: i64) {
        let o = &mut self.observed[store];
        *o = (*o).max(ts);
    }

    /// Windows of store `store` ending at or before this time are deleted.
    pub fn windows_deleted_through(&self, store: usize) -> i64 {
        self.deleted_through[store]
    }

    /// Records that windows of store `store` ending at or before `through`
    /// are deleted, so later closes start their index scan after it.
    pub fn set_windows_deleted_through(&mut self, store: usize, through: i64) {
        let d = &mut self.deleted_through[store];
        *d = (*d).max(through);
    }

    /// Calls `f` on the entries of store `store` (its time index when
    /// `by_end`) with `from <= key < to`, in key order, cache included,
    /// until `f` returns false.
    pub fn scan(
        &self,
        store: usize,
        by_end: bool,
        from: &[u8],
        to: Option<&[u8]>,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        if to.is_some_and(|to| to <= from) {
            return Ok(()); // an empty range
        }
        let t = self.tables[store];
        let table = if by_end {
            t.index.expect("a window store")
        } else {
            t.data
        };
        let cache = &self.caches[table];
        if cache.is_empty() {
            return self.backend.scan(table, from, to, f);
        }
        // (A buffer's unordered pending writes are sorted here: correct, but
        // its node writes them through before it reads in ranges.)
        // Merge as the backend's entries stream by: pending writes (in key
        // order) override them, deletes hide them; nothing is copied.
        let pending = cache.range(from, to);
        let mut next = 0;
        let mut go = true;
        self.backend.scan(table, from, to, |k, v| {
            while let Some((ck, e)) = pending.get(next)
                && *ck < k
            {
                next += 1;
                if let Some(cv) = &e.value
                    && !f(ck, cv)
                {
                    go = false;
                    return false;
                }
            }
            if let Some((ck, e)) = pending.get(next)
                && *ck == k
            {
                next += 1;
                return match &e.value {
                    Some(cv) => {
                        go = f(ck, cv);
                        go
                    }
                    None => true,
                };
            }
            go = f(k, v);
            go
        })?;
        if go {
            for (ck, e) in &pending[next..] {
                if let Some(cv) = &e.value
                    && !f(ck, cv)
                {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Calls `f(i, key, value)` on the entries of store `store` in each
    /// range `i` of `ranges` (`from <= key < to`), in key order within a
    /// range, cache included.
    pub fn scan_ranges(
        &self,
        store: usize,
        ranges: &[(Vec<u8>, Vec<u8>)],
        mut f: impl FnMut(usize, &[u8], &[u8]),
    ) -> Result<(), StateError> {
        let table = self.tables[store].data;
        if self.caches[table].is_empty() {
            return self.backend.scan_ranges(table, ranges, f);
        }
        for (i, (from, to)) in ranges.iter().enumerate() {
            self.scan(store, false, from, Some(to), |k, v| {
                f(i, k, v);
                true
            })?;
        }
        Ok(())
    }

    /// Writes store `store`'s pending entries to the backend (and, when
    /// caching, to the changelog) and returns them, least recently written
    /// first, so the caller can send them downstream.
    pub fn flush_store(&mut self, store: usize) -> Result<Vec<(Vec<u8>, CacheEntry)>, StateError> {
        Ok(self
            .flush_store_with_old(store, false)?
            .into_iter()
            .map(|(k, e, _)| (k, e))
            .collect())
    }

    /// Like [`TaskState::flush_store`], also returning, when `old` is set,
    /// what the backend held for each key before (a table's old values).
    #[allow(clippy::type_complexity)] // (key, new, old)
    pub fn flush_store_with_old(
        &mut self,
        store: usize,
        old: bool,
    ) -> Result<Vec<(Vec<u8>, CacheEntry, Option<Vec<u8>>)>, StateError> {
        let t = self.tables[store];
        let entries = self.caches[t.data].drain();
        let mut olds = Vec::with_capacity(if old { entries.len() } else { 0 });
        if old {
            for (k, _) in &entries {
                olds.push(self.backend.get(t.data, k)?);
            }
        }
        let mut writes: Vec<Write> = Vec::with_capacity(entries.len());
        let log = !self.logged_at_once(store);
        for (k, e) in &entries {
            if log {
                self.changelog.push(ChangelogRecord {
                    store,
                    key: k.clone(),
                    value: e.value.clone(),
                    timestamp: e.timestamp,
                });
            }
            writes.push(Write {
                table: t.data,
                key: k.clone(),
                value: e.value.clone(),
            });
        }
        if let Some(index) = t.index {
            for (k, e) in self.caches[index].drain() {
                writes.push(Write {
                    table: index,
                    key: k,
                    value: e.value,
                });
            }
        }
        self.backend.write(&writes)?;
        let mut olds = olds.into_iter();
        Ok(entries
            .into_iter()
            .map(|(k, e)| (k, e, olds.next().flatten()))
            .collect())
    }

    /// Writes a join buffer's pending writes (already logged) to the
    /// backend in one batch, so that range reads need not merge them.
    pub fn write_through(&mut self, store: usize) -> Result<(), StateError> {
        let t = self.tables[store];
        let mut writes = Vec::new();
        for table in std::iter::once(t.data).chain(t.index) {
            let drained = self.caches[table].drain_unordered();
            writes.extend(drained.map(|(key, e)| Write {
                table,
                key,
                value: e.value,
            }));
        }
        self.backend.write(&writes)
    }

    /// Whether store `store` has writes not yet in the backend.
    pub fn pending(&self, store: usize) -> bool {
        let t = self.tables[store];
        !self.caches[t.data].is_empty() || t.index.is_some_and(|i| !self.caches[i].is_empty())
    }

    /// Applies a restored changelog record to store `store`, bypassing the
    /// cache and the changelog.
    pub fn restore(
        &mut self,
        store: usize,
        records: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), StateError> {
        let t = self.tables[store];
        let mut writes = Vec::with_capacity(records.len() * 2);
        for (k, v) in records {
            if let Some((ts, _)) = v.as_deref().and_then(keys::decode_value) {
                self.observe(store, ts);
            }
            if let (Some(index), Some((key, start, end))) = (t.index, keys::split_window_key(k)) {
                writes.push(Write {
                    table: index,
                    key: keys::time_key(key, start, end),
                    value: v.as_ref().map(|_| Vec::new()),
                });
            }
            writes.push(Write {
                table: t.data,
                key: k.clone(),
                value: v.clone(),
            });
        }
        self.backend.write(&writes)
    }

    /// Changelog records written since the last call.
    pub fn take_changelog(&mut self) -> Vec<ChangelogRecord> {
        std::mem::take(&mut self.changelog)
    }

    /// Makes the backend's files durable and records `checkpoint` next to them.
    pub fn checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StateError> {
        self.backend.flush()?;
        if let Some(dir) = self.dir() {
            checkpoint.write(dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "task_tests.rs"]
mod tests;
