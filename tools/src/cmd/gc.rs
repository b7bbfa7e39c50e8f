//! `shmbus gc [--remove]`: finds ring files nobody uses any more and, only with
//! `--remove`, deletes them.
//!
//! A ring file is garbage when it has no live producer, no live attached subscriber,
//! and no other process has it mapped (checked in `/proc/*/maps`, which also catches
//! tools holding a topic open without a slot). Named subscribers keep their position
//! in the ring file even with no process attached: that is state, and the listing
//! says which names (and positions) deleting the file would lose. Temporary files left
//! by an interrupted topic creation (`.<topic>.ring.<pid>.<ns>` whose creator is gone)
//! are garbage too. Unreadable ring files are never removed here (see `shmbus doctor`).
//!
//! Every candidate is checked again right before it is deleted.

use std::path::{Path, PathBuf};

use shmbus::{Bus, SubscriberState};

use crate::error::CliError;
use crate::output::Format;
use crate::progress::Progress;
use crate::report::{note, out_line, Obj, Table};
use crate::target::existing_bus;
use crate::Ctx;

/// Arguments of `shmbus gc`.
#[derive(clap::Args)]
pub struct Args {
    /// Delete what is listed (default: only list).
    #[arg(long)]
    pub remove: bool,
}

/// The creator pid of a temporary ring file `.<topic>.ring.<pid>.<ns>`, if `name` is one.
pub fn temp_file_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let mut parts = rest.rsplitn(3, '.');
    let ns = parts.next()?;
    let pid = parts.next()?;
    let base = parts.next()?;
    if !base.ends_with(".ring") || !ns.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this pid exists.
pub fn pid_exists(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Pids of other processes (of those whose maps we may read) that map `path`.
pub fn mapped_by(path: &Path) -> Vec<u32> {
    let Ok(canon) = std::fs::canonicalize(path) else {
        return Vec::new();
    };
    let needle = canon.to_string_lossy().into_owned();
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(maps) = std::fs::read_to_string(e.path().join("maps")) {
            if maps.lines().any(|l| {
                l.split_once('/')
                    .is_some_and(|(_, p)| format!("/{p}") == needle)
            }) {
                out.push(pid);
            }
        }
    }
    out
}

/// Why a ring file is (not) garbage.
pub struct RingUse {
    /// Live producers' pids.
    pub live_producers: Vec<u32>,
    /// Live attached subscribers' pids.
    pub live_subscribers: Vec<u32>,
    /// Dead producer slots.
    pub dead_producers: usize,
    /// Attached-but-dead and evicted subscriber slots.
    pub dead_subscribers: usize,
    /// Named subscribers and their positions (state kept in the file).
    pub named: Vec<(String, u64)>,
    /// Other processes mapping the file.
    pub mapped_by: Vec<u32>,
    /// The topic's tail: records up to here were published (the ring keeps the last
    /// capacity's worth).
    pub tail: u64,
}

impl RingUse {
    /// Whether nobody uses the file.
    pub fn unused(&self) -> bool {
        self.live_producers.is_empty()
            && self.live_subscribers.is_empty()
            && self.mapped_by.is_empty()
    }
}

/// Inspects topic `name` on `bus`.
pub fn ring_use(bus: &Bus, name: &str) -> Result<RingUse, shmbus::OpenError> {
    let topic = bus.topic(name).open()?;
    let mut u = RingUse {
        live_producers: Vec::new(),
        live_subscribers: Vec::new(),
        dead_producers: 0,
        dead_subscribers: 0,
        named: Vec::new(),
        mapped_by: Vec::new(),
        tail: topic.tail(),
    };
    for p in topic.producers() {
        if p.alive {
            u.live_producers.push(p.pid);
        } else {
            u.dead_producers += 1;
        }
    }
    for s in topic.subscribers() {
        if s.state == SubscriberState::Active && s.alive {
            u.live_subscribers.push(s.pid);
        } else if s.state != SubscriberState::Detached {
            u.dead_subscribers += 1;
        }
        if let Some(n) = s.name {
            u.named.push((n, s.position));
        }
    }
    let path = topic.path().to_path_buf();
    drop(topic);
    u.mapped_by = mapped_by(&path);
    Ok(u)
}

struct Candidate {
    path: PathBuf,
    topic: Option<String>,
    reason: String,
    /// The position up to which the topic was published.
    tail: Option<u64>,
    named: Vec<(String, u64)>,
}

/// `no live participant (1 dead producer slot, 2 dead subscriber slots)`.
fn unused_reason(u: &RingUse) -> String {
    let plural = |n: usize, what: &str| format!("{n} {what} slot{}", if n == 1 { "" } else { "s" });
    let mut dead = Vec::new();
    if u.dead_producers > 0 {
        dead.push(plural(u.dead_producers, "dead producer"));
    }
    if u.dead_subscribers > 0 {
        dead.push(plural(u.dead_subscribers, "dead subscriber"));
    }
    if dead.is_empty() {
        "no live participant".into()
    } else {
        format!("no live participant ({})", dead.join(", "))
    }
}

