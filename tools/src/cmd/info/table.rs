//! `shmbus info` for people: the header as name/value lines, then the schema's fields,
//! the producers and the subscribers as tables.

use shmbus::ring::layout::{HEADER_SIZE, MAGIC, READY};
use shmbus::{Raw, Topic};

use crate::output::{human_bytes, out_line, print_table, right, table};
use crate::schema_file::SchemaDoc;
use crate::times::{format_age, format_time};
use crate::topics::{mode_name, pid_cell, state_name, type_name};

/// Prints topic `topic` as tables.
pub fn print(topic: &Topic<Raw>) {
    let m = topic.meta();
    let s = topic.stats();
    let w = topic.header_words();
    let now = shmbus::now_ns();
    let mut out = table(&["topic", topic.name()]);
    let mut kv = |k: &str, v: String| {
        out.add_row(vec![k.to_string(), v]);
    };
    kv("path", topic.path().display().to_string());
    let ok = if m.magic == MAGIC { " (ok)" } else { "" };
    let ready = if m.ready == READY {
        "ready"
    } else {
        "not ready"
    };
    kv(
        "format",
        format!(
            "magic {:#018x}{ok}, version {}, {ready}",
            m.magic, m.version
        ),
    );
    let header = if m.header_size == HEADER_SIZE as u64 {
        m.header_size.to_string()
    } else {
        format!("{} (unexpected)", m.header_size)
    };
    kv(
        "capacity",
        format!(
            "{} ({} bytes; header {header} bytes)",
            human_bytes(m.capacity),
            m.capacity
        ),
    );
    kv("mode", mode_name(topic.mode()).to_string());
    kv(
        "hold named",
        if m.flags & 1 != 0 { "yes" } else { "no" }.into(),
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
            human_bytes(m.max_payload.into()),
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
    let limit = if w.limit >= u64::MAX / 2 {
        "none".to_string()
    } else {
        w.limit.to_string()
    };
    kv(
        "producer limit",
        format!(
            "{limit} (cached claim bound); {} producer slot(s) reaped from dead processes",
            w.reaped_producers
        ),
    );
    let unblocking = if w.unblock_holder != 0 {
        format!("; pid {} is unblocking a claim", w.unblock_holder)
    } else {
        String::new()
    };
    kv(
        "waiting",
        format!(
            "{} subscriber(s) asleep on the futex (sequence {}); consumer generation {}{unblocking}",
            w.sleepers, w.futex_seq, w.consumer_generation
        ),
    );
    print_table(&mut out);

    match topic.schema() {
        Some(sc) => {
            out_line(&format!(
                "\nschema {} (root {} bytes, align {})",
                sc.type_name(),
                sc.root_size(),
                sc.root_align()
            ));
            let mut t = table(&["FIELD", "KIND", "OFFSET", "SIZE"]);
            for f in SchemaDoc::of(sc, m.type_id).fields {
                let (o, s) = (f.offset.unwrap_or(0), f.size.unwrap_or(0));
                t.add_row(vec![f.name.into(), f.kind.into(), right(o), right(s)]);
            }
            print_table(&mut t);
        }
        None => out_line("\nschema: none (raw payloads)"),
    }

    let producers = topic.producers();
    out_line(&format!("\nproducers: {}", producers.len()));
    if !producers.is_empty() {
        let mut t = table(&[
            "SLOT", "PID", "ALIVE", "RECORDS", "BYTES", "STALLS", "CLAIM",
        ]);
        for p in producers {
            let claim = p.claim.map_or_else(|| "-".into(), |c| c.to_string());
            t.add_row(vec![
                right(p.slot),
                right(p.pid),
                if p.alive { "yes" } else { "no" }.into(),
                right(p.records),
                right(p.bytes),
                right(p.stalls),
                right(claim),
            ]);
        }
        print_table(&mut t);
    }

    let subs = topic.subscribers();
    out_line(&format!("\nsubscribers: {}", subs.len()));
    if !subs.is_empty() {
        let mut t = table(&[
            "SLOT",
            "NAME",
            "PID",
            "STATE",
            "POSITION",
            "LAG",
            "HEARTBEAT",
        ]);
        for c in subs {
            let beat = if c.heartbeat_ns == 0 {
                "-".into()
            } else {
                format!("{} ago", format_age(now.saturating_sub(c.heartbeat_ns)))
            };
            t.add_row(vec![
                right(c.slot),
                c.name.clone().unwrap_or_else(|| "-".into()).into(),
                right(pid_cell(c.pid)),
                state_name(c.state, c.alive).into(),
                right(c.position),
                right(human_bytes(c.lag)),
                beat.into(),
            ]);
        }
        print_table(&mut t);
    }
}
