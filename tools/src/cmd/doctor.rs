//! `shmbus doctor`: reports what is wrong with a bus, one finding per line, and exits 1
//! when it found anything:
//!
//! - the bus directory or a file in it is world-writable (an error: anyone could
//!   corrupt the log) or world-readable, not owned by the current user, or not a
//!   regular file;
//! - a ring file cannot be opened: the typed [`shmbus::OpenError`] says why (bad
//!   magic, version, truncated, corrupt header field, never became ready);
//! - stale slots: producers and attached subscribers whose process is gone (a dead
//!   producer's claim in flight is turned into a gap by the next blocked subscriber),
//!   evicted subscribers;
//! - temporary files left by an interrupted topic creation.
//!
//! It changes nothing; `shmbus gc --remove` deletes unused rings and temporary files.

use serde::Serialize;

use crate::error::CliError;
use crate::output::{json_line, out_line, print_table, table, Format};
use crate::progress::Progress;
use crate::target::bus_dir;
use crate::Ctx;

mod checks;

use checks::{check_perms, Finding};

/// Arguments of `shmbus doctor`.
#[derive(clap::Args)]
pub struct Args {}

#[derive(Serialize)]
struct Verdict<'a> {
    ok: bool,
    problems: &'a [Finding],
    bus: &'a str,
    dir: String,
    rings: usize,
}

/// Runs `shmbus doctor`.
pub fn run(ctx: &Ctx, _args: Args) -> Result<(), CliError> {
    let dir = bus_dir(ctx)?;
    let md = match std::fs::metadata(&dir) {
        Ok(md) => md,
        Err(e) => {
            return Err(CliError::new(format!(
                "bus {:?} does not exist or cannot be read ({}: {e})",
                ctx.bus,
                dir.display()
            )))
        }
    };
    if !md.is_dir() {
        return Err(CliError::new(format!(
            "bus {:?}: {} is not a directory",
            ctx.bus,
            dir.display()
        )));
    }
    let mut findings = Vec::new();
    check_perms(&dir, &md, "bus directory", &mut findings);
    let rd = std::fs::read_dir(&dir)
        .map_err(|e| CliError::new(format!("cannot read {}: {e}", dir.display())))?;
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    let mut rings = 0;
    let mut progress = Progress::new(format!("doctor {}", dir.display()), "files");
    progress.set_total(entries.len() as u64);
    for path in entries {
        progress.add(1);
        if checks::check_entry(&dir, &path, &mut findings) {
            rings += 1;
        }
    }
    progress.finish();
    match ctx.format {
        // All is well: one verdict. Otherwise one line per finding (and exit 1).
        Format::Json if findings.is_empty() => json_line(&Verdict {
            ok: true,
            problems: &findings,
            bus: &ctx.bus,
            dir: dir.display().to_string(),
            rings,
        }),
        Format::Json => findings.iter().for_each(json_line),
        Format::Table => {
            if findings.is_empty() {
                out_line(&format!(
                    "bus {:?} ({}): {rings} ring file(s), no problems found",
                    ctx.bus,
                    dir.display()
                ));
            } else {
                let mut t = table(&["SEVERITY", "PATH", "PROBLEM"]);
                for f in &findings {
                    t.add_row(vec![
                        f.severity.into(),
                        f.path.display().to_string(),
                        f.problem.clone(),
                    ]);
                }
                print_table(&mut t);
            }
        }
    }
    if findings.is_empty() {
        Ok(())
    } else {
        let errors = findings.iter().filter(|f| f.severity == "error").count();
        Err(CliError::new(format!(
            "{} problem(s) found on bus {:?} ({errors} error(s))",
            findings.len(),
            ctx.bus
        )))
    }
}
