//! Where a task's stores keep their bytes: one RocksDB instance per task
//! directory with a column family per table, or ordered maps in memory.
//!
//! RocksDB is opened without a write-ahead log, as Kafka Streams does: the
//! changelog topic is the durable copy, and memtables are flushed at every
//! commit before the checkpoint records how far the local files are good.

use super::StateError;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

/// The block cache every task's RocksDB instance shares.
fn block_cache() -> &'static rocksdb::Cache {
    static CACHE: std::sync::OnceLock<rocksdb::Cache> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| rocksdb::Cache::new_lru_cache(64 << 20))
}

/// The column family of table `table`.
fn column<'a>(db: &'a rocksdb::DB, tables: &[String], table: usize) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(&tables[table])
        .expect("opened with this table")
}

/// One write: a put (`Some`) or a delete (`None`) in table `table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Index of the table (column family) in the list the backend was opened with.
    pub table: usize,
    /// The key.
    pub key: Vec<u8>,
    /// The new value, or none to delete.
    pub value: Option<Vec<u8>>,
}

/// A task's local storage.
pub enum Backend {
    /// RocksDB in a directory.
    Rocks {
        /// The database.
        db: rocksdb::DB,
        /// Column family names, by table index.
        tables: Vec<String>,
        /// Its directory.
        path: PathBuf,
    },
    /// Ordered maps, by table index.
    Memory(Vec<BTreeMap<Vec<u8>, Vec<u8>>>),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Rocks { path, tables, .. } => f
                .debug_struct("Rocks")
                .field("path", path)
                .field("tables", tables)
                .finish(),
            Backend::Memory(t) => write!(f, "Memory({} tables)", t.len()),
        }
    }
}

impl Backend {
    /// Estimated live bytes of table `table` (RocksDB's estimate; the
    /// sum of key and value lengths in memory).
    pub fn size(&self, table: usize) -> u64 {
        match self {
            Backend::Rocks { db, tables, .. } => db
                .cf_handle(&tables[table])
                .and_then(|cf| {
                    db.property_int_value_cf(cf, "rocksdb.estimate-live-data-size")
                        .ok()
                        .flatten()
                })
                .unwrap_or(0),
            Backend::Memory(t) => t[table]
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum(),
        }
    }

