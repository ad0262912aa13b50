//! `limits.memory` against a whole component: one budget for the linear
//! memories of all its core instances and its tables together.
//!
//! The operator here is written by hand in the component text format. It
//! exports `lifecycle` and `processor` and imports nothing. Its `process`
//! reads the batch as four little-endian u32 (not an encoded batch): how
//! many pages to grow each of three memories by, each in a core instance of
//! its own, and how many elements to grow a funcref table by.

use super::TABLE_ELEMENT_BYTES;
use crate::wasm::bindings::eddy::operator::types::Error as WitError;
use crate::wasm::sandbox::HostState;
use crate::wasm::{CallError, Chain, LoadedOperator, OperatorEngine, OperatorInstance};
use std::path::Path;
use wasmtime::Store;

/// A Wasm page, bytes.
const PAGE: usize = 64 << 10;

/// The limit of most tests, `limits.memory = "4MiB"`.
const LIMIT: usize = 4 << 20;

/// A component that grows its memories and its table as each batch asks.
///
/// Core instances: `a`, `b` and `c` (one module instantiated three times,
/// each with a memory of one page to start with), `t` (a table of no
/// elements) and `main` (the memory of the canonical ABI, one page, and the
/// exports). Four pages in all when instantiated. A growth that is refused
/// traps: by the budget's own error, or at `unreachable` should `grow`
/// return -1.
const GREEDY: &str = r#"
(component
  (core module $Heap
    (memory (export "memory") 1)
    (func (export "grow") (param $pages i32)
      (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1))
        (then unreachable))
      ;; Writes the last byte: the pages are used, not just reserved.
      (i32.store8 (i32.sub (i32.shl (memory.size) (i32.const 16)) (i32.const 1))
                  (i32.const 1))))
  (core module $Table
    (table 0 funcref)
    (func (export "grow") (param $elements i32)
      (if (i32.eq (table.grow 0 (ref.null func) (local.get $elements)) (i32.const -1))
        (then unreachable))))
  (core module $Main
    (import "a" "grow" (func $grow_a (param i32)))
    (import "b" "grow" (func $grow_b (param i32)))
    (import "c" "grow" (func $grow_c (param i32)))
    (import "t" "grow" (func $grow_t (param i32)))
    (memory (export "memory") 1)
    ;; Arguments go above 1024; results are read at 16, which stays zero:
    ;; `ok` (an empty list for `process`).
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32) (param $align i32) (param $size i32) (result i32)
      (local $at i32)
      (local.set $at
        (i32.and (i32.add (global.get $next) (i32.sub (local.get $align) (i32.const 1)))
                 (i32.sub (i32.const 0) (local.get $align))))
      (global.set $next (i32.add (local.get $at) (local.get $size)))
      (local.get $at))
    (func (export "init") (param i32 i32) (result i32)
      (global.set $next (i32.const 1024))
      (i32.const 16))
    (func (export "process") (param $batch i32) (param $len i32) (result i32)
      (if (i32.lt_u (local.get $len) (i32.const 16)) (then unreachable))
      (call $grow_a (i32.load (local.get $batch)))
      (call $grow_b (i32.load offset=4 (local.get $batch)))
      (call $grow_c (i32.load offset=8 (local.get $batch)))
      (call $grow_t (i32.load offset=12 (local.get $batch)))
      (global.set $next (i32.const 1024))
      (i32.const 16)))
  (core instance $a (instantiate $Heap))
  (core instance $b (instantiate $Heap))
  (core instance $c (instantiate $Heap))
  (core instance $t (instantiate $Table))
  (core instance $main (instantiate $Main
    (with "a" (instance $a))
    (with "b" (instance $b))
    (with "c" (instance $c))
    (with "t" (instance $t))))

  ;; The `types` interface; its exported types name those of the others.
  (component $Types
    (type $failure-def (record (field "message" string) (field "input-index" (option u32))))
    (export $failure "failure" (type $failure-def))
    (type $error-def (variant (case "invalid-settings" string)
                              (case "failed" $failure)
                              (case "bad-batch" string)))
    (export "error" (type $error-def)))
  (instance $types-impl (instantiate $Types))
  (export $types "eddy:operator/types@0.1.0" (instance $types-impl))
  (alias export $types "failure" (type $failure))
  (alias export $types "error" (type $error))

  (alias core export $main "memory" (core memory $memory))
  (func $init (param "settings" (list (tuple string string))) (result (result (error $error)))
    (canon lift (core func $main "init") (memory $memory) (realloc (core func $main "realloc"))))
  (func $process (param "batch" (list u8)) (result (result (list u8) (error $error)))
    (canon lift (core func $main "process") (memory $memory)
      (realloc (core func $main "realloc"))))

  (component $Lifecycle
    (type $failure-def (record (field "message" string) (field "input-index" (option u32))))
    (import "import-type-failure" (type $failure (eq $failure-def)))
    (type $error-def (variant (case "invalid-settings" string)
                              (case "failed" $failure)
                              (case "bad-batch" string)))
    (import "import-type-error" (type $error-in (eq $error-def)))
    (import "import-func-init"
      (func $init (param "settings" (list (tuple string string))) (result (result (error $error-in)))))
    (export $error "error" (type $error-in))
    (export "init" (func $init)
      (func (param "settings" (list (tuple string string))) (result (result (error $error))))))
  (instance $lifecycle (instantiate $Lifecycle
    (with "import-type-failure" (type $failure))
    (with "import-type-error" (type $error))
    (with "import-func-init" (func $init))))
  (export "eddy:operator/lifecycle@0.1.0" (instance $lifecycle))

  (component $Processor
    (type $failure-def (record (field "message" string) (field "input-index" (option u32))))
    (import "import-type-failure" (type $failure (eq $failure-def)))
    (type $error-def (variant (case "invalid-settings" string)
                              (case "failed" $failure)
                              (case "bad-batch" string)))
    (import "import-type-error" (type $error-in (eq $error-def)))
    (import "import-func-process"
      (func $process (param "batch" (list u8)) (result (result (list u8) (error $error-in)))))
    (export $error "error" (type $error-in))
    (export "process" (func $process)
      (func (param "batch" (list u8)) (result (result (list u8) (error $error))))))
  (instance $processor (instantiate $Processor
    (with "import-type-failure" (type $failure))
    (with "import-type-error" (type $error))
    (with "import-func-process" (func $process))))
  (export "eddy:operator/processor@0.1.0" (instance $processor))
)
"#;

