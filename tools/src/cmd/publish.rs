//! `shmbus publish`: inject events into a topic from the command line.
//!
//! ```text
//! shmbus publish ticks --json '{"symbol":"ABC","price":101.5}'   # typed topic
//! producer | shmbus publish ticks --json -                       # one JSON event per line
//! shmbus publish raw --hex 'de ad be ef' --type-id 7 --count 3   # raw topic
//! shmbus publish raw --text hello
//! ```
//!
//! JSON is encoded with the schema stored in the topic (`shmbus::schema::encode`), so no
//! producer code is needed; subscribers receive it as the topic's event type. Raw
//! bytes (`--hex`, `--text`) go only to raw topics, with `--type-id` (default 0). Each
//! published event's position is printed, one per line (`{"position":N}` with
//! `--format json`). Under back-pressure a send waits at most `--timeout` seconds.
//!
//! Exit codes: 2 for bad arguments (including malformed `--json` text and typed/raw
//! mismatches), 1 for runtime errors (unknown topic, a timeout, a bad line on stdin;
//! the lines before it were published and their positions printed).

use std::io::{BufRead, Write};
use std::time::Duration;

use shmbus::{OpenError, Publisher, Raw, SendError, Topic};

use crate::error::CliError;
use crate::output::Format;
use crate::Ctx;

/// Arguments of `shmbus publish`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("payload").required(true).args(["json", "hex", "text"])))]
pub struct Args {
    /// The topic (it must exist).
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
    /// Type id written into raw events' headers.
    #[arg(long, value_name = "N")]
    type_id: Option<u64>,
    /// Publish each event this many times.
    #[arg(long, value_name = "N", default_value_t = 1)]
    count: u64,
    /// Seconds a send may wait under back-pressure before failing.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
}

/// Runs `shmbus publish`.
pub fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    if args.count == 0 {
        return Err(CliError::usage("--count must be at least 1"));
    }
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .map_err(|_| CliError::usage("--timeout must be a non-negative number of seconds"))?;
    let bus = ctx.open_bus()?;
    let topic = bus.topic(&args.topic).open().map_err(|e| match e {
        OpenError::InvalidName(_) => CliError::usage(e.to_string()),
        OpenError::NotFound(_) => {
            CliError::new(format!("no topic {:?} on bus {:?}", args.topic, ctx.bus))
        }
        e => CliError::new(format!("cannot open topic {:?}: {e}", args.topic)),
    })?;
    let mut out = Sink {
        publisher: topic
            .publisher()
            .map_err(|e| CliError::new(format!("cannot publish to {:?}: {e}", args.topic)))?,
        format: ctx.format,
        stdout: std::io::stdout().lock(),
        timeout,
        count: args.count,
    };

    if let Some(json) = &args.json {
        if args.type_id.is_some() {
            return Err(CliError::usage(
                "--type-id is for raw payloads: JSON events carry the topic's type id",
            ));
        }
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
                out.send(type_id, &bytes)?;
            }
        } else {
            let bytes = shmbus::schema::encode::from_json(schema, json)
                .map_err(|e| CliError::usage(format!("--json: {e}")))?;
            out.send(type_id, &bytes)?;
        }
        return Ok(());
    }

    if let Some(schema) = topic.schema() {
        return Err(CliError::usage(format!(
            "topic {:?} carries {} events: publish them with --json",
            args.topic,
            schema.type_name()
        )));
    }
    let bytes = match (&args.hex, &args.text) {
        (Some(hex), _) => parse_hex(hex)?,
        (None, Some(text)) => text.as_bytes().to_vec(),
        // clap requires one of --json, --hex, --text.
        (None, None) => return Err(CliError::usage("give --json, --hex or --text")),
    };
    if bytes.is_empty() {
        return Err(CliError::usage("the payload is empty"));
    }
    out.send(args.type_id.unwrap_or(0), &bytes)
}

/// The schema of a typed topic, or a usage error for a raw one.
fn typed(topic: &Topic<Raw>) -> Result<&shmbus::schema::Schema, CliError> {
    topic.schema().ok_or_else(|| {
        CliError::usage(format!(
            "topic {:?} carries raw bytes (no schema): publish with --hex or --text",
            topic.name()
        ))
    })
}

/// Publishes payloads and prints their positions.
struct Sink {
    publisher: Publisher<Raw>,
    format: Format,
    stdout: std::io::StdoutLock<'static>,
    timeout: Duration,
    count: u64,
}

impl Sink {
    fn send(&mut self, type_id: u64, bytes: &[u8]) -> Result<(), CliError> {
        for _ in 0..self.count {
            let position = self
                .publisher
                .send_bytes_timeout(type_id, bytes, self.timeout)
                .map_err(|e| match e {
                    SendError::Timeout => CliError::new(format!(
                        "timed out after {:?} under back-pressure (a subscriber is a full \
                         ring behind)",
                        self.timeout
                    )),
                    e => CliError::new(format!("cannot publish: {e}")),
                })?;
            let line = match self.format {
                Format::Json => writeln!(self.stdout, "{{\"position\":{position}}}"),
                Format::Table => writeln!(self.stdout, "{position}"),
            };
            line.map_err(|e| CliError::new(format!("cannot write to stdout: {e}")))?;
        }
        Ok(())
    }
}

/// Hex digits to bytes; whitespace, ':' and a leading `0x` are ignored.
fn parse_hex(s: &str) -> Result<Vec<u8>, CliError> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let mut digits = Vec::new();
    for (i, c) in t.char_indices() {
        if c.is_whitespace() || c == ':' {
            continue;
        }
        let d = c.to_digit(16).ok_or_else(|| {
            CliError::usage(format!("--hex: {c:?} at offset {i} is not a hex digit"))
        })?;
        digits.push(d as u8);
    }
    if digits.len() % 2 != 0 {
        return Err(CliError::usage("--hex: an odd number of hex digits"));
    }
    Ok(digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect())
}

#[cfg(test)]
mod tests {
    use super::parse_hex;

    #[test]
    fn hex() {
        assert_eq!(
            parse_hex("0xDEad be:ef").unwrap(),
            vec![0xde, 0xad, 0xbe, 0xef]
        );
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
        assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
    }
}
