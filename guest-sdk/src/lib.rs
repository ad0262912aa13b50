//! Write eddy stream operators in Rust.
//!
//! An operator is a WebAssembly component that the eddy host calls once per
//! batch of records. This crate hides the component bindings and the batch
//! encoding: you implement a trait over borrowed, mutable records and export
//! it with one macro. The glue exists only when compiling for `wasm32`, so the
//! same logic is unit-testable with plain `cargo test` (see [`testing`]).
//!
//! # A complete operator
//!
//! ```
//! use eddy_sdk::{Error, Operator, Output, Processor, RecordMut, Settings};
//!
//! /// Upper-cases values and drops records whose value is shorter than `min`.
//! pub struct Shout {
//!     min: usize,
//! }
//!
//! impl Operator for Shout {
//!     fn init(settings: &Settings) -> Result<Self, Error> {
//!         settings.allow_only(&["min"])?;
//!         Ok(Shout { min: settings.parse_or("min", 0)? })
//!     }
//! }
//!
//! impl Processor for Shout {
//!     #[inline] // see "Speed" below
//!     fn process(&mut self, record: &mut RecordMut<'_>, out: &mut Output<'_>) -> Result<(), Error> {
//!         let Some(value) = record.value_mut() else { return Ok(()) }; // drop tombstones
//!         if value.len() < self.min {
//!             return Ok(()); // filtered out: nothing forwarded
//!         }
//!         value.make_ascii_uppercase(); // in place: no copy, no allocation
//!         out.forward(record);
//!         Ok(())
//!     }
//! }
//!
//! eddy_sdk::export_processor!(Shout);
//!
//! // The logic is testable on the host target:
//! use eddy_sdk::testing::{TestRecord, run_processor};
//! let mut op = Shout::init(&Settings::from_pairs([("min", "3")])).unwrap();
//! let out = run_processor(&mut op, &[TestRecord::value("hey"), TestRecord::value("no")]).unwrap();
//! assert_eq!(out.len(), 1);
//! assert_eq!(out[0].value.as_deref(), Some(&b"HEY"[..]));
//! ```
//!
//! Build it with `eddy build <crate-dir>` (or `cargo build --release --target
//! wasm32-wasip2`) and name the `.wasm` in a pipeline spec.
//!
//! # Outputs
//!
//! [`Output::forward`] passes the record on as it is now (in-place edits
//! included); [`Output::emit`] starts a new record from it (change the key,
//! the value, the timestamp, headers or the branch) and may be called many
//! times for one input (flat-map). Forwarding nothing filters the record out.
//!
//! # Speed
//!
//! The host calls the operator once per batch; the SDK then calls
//! `process` for each record. Mark `process` `#[inline]` so the compiler
//! folds it into that loop: in Wasm every function call costs a prologue,
//! a shadow-stack adjustment and the host's time-limit check, and for a
//! small operator that call is most of its cost per record (an identity
//! operator's overhead over native code drops from about 25 to about 10 ns
//! a record; see `docs/performance.md`). Loops pay the time-limit check on
//! every iteration too: work on fixed-size blocks (the compiler turns a
//! 16-byte block into one SIMD operation) rather than byte by byte.
#![deny(missing_docs)]

mod driver;
mod error;
pub mod json;
mod log;
mod output;
mod record;
mod settings;
pub mod testing;

pub use driver::{aggregate_batch, join_batch, process_batch};
pub use error::Error;
pub use log::{Level, log};
pub use output::{Output, RecordBuilder};
pub use record::{Headers, RecordMut};
pub use settings::Settings;

/// What every operator implements: how it is made from its settings.
pub trait Operator: Sized + 'static {
    /// Builds the operator from the step's `settings` in the pipeline spec.
    /// Reject unknown or malformed settings here; the host reports the error
    /// when it loads the pipeline.
    fn init(settings: &Settings) -> Result<Self, Error>;
}

/// Map, filter, flat-map and branch: called for each record of a batch.
pub trait Processor: Operator {
    /// Handles one record. Pass it on with `out.forward(record)`, make new
    /// records with `out.emit(record)`, or do neither to drop it.
    fn process(&mut self, record: &mut RecordMut<'_>, out: &mut Output<'_>) -> Result<(), Error>;
}

/// Initializer, adder and subtractor of a grouped aggregation.
pub trait Aggregator: Operator {
    /// The aggregate of a group that has none yet.
    fn initialize(&mut self, key: Option<&[u8]>) -> Result<Vec<u8>, Error>;

    /// Folds `value` into `aggregate`.
    fn add(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        aggregate: &mut Vec<u8>,
    ) -> Result<(), Error>;

    /// Takes `value` back out of `aggregate` (table aggregations: a row that
    /// changed or moved to another group). Without it, table aggregations fail.
    fn subtract(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        aggregate: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let _ = (key, value, aggregate);
        Err(Error::new(
            "this aggregator has no subtractor; implement Aggregator::subtract",
        ))
    }

