//! `shmbus verify <store> [--topic T] [--repair]`: checks every segment and index of a
//! store (headers, every record's checksum, footers, data checksums, indexes) and
//! reports each problem with its file and byte offset. Exit 1 when problems remain.
//!
//! An unsealed last segment is normal while a recorder is writing it (its lock is
//! held); otherwise it is what a crash leaves, and `--repair` seals it at its longest
//! valid prefix, truncating a torn tail. `--repair` also rebuilds missing or damaged
//! indexes and removes a leftover preallocated segment. It never runs while a recorder
//! holds the topic, and it cannot repair a damaged segment that later segments follow
//! (that would throw records away): such a problem stays reported.

use std::path::{Path, PathBuf};

use shmbus::store::{list_segments, recover_topic, verify_segment, SegmentReader, StoreError};

use serde::Serialize;

use crate::error::CliError;
use crate::output::{json_line, note, out_line, print_table, right, table, Format};
use crate::progress::Progress;
use crate::stored::stored_schema;
use crate::target::store_topics;
use crate::Ctx;

/// Arguments of `shmbus verify`.
#[derive(clap::Args)]
pub struct Args {
    /// The store directory (holding one directory per topic).
    pub store: PathBuf,
    /// Check only this topic.
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// Truncate torn tails, seal unsealed segments, rebuild indexes.
    #[arg(long)]
    pub repair: bool,
}

/// One problem found.
struct Problem {
    topic: String,
    path: PathBuf,
    offset: Option<u64>,
    what: String,
}

/// Takes the recorder lock of a topic directory: `None` when a recorder holds it.
fn try_lock(dir: &Path) -> Result<Option<shmbus::store::Lock>, CliError> {
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
fn segments(dir: &Path) -> Result<Vec<(PathBuf, u64)>, CliError> {
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
fn check(
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
                path: c.path.with_extension("idx"),
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
    let prep = dir.join(shmbus::names::NEXT_SEGMENT);
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

/// Runs `shmbus verify`.
pub fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let topics = store_topics(&args.store, args.topic.as_deref())?;
    let mut remaining = Vec::new();
    let mut summary = Vec::new();
    let mut progress = Progress::new(format!("verify {}", args.store.display()), "records");
    let mut bytes = (0, 0);
    for (_, dir) in &topics {
        bytes.1 += segments(dir)?.iter().map(|s| s.1).sum::<u64>();
    }
    for (topic, dir) in &topics {
        let lock = try_lock(dir)?;
        let recording = lock.is_none();
        let (mut problems, mut records, mut segments) =
            check(topic, dir, recording, &mut progress, &mut bytes)?;
        if args.repair && !problems.is_empty() {
            if recording {
                note(&format!(
                    "not repairing {topic:?}: a recorder is writing to {}",
                    dir.display()
                ));
            } else {
                let schema = stored_schema(dir)
                    .ok()
                    .and_then(|(s, _)| s)
                    .map(|s| s.encode())
                    .or_else(|| live_schema(ctx, topic))
                    .unwrap_or_default();
                match recover_topic(dir, &schema, true) {
                    Ok(report) => {
                        for (path, what) in repairs(&report) {
                            print_repair(ctx, topic, &path, &what);
                        }
                    }
                    Err(e) => note(&format!("cannot repair {topic:?}: {e}")),
                }
                (problems, records, segments) = check(
                    topic,
                    dir,
                    false,
                    &mut Progress::new("", "records"),
                    &mut (0, 0),
                )?;
            }
        }
        drop(lock);
        summary.push((topic.clone(), segments, records, problems.len()));
        remaining.extend(problems);
    }
    progress.finish();
    match ctx.format {
        Format::Json => {
            for p in &remaining {
                json_line(&ProblemRow {
                    topic: &p.topic,
                    path: p.path.display().to_string(),
                    offset: p.offset,
                    problem: &p.what,
                });
            }
            for (t, s, r, p) in &summary {
                json_line(&Summary {
                    topic: t,
                    segments: *s,
                    records: *r,
                    problems: *p,
                    ok: *p == 0,
                });
            }
        }
        Format::Table => {
            for p in &remaining {
                match p.offset {
                    Some(o) => out_line(&format!("{}: offset {o}: {}", p.path.display(), p.what)),
                    None => out_line(&format!("{}: {}", p.path.display(), p.what)),
                }
            }
            let mut t = table(&["TOPIC", "SEGMENTS", "RECORDS", "STATUS"]);
            for (topic, s, r, p) in &summary {
                let status = match p {
                    0 => "ok".to_string(),
                    p => format!("{p} problem(s)"),
                };
                t.add_row(vec![topic.into(), right(s), right(r), status.into()]);
            }
            print_table(&mut t);
        }
    }
    if remaining.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(format!(
            "{} problem(s) in {}{}",
            remaining.len(),
            args.store.display(),
            if args.repair { "" } else { " (try --repair)" }
        )))
    }
}

fn live_schema(ctx: &Ctx, topic: &str) -> Option<Vec<u8>> {
    let bus = crate::target::existing_bus(ctx).ok()?;
    let t = bus.topic(topic).open().ok()?;
    t.schema().map(|s| s.encode())
}

fn repairs(r: &shmbus::store::RecoveryReport) -> Vec<(PathBuf, String)> {
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

#[derive(Serialize)]
struct ProblemRow<'a> {
    topic: &'a str,
    path: String,
    offset: Option<u64>,
    problem: &'a str,
}

#[derive(Serialize)]
struct Summary<'a> {
    topic: &'a str,
    segments: usize,
    records: u64,
    problems: usize,
    ok: bool,
}

#[derive(Serialize)]
struct Repaired<'a> {
    topic: &'a str,
    path: String,
    repaired: &'a str,
}

fn print_repair(ctx: &Ctx, topic: &str, path: &Path, what: &str) {
    match ctx.format {
        Format::Json => json_line(&Repaired {
            topic,
            path: path.display().to_string(),
            repaired: what,
        }),
        Format::Table => out_line(&format!("repaired {}: {what}", path.display())),
    }
}
