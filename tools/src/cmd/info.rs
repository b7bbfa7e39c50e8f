//! `shmbus info <topic>`: the ring header (static fields, timeouts, counters), the
//! stored schema with every field's kind and offset, and every producer and subscriber
//! slot with pid, liveness, position and lag.

use shmbus::ring::layout::{HEADER_SIZE, MAGIC};
use shmbus::schema::{Kind, Schema};
use shmbus::{Raw, SubscriberState, Topic};

use crate::cmd::ls::{mode_name, type_name};
use crate::cmd::stat::pid_cell;
use crate::error::CliError;
use crate::output::Format;
use crate::report::{human_bytes, out_line, Obj, Table};
use crate::target::{existing_bus, open_topic};
use crate::timefmt::{format_age, format_time};
use crate::Ctx;

/// Arguments of `shmbus info`.
#[derive(clap::Args)]
pub struct Args {
    /// The topic.
    pub topic: String,
}

/// One schema field, flattened: dotted path, kind, offset in the archived root, size.
pub struct FlatField {
    /// `order.side` for nested structs.
    pub path: String,
    /// The kind as text (`u64`, `String`, `Option<f64>`, ...).
    pub kind: String,
    /// Byte offset from the start of the archived root value.
    pub offset: u32,
    /// Archived size in bytes.
    pub size: u32,
}

