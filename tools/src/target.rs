//! What the subcommands operate on: an existing bus, a topic on it, a store on disk,
//! and the stop flag that SIGINT/SIGTERM raise.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use shmbus::{Bus, OpenError, Raw, Topic};

use crate::error::CliError;
use crate::Ctx;

/// The directory the `--bus` argument names: the library's one rule (a name under
/// `$SHMBUS_DIR`, a path when it contains '/'), after checking a name.
pub fn bus_dir(ctx: &Ctx) -> Result<PathBuf, CliError> {
    if !ctx.bus.contains('/') {
        if let Err(e) = shmbus::check_name(&ctx.bus) {
            return Err(CliError::usage(format!("bad bus name: {e}")));
        }
    }
    Ok(shmbus::topic::names::bus_dir(&ctx.bus))
}

/// Opens the bus named by `--bus`, creating its directory if needed (for the commands
/// that make topics: `create`, `replay --create`).
pub fn bus_creating(ctx: &Ctx) -> Result<Bus, CliError> {
    Bus::open_dir(bus_dir(ctx)?)
        .map_err(|e| CliError::new(format!("cannot open bus {:?}: {e}", ctx.bus)))
}

/// Opens the bus named by `--bus`, failing (instead of creating it) if its directory
/// does not exist: inspecting commands never create buses.
pub fn existing_bus(ctx: &Ctx) -> Result<Bus, CliError> {
    let dir = bus_dir(ctx)?;
    match std::fs::metadata(&dir) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => {
            return Err(CliError::new(format!(
                "bus {:?}: {} is not a directory",
                ctx.bus,
                dir.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CliError::new(format!(
                "bus {:?} does not exist ({} not found{})",
                ctx.bus,
                dir.display(),
                if ctx.bus.contains('/') {
                    String::new()
                } else {
                    other_buses(&dir)
                }
            )))
        }
        Err(e) => {
            return Err(CliError::new(format!(
                "bus {:?}: cannot stat {}: {e}",
                ctx.bus,
                dir.display()
            )))
        }
    }
    Bus::open_dir(&dir).map_err(|e| CliError::new(format!("cannot open bus {:?}: {e}", ctx.bus)))
}

/// What a user who named a missing bus may have meant: `; buses there: a, b (choose
/// one with --bus or $SHMBUS_BUS)`, or that there are none yet.
fn other_buses(missing: &Path) -> String {
    let Some(root) = missing.parent() else {
        return String::new();
    };
    let mut names: Vec<String> = std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| shmbus::check_name(n).is_ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        format!("; no bus exists under {} yet", root.display())
    } else {
        format!(
            "; buses there: {} (choose one with --bus or $SHMBUS_BUS)",
            names.join(", ")
        )
    }
}

/// Opens an existing topic as raw bytes (any event type), with a clear error for an
/// unknown topic.
pub fn open_topic(bus: &Bus, name: &str) -> Result<Topic<Raw>, CliError> {
    if let Err(e) = shmbus::check_name(name) {
        return Err(CliError::usage(format!("bad topic name: {e}")));
    }
    bus.topic(name).open().map_err(|e| match e {
        OpenError::NotFound(_) => unknown_topic(bus, name),
        e => CliError::new(format!("cannot open topic {name:?}: {e}")),
    })
}

/// The one error for a topic that is not on the bus: `unknown topic "x" on bus <dir>
/// (topics: a, b)`.
pub fn unknown_topic(bus: &Bus, name: &str) -> CliError {
    let known = bus.topics().unwrap_or_default();
    let list = if known.is_empty() {
        "no topics yet; `shmbus create` makes one".to_string()
    } else {
        format!("topics: {}", known.join(", "))
    };
    CliError::new(format!(
        "unknown topic {name:?} on bus {} ({list})",
        bus.dir().display()
    ))
}

/// Whether `dir` directly holds files of a topic's store (segments, indexes, a lock).
fn is_topic_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.flatten()
            .any(|e| shmbus::store::format::names::is_store_file(&e.file_name().to_string_lossy()))
    })
}

/// The topic directories of a store: `<store>/<topic>/` holding segments. `only`
/// restricts it to one topic. Fails with a clear message for a path that does not
/// exist or holds no shmbus segments.
pub fn store_topics(store: &Path, only: Option<&str>) -> Result<Vec<(String, PathBuf)>, CliError> {
    match std::fs::metadata(store) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => {
            return Err(CliError::new(format!(
                "{} is not a store (not a directory)",
                store.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CliError::new(format!(
                "store {} does not exist",
                store.display()
            )))
        }
        Err(e) => return Err(CliError::new(format!("store {}: {e}", store.display()))),
    }
    if let Some(t) = only {
        if let Err(e) = shmbus::check_name(t) {
            return Err(CliError::usage(format!("bad topic name: {e}")));
        }
        let dir = store.join(t);
        if !is_topic_dir(&dir) {
            return Err(CliError::new(format!(
                "store {} has no topic {t:?} (no segments in {})",
                store.display(),
                dir.display()
            )));
        }
        return Ok(vec![(t.to_string(), dir)]);
    }
    let rd = std::fs::read_dir(store)
        .map_err(|e| CliError::new(format!("cannot read store {}: {e}", store.display())))?;
    let mut out: Vec<(String, PathBuf)> = rd
        .flatten()
        .filter(|e| e.path().is_dir() && is_topic_dir(&e.path()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(CliError::new(format!(
            "{} is not a shmbus store (no <topic>/*.seg inside)",
            store.display()
        )));
    }
    Ok(out)
}

static STOP: AtomicBool = AtomicBool::new(false);
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Records that stdout is gone and asks long-running commands to stop.
pub fn close_stdout() {
    STDOUT_CLOSED.store(true, Ordering::SeqCst);
    STOP.store(true, Ordering::SeqCst);
}

/// Whether a write to stdout failed (see [`close_stdout`]).
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::SeqCst)
}

extern "C" fn on_signal(_sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// Installs SIGINT and SIGTERM handlers that raise the stop flag (see [`stopping`]).
pub fn install_stop_handlers() -> Result<(), CliError> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is a valid starting value; we set the handler to
        // a function that only stores to an atomic, which is async-signal-safe, and
        // pass valid pointers to sigemptyset/sigaction.
        let r = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if r != 0 {
            return Err(CliError::new(format!(
                "cannot install a signal handler: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

/// Whether SIGINT or SIGTERM arrived since [`install_stop_handlers`], or stdout closed.
pub fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}
