//! `shmbus replay <store-topic> --store DIR --to <topic> [--speed X]
//! [--from-time T | --from-position P]`: publishes a store's events into a live topic,
//! byte for byte with their type ids, paced by their original timestamps.
//!
//! With `--speed 1` (the default) the gaps between events are those recorded; `2`
//! replays twice as fast; `0` or `max` publishes as fast as the topic accepts. The
//! destination topic must exist and carry the same event type (or be raw). SIGINT or
//! SIGTERM stop the replay between two events.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use shmbus::store::ReplayStart;
use shmbus::SendError;

use crate::error::CliError;
use crate::output::Format;
use crate::report::{out_line, Obj};
use crate::stored::{for_each_stored, stored_schema};
use crate::target::{existing_bus, install_stop_handlers, open_topic, stopping, store_topics};
use crate::timefmt::parse_time;
use crate::Ctx;

/// Arguments of `shmbus replay`.
#[derive(clap::Args)]
pub struct Args {
    /// The topic in the store to read.
    pub topic: String,
    /// The store directory.
    #[arg(long)]
    pub store: PathBuf,
    /// The live topic to publish into.
    #[arg(long)]
    pub to: String,
    /// Speed factor over the recorded pace; 0 or `max` for as fast as possible.
    #[arg(long, default_value = "1", value_parser = parse_speed)]
    pub speed: f64,
    /// Start at the first stored event at or after this time (RFC 3339 UTC, unix ns,
    /// or relative like -5m).
    #[arg(long, conflicts_with = "from_position", allow_hyphen_values = true)]
    pub from_time: Option<String>,
    /// Start at this stored position.
    #[arg(long)]
    pub from_position: Option<u64>,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    if s == "max" {
        return Ok(0.0);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a speed (a factor like 2 or 0.5, or max)"
        )),
    }
}

/// Runs `shmbus replay`.
pub fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let start = match (&args.from_time, args.from_position) {
        (Some(t), _) => {
            ReplayStart::Time(parse_time(t, shmbus::now_ns()).map_err(CliError::usage)?)
        }
        (None, Some(p)) => ReplayStart::Position(p),
        (None, None) => ReplayStart::Position(0),
    };
    let (_, dir) = store_topics(&args.store, Some(&args.topic))?.remove(0);
    let (schema, stored_type) = stored_schema(&dir)?;
    let bus = existing_bus(ctx)?;
    let dest = open_topic(&bus, &args.to)?;
    let m = dest.meta();
    let compatible = m.type_id == 0
        || (m.type_id == stored_type
            && schema
                .as_ref()
                .is_none_or(|s| s.fingerprint() == m.fingerprint));
    if !compatible {
        return Err(CliError::new(format!(
            "topic {:?} carries {} but the store's {:?} holds {}",
            args.to,
            dest.schema().map_or("raw bytes", |s| s.type_name()),
            args.topic,
            schema.as_ref().map_or("raw bytes", |s| s.type_name())
        )));
    }
    let mut publisher = dest
        .publisher()
        .map_err(|e| CliError::new(format!("cannot publish to {:?}: {e}", args.to)))?;
    install_stop_handlers()?;
    let mut first: Option<(u64, Instant)> = None;
    let (mut events, mut bytes, mut first_pos, mut last_pos) = (0u64, 0u64, None, None);
    let mut interrupted = false;
    for_each_stored(&dir, start, |r| {
        if stopping() {
            interrupted = true;
            return Ok(ControlFlow::Break(()));
        }
        if args.speed > 0.0 {
            let (t0, w0) = *first.get_or_insert((r.timestamp, Instant::now()));
            let offset = r.timestamp.saturating_sub(t0) as f64 / args.speed;
            let due = w0 + Duration::from_nanos(offset.min(1e18) as u64);
            while Instant::now() < due {
                if stopping() {
                    interrupted = true;
                    return Ok(ControlFlow::Break(()));
                }
                std::thread::sleep((due - Instant::now()).min(Duration::from_millis(50)));
            }
        }
        loop {
            match publisher.send_bytes_timeout(r.type_id, r.bytes, Duration::from_millis(100)) {
                Ok(_) => break,
                Err(SendError::Timeout) if !stopping() => continue,
                Err(SendError::Timeout) => {
                    interrupted = true;
                    return Ok(ControlFlow::Break(()));
                }
                Err(e) => {
                    return Err(CliError::new(format!(
                        "publishing stored position {} to {:?}: {e}",
                        r.position, args.to
                    )))
                }
            }
        }
        events += 1;
        bytes += r.bytes.len() as u64;
        first_pos.get_or_insert(r.position);
        last_pos = Some(r.position);
        Ok(ControlFlow::Continue(()))
    })?;
    match ctx.format {
        Format::Json => out_line(
            &Obj::new()
                .str("from", &args.topic)
                .str("to", &args.to)
                .u64("events", events)
                .u64("bytes", bytes)
                .opt_u64("first_position", first_pos)
                .opt_u64("last_position", last_pos)
                .bool("interrupted", interrupted)
                .finish(),
        ),
        Format::Table => out_line(&format!(
            "replayed {events} events ({bytes} payload bytes) from {:?} into {:?}{}",
            args.topic,
            args.to,
            if interrupted { " (interrupted)" } else { "" }
        )),
    }
    Ok(())
}
