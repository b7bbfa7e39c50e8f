//! `shmbus publish`: inject events into a topic from the command line.
//!
//! ```text
//! shmbus publish ticks --json '{"symbol":"ABC","price":101.5}'   # typed topic
//! producer | shmbus publish ticks --json -                       # one JSON event per line
//! shmbus publish raw --hex 'de ad be ef' --type-id 7 --count 3   # raw topic
//! shmbus publish raw --text hello
//! shmbus publish ticks --from events.jsonl                       # bulk: see `from`
//! ```
//!
//! JSON is encoded with the schema stored in the topic (`shmbus::schema::encode`), so no
//! producer code is needed; subscribers receive it as the topic's event type. Raw
//! bytes (`--hex`, `--text`) go only to raw topics, with `--type-id` (default 0). Each
//! event published by `--json`, `--hex` or `--text` has its position printed, one per
//! line (`{"position":N}` with `--format json`); `--from` prints a summary instead.
//! Under back-pressure a send waits at most `--timeout`.
//!
//! Exit codes: 2 for bad arguments (including malformed `--json` text and typed/raw
//! mismatches), 1 for runtime errors (unknown topic, a timeout, a bad line of input;
//! the lines before it were published).

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use shmbus::{Raw, Topic};

use crate::error::CliError;
use crate::target::{existing_bus, open_topic};
use crate::times::duration_arg;
use crate::Ctx;

mod from;
mod sink;

use sink::{parse_hex, Sink};

/// Arguments of `shmbus publish`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("payload").required(true).args(["json", "hex", "text", "from"])))]
pub struct Args {
    /// The topic (it must exist: see `shmbus create`).
    topic: String,
    /// The event as JSON, encoded with the topic's stored schema; `-` reads one JSON
    /// event per line from stdin.
    #[arg(long, value_name = "JSON")]
    json: Option<String>,
    /// Raw payload bytes in hex (whitespace, ':' and a leading 0x are ignored).
    #[arg(long, value_name = "HEX")]
    hex: Option<String>,
    /// Raw payload: these UTF-8 bytes.
    #[arg(long, value_name = "TEXT")]
    text: Option<String>,
    /// Bulk ingest from FILE (- for stdin): one JSON event per line for a typed topic,
    /// one record per line for a raw one; prints a summary.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// With --from on a raw topic: records are a u32 little-endian length then that many
    /// bytes, instead of lines.
    #[arg(long)]
    length_prefixed: bool,
    /// With --from: count bad lines and go on (exit 0; the summary says how many were
    /// skipped) instead of stopping at the first (exit 1).
    #[arg(long)]
    skip_bad: bool,
    /// Type id written into raw events' headers.
    #[arg(long, value_name = "N")]
    type_id: Option<u64>,
    /// Publish each event this many times.
    #[arg(long, value_name = "N", default_value_t = 1, conflicts_with = "from")]
    count: u64,
    /// How long a send may wait under back-pressure before failing: a bare number of
    /// seconds (10) or a number with a unit (500ms, 2s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10", value_parser = duration_arg)]
    timeout: Duration,
}

/// Runs `shmbus publish`.
pub fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    if args.count == 0 {
        return Err(CliError::usage("--count must be at least 1"));
    }
    if args.from.is_none() && (args.skip_bad || args.length_prefixed) {
        return Err(CliError::usage(
            "--skip-bad and --length-prefixed go with --from",
        ));
    }
    let bus = existing_bus(ctx)?;
    let topic = open_topic(&bus, &args.topic)?;
    if args.type_id.is_some() && topic.schema().is_some() {
        return Err(CliError::usage(
            "--type-id is for raw payloads: JSON events carry the topic's type id",
        ));
    }
    let mut out = Sink::new(&topic, ctx.format, args.timeout, args.count)?;
    if let Some(path) = &args.from {
        return from::run(ctx, &args, &topic, &mut out, path);
    }
    if let Some(json) = &args.json {
        let schema = typed(&topic)?;
        let type_id = topic.meta().type_id;
        if json == "-" {
            for (n, line) in std::io::stdin().lock().lines().enumerate() {
                let line = line.map_err(|e| CliError::new(format!("cannot read stdin: {e}")))?;
                if line.trim().is_empty() {
                    continue;
                }
                let bytes = shmbus::schema::encode::from_json(schema, &line)
                    .map_err(|e| CliError::new(format!("stdin line {}: {e}", n + 1)))?;
                out.send_and_print(type_id, &bytes)?;
            }
        } else {
            let bytes = shmbus::schema::encode::from_json(schema, json)
                .map_err(|e| CliError::usage(format!("--json: {e}")))?;
            out.send_and_print(type_id, &bytes)?;
        }
        return Ok(());
    }
    untyped(&topic)?;
    let bytes = match (&args.hex, &args.text) {
        (Some(hex), _) => parse_hex(hex)?,
        (None, Some(text)) => text.as_bytes().to_vec(),
        // clap requires one of --json, --hex, --text, --from.
        (None, None) => return Err(CliError::usage("give --json, --hex, --text or --from")),
    };
    if bytes.is_empty() {
        return Err(CliError::usage("the payload is empty"));
    }
    out.send_and_print(args.type_id.unwrap_or(0), &bytes)
}

/// The schema of a typed topic, or a usage error for a raw one.
fn typed(topic: &Topic<Raw>) -> Result<&shmbus::schema::Schema, CliError> {
    topic.schema().ok_or_else(|| {
        CliError::usage(format!(
            "topic {:?} carries raw bytes (no schema): publish with --hex, --text or --from",
            topic.name()
        ))
    })
}

/// A usage error for a typed topic.
fn untyped(topic: &Topic<Raw>) -> Result<(), CliError> {
    match topic.schema() {
        Some(schema) => Err(CliError::usage(format!(
            "topic {:?} carries {} events: publish them with --json or --from",
            topic.name(),
            schema.type_name()
        ))),
        None => Ok(()),
    }
}
