//! `shmbus info <topic>`: the ring header (static fields, timeouts, counters), the
//! stored schema with every field's kind and offset (in the JSON form `shmbus create
//! --schema` reads back, see `schema_file`), and every producer and subscriber slot
//! with pid, liveness, position and lag.

use serde::Serialize;
use shmbus::ring::layout::READY;
use shmbus::{Raw, Topic};

use crate::error::CliError;
use crate::output::{json_line, Format};
use crate::schema_file::SchemaDoc;
use crate::target::{existing_bus, open_topic};
use crate::times::format_time;
use crate::topics::{mode_name, state_name};
use crate::Ctx;

mod table;

/// Arguments of `shmbus info`.
#[derive(clap::Args)]
pub struct Args {
    /// The topic.
    pub topic: String,
}

#[derive(Serialize)]
struct Info<'a> {
    topic: &'a str,
    path: String,
    magic: u64,
    version: u32,
    ready: bool,
    header_size: u64,
    capacity: u64,
    mode: &'static str,
    hold_named: bool,
    flags: u32,
    producer_slots: u32,
    consumer_slots: u32,
    type_id: u64,
    fingerprint: u64,
    consumer_timeout_ns: u64,
    unblock_timeout_ns: u64,
    created_ns: u64,
    created: String,
    schema_len: u32,
    max_payload: u32,
    tail: u64,
    earliest: u64,
    records: u64,
    bytes: u64,
    stalls: u64,
    gaps: u64,
    gap_bytes: u64,
    evictions: u64,
    reaped_producers: u64,
    limit: u64,
    consumer_generation: u64,
    futex_seq: u32,
    sleepers: u32,
    unblock_holder_pid: u32,
    schema: Option<SchemaDoc>,
    producers: Vec<Producer>,
    subscribers: Vec<Subscriber>,
}

#[derive(Serialize)]
struct Producer {
    slot: usize,
    pid: u32,
    alive: bool,
    records: u64,
    bytes: u64,
    stalls: u64,
    claim: Option<u64>,
}

#[derive(Serialize)]
struct Subscriber {
    slot: usize,
    name: Option<String>,
    pid: Option<u32>,
    alive: bool,
    state: &'static str,
    position: u64,
    lag: u64,
    heartbeat_ns: u64,
    heartbeat_age_ns: u64,
}

/// Runs `shmbus info`.
pub fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let bus = existing_bus(ctx)?;
    let topic = open_topic(&bus, &args.topic)?;
    match ctx.format {
        Format::Json => json_line(&info(&topic)),
        Format::Table => table::print(&topic),
    }
    Ok(())
}

fn info(topic: &Topic<Raw>) -> Info<'_> {
    let m = topic.meta();
    let s = topic.stats();
    let w = topic.header_words();
    let now = shmbus::now_ns();
    Info {
        topic: topic.name(),
        path: topic.path().display().to_string(),
        magic: m.magic,
        version: m.version,
        ready: m.ready == READY,
        header_size: m.header_size,
        capacity: m.capacity,
        mode: mode_name(topic.mode()),
        hold_named: m.flags & 1 != 0,
        flags: m.flags,
        producer_slots: m.max_producers,
        consumer_slots: m.max_consumers,
        type_id: m.type_id,
        fingerprint: m.fingerprint,
        consumer_timeout_ns: m.consumer_timeout_ns,
        unblock_timeout_ns: m.unblock_timeout_ns,
        created_ns: m.created_ns,
        created: format_time(m.created_ns),
        schema_len: m.schema_len,
        max_payload: m.max_payload,
        tail: s.tail,
        earliest: topic.earliest(),
        records: s.records,
        bytes: s.bytes,
        stalls: s.stalls,
        gaps: s.gaps,
        gap_bytes: s.gap_bytes,
        evictions: s.evictions,
        reaped_producers: w.reaped_producers,
        limit: w.limit,
        consumer_generation: w.consumer_generation,
        futex_seq: w.futex_seq,
        sleepers: w.sleepers,
        unblock_holder_pid: w.unblock_holder,
        schema: topic.schema().map(|sc| SchemaDoc::of(sc, m.type_id)),
        producers: topic
            .producers()
            .into_iter()
            .map(|p| Producer {
                slot: p.slot,
                pid: p.pid,
                alive: p.alive,
                records: p.records,
                bytes: p.bytes,
                stalls: p.stalls,
                claim: p.claim,
            })
            .collect(),
        subscribers: topic
            .subscribers()
            .into_iter()
            .map(|c| Subscriber {
                slot: c.slot,
                state: state_name(c.state, c.alive),
                name: c.name,
                pid: (c.pid != 0).then_some(c.pid),
                alive: c.alive,
                position: c.position,
                lag: c.lag,
                heartbeat_ns: c.heartbeat_ns,
                heartbeat_age_ns: now.saturating_sub(c.heartbeat_ns),
            })
            .collect(),
    }
}
