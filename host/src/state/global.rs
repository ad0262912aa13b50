//! Global tables: every row of a topic, on every instance, shared by all
//! tasks and looked up by joins (Kafka Streams' `GlobalKTable`). They are
//! kept in memory and filled from their topic before processing starts,
//! then kept current while running; the topic is their changelog.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// One global table: key → (timestamp, value).
pub type Rows = HashMap<Vec<u8>, (i64, Vec<u8>)>;

/// The global tables of a topology, by source index.
#[derive(Debug, Default)]
pub struct Globals {
    tables: Vec<Option<RwLock<Rows>>>,
}

impl Globals {
    /// Empty tables for the sources that are global (`global[i]`).
    pub fn new(global: impl IntoIterator<Item = bool>) -> Arc<Self> {
        Arc::new(Globals {
            tables: global
                .into_iter()
                .map(|g| g.then(|| RwLock::new(Rows::new())))
                .collect(),
        })
    }

    fn table(&self, source: usize) -> &RwLock<Rows> {
        self.tables
            .get(source)
            .and_then(Option::as_ref)
            .expect("a global source")
    }

    /// Applies rows read from the topic: an upsert, or a delete (none).
    /// Rows without a key are skipped, as a table source does.
    pub fn apply<'a>(
        &self,
        source: usize,
        rows: impl IntoIterator<Item = (Option<&'a [u8]>, Option<&'a [u8]>, i64)>,
    ) {
        let mut t = self.table(source).write().expect("not poisoned");
        for (key, value, ts) in rows {
            let Some(key) = key else { continue };
            match value {
                Some(v) => {
                    t.insert(key.to_vec(), (ts, v.to_vec()));
                }
                None => {
                    t.remove(key);
                }
            }
        }
    }

    /// The rows of source `source`'s table, read-locked (for one batch).
    pub fn read(&self, source: usize) -> RwLockReadGuard<'_, Rows> {
        self.table(source).read().expect("not poisoned")
    }

    /// Number of rows of source `source`'s table.
    pub fn len(&self, source: usize) -> usize {
        self.read(source).len()
    }

    /// Whether any source is global.
    pub fn any(&self) -> bool {
        self.tables.iter().any(Option::is_some)
    }
}
