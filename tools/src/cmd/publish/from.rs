//! `shmbus publish TOPIC --from FILE|-`: bulk ingest. A typed topic takes one JSON event
//! per line (encoded with the stored schema); a raw topic one record per line (the
//! line's bytes, without its newline), or with `--length-prefixed` records framed as a
//! u32 little-endian length and that many bytes. Empty lines are skipped. Reliable
//! topics apply back-pressure: a send waits (at most `--timeout`) for slow subscribers.
//!
//! A bad record stops the ingest with an error naming its line (or record) number,
//! exit 1, after publishing the ones before it; with `--skip-bad` it is counted, noted
//! on stderr and skipped, and the exit is 0. The summary (events, bytes, seconds,
//! skipped) goes to stdout.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use shmbus::{Raw, Topic};

use super::{sink::Sink, typed, untyped, Args};
use crate::error::CliError;
use crate::output::{human_bytes, json_line, note, out_line, Format};
use crate::progress::Progress;
use crate::target::{install_stop_handlers, stopping};
use crate::Ctx;

/// Bad records noted one by one on stderr before the notes stop (the count goes on).
const NOTED: u64 = 10;

#[derive(Serialize, Default, Clone, Copy)]
struct Summary {
    events: u64,
    bytes: u64,
    seconds: f64,
    skipped: u64,
    interrupted: bool,
}

/// Runs `shmbus publish --from`.
pub fn run(
    ctx: &Ctx,
    args: &Args,
    topic: &Topic<Raw>,
    out: &mut Sink,
    path: &Path,
) -> Result<(), CliError> {
    let (name, input): (String, Box<dyn Read>) = if path.as_os_str() == "-" {
        ("stdin".into(), Box::new(std::io::stdin().lock()))
    } else {
        let f = std::fs::File::open(path)
            .map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))?;
        (path.display().to_string(), Box::new(f))
    };
    let mut input = BufReader::with_capacity(1 << 16, input);
    let schema = match topic.schema() {
        Some(_) if args.length_prefixed => {
            return Err(CliError::usage(
                "--length-prefixed is for raw topics: a typed topic reads JSON lines",
            ))
        }
        Some(_) => Some(typed(topic)?),
        None => {
            untyped(topic)?;
            None
        }
    };
    let type_id = match schema {
        Some(_) => topic.meta().type_id,
        None => args.type_id.unwrap_or(0),
    };
    install_stop_handlers()?;
    let t0 = Instant::now();
    let mut sum = Summary::default();
    let mut progress = Progress::new(format!("publish {}", topic.name()), "events");
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        if stopping() {
            sum.interrupted = true;
            break;
        }
        line.clear();
        n += 1;
        let what = if args.length_prefixed {
            "record"
        } else {
            "line"
        };
        let read = if args.length_prefixed {
            read_framed(&mut input, &mut line)
        } else {
            input.read_until(b'\n', &mut line).map(|k| k > 0)
        }
        .map_err(|e| CliError::new(format!("{name}: {what} {n}: {e}")))?;
        if !read {
            break;
        }
        if !args.length_prefixed {
            while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
        }
        let encoded = match schema {
            Some(s) => std::str::from_utf8(&line)
                .map_err(|e| format!("not UTF-8: {e}"))
                .and_then(|text| {
                    shmbus::schema::encode::from_json(s, text)
                        .map(Some)
                        .map_err(|e| e.to_string())
                }),
            None if line.is_empty() => Err("an empty record".to_string()),
            None => Ok(None),
        };
        let payload = match &encoded {
            Ok(Some(b)) => b.as_slice(),
            Ok(None) => line.as_slice(),
            Err(why) if args.skip_bad => {
                sum.skipped += 1;
                if sum.skipped <= NOTED {
                    note(&format!("{name}: {what} {n}: {why} (skipped)"));
                }
                continue;
            }
            Err(why) => {
                drop(progress);
                print_summary(ctx, topic, &sum, t0);
                return Err(CliError::new(format!("{name}: {what} {n}: {why}")));
            }
        };
        out.send(type_id, payload)?;
        sum.events += 1;
        sum.bytes += payload.len() as u64;
        progress.add(1);
    }
    progress.finish();
    print_summary(ctx, topic, &sum, t0);
    Ok(())
}

/// Reads one length-prefixed record into `buf`: false at a clean end of input.
fn read_framed(input: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len[..1]) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        r => r?,
    }
    input.read_exact(&mut len[1..])?;
    let len = u32::from_le_bytes(len) as usize;
    buf.resize(len, 0);
    input.read_exact(buf)?;
    Ok(true)
}

fn print_summary(ctx: &Ctx, topic: &Topic<Raw>, sum: &Summary, t0: Instant) {
    let sum = Summary {
        seconds: (t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        ..*sum
    };
    match ctx.format {
        Format::Json => json_line(&sum),
        Format::Table => out_line(&format!(
            "published {} events ({}) to {:?} in {:.3} s{}{}",
            sum.events,
            human_bytes(sum.bytes),
            topic.name(),
            sum.seconds,
            if sum.skipped > 0 {
                format!(", {} bad skipped", sum.skipped)
            } else {
                String::new()
            },
            if sum.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        )),
    }
}
