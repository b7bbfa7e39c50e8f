//! Words for a topic's state, shared by `ls`, `info`, `stat` and `create`.

use shmbus::{Mode, Raw, SubscriberState, Topic};

/// Participant counts of a topic.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Producer slots whose process runs.
    pub producers_alive: usize,
    /// Producer slots whose process is gone.
    pub producers_dead: usize,
    /// Attached subscribers whose process runs.
    pub subscribers_alive: usize,
    /// Attached subscribers whose process is gone, and evicted ones.
    pub subscribers_dead: usize,
    /// Named subscribers with no process attached (their position is kept).
    pub detached_named: usize,
}

/// Counts a topic's participants.
pub fn counts(topic: &Topic<Raw>) -> Counts {
    let mut c = Counts::default();
    for p in topic.producers() {
        if p.alive {
            c.producers_alive += 1;
        } else {
            c.producers_dead += 1;
        }
    }
    for s in topic.subscribers() {
        match s.state {
            SubscriberState::Active if s.alive => c.subscribers_alive += 1,
            SubscriberState::Detached => c.detached_named += 1,
            _ => c.subscribers_dead += 1,
        }
    }
    c
}

/// `reliable` or `lossy`.
pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Reliable => "reliable",
        Mode::Lossy => "lossy",
    }
}

/// The event type name of a topic, `raw` for raw topics.
pub fn type_name(topic: &Topic<Raw>) -> String {
    topic
        .schema()
        .map(|s| s.type_name().to_string())
        .unwrap_or_else(|| "raw".into())
}

/// `active`, `dead`, `evicted` or `detached`.
pub fn state_name(s: SubscriberState, alive: bool) -> &'static str {
    match s {
        SubscriberState::Active if alive => "active",
        SubscriberState::Active => "dead",
        SubscriberState::Evicted => "evicted",
        SubscriberState::Detached => "detached",
    }
}

/// A pid for a table: `-` for none (a detached named subscriber has no process).
pub fn pid_cell(pid: u32) -> String {
    if pid == 0 {
        "-".into()
    } else {
        pid.to_string()
    }
}