/// Pages the component holds once instantiated: the ABI memory and `a`, `b`, `c`.
const INITIAL_PAGES: usize = 4;

/// The greedy component loaded for a processor step with `limits.memory`.
fn operator(memory: &str) -> LoadedOperator {
    let text = format!(
        "application_id = \"a\"\n[[sources]]\ntopic = \"in\"\n\
         [[steps]]\nname = \"greedy\"\ncomponent = \"greedy.wasm\"\nlimits = {{ memory = \"{memory}\" }}\n\
         [[sinks]]\ntopic = \"out\"\n"
    );
    let t = crate::spec::parse_with(Path::new("p.toml"), &text, false).unwrap();
    let engine = OperatorEngine::for_topology(&t).unwrap();
    let bytes = wat::parse_str(GREEDY).unwrap();
    LoadedOperator::from_bytes(&engine, &t.steps[0], &bytes).unwrap()
}

/// The batch that asks for memories `a`, `b`, `c` to grow by these pages
/// and the table by `elements`.
fn ask(a: u32, b: u32, c: u32, elements: u32) -> Vec<u8> {
    [a, b, c, elements]
        .iter()
        .flat_map(|n| n.to_le_bytes())
        .collect()
}

/// Table elements as many bytes as `pages` pages.
fn elements_of(pages: usize) -> u32 {
    (pages * PAGE / TABLE_ELEMENT_BYTES) as u32
}

#[test]
fn instantiating_counts_the_memories_of_every_core_instance() {
    let op = operator("4MiB");
    let data = HostState::new(op.name.clone(), &op.step.grants, &op.step.limits).unwrap();
    let mut store = Store::new(op.pre.engine(), data);
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(OperatorEngine::ticks(op.step.limits.timeout));
    let instance = op.pre.instantiate(&mut store).unwrap();
    assert_eq!(store.data().limits.used, INITIAL_PAGES * PAGE);
    let process = instance
        .get_typed_func::<(&[u8],), (Result<Vec<u8>, WitError>,)>(&mut store, &op.call)
        .unwrap();
    let (out,) = process.call(&mut store, (&ask(1, 2, 3, 10),)).unwrap();
    assert_eq!(out, Ok(Vec::new()));
    assert_eq!(
        store.data().limits.used,
        (INITIAL_PAGES + 6) * PAGE + 10 * TABLE_ELEMENT_BYTES
    );
    assert_eq!(store.data_mut().limits.take_refused(), None);
    // The third memory's growth is refused against what all of them hold:
    // the call fails with the budget's own error, not at `unreachable`.
    let err = process
        .call(&mut store, (&ask(0, 0, 60, 0),))
        .expect_err("over the limit");
    assert!(err.downcast_ref::<super::OverBudget>().is_some(), "{err:?}");
    let refused = store.data_mut().limits.take_refused().expect("recorded");
    let used = (INITIAL_PAGES + 6) * PAGE + 10 * TABLE_ELEMENT_BYTES;
    assert_eq!(
        refused,
        format!(
            "a linear memory growing by {} bytes with {used} of {LIMIT} in use",
            60 * PAGE
        )
    );
}