/// Every field of a schema, nested struct fields included (after their parent).
pub fn flat_fields(schema: &Schema) -> Vec<FlatField> {
    fn walk(kind: &Kind, prefix: &str, base: u32, out: &mut Vec<FlatField>) {
        if let Kind::Struct(s) = kind {
            for f in &s.fields {
                let path = if prefix.is_empty() {
                    f.name.clone()
                } else {
                    format!("{prefix}.{}", f.name)
                };
                let offset = base.saturating_add(f.offset);
                out.push(FlatField {
                    path: path.clone(),
                    kind: f.kind.to_string(),
                    offset,
                    size: f.kind.size(),
                });
                walk(&f.kind, &path, offset, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(schema.root(), "", 0, &mut out);
    out
}

fn state_name(s: SubscriberState, alive: bool) -> &'static str {
    match s {
        SubscriberState::Active if alive => "active",
        SubscriberState::Active => "dead",
        SubscriberState::Evicted => "evicted",
        SubscriberState::Detached => "detached",
    }
}

/// Runs `shmbus info`.
pub fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let bus = existing_bus(ctx)?;
    let topic = open_topic(&bus, &args.topic)?;
    match ctx.format {
        Format::Json => out_line(&info_json(&topic)),
        Format::Table => print_table(&topic),
    }
    Ok(())
}

fn info_json(topic: &Topic<Raw>) -> String {
    let m = topic.meta();
    let s = topic.stats();
    let w = topic.header_words();
    let now = shmbus::now_ns();
    let schema = topic.schema().map(|sc| {
        Obj::new()
            .str("type", sc.type_name())
            .u64("fingerprint", sc.fingerprint())
            .u64("root_size", u64::from(sc.root_size()))
            .u64("root_align", u64::from(sc.root_align()))
            .arr(
                "fields",
                flat_fields(sc).into_iter().map(|f| {
                    Obj::new()
                        .str("name", &f.path)
                        .str("kind", &f.kind)
                        .u64("offset", u64::from(f.offset))
                        .u64("size", u64::from(f.size))
                }),
            )
            .finish()
    });
    Obj::new()
        .str("topic", topic.name())
        .str("path", &topic.path().display().to_string())
        .u64("magic", m.magic)
        .u64("version", u64::from(m.version))
        .bool("ready", m.ready == shmbus::ring::layout::READY)
        .u64("header_size", m.header_size)
        .u64("capacity", m.capacity)
        .str("mode", mode_name(topic.mode()))
        .bool("hold_named", m.flags & 1 != 0)
        .u64("flags", u64::from(m.flags))
        .u64("producer_slots", u64::from(m.max_producers))
        .u64("consumer_slots", u64::from(m.max_consumers))
        .u64("type_id", m.type_id)
        .u64("fingerprint", m.fingerprint)
        .u64("consumer_timeout_ns", m.consumer_timeout_ns)
        .u64("unblock_timeout_ns", m.unblock_timeout_ns)
        .u64("created_ns", m.created_ns)
        .str("created", &format_time(m.created_ns))
        .u64("schema_len", u64::from(m.schema_len))
        .u64("max_payload", u64::from(m.max_payload))
        .u64("tail", s.tail)
        .u64("earliest", topic.earliest())
        .u64("records", s.records)
        .u64("bytes", s.bytes)
        .u64("stalls", s.stalls)
        .u64("gaps", s.gaps)
        .u64("gap_bytes", s.gap_bytes)
        .u64("evictions", s.evictions)
        .u64("reaped_producers", w.reaped_producers)
        .u64("limit", w.limit)
        .u64("consumer_generation", w.consumer_generation)
        .u64("futex_seq", u64::from(w.futex_seq))
        .u64("sleepers", u64::from(w.sleepers))
        .u64("unblock_holder_pid", u64::from(w.unblock_holder))
        .raw("schema", schema.as_deref().unwrap_or("null"))
        .arr(
            "producers",
            topic.producers().into_iter().map(|p| {
                Obj::new()
                    .u64("slot", p.slot as u64)
                    .u64("pid", u64::from(p.pid))
                    .bool("alive", p.alive)
                    .u64("records", p.records)
                    .u64("bytes", p.bytes)
                    .u64("stalls", p.stalls)
                    .opt_u64("claim", p.claim)
            }),
        )
        .arr(
            "subscribers",
            topic.subscribers().into_iter().map(|c| {
                Obj::new()
                    .u64("slot", c.slot as u64)
                    .opt_str("name", c.name.as_deref())
                    .opt_u64("pid", (c.pid != 0).then_some(u64::from(c.pid)))
                    .bool("alive", c.alive)
                    .str("state", state_name(c.state, c.alive))
                    .u64("position", c.position)
                    .u64("lag", c.lag)
                    .u64("heartbeat_ns", c.heartbeat_ns)
                    .u64("heartbeat_age_ns", now.saturating_sub(c.heartbeat_ns))
            }),
        )
        .finish()
}

fn print_table(topic: &Topic<Raw>) {
    let m = topic.meta();
    let s = topic.stats();
    let w = topic.header_words();
    let now = shmbus::now_ns();
    let mut out = Table::new(&["topic", topic.name()]);
    let mut kv = |k: &str, v: String| out.row(vec![k.to_string(), v]);
    kv("path", topic.path().display().to_string());
    kv(
        "format",
        format!(
            "magic {:#018x}{}, version {}, {}",
            m.magic,
            if m.magic == MAGIC { " (ok)" } else { "" },
            m.version,
            if m.ready == shmbus::ring::layout::READY {
                "ready"
            } else {
                "not ready"
            }
        ),
    );
    kv(
        "capacity",
        format!(
            "{} ({} bytes; header {} bytes)",
            human_bytes(m.capacity),
            m.capacity,
            if m.header_size == HEADER_SIZE as u64 {
                m.header_size.to_string()
            } else {
                format!("{} (unexpected)", m.header_size)
            }
        ),
    );
    kv("mode", mode_name(topic.mode()).to_string());
    kv(
        "hold named",
        if m.flags & 1 != 0 { "yes" } else { "no" }.to_string(),
    );
    kv(
        "slots",
        format!(
            "{} producers, {} subscribers",
            m.max_producers, m.max_consumers
        ),
    );
    kv(
        "type",
        format!(
            "{} (type id {:#x}, fingerprint {:#x})",
            type_name(topic),
            m.type_id,
            m.fingerprint
        ),
    );
    kv(
        "max payload",
        format!(
            "{} ({} bytes)",
            human_bytes(u64::from(m.max_payload)),
            m.max_payload
        ),
    );
    kv(
        "timeouts",
        format!(
            "consumer {}, unblock {}",
            format_age(m.consumer_timeout_ns),
            format_age(m.unblock_timeout_ns)
        ),
    );
    kv("created", format_time(m.created_ns));
    kv(
        "positions",
        format!("tail {}, earliest in ring {}", s.tail, topic.earliest()),
    );
    kv(
        "published",
        format!(
            "{} records, {} payload, {} back-pressure stalls (by attached producers only)",
            s.records,
            human_bytes(s.bytes),
            s.stalls
        ),
    );
    kv(
        "gaps",
        format!(
            "{} ({} bytes), {} evictions",
            s.gaps, s.gap_bytes, s.evictions
        ),
    );
    kv(
        "producer limit",
        format!(
            "{} (cached claim bound); {} producer slot(s) reaped from dead processes",
            if w.limit >= u64::MAX / 2 {
                "none".to_string()
            } else {
                w.limit.to_string()
            },
            w.reaped_producers
        ),
    );
    kv(
        "waiting",
        format!(
            "{} subscriber(s) asleep on the futex (sequence {}); consumer generation {}{}",
            w.sleepers,
            w.futex_seq,
            w.consumer_generation,
            if w.unblock_holder != 0 {
                format!("; pid {} is unblocking a claim", w.unblock_holder)
            } else {
                String::new()
            }
        ),
    );
    out.print();

    if let Some(sc) = topic.schema() {
        out_line(&format!(
            "\nschema {} (root {} bytes, align {})",
            sc.type_name(),
            sc.root_size(),
            sc.root_align()
        ));
        let mut t = Table::new(&["FIELD", "KIND", "OFFSET", "SIZE"]);
        for f in flat_fields(sc) {
            t.row(vec![
                f.path,
                f.kind,
                f.offset.to_string(),
                f.size.to_string(),
            ]);
        }
        t.print();
    } else {
        out_line("\nschema: none (raw payloads)");
    }

    let producers = topic.producers();
    out_line(&format!("\nproducers: {}", producers.len()));
    if !producers.is_empty() {
        let mut t = Table::new(&[
            "SLOT", "PID", "ALIVE", "RECORDS", "BYTES", "STALLS", "CLAIM",
        ]);
        for p in producers {
            t.row(vec![
                p.slot.to_string(),
                p.pid.to_string(),
                if p.alive { "yes" } else { "no" }.into(),
                p.records.to_string(),
                p.bytes.to_string(),
                p.stalls.to_string(),
                p.claim.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
            ]);
        }
        t.print();
    }

    let subs = topic.subscribers();
    out_line(&format!("\nsubscribers: {}", subs.len()));
    if !subs.is_empty() {
        let mut t = Table::new(&[
            "SLOT",
            "NAME",
            "PID",
            "STATE",
            "POSITION",
            "LAG",
            "HEARTBEAT",
        ]);
        for c in subs {
            t.row(vec![
                c.slot.to_string(),
                c.name.clone().unwrap_or_else(|| "-".into()),
                pid_cell(c.pid),
                state_name(c.state, c.alive).into(),
                c.position.to_string(),
                human_bytes(c.lag),
                if c.heartbeat_ns == 0 {
                    "-".into()
                } else {
                    format!("{} ago", format_age(now.saturating_sub(c.heartbeat_ns)))
                },
            ]);
        }
        t.print();
    }
}
