//! `shmbus record <topic> --store DIR [--fsync never|batch|<ms>] [--storage
//! auto|io_uring|pwrite]`: runs the store's recorder for one topic until SIGINT or
//! SIGTERM, then stops it cleanly (everything received is written and the current
//! segment sealed) and prints its counters.
//!
//! On start it reports what recovery did with the store (a crash leftover is sealed at
//! its longest valid prefix). Errors the recorder reports while running (write
//! failures being retried, records lost in a lossy topic) are printed to stderr.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use shmbus::store::{Fsync, Recorder, RecorderConfig, StorageKind, StoreError};

use crate::error::CliError;
use crate::output::{human_bytes, json_line, note, out_line, Format};
use crate::target::{existing_bus, install_stop_handlers, open_topic, stopping};
use crate::units::parse_size;
use crate::Ctx;

/// Arguments of `shmbus record`.
#[derive(clap::Args)]
pub struct Args {
    /// The topic to record.
    pub topic: String,
    /// The store directory (the topic's segments go to DIR/TOPIC/).
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// When to sync to disk: never, batch (after every write), or at an interval: a
    /// bare number of seconds (1) or a number with a unit (250ms, 2s).
    #[arg(long, value_name = "POLICY", default_value = "1000ms", value_parser = parse_fsync)]
    pub fsync: Fsync,
    /// Name of the recorder's durable subscriber.
    #[arg(long, default_value = "shmbus-recorder")]
    pub name: String,
    /// Size of each segment file: 65536, 64KiB, 64MiB, 1GiB.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub segment_size: u64,
    /// Continue when records between the store's end and the ring were lost.
    #[arg(long)]
    pub accept_loss: bool,
    /// How to write: auto (io_uring where the file system takes buffered writes
    /// without blocking, pwrite where io_uring would hand every write to a kernel
    /// worker thread, as on ext4), io_uring, or pwrite.
    #[arg(long, value_name = "BACKEND", default_value = "auto", value_parser = parse_storage)]
    pub storage: StorageKind,
}

fn parse_storage(s: &str) -> Result<StorageKind, String> {
    match s {
        "auto" => Ok(StorageKind::Auto),
        "io_uring" | "io-uring" | "uring" => Ok(StorageKind::IoUring),
        "pwrite" => Ok(StorageKind::Pwrite),
        _ => Err(format!("{s:?} is not auto, io_uring or pwrite")),
    }
}

fn parse_fsync(s: &str) -> Result<Fsync, String> {
    match s {
        "never" => Ok(Fsync::Never),
        "batch" => Ok(Fsync::EveryBatch),
        // A bare number meant milliseconds in earlier versions and seconds everywhere
        // else now: refused, so that an old script never silently syncs 1000x less.
        d if d.parse::<f64>().is_ok() => Err(format!(
            "{s:?} needs a unit: --fsync takes never, batch or a duration such as 250ms or 2s"
        )),
        d => match crate::times::parse_duration(d) {
            Ok(d) if !d.is_zero() => Ok(Fsync::Interval(d)),
            _ => Err(format!(
                "{s:?} is not never, batch or a positive number with a unit (250ms, 2s)"
            )),
        },
    }
}

#[derive(Serialize)]
struct Recorded<'a> {
    topic: &'a str,
    store: String,
    records: u64,
    bytes: u64,
    segments: u64,
    errors: u64,
    persisted: u64,
    storage: &'a str,
}

/// Runs `shmbus record`.
pub fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let bus = existing_bus(ctx)?;
    let topic = open_topic(&bus, &args.topic)?;
    install_stop_handlers()?;
    let cfg = RecorderConfig {
        name: args.name.clone(),
        fsync: args.fsync,
        segment_size: args.segment_size,
        accept_loss: args.accept_loss,
        storage: args.storage,
        ..RecorderConfig::default()
    };
    let rec = Recorder::spawn(&topic, &args.store, cfg).map_err(|e| match e {
        StoreError::Locked { .. } => CliError::new(format!(
            "another recorder is already recording {:?} into {}",
            args.topic,
            args.store.display()
        )),
        e => CliError::new(format!(
            "cannot record {:?} into {}: {e}",
            args.topic,
            args.store.display()
        )),
    })?;
    if !rec.recovery().clean() {
        note(&format!("recovered the store: {}", rec.recovery()));
    }
    eprintln!(
        "shmbus: recording {:?} into {} ({} storage) from position {}; stop with Ctrl-C",
        args.topic,
        rec.dir().display(),
        rec.stats().storage,
        rec.persisted()
    );
    while !stopping() && !rec.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
        for e in rec.take_errors() {
            note(&format!("recorder: {e}"));
        }
    }
    let stats = rec
        .stop()
        .map_err(|e| CliError::new(format!("the recorder failed: {e}")))?;
    match ctx.format {
        Format::Json => json_line(&Recorded {
            topic: &args.topic,
            store: args.store.display().to_string(),
            records: stats.records,
            bytes: stats.bytes,
            segments: stats.segments,
            errors: stats.errors,
            persisted: stats.persisted,
            storage: stats.storage,
        }),
        Format::Table => out_line(&format!(
            "recorded {} records ({}) of {:?} in {} new segment(s); persisted up to \
             position {}; {} error(s); storage {}",
            stats.records,
            human_bytes(stats.bytes),
            args.topic,
            stats.segments,
            stats.persisted,
            stats.errors,
            stats.storage
        )),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_policies() {
        assert_eq!(parse_fsync("never"), Ok(Fsync::Never));
        assert_eq!(parse_fsync("batch"), Ok(Fsync::EveryBatch));
        assert_eq!(
            parse_fsync("2s"),
            Ok(Fsync::Interval(Duration::from_secs(2)))
        );
        assert!(parse_fsync("250").unwrap_err().contains("needs a unit"));
        assert_eq!(
            parse_fsync("10ms"),
            Ok(Fsync::Interval(Duration::from_millis(10)))
        );
        assert!(parse_fsync("0").is_err() && parse_fsync("often").is_err());
    }
}
