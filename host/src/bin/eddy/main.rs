//! The `eddy` command line.

mod commands;

use clap::{Parser, Subcommand};
use eddy::topology;
use std::path::PathBuf;
use std::process::ExitCode;

/// The store writes and batches of the hot path are many small
/// allocations, which mimalloc serves faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Kafka Streams-style stream processing with operators as WebAssembly components.
#[derive(Parser)]
#[command(name = "eddy", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Runs a pipeline against Kafka until SIGINT/SIGTERM (then finishes the
    /// batch, flushes, commits and leaves the group).
    Run {
        /// The pipeline spec (TOML).
        spec: PathBuf,
        /// Serve the admin API on this address (overrides `admin.listen`;
        /// port 0 picks a free port, logged at start).
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
    },
    /// Hot-reloads an operator of a running eddy through its admin API: the
    /// new version runs from the next batch on, state intact.
    Reload {
        /// The operator (step) name.
        name: String,
        /// The new component (.wasm).
        file: PathBuf,
        /// The admin API's address.
        #[arg(long, default_value = topology::DEFAULT_ADMIN_LISTEN)]
        admin: String,
        /// Bearer token (default: the one `eddy run` generated for that port, when the spec sets none).
        #[arg(long, env = "EDDY_ADMIN_TOKEN")]
        token: Option<String>,
    },
    /// Runs a pipeline on records from a JSON-lines file, with no broker, and
    /// prints the output records in the same format (or, with --expect,
    /// compares them with the expected records).
    Test {
        /// The pipeline spec (TOML).
        spec: PathBuf,
        /// JSON-lines input: one record per line with topic, key, value, timestamp, headers.
        #[arg(long, short)]
        input: PathBuf,
        /// Expected output records (same format): exit non-zero with a diff
        /// when the output differs.
        #[arg(long, short)]
        expect: Option<PathBuf>,
    },
    /// Validates a spec and loads every component; lists all problems.
    Check {
        /// The pipeline spec (TOML).
        spec: PathBuf,
    },
    /// Prints the topology: sources, processors, sinks and their links.
    Describe {
        /// The pipeline spec (TOML).
        spec: PathBuf,
    },
    /// Produces the records of a JSON-lines file (same format as `eddy test`) to Kafka.
    Produce {
        /// JSON-lines records; each line names its topic.
        #[arg(long, short)]
        input: PathBuf,
        /// Kafka bootstrap servers.
        #[arg(long, default_value = "127.0.0.1:9092")]
        bootstrap: String,
    },
    /// Prints a topic from the beginning as JSON lines.
    Consume {
        /// The topic.
        topic: String,
        /// Stop after this many records.
        #[arg(long, default_value_t = usize::MAX)]
        count: usize,
        /// Stop when nothing arrived for this long (e.g. "5s").
        #[arg(long, default_value = "5s")]
        idle: String,
        /// Kafka bootstrap servers.
        #[arg(long, default_value = "127.0.0.1:9092")]
        bootstrap: String,
    },
    /// Compiles an operator crate to a component (`<crate>.wasm` in the crate's directory).
    Build {
        /// Directory of the operator crate.
        dir: PathBuf,
    },
    /// Returns an application to the start: source offsets to the earliest
    /// (or to a time), internal topics and local state deleted. Refuses
    /// while an instance is running.
    Reset {
        /// The pipeline spec (TOML).
        spec: PathBuf,
        /// Only print what would be done.
        #[arg(long)]
        dry_run: bool,
        /// Move source offsets to the first record at or after this time
        /// (RFC 3339, e.g. 2026-11-26T08:00:00Z, or milliseconds since the epoch)
        /// instead of the earliest.
        #[arg(long)]
        to_time: Option<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in files and pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match commands::dispatch(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
