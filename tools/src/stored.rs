//! Reading a topic's segments straight from a store directory, without a live topic:
//! used by `tail --store` when the topic is not on the bus and by `replay`; and where
//! both start in the log.

use std::ops::ControlFlow;
use std::path::Path;

use shmbus::schema::Schema;
use shmbus::store::{list_segments, ReplayStart, SegmentReader, StoredRecord};

use crate::error::CliError;
use crate::timefmt::parse_time;

/// The schema and type id recorded in a topic's segments (from the first sealed one
/// that carries a schema); `(None, type id)` for raw topics or when only an unsealed
/// segment exists.
pub fn stored_schema(dir: &Path) -> Result<(Option<Schema>, u64), CliError> {
    let segs = list_segments(dir).map_err(|e| CliError::new(e.to_string()))?;
    let mut type_id = 0;
    for s in &segs {
        let Ok(r) = SegmentReader::open(&s.path) else {
            continue;
        };
        type_id = r.type_id();
        if !r.schema_bytes().is_empty() {
            let schema = Schema::decode(r.schema_bytes()).map_err(|e| {
                CliError::new(format!(
                    "{}: stored schema is damaged: {e}",
                    s.path.display()
                ))
            })?;
            return Ok((Some(schema), type_id));
        }
    }
    Ok((None, type_id))
}

/// Calls `f` for every stored record at or after `start`, in log order, until it
/// returns `Break`. A damaged segment is an error naming its path and offset.
pub fn for_each_stored(
    dir: &Path,
    start: ReplayStart,
    mut f: impl FnMut(&StoredRecord<'_>) -> Result<ControlFlow<()>, CliError>,
) -> Result<(), CliError> {
    let err = |e: shmbus::store::StoreError| CliError::new(e.to_string());
    let mut started = false;
    for s in list_segments(dir).map_err(err)? {
        let r = SegmentReader::open(&s.path).map_err(err)?;
        let sum = r.summary();
        if sum.count == 0 {
            continue;
        }
        let at = if started {
            Some((shmbus::store::format::segment::SEG_HEADER as u64, r.base()))
        } else {
            match start {
                ReplayStart::Position(p) if sum.end_pos <= p => None,
                ReplayStart::Position(p) => r.seek_position(p).map_err(err)?,
                ReplayStart::Time(t) if sum.max_ts < t => None,
                ReplayStart::Time(t) => r.seek_time(t).map_err(err)?,
            }
        };
        let Some((mut off, mut min)) = at else {
            continue;
        };
        started = true;
        while let Some(rec) = r.record_at(off, min).map_err(err)? {
            if f(&rec)?.is_break() {
                return Ok(());
            }
            off = rec.next_offset;
            min = rec.next_position;
        }
    }
    Ok(())
}

/// The position after the last stored record (0 for an empty store).
pub fn stored_end(dir: &std::path::Path) -> u64 {
    let Ok(segs) = shmbus::store::list_segments(dir) else {
        return 0;
    };
    segs.iter()
        .rev()
        .filter_map(|s| shmbus::store::SegmentReader::open(&s.path).ok())
        .map(|r| r.summary().end_pos)
        .find(|&e| e > 0)
        .unwrap_or(0)
}

/// Where `tail` and `replay` start in the log (`--from-time` or `--from-position`).
#[derive(clap::Args)]
pub struct StartArgs {
    /// Start at the first event (in log order) at or after this time: RFC 3339 UTC
    /// (2026-11-27T21:00:00Z), unix ns, or relative (-5m).
    #[arg(
        long,
        value_name = "TIME",
        conflicts_with = "from_position",
        allow_hyphen_values = true
    )]
    pub from_time: Option<String>,
    /// Start at this record position.
    #[arg(long, value_name = "POSITION")]
    pub from_position: Option<u64>,
}

impl StartArgs {
    /// The start asked for, if any (a relative time counts from now).
    pub fn start(&self) -> Result<Option<ReplayStart>, CliError> {
        Ok(match (&self.from_time, self.from_position) {
            (Some(t), _) => Some(ReplayStart::Time(
                parse_time(t, shmbus::now_ns()).map_err(CliError::usage)?,
            )),
            (None, Some(p)) => Some(ReplayStart::Position(p)),
            (None, None) => None,
        })
    }
}
