//! Who uses a ring file: live producers and subscribers, other processes mapping it,
//! named subscribers whose state it keeps (for `gc` and `doctor`).

use std::path::Path;

use shmbus::{Bus, SubscriberState};

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

/// `no live participant (1 dead producer slot, 2 dead subscriber slots)`.
pub fn unused_reason(u: &RingUse) -> String {
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
