//! Where a bus lives and the names of the files the library leaves beside its rings, for
//! [`Bus`](crate::Bus), [`TopicBuilder`](crate::TopicBuilder) and tools that look at a bus
//! from outside (the CLI's `gc` and `doctor`). The store's file names are in
//! [`crate::store::format::names`].

use std::path::PathBuf;

use crate::topic::DEFAULT_ROOT;

/// The environment variable that overrides [`DEFAULT_ROOT`], the directory holding
/// buses that are given by name.
pub const ROOT_ENV: &str = "SHMBUS_DIR";

/// The directory of a bus given as a user would give it: a bus *name* lives under
/// `$SHMBUS_DIR` (default [`DEFAULT_ROOT`]); a string containing `/` is the directory
/// itself. [`crate::Bus::open`] uses the same rule for names; nothing is created here.
///
/// # Examples
///
/// ```
/// assert_eq!(shmbus::topic::names::bus_dir("./here"), std::path::PathBuf::from("./here"));
/// assert!(shmbus::topic::names::bus_dir("default").ends_with("default"));
/// ```
pub fn bus_dir(bus: &str) -> PathBuf {
    if bus.contains('/') {
        PathBuf::from(bus)
    } else {
        std::env::var_os(ROOT_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
            .join(bus)
    }
}

/// The name of the temporary ring file a creation of `topic` by process `pid` writes
/// at time `ns` before publishing it as `<topic>.ring` (what `TopicBuilder` writes;
/// [`temp_ring_creator`] reads it back).
///
/// # Examples
///
/// ```
/// use shmbus::topic::names::{temp_ring_creator, temp_ring_name};
/// assert_eq!(temp_ring_name("ticks", 42, 7), ".ticks.ring.42.7");
/// assert_eq!(temp_ring_creator(&temp_ring_name("ticks", 42, 7)), Some(42));
/// ```
pub fn temp_ring_name(topic: &str, pid: u32, ns: u64) -> String {
    format!(".{topic}.ring.{pid}.{ns}")
}

/// The pid of the process that was creating a topic, if `file_name` is the temporary
/// ring file a creation writes before it publishes the ring under its name:
/// `.<topic>.ring.<pid>.<ns>`. A leftover one whose pid is gone is garbage.
///
/// # Examples
///
/// ```
/// use shmbus::topic::names::temp_ring_creator;
/// assert_eq!(temp_ring_creator(".ticks.ring.4242.1795813200000000000"), Some(4242));
/// assert_eq!(temp_ring_creator("ticks.ring"), None);
/// ```
pub fn temp_ring_creator(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    let mut parts = rest.rsplitn(3, '.');
    let ns = parts.next()?;
    let pid = parts.next()?;
    let base = parts.next()?;
    if !base.ends_with(".ring") || ns.is_empty() || !ns.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_ring_names() {
        assert_eq!(temp_ring_creator(".a.b.ring.7.1"), Some(7));
        assert_eq!(temp_ring_creator(".ticks.ring"), None);
        assert_eq!(temp_ring_creator(".ticks.idx.1.2"), None);
        assert_eq!(temp_ring_creator(".ticks.ring.x.2"), None);
    }
}
