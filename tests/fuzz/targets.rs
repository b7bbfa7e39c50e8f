//! Fuzz targets: each takes arbitrary bytes, like a libFuzzer target, and must return
//! without panicking, hanging, reading out of bounds or allocating more than its input
//! justifies. Where a property holds for every input it is asserted too.
//!
//! The same functions run in three places: the proptest harnesses in `main.rs` (inputs
//! made by mutating valid files and payloads), the corpus replay (`tests/corpus/<target>/`)
//! and the cargo-fuzz crate under `fuzz/` (which includes this file by path).
//!
//! Input formats are documented on each target; [`Input`] reads them and yields zeros
//! once the bytes run out, so every byte string is a valid input.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shmbus::ring::layout::{HEADER_SIZE, READY};
use shmbus::schema::{read_field, render_json, Kind, Schema};
use shmbus::store::format::index;
use shmbus::store::{recover_topic, verify_topic, SegmentReader};
use shmbus::{Bus, Event, Raw, Start, Topic, Wait};

/// The names of the targets, as used for corpus directories and `fuzz/` binaries.
pub const TARGETS: &[&str] = &[
    "ring_header",
    "ring_scribble",
    "segment",
    "index",
    "schema",
    "json",
    "query",
];

/// Run target `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "ring_header" => ring_header(data),
        "ring_scribble" => ring_scribble(data),
        "segment" => segment(data),
        "index" => index_target(data),
        "schema" => schema(data),
        "json" => json(data),
        "query" => query(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

// ---- event types with every kind the schema knows -----------------------------------

#[shmbus::event]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Side {
    Buy,
    Sell = 7,
}

#[shmbus::event]
#[derive(Debug, Clone, PartialEq)]
pub struct Leg {
    pub px: f64,
    pub venue: String,
    pub flag: bool,
}

#[shmbus::event]
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: u64,
    pub symbol: String,
    pub qty: Option<u32>,
    pub side: Side,
    pub legs: Vec<Leg>,
    pub tags: [u8; 4],
    pub note: Option<String>,
    pub c: char,
    pub small: i16,
    pub blob: Vec<u8>,
    pub nums: Vec<i64>,
    pub pair: [Leg; 2],
}

pub fn order(i: u64) -> Order {
    let leg = |k: u64| Leg {
        px: k as f64 * 0.5,
        venue: if k % 2 == 0 {
            "XNAS".into()
        } else {
            "a venue name longer than eight".into()
        },
        flag: k % 3 == 0,
    };
    Order {
        id: i,
        symbol: format!("SYM{i}"),
        qty: (i % 2 == 0).then_some(i as u32 * 10),
        side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
        legs: (0..i % 4).map(leg).collect(),
        tags: [i as u8, 1, 2, 3],
        note: (i % 3 == 1).then(|| "note that is out of line".to_string()),
        c: 'é',
        small: -(i as i16),
        blob: vec![i as u8; (i % 5) as usize],
        nums: (0..i % 3).map(|k| k as i64 - 1).collect(),
        pair: [leg(i), leg(i + 1)],
    }
}

/// A small flat event.
#[shmbus::event]
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub seq: u64,
    pub price: f64,
    pub venue: String,
}

/// rkyv bytes of `ev`.
pub fn archive<E>(ev: &E) -> Vec<u8>
where
    E: for<'a> shmbus::rkyv::Serialize<
        shmbus::rkyv::api::high::HighSerializer<
            shmbus::rkyv::util::AlignedVec,
            shmbus::rkyv::ser::allocator::ArenaHandle<'a>,
            shmbus::rkyv::rancor::Error,
        >,
    >,
{
    shmbus::rkyv::to_bytes::<shmbus::rkyv::rancor::Error>(ev)
        .expect("serialise")
        .to_vec()
}

// ---- helpers -------------------------------------------------------------------------

/// A fresh directory under /dev/shm (or the temp dir), removed on drop.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicU64 = AtomicU64::new(0);
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "shmbus-fuzz-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch { dir }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads a fuzz input front to back; zeros once it runs out.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data, pos: 0 }
    }
    pub fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }
    pub fn rest(&mut self) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        self.pos = self.data.len();
        &self.data[start..]
    }
}

