//! `shmbus`: inspect, tail, query, record and replay the topics of a shmbus bus and the
//! segments of its stores. A thin front end over the library: every subcommand is one
//! file in `cmd/`, parsing its arguments and printing what the library returns.
//!
//! Exit codes: 0 ok, 1 error (one line on stderr), 2 bad usage.

mod cmd;
mod error;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;
use crate::output::{Format, FormatArg};

/// The shmbus command-line tool.
#[derive(Parser)]
#[command(name = "shmbus", version, about, propagate_version = true)]
struct Cli {
    /// The bus: a name under $SHMBUS_DIR (default /dev/shm/shmbus), or a directory path
    /// when it contains a '/'.
    #[arg(long, global = true, env = "SHMBUS_BUS", default_value = "default")]
    bus: String,
    /// Output format; by default a table on a terminal and JSON lines otherwise.
    #[arg(long, global = true, value_enum)]
    format: Option<FormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the topics of the bus.
    Ls(cmd::ls::Args),
    /// Show a topic's header, schema, producers and subscribers.
    Info(cmd::info::Args),
    /// Per-topic counters and rates.
    Stat(cmd::stat::Args),
    /// Print a topic's events as JSON, optionally following the live ring.
    Tail(cmd::tail::Args),
    /// Filter, project and aggregate events of a live topic or a store.
    Query(cmd::query::Args),
    /// Check every segment and index of a store.
    Verify(cmd::verify::Args),
    /// Record a topic into a store until SIGINT or SIGTERM.
    Record(cmd::record::Args),
    /// Publish a store's events into a topic.
    Replay(cmd::replay::Args),
    /// Find (and with --remove, delete) ring files whose participants are all dead.
    Gc(cmd::gc::Args),
    /// Report misconfiguration: permissions, stale slots, unreadable rings.
    Doctor(cmd::doctor::Args),
    /// Export a store's events as JSON lines or CSV.
    Export(cmd::export::Args),
    /// Publish one event given as JSON (or raw bytes).
    Publish(cmd::publish::Args),
}

/// What every subcommand gets besides its own arguments.
pub struct Ctx {
    /// The bus as given on the command line.
    pub bus: String,
    /// The output format chosen for this run.
    pub format: Format,
    /// `--format` as given (`export` reads `csv` from it).
    pub format_arg: Option<FormatArg>,
}

impl Ctx {
    /// Opens the bus named on the command line.
    pub fn open_bus(&self) -> Result<shmbus::Bus, CliError> {
        let bus = if self.bus.contains('/') {
            shmbus::Bus::open_dir(PathBuf::from(&self.bus))
        } else {
            shmbus::Bus::open(&self.bus)
        };
        bus.map_err(|e| CliError::new(format!("cannot open bus {:?}: {e}", self.bus)))
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if cli.format == Some(FormatArg::Csv) && !matches!(cli.command, Command::Export(_)) {
        eprintln!("shmbus: --format csv is only for export");
        return ExitCode::from(2);
    }
    let ctx = Ctx {
        bus: cli.bus,
        format: match cli.format {
            Some(FormatArg::Table) => Format::Table,
            Some(FormatArg::Json | FormatArg::Csv) => Format::Json,
            None => Format::default_for_stdout(),
        },
        format_arg: cli.format,
    };
    let result = match cli.command {
        Command::Ls(a) => cmd::ls::run(&ctx, a),
        Command::Info(a) => cmd::info::run(&ctx, a),
        Command::Stat(a) => cmd::stat::run(&ctx, a),
        Command::Tail(a) => cmd::tail::run(&ctx, a),
        Command::Query(a) => cmd::query::run(&ctx, a),
        Command::Verify(a) => cmd::verify::run(&ctx, a),
        Command::Record(a) => cmd::record::run(&ctx, a),
        Command::Replay(a) => cmd::replay::run(&ctx, a),
        Command::Gc(a) => cmd::gc::run(&ctx, a),
        Command::Doctor(a) => cmd::doctor::run(&ctx, a),
        Command::Export(a) => cmd::export::run(&ctx, a),
        Command::Publish(a) => cmd::publish::run(&ctx, a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmbus: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
