//! What one operator instance may allocate: every linear memory and every
//! table of it together, against `limits.memory` (a component may hold
//! several core instances, each with memories and tables of its own).
//! What was refused is recorded, so a trap is told apart by what happened,
//! not by its message.

use wasmtime::ResourceLimiter;

/// Bytes a table element is counted as (a function reference).
const TABLE_ELEMENT_BYTES: usize = 8;

/// Memories, tables and core instances one operator instance may create:
/// far above what any toolchain emits, low enough that their bookkeeping
/// stays small.
const MAX_COUNT: usize = 100;

/// The allocation budget of one operator instance.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: usize,
    refused: Option<String>,
}

/// The error a refused growth traps with.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OverBudget(String);

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Budget {
            limit,
            used: 0,
            refused: None,
        }
    }

    /// What was refused since the last call, if anything.
    pub fn take_refused(&mut self) -> Option<String> {
        self.refused.take()
    }

    fn grow(&mut self, what: &str, more: usize) -> wasmtime::Result<bool> {
        match self.used.checked_add(more) {
            Some(total) if total <= self.limit => {
                self.used = total;
                Ok(true)
            }
            _ => {
                let why = format!(
                    "{what} growing by {more} bytes with {} of {} in use",
                    self.used, self.limit
                );
                self.refused = Some(why.clone());
                // Trap rather than report a failed grow: a guest allocator
                // that sees one aborts with a less telling message.
                Err(OverBudget(why).into())
            }
        }
    }
}

impl ResourceLimiter for Budget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow("a linear memory", desired.saturating_sub(current))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let more = desired.saturating_sub(current);
        self.grow("a table", more.saturating_mul(TABLE_ELEMENT_BYTES))
    }

    fn instances(&self) -> usize {
        MAX_COUNT
    }

    fn tables(&self) -> usize {
        MAX_COUNT
    }

    fn memories(&self) -> usize {
        MAX_COUNT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::{Config, Engine, Instance, Module, Store};

    /// A module with two memories and a table, each grown on request.
    const GREEDY: &str = r#"
        (module
          (memory $a 1)
          (memory $b 1)
          (table $t 1 funcref)
          (func (export "grow_a") (param i32) (result i32)
            (memory.grow $a (local.get 0)))
          (func (export "grow_b") (param i32) (result i32)
            (memory.grow $b (local.get 0)))
          (func (export "grow_t") (param i32) (result i32)
            (table.grow $t (ref.null func) (local.get 0))))
    "#;

    fn instance(limit: usize) -> (Store<Budget>, Instance) {
        let mut config = Config::new();
        config.wasm_multi_memory(true);
        let engine = Engine::new(&config).unwrap();
        let module = Module::new(&engine, wat::parse_str(GREEDY).unwrap()).unwrap();
        let mut store = Store::new(&engine, Budget::new(limit));
        store.limiter(|b| b);
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        (store, instance)
    }

    fn grow(store: &mut Store<Budget>, i: &Instance, what: &str, by: i32) -> wasmtime::Result<i32> {
        let f = i.get_typed_func::<i32, i32>(&mut *store, what).unwrap();
        f.call(&mut *store, by)
    }

    const PAGE: usize = 64 << 10;

    #[test]
    fn every_memory_counts_against_one_budget() {
        let (mut store, i) = instance(8 * PAGE);
        assert_eq!(store.data().used, 2 * PAGE + TABLE_ELEMENT_BYTES);
        assert_eq!(grow(&mut store, &i, "grow_a", 3).unwrap(), 1);
        assert_eq!(grow(&mut store, &i, "grow_b", 2).unwrap(), 1);
        // 7 pages used: one more memory page fits nowhere past the eighth.
        assert!(grow(&mut store, &i, "grow_b", 2).is_err(), "traps");
        let refused = store.data_mut().take_refused().expect("recorded");
        assert!(
            refused.starts_with("a linear memory growing by 131072 bytes"),
            "{refused}"
        );
    }

    #[test]
    fn tables_count_too() {
        let (mut store, i) = instance(2 * PAGE + 1024);
        assert_eq!(grow(&mut store, &i, "grow_t", 100).unwrap(), 1);
        assert!(grow(&mut store, &i, "grow_t", 1 << 20).is_err());
        let refused = store.data_mut().take_refused().expect("recorded");
        assert!(refused.starts_with("a table growing by"), "{refused}");
    }
}

/// The budget against whole components, through the operator instance.
#[cfg(test)]
#[path = "budget_tests.rs"]
mod component_tests;