/// Runs `shmbus gc`.
pub fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let bus = existing_bus(ctx)?;
    let names = bus
        .topics()
        .map_err(|e| CliError::new(format!("cannot list bus {:?}: {e}", ctx.bus)))?;
    let mut candidates = Vec::new();
    let mut kept = 0;
    let mut progress = Progress::new(format!("gc {}", bus.dir().display()), "rings");
    progress.set_total(names.len() as u64);
    for name in &names {
        progress.add(1);
        match ring_use(&bus, name) {
            Ok(u) if u.unused() => candidates.push(Candidate {
                path: bus.ring_path(name),
                topic: Some(name.clone()),
                reason: unused_reason(&u),
                tail: Some(u.tail),
                named: u.named,
            }),
            Ok(_) => kept += 1,
            Err(e) => {
                kept += 1;
                note(&format!("skipping {name:?}: {e} (see `shmbus doctor`)"));
            }
        }
    }
    progress.finish();
    let rd = std::fs::read_dir(bus.dir())
        .map_err(|e| CliError::new(format!("cannot read {}: {e}", bus.dir().display())))?;
    let mut temps: Vec<_> = rd
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            temp_file_pid(&n).map(|pid| (e.path(), pid))
        })
        .filter(|(_, pid)| !pid_exists(*pid))
        .collect();
    temps.sort();
    for (path, pid) in temps {
        candidates.push(Candidate {
            path,
            topic: None,
            reason: format!("temporary file of an interrupted creation (pid {pid} is gone)"),
            tail: None,
            named: Vec::new(),
        });
    }

    let mut removed = 0;
    let mut table = Table::new(&[
        "FILE",
        "REASON",
        "PUBLISHED TO",
        "NAMED STATE LOST",
        "ACTION",
    ]);
    for c in &candidates {
        let action = if !args.remove {
            "listed".to_string()
        } else {
            // Check again: someone may have attached since.
            let still = match &c.topic {
                Some(t) => ring_use(&bus, t).map(|u| u.unused()).unwrap_or(false),
                None => true,
            };
            if !still {
                "kept (now in use)".to_string()
            } else {
                match std::fs::remove_file(&c.path) {
                    Ok(()) => {
                        removed += 1;
                        "removed".to_string()
                    }
                    Err(e) => format!("not removed: {e}"),
                }
            }
        };
        let state = if c.named.is_empty() {
            "-".to_string()
        } else {
            c.named
                .iter()
                .map(|(n, p)| format!("{n:?} at {p}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match ctx.format {
            Format::Json => out_line(
                &Obj::new()
                    .str("path", &c.path.display().to_string())
                    .opt_str("topic", c.topic.as_deref())
                    .str("reason", &c.reason)
                    .opt_u64("published_to", c.tail)
                    .arr(
                        "named_subscribers",
                        c.named
                            .iter()
                            .map(|(n, p)| Obj::new().str("name", n).u64("position", *p)),
                    )
                    .bool("removed", action == "removed")
                    .str("action", &action)
                    .finish(),
            ),
            Format::Table => table.row(vec![
                c.path.file_name().map_or_else(
                    || c.path.display().to_string(),
                    |n| n.to_string_lossy().into(),
                ),
                c.reason.clone(),
                c.tail.map_or_else(|| "-".into(), |t| t.to_string()),
                state,
                action,
            ]),
        }
    }
    if ctx.format == Format::Table {
        if candidates.is_empty() {
            out_line(&format!(
                "nothing to collect on bus {:?} ({kept} topic(s) in use or unreadable)",
                ctx.bus
            ));
        } else {
            table.print();
            out_line(&format!(
                "{} candidate(s) in {}, {removed} removed{}, {kept} topic(s) in use or \
                 unreadable kept; removing a ring file loses the positions of its named \
                 subscribers",
                candidates.len(),
                bus.dir().display(),
                if args.remove { "" } else { " (use --remove)" },
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_ring_names() {
        assert_eq!(
            temp_file_pid(".ticks.ring.4242.1795813200000000000"),
            Some(4242)
        );
        assert_eq!(temp_file_pid(".a.b.ring.7.1"), Some(7));
        assert_eq!(temp_file_pid("ticks.ring"), None);
        assert_eq!(temp_file_pid(".ticks.ring"), None);
        assert_eq!(temp_file_pid(".ticks.idx.1.2"), None);
        assert_eq!(temp_file_pid(".ticks.ring.x.2"), None);
    }

    #[test]
    fn own_process_exists() {
        assert!(pid_exists(std::process::id()));
        assert!(!pid_exists(0));
    }
}