/// Read everything a topic shows about itself (stats, slot tables, names).
fn inspect<E: shmbus::Payload>(t: &Topic<E>) {
    let _ = t.stats();
    let _ = t.producers();
    for s in t.subscribers() {
        let _ = s.name.map(|n| n.len());
    }
    let _ = t.earliest();
    let _ = format!("{:?} {:?}", t.meta(), t.schema());
}

/// Drain up to `max` raw records (rendering them as JSON with the stored schema).
fn drain_raw(sub: &mut shmbus::Subscriber<Raw>, schema: Option<&Schema>, max: usize) {
    let mut json = String::new();
    for _ in 0..max {
        match sub.recv_bytes_timeout(Duration::from_micros(200)) {
            Ok(Some(ev)) => {
                if let Some(s) = schema {
                    json.clear();
                    let _ = render_json(s, ev.bytes(), &mut json);
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = e.to_string();
                if matches!(e, shmbus::RecvError::Evicted) {
                    break;
                }
            }
        }
    }
}

fn drain_typed(sub: &mut shmbus::Subscriber<Order>, max: usize) {
    for _ in 0..max {
        match sub.recv_timeout(Duration::from_micros(200)) {
            Ok(Some(ev)) => {
                // Touch out-of-line data: validated archives only.
                let _ = ev.symbol.len() + ev.legs.len() + ev.blob.len();
                for l in ev.legs.iter() {
                    let _ = l.venue.as_str().len();
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = e.to_string();
                if matches!(e, shmbus::RecvError::Evicted) {
                    break;
                }
            }
        }
    }
}

// ---- ring_header ----------------------------------------------------------------------

/// Open a ring file whose header another process damaged.
///
/// Input: `flags: u8` (bit 0: set the file length to `u32 * 8` bytes; bit 1: open as
/// the typed event too), then patches `offset: u16, n: u8 (mod 33), n bytes` applied to
/// the 64 KiB header. The ready word is restored afterwards (a not-ready file costs the
/// opener its bounded 1 s wait; that path has its own test).
pub fn ring_header(data: &[u8]) {
    let s = Scratch::new("hdr");
    let bus = Bus::open_dir(&s.dir).expect("bus");
    let path = {
        let t = bus
            .topic("t")
            .event::<Order>()
            .capacity(4096)
            .consumer_timeout(Duration::from_millis(20))
            .open_or_create()
            .expect("create");
        let mut p = t.publisher().expect("publisher");
        let sub = t.subscriber().named("keep").open().expect("sub");
        for i in 0..3 {
            p.send(&order(i)).expect("send");
        }
        drop(sub);
        t.path().to_path_buf()
    };
    let mut inp = Input::new(data);
    let flags = inp.u8();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open");
    if flags & 1 != 0 {
        let len = u64::from(inp.u32() % (1 << 17)) * 8;
        file.set_len(len).expect("set_len");
    }
    while !inp.done() {
        let off = u64::from(inp.u16());
        let n = usize::from(inp.u8() % 33);
        let bytes = inp.take(n);
        file.write_all_at(bytes, off).expect("patch");
    }
    if file.metadata().map(|m| m.len()).unwrap_or(0) >= 16 {
        file.write_all_at(&READY.to_le_bytes(), 12).expect("ready");
    }
    drop(file);
    if let Ok(t) = bus.topic("t").open() {
        inspect(&t);
        let schema = t.schema().cloned();
        if let Ok(mut sub) = t
            .subscriber()
            .start(Start::Earliest)
            .wait(Wait::Spin)
            .open()
        {
            drain_raw(&mut sub, schema.as_ref(), 64);
        }
        if let Ok(mut p) = t.publisher() {
            let _ = p.try_send_bytes(Order::TYPE_ID, b"not an archive");
        }
        if let Ok(mut sub) = t.subscriber().named("keep").wait(Wait::Spin).open() {
            drain_raw(&mut sub, schema.as_ref(), 64);
        }
    }
    if flags & 2 != 0 {
        if let Ok(t) = bus.topic("t").event::<Order>().open() {
            inspect(&t);
            if let Ok(mut sub) = t
                .subscriber()
                .start(Start::Earliest)
                .wait(Wait::Spin)
                .open()
            {
                drain_typed(&mut sub, 64);
            }
            if let Ok(mut p) = t.publisher() {
                let _ = p.try_send(&order(9));
            }
        }
    }
}

// ---- ring_scribble ----------------------------------------------------------------------

/// Publish and read while a hostile process writes random bytes into the data region
/// and the header's tables (tail, slot tables, futex and lock words).
///
/// Input: `flags: u8` (bit 0 lossy), `n: u8` records published first, then operations
/// `op: u8`: 0-2 patch (`where: u8` (even: data region, odd: header), `offset: u16`,
/// `n: u8 (mod 17)`, bytes), 3 publish, 4 raw receive, 5 typed receive, 6 attach a new
/// subscriber at the earliest record, 7 publish a raw record that is not an archive.
pub fn ring_scribble(data: &[u8]) {
    let s = Scratch::new("scr");
    let bus = Bus::open_dir(&s.dir).expect("bus");
    let mut inp = Input::new(data);
    let flags = inp.u8();
    let mut b = bus
        .topic("t")
        .event::<Order>()
        .capacity(4096)
        .unblock_timeout(Duration::ZERO)
        .consumer_timeout(Duration::from_millis(20));
    if flags & 1 != 0 {
        b = b.lossy();
    }
    let t = b.open_or_create().expect("create");
    let raw: Topic<Raw> = bus.topic("t").open().expect("raw");
    let schema = raw.schema().cloned();
    let mut p = t.publisher().expect("publisher");
    let mut typed = t
        .subscriber()
        .start(Start::Earliest)
        .wait(Wait::Spin)
        .open()
        .expect("typed sub");
    let mut named = raw
        .subscriber()
        .named("n")
        .start(Start::Earliest)
        .wait(Wait::Spin)
        .open()
        .expect("named sub");
    let mut extra: Vec<shmbus::Subscriber<Raw>> = Vec::new();
    let mut k = 0u64;
    for _ in 0..inp.u8() % 24 {
        let _ = p.try_send(&order(k));
        k += 1;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(t.path())
        .expect("open");
    while !inp.done() {
        match inp.u8() % 8 {
            0..=2 => {
                let region = inp.u8();
                let off = if region & 1 == 0 {
                    HEADER_SIZE as u64 + u64::from(inp.u16() % 4096)
                } else {
                    u64::from(inp.u16())
                };
                let n = usize::from(inp.u8() % 17);
                let bytes = inp.take(n);
                file.write_all_at(bytes, off).expect("scribble");
            }
            3 => {
                let _ = p.try_send(&order(k));
                k += 1;
            }
            4 => drain_raw(&mut named, schema.as_ref(), 4),
            5 => drain_typed(&mut typed, 4),
            6 => {
                if extra.len() < 4 {
                    if let Ok(s) = raw
                        .subscriber()
                        .start(Start::Earliest)
                        .accept_loss(true)
                        .wait(Wait::Spin)
                        .open()
                    {
                        extra.push(s);
                    }
                }
                for s in &mut extra {
                    drain_raw(s, schema.as_ref(), 4);
                }
            }
            _ => {
                let _ = p.try_send_bytes(Order::TYPE_ID, &[0xff; 24]);
            }
        }
    }
    inspect(&raw);
    drain_raw(&mut named, schema.as_ref(), 128);
    drain_typed(&mut typed, 128);
}

// ---- segment -------------------------------------------------------------------------------

/// Read, verify and recover a damaged segment and its index.
///
/// Input: `idx_len: u16`, that many index bytes, then the segment file. The segment is
/// named after the base position in its header (bytes 16..24), as the recorder names it.
/// Properties: a segment that recovery sealed verifies without errors, and once the
/// store verifies, a second recovery changes nothing.
pub fn segment(data: &[u8]) {
    let s = Scratch::new("seg");
    let dir = s.dir.join("t");
    std::fs::create_dir_all(&dir).expect("dir");
    let mut inp = Input::new(data);
    let idx_len = usize::from(inp.u16());
    let idx = inp.take(idx_len);
    let seg = inp.rest();
    let base = seg
        .get(16..24)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
        .unwrap_or(0);
    let seg_path = dir.join(shmbus::store::format::names::seg_name(base));
    std::fs::write(&seg_path, seg).expect("write seg");
    if idx_len > 0 {
        std::fs::write(seg_path.with_extension("idx"), idx).expect("write idx");
    }
    let _ = index::parse(idx, base);
    if let Ok(r) = SegmentReader::open(&seg_path) {
        let mut n = 0u64;
        let mut last = None;
        for rec in r.iter() {
            match rec {
                Ok(rec) => {
                    n += 1;
                    last = Some((rec.position, rec.timestamp));
                }
                Err(e) => {
                    let _ = e.to_string();
                    break;
                }
            }
        }
        let _ = r.verify();
        let _ = r.rebuild_index(64);
        let _ = r.summary();
        let _ = r.schema_bytes();
        for pos in [
            0,
            base,
            base.wrapping_add(64),
            u64::MAX,
            last.map_or(0, |l| l.0),
        ] {
            let _ = r.seek_position(pos);
        }
        for ts in [0, u64::MAX, last.map_or(0, |l| l.1)] {
            let _ = r.seek_time(ts);
        }
        for off in [0u64, 64, 65, 4096, u64::MAX] {
            let _ = r.record_at(off, 0);
        }
        let _ = n;
    }
    let _ = verify_topic(&dir);
    let schema = Tick::schema().encode();
    if let Ok(first) = recover_topic(&dir, &schema, false) {
        let _ = first.to_string();
        let checks = verify_topic(&dir).expect("verify after recovery");
        // Recovery trusts a sealed segment's valid footer without re-reading its
        // records (verification does that), so damage inside one survives recovery.
        let damaged = checks.iter().any(|c| c.error.is_some());
        for c in &checks {
            if first.sealed.contains(&c.path) {
                assert!(
                    c.error.is_none() && c.sealed,
                    "segment sealed by recovery does not verify: {c:?} after {first}"
                );
            }
        }
        let second = recover_topic(&dir, &schema, false).expect("second recovery");
        assert!(
            damaged || second.clean(),
            "second recovery changed something: {second} (first: {first})"
        );
    }
}

// ---- index -------------------------------------------------------------------------------

/// Parse an index file. Input: `base: u64`, then the index bytes.
pub fn index_target(data: &[u8]) {
    let mut inp = Input::new(data);
    let base = u64::from(inp.u32()) | (u64::from(inp.u32()) << 32);
    let bytes = inp.rest();
    for b in [base, 0] {
        if let Ok(entries) = index::parse(bytes, b) {
            assert_eq!(
                entries.len(),
                (bytes.len() - index::IDX_HEADER) / index::ENTRY_SIZE
            );
        }
    }
}

// ---- schema ---------------------------------------------------------------------------------

/// Decode a stored schema and render a payload with it.
///
/// Input: `schema_len: u16`, the schema bytes, then the payload. Property: a schema
/// that decodes re-encodes to exactly its input.
pub fn schema(data: &[u8]) {
    let mut inp = Input::new(data);
    let n = usize::from(inp.u16());
    let bytes = inp.take(n);
    let payload = inp.rest();
    let Ok(s) = Schema::decode(bytes) else { return };
    assert_eq!(s.encode(), bytes, "decode then encode is not the identity");
    exercise_payload(&s, payload);
}

/// Render `payload` with `s` and read every field path of its root.
fn exercise_payload(s: &Schema, payload: &[u8]) {
    let mut json = String::new();
    if render_json(s, payload, &mut json).is_err() {
        assert!(json.is_empty(), "a failed render left output behind");
    }
    let mut paths = Vec::new();
    collect_paths(s.root(), String::new(), &mut paths, 0);
    for p in paths.iter().take(256) {
        if let Some(f) = s.field(p) {
            if let Ok(shmbus::schema::Value::Composite(c)) = read_field(s, payload, &f) {
                let mut out = String::new();
                let _ = c.render_json(&mut out);
            }
        }
    }
}

fn collect_paths(k: &Kind, prefix: String, out: &mut Vec<String>, depth: usize) {
    if depth > 8 || out.len() > 256 {
        return;
    }
    if let Kind::Struct(st) = k {
        for f in &st.fields {
            let p = if prefix.is_empty() {
                f.name.clone()
            } else {
                format!("{prefix}.{}", f.name)
            };
            out.push(p.clone());
            collect_paths(&f.kind, p, out, depth + 1);
        }
    }
}

// ---- json -------------------------------------------------------------------------------------

/// Render arbitrary payload bytes with real schemas (of derived event types).
///
/// Input: `which: u8` (even: `Order`, odd: `Tick`), then the payload. The payload is
/// also validated with rkyv; what rkyv accepts as a `Tick` must render.
pub fn json(data: &[u8]) {
    let mut inp = Input::new(data);
    let which = inp.u8();
    let payload = inp.rest();
    let mut aligned = shmbus::rkyv::util::AlignedVec::<16>::new();
    aligned.extend_from_slice(payload);
    if which % 2 == 0 {
        exercise_payload(Order::schema(), payload);
        let _ = shmbus::rkyv::access::<ArchivedOrder, shmbus::rkyv::rancor::Error>(&aligned);
    } else {
        exercise_payload(Tick::schema(), payload);
        if shmbus::rkyv::access::<ArchivedTick, shmbus::rkyv::rancor::Error>(&aligned).is_ok() {
            let mut out = String::new();
            render_json(Tick::schema(), payload, &mut out)
                .expect("rkyv validated this Tick but the schema decoder rejects it");
        }
    }
}

/// The query language: parse arbitrary text, compile it against real schemas (and
/// none) and evaluate it on arbitrary payload bytes.
///
/// Input: `which: u8` (0: `Order`, 1: `Tick`, 2: no schema), `n: u8`, then `n` bytes of
/// expression text (lossy UTF-8), then the payload. Properties: a parse error points at
/// a column inside the text (or just past its end); an expression that parses prints
/// to text that parses back to an expression that prints the same.
pub fn query(data: &[u8]) {
    use shmbus::query::{parse_expr, Filter, Rec};
    let mut inp = Input::new(data);
    let which = inp.u8() % 3;
    let n = inp.u8() as usize;
    let text = String::from_utf8_lossy(inp.take(n)).into_owned();
    let payload = inp.rest();
    let expr = match parse_expr(&text) {
        Ok(e) => e,
        Err(e) => {
            let chars = text.chars().count();
            assert!(
                e.column >= 1 && e.column <= chars + 1,
                "column {} outside 1..={} for {text:?}",
                e.column,
                chars + 1
            );
            return;
        }
    };
    let printed = expr.to_string();
    let again = parse_expr(&printed)
        .unwrap_or_else(|e| panic!("printed {printed:?} of {text:?} does not parse: {e}"));
    // Trees carry source columns, so compare them printed.
    assert_eq!(
        again.to_string(),
        printed,
        "print/parse round trip of {text:?}"
    );
    let schema = match which {
        0 => Some(Order::schema()),
        1 => Some(Tick::schema()),
        _ => None,
    };
    let Ok(filter) = Filter::compile(&expr, schema, 1_000_000_000) else {
        return;
    };
    let mut aligned = shmbus::rkyv::util::AlignedVec::<16>::new();
    aligned.extend_from_slice(payload);
    let rec = Rec {
        position: 64,
        timestamp: 1_000,
        type_id: schema.map_or(0, |_| {
            if which == 0 {
                Order::TYPE_ID
            } else {
                Tick::TYPE_ID
            }
        }),
        payload: &aligned,
    };
    let _ = filter.eval(&rec);
}
