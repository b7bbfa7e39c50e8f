//! `shmbus`: inspect, tail, query, record and replay the topics of a shmbus bus and the
//! segments of its stores. A thin front end over the library: every subcommand is one
//! file in `cmd/`, parsing its arguments and printing what the library returns.
//!
//! Exit codes: 0 ok, 1 error (one line on stderr), 2 bad usage.

mod cmd;
mod error;
mod output;
mod progress;
mod report;
mod stored;
mod target;
mod timefmt;
mod units;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

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

/// The subcommand named on a command line (`args` without the program name), skipping
/// the global options and their values.
fn subcommand_of(args: &[String]) -> Option<String> {
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--bus" || a == "--format" {
            it.next();
        } else if a == "--" {
            return None;
        } else if !a.starts_with('-') {
            return names.contains(a).then(|| a.clone());
        }
    }
    None
}

/// Turns clap's multi-line usage error (`rendered`, in plain text) into one line: the
/// error, clap's "a similar ... exists" tips, the usage clap shows, and where the help
/// is. `command` is the subcommand the line named, if any.
fn usage_line(rendered: &str, command: Option<&str>) -> String {
    let mut msg = String::new();
    let mut usage = None;
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(u) = line.strip_prefix("Usage: ") {
            usage = Some(u.to_string());
            continue;
        }
        if line.starts_with("For more information") {
            continue;
        }
        if line.starts_with("tip:") && !line.contains("similar") {
            continue;
        }
        let line = line.strip_prefix("error: ").unwrap_or(line);
        if !msg.is_empty() {
            msg.push_str(if msg.ends_with(':') || line.starts_with('[') {
                " "
            } else {
                "; "
            });
        }
        msg.push_str(line);
    }
    let help = match command {
        Some(c) => format!("shmbus {c} --help"),
        None => "shmbus --help".to_string(),
    };
    match usage {
        Some(u) => format!("{msg} (usage: {u}; see {help})"),
        None => format!("{msg} (see {help})"),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version, and the help that a bare `shmbus` prints.
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
        Err(e) => {
            let args: Vec<String> = std::env::args().skip(1).collect();
            let line = usage_line(&e.render().to_string(), subcommand_of(&args).as_deref());
            eprintln!("shmbus: {line}");
            return ExitCode::from(2);
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
            progress::clear_line();
            eprintln!("shmbus: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_subcommand_is_found_past_global_options() {
        assert_eq!(
            subcommand_of(&args("tail x --bogus")).as_deref(),
            Some("tail")
        );
        assert_eq!(
            subcommand_of(&args("--bus tail --format json ls")).as_deref(),
            Some("ls")
        );
        assert_eq!(subcommand_of(&args("--bogus")), None);
        assert_eq!(subcommand_of(&args("lss")), None);
    }

    #[test]
    fn clap_errors_become_one_line() {
        let e = "error: unexpected argument '--bogus' found\n\n  tip: to pass '--bogus' as a \
                 value, use '-- --bogus'\n\nUsage: shmbus tail <TOPIC>\n\nFor more \
                 information, try '--help'.\n";
        assert_eq!(
            usage_line(e, Some("tail")),
            "unexpected argument '--bogus' found (usage: shmbus tail <TOPIC>; see shmbus \
             tail --help)"
        );
        let e = "error: the following required arguments were not provided:\n  <TOPIC>\n\n\
                 Usage: shmbus tail <TOPIC>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_line(e, Some("tail")),
            "the following required arguments were not provided: <TOPIC> (usage: shmbus \
             tail <TOPIC>; see shmbus tail --help)"
        );
        let e = "error: unrecognized subcommand 'lss'\n\n  tip: a similar subcommand exists: \
                 'ls'\n\nUsage: shmbus [OPTIONS] <COMMAND>\n\nFor more information, try \
                 '--help'.\n";
        assert_eq!(
            usage_line(e, None),
            "unrecognized subcommand 'lss'; tip: a similar subcommand exists: 'ls' (usage: \
             shmbus [OPTIONS] <COMMAND>; see shmbus --help)"
        );
        let e = "error: invalid value 'xml' for '--format <FORMAT>'\n  [possible values: \
                 table, json]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_line(e, Some("ls")),
            "invalid value 'xml' for '--format <FORMAT>' [possible values: table, json] (see \
             shmbus ls --help)"
        );
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
