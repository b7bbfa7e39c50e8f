//! One sample of every topic's counters.

use std::collections::BTreeMap;

use crate::target::open_topic;
use crate::topics::state_name;

#[derive(Clone)]
pub struct SubSample {
    pub slot: usize,
    pub name: Option<String>,
    pub pid: u32,
    pub state: &'static str,
    pub position: u64,
}

#[derive(Clone)]
pub struct TopicSample {
    pub stats: shmbus::TopicStats,
    pub producers: usize,
    pub subs: Vec<SubSample>,
}

pub type Sample = BTreeMap<String, Result<TopicSample, String>>;

/// Samples topics `names` of `bus`.
pub fn take(bus: &shmbus::Bus, names: &[String]) -> Sample {
    let mut out = BTreeMap::new();
    for n in names {
        let s = open_topic(bus, n)
            .map_err(|e| e.to_string())
            .map(|t| TopicSample {
                stats: t.stats(),
                producers: t.producers().iter().filter(|p| p.alive).count(),
                subs: t
                    .subscribers()
                    .into_iter()
                    .map(|c| SubSample {
                        slot: c.slot,
                        state: state_name(c.state, c.alive),
                        name: c.name,
                        pid: c.pid,
                        position: c.position,
                    })
                    .collect(),
            });
        out.insert(n.clone(), s);
    }
    out
}
