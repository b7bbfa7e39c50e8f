//! `shmbus`: create, inspect, publish to, tail, query, record and replay the topics of a
//! shmbus bus and the segments of its stores. A thin front end over the library: every
//! subcommand is one module in `cmd/`, parsing its arguments and printing what the
//! library returns; shared pieces live beside `cmd/` (`target`, `output`, `times`, ...).
//!
//! Exit codes: 0 ok, 1 error (one line on stderr), 2 bad usage (one line on stderr
//! ending with `see shmbus <cmd> --help`).

mod cmd;
mod error;
mod output;
mod progress;
mod rings;
mod scan;
mod schema_file;
mod stored;
mod target;
mod times;
mod topics;
mod units;
mod usage;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::error::CliError;
use crate::output::{Format, FormatArg};

/// The shmbus command-line tool.
#[derive(Parser)]
#[command(name = "shmbus", version, about, propagate_version = true)]
pub struct Cli {
    /// The bus: a name under $SHMBUS_DIR (default /dev/shm/shmbus), or a directory path
    /// when it contains a '/'.
    #[arg(long, global = true, env = "SHMBUS_BUS", default_value = "default")]
    bus: String,
    /// Output format: table (the default on a terminal) or json (one object per line,
    /// the default otherwise); `export` and `query` also take csv.
    #[arg(long, global = true, value_name = "FORMAT", value_parser = output::global_format())]
    format: Option<FormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the topics of the bus.
    Ls(cmd::ls::Args),
    /// Create a topic (raw bytes, or typed by a schema file).
    Create(cmd::create::Args),
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
    /// Publish events given as JSON or raw bytes, one or many (--from FILE).
    Publish(cmd::publish::Args),
    /// Print a shell completion script (bash, zsh, fish), or the man page with --man.
    Completions(cmd::completions::Args),
    /// Print the man page (roff).
    Man,
}

/// What every subcommand gets besides its own arguments.
pub struct Ctx {
    /// The bus as given on the command line.
    pub bus: String,
    /// The output format chosen for this run.
    pub format: Format,
    /// `--format` as given (`export` and `query` read `csv` from it).
    pub format_arg: Option<FormatArg>,
}

fn run(cli: Cli) -> Result<(), CliError> {
    let ctx = Ctx {
        bus: cli.bus,
        format: match cli.format {
            Some(FormatArg::Table) => Format::Table,
            Some(FormatArg::Json | FormatArg::Csv) => Format::Json,
            None => Format::default_for_stdout(),
        },
        format_arg: cli.format,
    };
    match cli.command {
        Command::Ls(a) => cmd::ls::run(&ctx, a),
        Command::Create(a) => cmd::create::run(&ctx, a),
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
        Command::Completions(a) => cmd::completions::run(a),
        Command::Man => cmd::completions::man(),
    }
}

/// A usage error from clap: one line, ending with where the help is.
fn usage_error(e: clap::Error, args: &[std::ffi::OsString]) -> ExitCode {
    // --help, --version, and the help that a bare `shmbus` prints.
    if !e.use_stderr()
        || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    {
        let _ = e.print();
        return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
    }
    let sub = usage::subcommand_named(Cli::command(), args);
    let line = e.apply::<usage::OneLine>().render();
    eprintln!("shmbus: {line}; {}", usage::see_help(sub.as_deref()));
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let matches = match Cli::command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => return usage_error(e, &args),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e, &args),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.exit_code() == 2 => {
            eprintln!(
                "shmbus: {e}; {}",
                usage::see_help(matches.subcommand_name())
            );
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("shmbus: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &str) -> (String, Option<String>) {
        let args: Vec<std::ffi::OsString> = args.split_whitespace().map(Into::into).collect();
        let e = Cli::command()
            .try_get_matches_from(&args)
            .expect_err("an error");
        (
            e.apply::<usage::OneLine>().render().to_string(),
            usage::subcommand_named(Cli::command(), &args),
        )
    }

    #[test]
    fn clap_errors_become_one_line_naming_the_subcommand() {
        let (m, sub) = line("shmbus tail x --bogus");
        assert!(m.starts_with("unexpected argument '--bogus' found"), "{m}");
        assert!(m.contains("(usage: shmbus tail"), "{m}");
        assert_eq!(sub.as_deref(), Some("tail"));
        let (m, sub) = line("shmbus --bus b tail");
        assert!(m.contains("<TOPIC>"), "{m}");
        assert_eq!(sub.as_deref(), Some("tail"));
        let (m, sub) = line("shmbus lss");
        assert!(m.contains("'ls'"), "{m}");
        assert_eq!(sub, None);
        let (m, _) = line("shmbus --format xml ls");
        assert!(m.contains("possible values: table, json"), "{m}");
        let (m, _) = line("shmbus stat --interval soon");
        assert!(m.contains("bad duration"), "{m}");
        assert!(!m.contains('\n'), "{m}");
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
