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

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use shmbus::SubscriberState;

use serde::Serialize;
use shmbus::names::temp_ring_creator;

use crate::error::CliError;
use crate::output::{json_line, out_line, print_table, table, Format};
use crate::progress::Progress;
use crate::rings::pid_exists;
use crate::target::bus_dir;
use crate::Ctx;

/// Arguments of `shmbus doctor`.
#[derive(clap::Args)]
pub struct Args {}

#[derive(Serialize)]
struct Finding {
    severity: &'static str,
    path: PathBuf,
    problem: String,
}

#[derive(Serialize)]
struct Verdict<'a> {
    ok: bool,
    problems: &'a [Finding],
    bus: &'a str,
    dir: String,
    rings: usize,
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

fn check_perms(path: &Path, md: &std::fs::Metadata, what: &str, out: &mut Vec<Finding>) {
    let mut add = |severity, problem: String| {
        out.push(Finding {
            severity,
            path: path.to_path_buf(),
            problem,
        })
    };
    let mode = md.mode() & 0o7777;
    if mode & 0o002 != 0 {
        add(
            "error",
            format!("{what} is world-writable (mode {mode:04o}): any user can corrupt it"),
        );
    } else if mode & 0o004 != 0 && md.is_file() {
        add(
            "warning",
            format!("{what} is world-readable (mode {mode:04o})"),
        );
    }
    if md.uid() != euid() {
        let group_ok = mode & 0o020 != 0;
        add(
            if group_ok { "warning" } else { "error" },
            format!(
                "{what} is owned by uid {} (you are {}){}",
                md.uid(),
                euid(),
                if group_ok || euid() == 0 {
                    ""
                } else {
                    " and not group-writable: you cannot use it"
                }
            ),
        );
    }
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
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(pid) = temp_ring_creator(&name) {
            // A creation in progress takes milliseconds; one that is old is stuck.
            let age = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default();
            let problem = if !pid_exists(pid) {
                Some(format!(
                    "leftover temporary file of an interrupted topic creation (pid {pid} \
                     is gone; `shmbus gc --remove` deletes it)"
                ))
            } else if age > std::time::Duration::from_secs(60) {
                Some(format!(
                    "temporary file of a topic creation by pid {pid} that has not finished \
                     for {}s",
                    age.as_secs()
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                findings.push(Finding {
                    severity: "warning",
                    path: path.clone(),
                    problem,
                });
            }
            continue;
        }
        let Some(topic) = name.strip_suffix(".ring") else {
            continue;
        };
        rings += 1;
        let Ok(fmd) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !fmd.file_type().is_file() {
            findings.push(Finding {
                severity: "error",
                path: path.clone(),
                problem: "ring file is not a regular file".into(),
            });
            continue;
        }
        check_perms(&path, &fmd, "ring file", &mut findings);
        if shmbus::check_name(topic).is_err() {
            findings.push(Finding {
                severity: "warning",
                path: path.clone(),
                problem: format!("{topic:?} is not a valid topic name; shmbus ignores this file"),
            });
            continue;
        }
        // Open without Bus::open_dir, which refuses world-writable directories: the
        // doctor must still look inside them.
        let opened = shmbus::Bus::open_dir(&dir).and_then(|b| b.topic(topic).open());
        let t = match opened {
            Ok(t) => t,
            Err(e) => {
                findings.push(Finding {
                    severity: "error",
                    path: path.clone(),
                    problem: format!("unreadable ring: {e}"),
                });
                continue;
            }
        };
        for p in t.producers() {
            if !p.alive {
                findings.push(Finding {
                    severity: "warning",
                    path: path.clone(),
                    problem: format!(
                        "stale producer slot {} (pid {} is gone){}",
                        p.slot,
                        p.pid,
                        match p.claim {
                            Some(c) => format!(
                                "; its claim at position {c} becomes a gap once a subscriber waits on it"
                            ),
                            None => String::new(),
                        }
                    ),
                });
            }
        }
        for s in t.subscribers() {
            let who = match &s.name {
                Some(n) => format!("subscriber {n:?} (slot {})", s.slot),
                None => format!("subscriber slot {}", s.slot),
            };
            let problem = match s.state {
                SubscriberState::Active if !s.alive => Some(format!(
                    "stale {who}: pid {} is gone; it holds position {} ({} bytes behind) until \
                     a producer evicts it",
                    s.pid, s.position, s.lag
                )),
                SubscriberState::Evicted => Some(format!(
                    "{who} was evicted at position {}{}",
                    s.position,
                    if s.pid == 0 {
                        String::new()
                    } else {
                        format!(" (pid {})", s.pid)
                    }
                )),
                _ => None,
            };
            if let Some(problem) = problem {
                findings.push(Finding {
                    severity: "warning",
                    path: path.clone(),
                    problem,
                });
            }
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