#[test]
fn three_memories_each_under_the_limit_exceed_it_together() {
    let op = operator("4MiB");
    let mut inst = OperatorInstance::new(&op).unwrap();
    // Each memory grows to 2 MiB (32 pages), half the limit; the second
    // already takes the instance past it.
    assert_eq!(
        inst.call(&ask(31, 31, 31, 0)),
        Err(CallError::OutOfMemory(LIMIT))
    );
    // 4 + 20 + 20 + 21 pages: `a` and `b` fit, `c` is one page over.
    let mut inst = OperatorInstance::new(&op).unwrap();
    assert_eq!(
        inst.call(&ask(20, 20, 21, 0)),
        Err(CallError::OutOfMemory(LIMIT))
    );
}

#[test]
fn memories_fit_up_to_the_limit_exactly_and_not_a_page_more() {
    let op = operator("4MiB");
    let mut inst = OperatorInstance::new(&op).unwrap();
    // 4 + 3 × 20 pages: exactly 4 MiB.
    assert_eq!(inst.call(&ask(20, 20, 20, 0)), Ok(Vec::new()));
    // Growth does not shrink back between calls: a page more, in any of
    // the memories, is past the limit.
    assert_eq!(inst.call(&ask(0, 0, 0, 0)), Ok(Vec::new()));
    assert_eq!(
        inst.call(&ask(1, 0, 0, 0)),
        Err(CallError::OutOfMemory(LIMIT))
    );
}

#[test]
fn a_growing_table_counts_against_the_memory_limit() {
    let op = operator("4MiB");
    let mut inst = OperatorInstance::new(&op).unwrap();
    // A million elements are counted as 8 MiB.
    assert_eq!(
        inst.call(&ask(0, 0, 0, 1 << 20)),
        Err(CallError::OutOfMemory(LIMIT))
    );
    // Memories and table share the budget: 4 + 3 × 19 pages of memory and
    // 3 pages' worth of elements are exactly 4 MiB; one element more is not.
    let mut inst = OperatorInstance::new(&op).unwrap();
    assert_eq!(inst.call(&ask(19, 19, 19, elements_of(3))), Ok(Vec::new()));
    assert_eq!(
        inst.call(&ask(0, 0, 0, 1)),
        Err(CallError::OutOfMemory(LIMIT))
    );
}

#[test]
fn the_same_growth_within_a_larger_limit_is_fine() {
    // Three memories of 2 MiB and 8 MiB of table elements: 14 MiB and a page.
    let op = operator("16MiB");
    let mut inst = OperatorInstance::new(&op).unwrap();
    assert_eq!(inst.call(&ask(31, 31, 31, 1 << 20)), Ok(Vec::new()));
    assert_eq!(inst.call(&ask(1, 1, 1, 1024)), Ok(Vec::new()));
}

#[test]
fn the_chain_starts_a_fresh_instance_after_running_out() {
    let op = operator("4MiB");
    let mut chain = Chain::new(&[Some(op)]).unwrap();
    assert_eq!(
        chain.call(0, &ask(31, 31, 31, 0)),
        Err((CallError::OutOfMemory(LIMIT), None))
    );
    // The instance that ran out is dropped; its successor has the whole
    // budget again, which a growth to exactly the limit shows.
    assert_eq!(chain.call(0, &ask(20, 20, 20, 0)), Ok(Vec::new()));
    assert_eq!(
        chain.call(0, &ask(0, 0, 0, 1)),
        Err((CallError::OutOfMemory(LIMIT), None))
    );
    assert_eq!(chain.call(0, &ask(1, 2, 3, 4)), Ok(Vec::new()));
}
