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

use serde::Serialize;
use shmbus::store::recover_topic;

use crate::error::CliError;
use crate::output::{json_line, note, out_line, print_table, right, table, Format};
use crate::progress::Progress;
use crate::stored::stored_schema;
use crate::target::store_topics;
use crate::Ctx;

mod check;

use check::{check, live_schema, repairs, segments, try_lock};

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
                (problems, records, segments) =
                    check(topic, dir, false, &mut Progress::hidden(), &mut (0, 0))?;
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
