//! The checks behind `shmbus verify`: every segment and index of a topic directory,
//! the recorder lock, and what a repair did.

use std::path::{Path, PathBuf};

use shmbus::store::{list_segments, verify_segment, SegmentReader, StoreError};

use crate::error::CliError;
use crate::progress::Progress;
use crate::Ctx;

/// One problem found.
pub struct Problem {
    pub topic: String,
    pub path: PathBuf,
    pub offset: Option<u64>,
    pub what: String,
}

/// Takes the recorder lock of a topic directory: `None` when a recorder holds it.
pub fn try_lock(dir: &Path) -> Result<Option<shmbus::store::Lock>, CliError> {
    match shmbus::store::lock(dir) {
        Ok(lock) => Ok(Some(lock)),
        Err(StoreError::Locked { .. }) => Ok(None),
        Err(e) => Err(CliError::new(e.to_string())),
    }
}

fn problem_of(topic: &str, e: StoreError) -> Problem {
    match e {
        StoreError::Corrupt { path, offset, what } => Problem {
            topic: topic.into(),
            path,
            offset: Some(offset),
            what,
        },
        StoreError::Io { path, op, source } => Problem {
            topic: topic.into(),
            path,
            offset: None,
            what: format!("{op}: {source}"),
        },
        e => Problem {
            topic: topic.into(),
            path: PathBuf::new(),
            offset: None,
            what: e.to_string(),
        },
    }
}

/// The segments of a topic directory with their sizes in bytes.
pub fn segments(dir: &Path) -> Result<Vec<(PathBuf, u64)>, CliError> {
    let segs = list_segments(dir).map_err(|e| CliError::new(e.to_string()))?;
    Ok(segs
        .into_iter()
        .map(|s| {
            let len = std::fs::metadata(&s.path).map_or(0, |m| m.len());
            (s.path, len)
        })
        .collect())
}

/// Checks one topic directory; `recording` says a recorder holds it. Counts each
/// segment's records into `progress`, and its size into `bytes.0` (done) of `bytes.1`
/// (all segments to check).
pub fn check(
    topic: &str,
    dir: &Path,
    recording: bool,
    progress: &mut Progress,
    bytes: &mut (u64, u64),
) -> Result<(Vec<Problem>, u64, usize), CliError> {
    let mut problems = Vec::new();
    let segs = segments(dir)?;
    let n = segs.len();
    let mut records = 0;
    for (i, (path, len)) in segs.into_iter().enumerate() {
        let c = verify_segment(&path);
        records += c.records;
        bytes.0 += len;
        progress.advance(c.records, bytes.0 as f64 / bytes.1.max(1) as f64);
        let last = i + 1 == n;
        if c.index_damaged {
            problems.push(Problem {
                topic: topic.into(),
                path: shmbus::store::format::names::idx_path(&c.path),
                offset: None,
                what: "index missing or damaged".into(),
            });
        }
        if let Some(e) = c.error {
            problems.push(problem_of(topic, e));
            continue;
        }
        let expected_unsealed = last && recording;
        if !c.sealed && !expected_unsealed {
            let end = SegmentReader::open(&c.path)
                .map(|r| r.summary().data_end)
                .ok();
            problems.push(Problem {
                topic: topic.into(),
                path: c.path.clone(),
                offset: end,
                what: "unsealed: valid records end here (torn tail, or a recorder that did \
                       not stop cleanly)"
                    .into(),
            });
        }
    }
    let prep = shmbus::store::format::names::prepared_path(dir);
    if !recording && prep.exists() {
        problems.push(Problem {
            topic: topic.into(),
            path: prep,
            offset: None,
            what: "leftover preallocated segment".into(),
        });
    }
    Ok((problems, records, n))
}

pub fn live_schema(ctx: &Ctx, topic: &str) -> Option<Vec<u8>> {
    let bus = crate::target::existing_bus(ctx).ok()?;
    let t = bus.topic(topic).open().ok()?;
    t.schema().map(|s| s.encode())
}

pub fn repairs(r: &shmbus::store::RecoveryReport) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for (p, off, why) in &r.truncated {
        out.push((p.clone(), format!("truncated at offset {off} ({why})")));
    }
    for p in &r.sealed {
        out.push((p.clone(), "sealed".into()));
    }
    for p in &r.index_rebuilt {
        out.push((p.clone(), "index rebuilt".into()));
    }
    for p in &r.removed {
        out.push((p.clone(), "removed".into()));
    }
    out
}