    /// Opens (creating when missing) a RocksDB instance at `path` with one
    /// column family per table.
    pub fn open_rocks(path: &Path, tables: &[String]) -> Result<Self, StateError> {
        let err = |e: rocksdb::Error| StateError::Rocks {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(path).map_err(|e| StateError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Small per-task instances: keep background work and open files modest.
        opts.set_max_background_jobs(2);
        opts.set_max_open_files(256);
        opts.set_write_buffer_size(16 << 20);
        // Kafka Streams' table options: 4 KiB blocks with a bloom filter (a
        // lookup of an absent key, the common case of a join or a new
        // aggregate, reads no block), over one block cache shared by every
        // task of the process instead of 50 MiB per store.
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_block_size(4 << 10);
        table.set_bloom_filter(10.0, false);
        table.set_block_cache(block_cache());
        opts.set_block_based_table_factory(&table);
        // A bloom filter over the memtable's keys too: most point lookups
        // (a join's own (key, time) entry, a new aggregate) are of absent
        // keys, and then skip the skip list's search.
        opts.set_memtable_prefix_bloom_ratio(0.1);
        opts.set_memtable_whole_key_filtering(true);
        // Tables the directory has but this run does not use (the pipeline
        // changed, or an older layout): RocksDB opens only with all of
        // them named; they are dropped right after.
        let existing = rocksdb::DB::list_cf(&opts, path).unwrap_or_default();
        let stale: Vec<String> = (existing.into_iter())
            .filter(|t| t != rocksdb::DEFAULT_COLUMN_FAMILY_NAME && !tables.contains(t))
            .collect();
        // Every table (column family) with these options, not the defaults.
        let cfs = (tables.iter().chain(&stale))
            .map(|t| rocksdb::ColumnFamilyDescriptor::new(t, opts.clone()));
        let mut db = rocksdb::DB::open_cf_descriptors(&opts, path, cfs).map_err(err)?;
        for t in &stale {
            db.drop_cf(t).map_err(err)?;
        }
        Ok(Backend::Rocks {
            db,
            tables: tables.to_vec(),
            path: path.to_path_buf(),
        })
    }

    /// Empty in-memory tables.
    pub fn memory(tables: usize) -> Self {
        Backend::Memory(vec![BTreeMap::new(); tables])
    }

    fn rocks_err(path: &Path, e: &rocksdb::Error) -> StateError {
        StateError::Rocks {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }

    /// The value stored under `key` in `table`.
    pub fn get(&self, table: usize, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self {
            Backend::Rocks { db, tables, path } => {
                let cf = column(db, tables, table);
                db.get_pinned_cf(cf, key)
                    .map(|v| v.map(|v| v.to_vec()))
                    .map_err(|e| Self::rocks_err(path, &e))
            }
            Backend::Memory(t) => Ok(t[table].get(key).cloned()),
        }
    }

    /// Applies `writes` together (one RocksDB write batch).
    pub fn write(&mut self, writes: &[Write]) -> Result<(), StateError> {
        if writes.is_empty() {
            return Ok(());
        }
        match self {
            Backend::Rocks { db, tables, path } => {
                let mut batch = rocksdb::WriteBatch::default();
                for w in writes {
                    let cf = column(db, tables, w.table);
                    match &w.value {
                        Some(v) => batch.put_cf(cf, &w.key, v),
                        None => batch.delete_cf(cf, &w.key),
                    }
                }
                let mut opts = rocksdb::WriteOptions::default();
                opts.disable_wal(true);
                db.write_opt(batch, &opts)
                    .map_err(|e| Self::rocks_err(path, &e))
            }
            Backend::Memory(t) => {
                for w in writes {
                    match &w.value {
                        Some(v) => t[w.table].insert(w.key.clone(), v.clone()),
                        None => t[w.table].remove(&w.key),
                    };
                }
                Ok(())
            }
        }
    }

    /// Calls `f` on the entries of `table` with `from <= key < to` in key
    /// order, until it returns false.
    pub fn scan(
        &self,
        table: usize,
        from: &[u8],
        to: Option<&[u8]>,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        match self {
            Backend::Rocks { db, tables, path } => {
                let cf = column(db, tables, table);
                let mut opts = rocksdb::ReadOptions::default();
                if let Some(to) = to {
                    opts.set_iterate_upper_bound(to.to_vec());
                }
                let mut it = db.raw_iterator_cf_opt(cf, opts);
                it.seek(from);
                while it.valid() {
                    let (k, v) = (it.key().expect("valid"), it.value().expect("valid"));
                    if !f(k, v) {
                        break;
                    }
                    it.next();
                }
                it.status().map_err(|e| Self::rocks_err(path, &e))
            }
            Backend::Memory(t) => {
                let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
                for (k, v) in t[table].range::<[u8], _>((Bound::Included(from), upper)) {
                    if !f(k, v) {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    /// Calls `f(i, key, value)` on the entries of `table` in each range
    /// `i` of `ranges` (`from <= key < to`), in key order within a range,
    /// with one iterator for them all (building one costs about as much as
    /// a seek).
    pub fn scan_ranges(
        &self,
        table: usize,
        ranges: &[(Vec<u8>, Vec<u8>)],
        mut f: impl FnMut(usize, &[u8], &[u8]),
    ) -> Result<(), StateError> {
        match self {
            Backend::Rocks { db, tables, path } => {
                let cf = column(db, tables, table);
                let mut it = db.raw_iterator_cf_opt(cf, rocksdb::ReadOptions::default());
                for (i, (from, to)) in ranges.iter().enumerate() {
                    if to <= from {
                        continue;
                    }
                    it.seek(from);
                    while let (Some(k), Some(v)) = (it.key(), it.value()) {
                        if k >= to.as_slice() {
                            break;
                        }
                        f(i, k, v);
                        it.next();
                    }
                }
                it.status().map_err(|e| Self::rocks_err(path, &e))
            }
            Backend::Memory(t) => {
                for (i, (from, to)) in ranges.iter().enumerate() {
                    if to <= from {
                        continue;
                    }
                    let range = (
                        Bound::Included(from.as_slice()),
                        Bound::Excluded(to.as_slice()),
                    );
                    for (k, v) in t[table].range::<[u8], _>(range) {
                        f(i, k, v);
                    }
                }
                Ok(())
            }
        }
    }

    /// Makes everything written so far durable in the local files (memtables
    /// flushed), so a checkpoint may point past it.
    pub fn flush(&self) -> Result<(), StateError> {
        match self {
            Backend::Rocks { db, tables, path } => {
                let cfs: Vec<_> = (0..tables.len()).map(|t| column(db, tables, t)).collect();
                db.flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default())
                    .map_err(|e| Self::rocks_err(path, &e))
            }
            Backend::Memory(_) => Ok(()),
        }
    }

    /// Whether the backend keeps its contents across restarts.
    pub fn persistent(&self) -> bool {
        matches!(self, Backend::Rocks { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(mut b: Backend) -> Backend {
        let w = |table, k: &str, v: Option<&str>| Write {
            table,
            key: k.as_bytes().to_vec(),
            value: v.map(|v| v.as_bytes().to_vec()),
        };
        b.write(&[
            w(0, "b", Some("2")),
            w(0, "a", Some("1")),
            w(0, "c", Some("3")),
            w(1, "a", Some("other table")),
        ])
        .unwrap();
        b.write(&[w(0, "c", None), w(0, "d", Some("4"))]).unwrap();
        assert_eq!(b.get(0, b"a").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(b.get(0, b"c").unwrap(), None);
        assert_eq!(
            b.get(1, b"a").unwrap().as_deref(),
            Some(&b"other table"[..])
        );
        let mut seen = Vec::new();
        b.scan(0, b"b", Some(b"d"), |k, v| {
            seen.push((k.to_vec(), v.to_vec()));
            true
        })
        .unwrap();
        assert_eq!(seen, vec![(b"b".to_vec(), b"2".to_vec())]);
        let ranges = [
            (b"a".to_vec(), b"c".to_vec()),
            (b"c".to_vec(), b"a".to_vec()), // empty
            (b"b".to_vec(), b"z".to_vec()),
        ];
        let mut many = Vec::new();
        b.scan_ranges(0, &ranges, |i, k, _| many.push((i, k.to_vec())))
            .unwrap();
        let expect = [(0, "a"), (0, "b"), (2, "b"), (2, "d")];
        let expect: Vec<_> = expect
            .iter()
            .map(|(i, k)| (*i, k.as_bytes().to_vec()))
            .collect();
        assert_eq!(many, expect);
        let mut all = Vec::new();
        b.scan(0, b"", None, |k, _| {
            all.push(k.to_vec());
            all.len() < 2
        })
        .unwrap();
        assert_eq!(all, vec![b"a".to_vec(), b"b".to_vec()]);
        b.flush().unwrap();
        b
    }

    #[test]
    fn memory_and_rocksdb_behave_alike() {
        exercise(Backend::memory(2));
        let dir = tempfile::tempdir().unwrap();
        let tables = vec!["counts".to_string(), "counts.by-time".to_string()];
        drop(exercise(Backend::open_rocks(dir.path(), &tables).unwrap()));
        // Reopened: what was flushed is still there.
        let b = Backend::open_rocks(dir.path(), &tables).unwrap();
        assert_eq!(b.get(0, b"d").unwrap().as_deref(), Some(&b"4"[..]));
        assert!(b.persistent());
        drop(b);
        // A table the directory has but the new run does not name is
        // dropped, not a reason to refuse to open.
        let b = Backend::open_rocks(dir.path(), &tables[..1]).unwrap();
        assert_eq!(b.get(0, b"d").unwrap().as_deref(), Some(&b"4"[..]));
        drop(b);
        let b = Backend::open_rocks(dir.path(), &tables).unwrap();
        assert_eq!(b.get(1, b"a").unwrap(), None, "dropped, so empty again");
    }
}
