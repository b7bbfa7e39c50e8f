//! Reading a topic's segments straight from a store directory, without a live topic:
//! used by `tail --store` when the topic is not on the bus and by `replay`; and where
//! both start in the log.

use std::ops::ControlFlow;
use std::path::Path;

use shmbus::schema::Schema;
use shmbus::store::{ReplayStart, StoreError, StoredRecord, StoredTopic};

use crate::error::CliError;
use crate::times::parse_time;

fn err(e: StoreError) -> CliError {
    CliError::new(e.to_string())
}

/// The schema and type id recorded in a topic's segments (see
/// [`StoredTopic::schema`]).
pub fn stored_schema(dir: &Path) -> Result<(Option<Schema>, u64), CliError> {
    StoredTopic::from_dir(dir).schema().map_err(err)
}

/// Calls `f` for every stored record at or after `start`, in log order, until it
/// returns `Break`, through the library's store cursor. A damaged segment is an error
/// naming its path and offset.
pub fn for_each_stored(
    dir: &Path,
    start: ReplayStart,
    mut f: impl FnMut(&StoredRecord<'_>) -> Result<ControlFlow<()>, CliError>,
) -> Result<(), CliError> {
    let mut cursor = StoredTopic::from_dir(dir).cursor(start).map_err(err)?;
    while let Some(rec) = cursor.next_record().map_err(err)? {
        if f(&rec)?.is_break() {
            break;
        }
    }
    Ok(())
}

/// The position after the last stored record (0 for an empty store).
pub fn stored_end(dir: &Path) -> u64 {
    StoredTopic::from_dir(dir).end()
}

/// Where `tail` and `replay` start in the log (`--from-time` or `--from-position`).
#[derive(clap::Args)]
pub struct StartArgs {
    /// Start at the first event (in log order) at or after this time: RFC 3339
    /// (2026-11-27T21:00:00Z), a date, Unix ns, now, or relative to now (-5m).
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
                parse_time(t, shmbus::now_ns())
                    .map_err(|m| CliError::usage(format!("bad --from-time {t:?}: {m}")))?,
            )),
            (None, Some(p)) => Some(ReplayStart::Position(p)),
            (None, None) => None,
        })
    }
}
