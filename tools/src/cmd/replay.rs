//! `shmbus replay <store-topic> --store DIR --to <topic> [--speed X]
//! [--from-time T | --from-position P]`: publishes a store's events into a live topic,
//! byte for byte with their type ids, paced by their original timestamps.
//!
//! With `--speed 1` (the default) the gaps between events are those recorded; `2`
//! replays twice as fast; `0` or `max` publishes as fast as the topic accepts. The
//! destination topic must carry the same event type (or be raw). It must exist unless
//! `--create` is given: then a missing topic (and bus) is created with the schema and
//! type id stored in the segments, exactly as the producer's own type would create it,
//! so `tail` decodes it and the producer's code can open it later. SIGINT or SIGTERM
//! stop the replay between two events.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use shmbus::store::ReplayStart;
use shmbus::SendError;

use serde::Serialize;

use crate::error::CliError;
use crate::output::{human_bytes, json_line, out_line, Format};
use crate::progress::{share, Progress};
use crate::stored::{for_each_stored, stored_end, stored_schema, StartArgs};
use crate::target::{existing_bus, install_stop_handlers, open_topic, stopping, store_topics};
use crate::units::parse_size;
use crate::Ctx;

mod create;

/// Arguments of `shmbus replay`.
#[derive(clap::Args)]
pub struct Args {
    /// The topic in the store to read.
    pub topic: String,
    /// The store directory.
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// The live topic to publish into.
    #[arg(long, value_name = "TOPIC")]
    pub to: String,
    /// Create the destination topic if it does not exist, with the stored event type.
    #[arg(long)]
    pub create: bool,
    /// Ring capacity of a topic created with --create: a power of two from 4KiB to
    /// 1TiB (the largest event it takes is a quarter of it): 65536, 64KiB, 64MiB.
    #[arg(long, value_name = "SIZE", requires = "create", value_parser = parse_size)]
    pub capacity: Option<u64>,
    /// Speed factor over the recorded pace; 0 or `max` for as fast as possible.
    #[arg(long, value_name = "FACTOR", default_value = "1", value_parser = parse_speed)]
    pub speed: f64,
    #[command(flatten)]
    pub from: StartArgs,
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

#[derive(Serialize)]
struct Replayed<'a> {
    from: &'a str,
    to: &'a str,
    created: bool,
    events: u64,
    bytes: u64,
    first_position: Option<u64>,
    last_position: Option<u64>,
    interrupted: bool,
}

/// Runs `shmbus replay`.
pub fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let start = args.from.start()?.unwrap_or(ReplayStart::Position(0));
    let (_, dir) = store_topics(&args.store, Some(&args.topic))?.remove(0);
    let (schema, stored_type) = stored_schema(&dir)?;
    let (dest, created) = if args.create {
        create::create_or_open(ctx, &args, schema.as_ref(), stored_type)?
    } else {
        let bus = existing_bus(ctx)?;
        let topic = open_topic(&bus, &args.to).map_err(|e| {
            if bus.ring_path(&args.to).exists() {
                e
            } else {
                CliError::new(format!(
                    "{e}; --create creates it with the stored event type"
                ))
            }
        })?;
        (topic, false)
    };
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
    let end = stored_end(&dir);
    let mut progress = Progress::new(format!("replay {} to {}", args.topic, args.to), "events");
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
                progress.tick();
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
        let from = *first_pos.get_or_insert(r.position);
        last_pos = Some(r.position);
        progress.advance(1, share(from, r.next_position, end));
        Ok(ControlFlow::Continue(()))
    })?;
    progress.finish();
    match ctx.format {
        Format::Json => json_line(&Replayed {
            from: &args.topic,
            to: &args.to,
            created,
            events,
            bytes,
            first_position: first_pos,
            last_position: last_pos,
            interrupted,
        }),
        Format::Table => out_line(&format!(
            "replayed {events} events ({}) from {:?} in {} into {}{:?}{}",
            human_bytes(bytes),
            args.topic,
            args.store.display(),
            if created { "new topic " } else { "" },
            args.to,
            match (first_pos, last_pos, interrupted) {
                (Some(a), Some(b), true) => format!(", positions {a} to {b} (interrupted)"),
                (Some(a), Some(b), false) => format!(", positions {a} to {b}"),
                (_, _, true) => " (interrupted)".to_string(),
                _ => String::new(),
            }
        )),
    }
    Ok(())
}
