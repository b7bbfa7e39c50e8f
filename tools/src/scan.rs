//! What `query` and `export` share: the scan source (a store's topic or a live ring),
//! time options, a buffered stdout that stops quietly when its reader goes away, and
//! the CSV/JSON/table row writers.

use std::io::Write;
use std::path::Path;

use shmbus::query::{Cell, LiveTopic, Plan, QueryError, ScanStats, StoreTopic};

use crate::error::CliError;
use crate::output::note;
use crate::target::{bus_dir, existing_bus, store_topics, unknown_topic};
use crate::times::parse_time;
use crate::Ctx;

/// Turns a query error into the CLI's: usage errors exit 2, the rest 1.
pub fn query_err(e: QueryError) -> CliError {
    if e.is_usage() {
        CliError::usage(e.to_string())
    } else {
        CliError::new(e.to_string())
    }
}

/// Parses a time option's value; the error names the option: `bad --from-time "x": ...`.
pub fn time_arg(flag: &str, v: Option<&str>, now: u64) -> Result<Option<u64>, CliError> {
    v.map(|s| parse_time(s, now).map_err(|m| CliError::usage(format!("bad {flag} {s:?}: {m}"))))
        .transpose()
}

/// A scan source: a store's topic or a live topic.
pub enum Source {
    /// Segments of a store.
    Store(StoreTopic),
    /// The retained records of a ring.
    Live(LiveTopic),
}

impl Source {
    /// Opens the store's topic (`store` given) or the live topic on the bus.
    pub fn open(ctx: &Ctx, topic: &str, store: Option<&Path>) -> Result<Source, CliError> {
        if let Some(store) = store {
            if !store.exists() {
                // The one wording for a missing store (see `target::store_topics`).
                store_topics(store, None)?;
            }
            let mut st = StoreTopic::open(store, topic).map_err(query_err)?;
            if st.schema().is_none() {
                // No sealed segment carries the schema yet: take it from the live topic
                // if it exists (without creating a bus).
                if bus_dir(ctx)?.join(format!("{topic}.ring")).exists() {
                    if let Ok(t) = existing_bus(ctx)?.topic(topic).open() {
                        if let Some(s) = t.schema() {
                            st.set_schema(s.clone());
                        }
                    }
                }
            }
            return Ok(Source::Store(st));
        }
        let bus = existing_bus(ctx)?;
        match bus.topic(topic).open() {
            Ok(t) => Ok(Source::Live(LiveTopic::new(t))),
            Err(shmbus::OpenError::NotFound(_)) | Err(shmbus::OpenError::InvalidName(_)) => {
                Err(unknown_topic(&bus, topic))
            }
            Err(e) => Err(CliError::new(format!("cannot open topic {topic:?}: {e}"))),
        }
    }

    /// The topic's schema, if typed.
    pub fn schema(&self) -> Option<&shmbus::schema::Schema> {
        match self {
            Source::Store(s) => s.schema(),
            Source::Live(l) => l.schema(),
        }
    }

    /// Runs the plan, showing its progress.
    pub fn scan(
        &self,
        plan: &Plan,
        label: &str,
        sink: &mut dyn FnMut(&[Cell]) -> bool,
    ) -> Result<ScanStats, CliError> {
        let mut p = crate::progress::Progress::new(label, "records");
        let mut progress = |s: &ScanStats| {
            p.set(s.records_scanned, || {
                format!(
                    "records ({}, {} of {} segments skipped), {} matched",
                    crate::output::human_bytes(s.bytes_scanned),
                    s.segments_skipped,
                    s.segments,
                    s.records_matched
                )
            })
        };
        let r = match self {
            Source::Store(s) => s.scan(plan, sink, &mut progress),
            Source::Live(l) => l.scan(plan, sink, &mut progress),
        };
        p.finish();
        let stats = r.map_err(query_err)?;
        note_unverified(&stats);
        Ok(stats)
    }
}

/// Says on stderr when a scan read segments that no checksum vouches for (unsealed
/// segments whose index was missing: their records were checked by structure only).
fn note_unverified(stats: &ScanStats) {
    match stats.segments_unverified {
        0 => {}
        1 => note(
            "note: 1 segment had no index: its records were checked by their structure \
             only, not by checksums (see shmbus verify)",
        ),
        n => note(&format!(
            "note: {n} segments had no index: their records were checked by their \
             structure only, not by checksums (see shmbus verify)"
        )),
    }
}

/// Writes rows to stdout, stopping quietly when the reader goes away.
pub struct Out {
    w: std::io::BufWriter<std::io::StdoutLock<'static>>,
    error: Option<std::io::Error>,
    line: String,
}

impl Out {
    /// Buffered stdout.
    pub fn new() -> Out {
        Out {
            w: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
            error: None,
            line: String::new(),
        }
    }

    /// Writes `f`'s text; false once writing failed.
    pub fn write(&mut self, f: impl FnOnce(&mut String)) -> bool {
        self.line.clear();
        f(&mut self.line);
        match self.w.write_all(self.line.as_bytes()) {
            Ok(()) => true,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    self.error = Some(e);
                }
                false
            }
        }
    }

    /// Flushes; the first error other than a closed pipe.
    pub fn finish(mut self) -> Result<(), CliError> {
        if let Err(e) = self.w.flush() {
            if e.kind() != std::io::ErrorKind::BrokenPipe && self.error.is_none() {
                self.error = Some(e);
            }
        }
        match self.error {
            Some(e) => Err(CliError::new(format!("cannot write output: {e}"))),
            None => Ok(()),
        }
    }
}
