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

use shmbus::topic::names::temp_ring_creator;

use crate::error::CliError;
use crate::output::{json_line, note, out_line, print_table, table, Format};
use crate::progress::Progress;
use crate::rings::{pid_exists, ring_use, unused_reason};
use crate::target::existing_bus;
use crate::Ctx;

mod rows;

use rows::{remove_if_empty, Candidate, Named, Row};

/// Arguments of `shmbus gc`.
#[derive(clap::Args)]
pub struct Args {
    /// Delete what is listed (default: only list), and the bus directory too when that
    /// leaves it empty.
    #[arg(long)]
    pub remove: bool,
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
            temp_ring_creator(&n).map(|pid| (e.path(), pid))
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
    let mut t = table(&[
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
            Format::Json => json_line(&Row {
                path: c.path.display().to_string(),
                topic: c.topic.as_deref(),
                reason: &c.reason,
                published_to: c.tail,
                named_subscribers: c
                    .named
                    .iter()
                    .map(|(name, position)| Named {
                        name,
                        position: *position,
                    })
                    .collect(),
                removed: action == "removed",
                action: &action,
            }),
            Format::Table => {
                t.add_row(vec![
                    c.path.file_name().map_or_else(
                        || c.path.display().to_string(),
                        |n| n.to_string_lossy().into(),
                    ),
                    c.reason.clone(),
                    c.tail.map_or_else(|| "-".into(), |t| t.to_string()),
                    state,
                    action,
                ]);
            }
        }
    }
    if ctx.format == Format::Table {
        if candidates.is_empty() {
            out_line(&format!(
                "nothing to collect on bus {:?} ({kept} topic(s) in use or unreadable)",
                ctx.bus
            ));
        } else {
            print_table(&mut t);
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
    if args.remove && removed > 0 && remove_if_empty(bus.dir()) {
        crate::output::note(&format!(
            "removed the bus directory {} (it was empty)",
            bus.dir().display()
        ));
    }
    Ok(())
}