    /// Combines `other`, another aggregate of the same key, into `aggregate`
    /// (session windows: a record bridging two sessions merges them). Without
    /// it, session-window aggregations fail.
    fn merge(
        &mut self,
        key: Option<&[u8]>,
        other: &[u8],
        aggregate: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let _ = (key, other, aggregate);
        Err(Error::new(
            "this aggregator has no merger; implement Aggregator::merge",
        ))
    }
}

/// What a joiner made of one pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The joined value is what was written into the output buffer.
    Value,
    /// The join yields a null value (a tombstone).
    Null,
    /// No output for this pair.
    Skip,
}

/// Value joiner of stream and table joins.
pub trait Joiner: Operator {
    /// Joins `left` and `right` (none on the side an outer join did not match)
    /// by writing the joined value into `out`, which starts empty.
    fn join(
        &mut self,
        key: Option<&[u8]>,
        left: Option<&[u8]>,
        right: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> Result<Joined, Error>;
}

/// Internal items the export macros use; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::driver::{aggregate_batch, join_batch, process_batch};
    pub use crate::log::set_logger;
    pub use wit_bindgen;

    /// Builds an operator and installs a panic hook that logs through the host.
    pub fn init<O: crate::Operator>(pairs: Vec<(String, String)>) -> Result<O, crate::Error> {
        std::panic::set_hook(Box::new(|info| {
            crate::log(crate::Level::Error, &format!("operator panicked: {info}"));
        }));
        O::init(&crate::Settings::new(pairs))
    }
}

include!(concat!(env!("OUT_DIR"), "/generate.rs"));

/// Exports a [`Processor`] as the component's `processor` interface.
#[macro_export]
macro_rules! export_processor {
    ($ty:ty) => {
        #[doc(hidden)]
        type __EddyOperator = $ty;
        $crate::__export_operator!(
            __EddyOperator,
            "processor-operator",
            processor,
            process,
            process_batch
        );
    };
}

/// Exports an [`Aggregator`] as the component's `aggregator` interface.
#[macro_export]
macro_rules! export_aggregator {
    ($ty:ty) => {
        #[doc(hidden)]
        type __EddyOperator = $ty;
        $crate::__export_operator!(
            __EddyOperator,
            "aggregator-operator",
            aggregator,
            aggregate,
            aggregate_batch
        );
    };
}

/// Exports a [`Joiner`] as the component's `joiner` interface.
#[macro_export]
macro_rules! export_joiner {
    ($ty:ty) => {
        #[doc(hidden)]
        type __EddyOperator = $ty;
        $crate::__export_operator!(__EddyOperator, "joiner-operator", joiner, join, join_batch);
    };
}

/// The component glue shared by the export macros (internal).
#[doc(hidden)]
#[macro_export]
macro_rules! __export_operator {
    ($alias:ident, $world:tt, $iface:ident, $func:ident, $driver:ident) => {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(missing_docs, unsafe_op_in_unsafe_fn, clippy::all)]
        mod __eddy_component {
            $crate::__eddy_generate!($world);

            use super::$alias as Op;
            use eddy::operator::types::{Error as WitError, Failure};
            use std::cell::RefCell;

            thread_local! {
                static OPERATOR: RefCell<Option<Op>> = const { RefCell::new(None) };
            }

            fn to_wit(e: $crate::Error) -> WitError {
                match e {
                    $crate::Error::InvalidSettings(m) => WitError::InvalidSettings(m),
                    $crate::Error::BadBatch(m) => WitError::BadBatch(m),
                    $crate::Error::Failed {
                        message,
                        input_index,
                    } => WitError::Failed(Failure {
                        message,
                        input_index,
                    }),
                }
            }

            fn host_log(level: $crate::Level, message: &str) {
                use eddy::operator::log::{Level as L, log};
                let l = match level {
                    $crate::Level::Trace => L::Trace,
                    $crate::Level::Debug => L::Debug,
                    $crate::Level::Info => L::Info,
                    $crate::Level::Warn => L::Warn,
                    $crate::Level::Error => L::Error,
                };
                log(l, message);
            }

            struct Component;

            impl exports::eddy::operator::lifecycle::Guest for Component {
                fn init(settings: Vec<(String, String)>) -> Result<(), WitError> {
                    $crate::__private::set_logger(host_log);
                    let op = $crate::__private::init::<Op>(settings).map_err(to_wit)?;
                    OPERATOR.with(|o| *o.borrow_mut() = Some(op));
                    Ok(())
                }
            }

            impl exports::eddy::operator::$iface::Guest for Component {
                fn $func(batch: Vec<u8>) -> Result<Vec<u8>, WitError> {
                    OPERATOR.with(|o| match o.borrow_mut().as_mut() {
                        Some(op) => $crate::__private::$driver(op, batch).map_err(to_wit),
                        None => Err(to_wit($crate::Error::new("called before init"))),
                    })
                }
            }

            export!(Component);
        }
    };
}
