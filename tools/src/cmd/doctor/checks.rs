//! The findings of `shmbus doctor`: permissions, leftovers of interrupted creations,
//! unreadable rings and stale slots.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use shmbus::topic::names::temp_ring_creator;
use shmbus::SubscriberState;

use crate::rings::pid_exists;

#[derive(Serialize)]
pub struct Finding {
    pub severity: &'static str,
    pub path: PathBuf,
    pub problem: String,
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

pub fn check_perms(path: &Path, md: &std::fs::Metadata, what: &str, out: &mut Vec<Finding>) {
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

/// Checks one file of the bus directory `dir`, adding what is wrong to `findings`;
/// returns whether it is a ring file.
pub fn check_entry(dir: &Path, path: &Path, findings: &mut Vec<Finding>) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(pid) = temp_ring_creator(&name) {
        // A creation in progress takes milliseconds; one that is old is stuck.
        let age = std::fs::metadata(path)
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
                path: path.to_path_buf(),
                problem,
            });
        }
        return false;
    }
    let Some(topic) = name.strip_suffix(".ring") else {
        return false;
    };
    let Ok(fmd) = std::fs::symlink_metadata(path) else {
        return true;
    };
    if !fmd.file_type().is_file() {
        findings.push(Finding {
            severity: "error",
            path: path.to_path_buf(),
            problem: "ring file is not a regular file".into(),
        });
        return true;
    }
    check_perms(path, &fmd, "ring file", findings);
    if shmbus::check_name(topic).is_err() {
        findings.push(Finding {
            severity: "warning",
            path: path.to_path_buf(),
            problem: format!("{topic:?} is not a valid topic name; shmbus ignores this file"),
        });
        return true;
    }
    // Open without Bus::open_dir, which refuses world-writable directories: the
    // doctor must still look inside them.
    let opened = shmbus::Bus::open_dir(dir).and_then(|b| b.topic(topic).open());
    let t = match opened {
        Ok(t) => t,
        Err(e) => {
            findings.push(Finding {
                severity: "error",
                path: path.to_path_buf(),
                problem: format!("unreadable ring: {e}"),
            });
            return true;
        }
    };
    for p in t.producers() {
        if !p.alive {
            findings.push(Finding {
                severity: "warning",
                path: path.to_path_buf(),
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
                path: path.to_path_buf(),
                problem,
            });
        }
    }
    true
}
