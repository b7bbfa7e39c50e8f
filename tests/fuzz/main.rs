//! Fuzzing in `cargo test`: proptest harnesses that mutate valid ring files, segments,
//! indexes, schemas and payloads and feed them to the targets in `targets.rs`, and the
//! replay of the regression corpus under `tests/corpus/<target>/`.
//!
//! `SHMBUS_FUZZ_CASES=<n>` runs `n` cases per harness instead of the CI default (a
//! longer session: `SHMBUS_FUZZ_CASES=20000 cargo test --release --test fuzz`). An
//! input that makes a target panic is written to
//! `$CARGO_TARGET_TMPDIR/fuzz-crash-<target>-<hash>` before the panic continues, ready
//! to be added to the corpus.

mod targets;

use std::path::PathBuf;

use proptest::prelude::*;
use shmbus::ring::layout::HEADER_SIZE;
use shmbus::store::format::{index, segment};
use shmbus::Event;

use targets::{archive, order, Order, Tick};

fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("SHMBUS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases: n,
        max_shrink_iters: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Run a target; keep an input that panics it.
fn run(target: &str, data: &[u8]) {
    let r = std::panic::catch_unwind(|| targets::run(target, data));
    if let Err(p) = r {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let h = shmbus::schema::fnv1a64(data);
        let path = dir.join(format!("fuzz-crash-{target}-{h:016x}"));
        let _ = std::fs::write(&path, data);
        eprintln!("{target}: crashing input saved to {}", path.display());
        std::panic::resume_unwind(p);
    }
}

/// Pieces of the query language for `fuzz_query` to combine.
const QUERY_PARTS: &[&str] = &[
    "price",
    "seq",
    "venue",
    "symbol",
    "qty",
    "side",
    "legs.px",
    "pair.0.venue",
    "note",
    "position",
    "time",
    "@time",
    "type",
    "len",
    ">",
    "<",
    ">=",
    "<=",
    "==",
    "!=",
    "^=",
    "and",
    "or",
    "not",
    "&&",
    "||",
    "!",
    "(",
    ")",
    "100",
    "-1.5e3",
    "0x10",
    "\"AB\"",
    "\"\"",
    "Buy",
    "Sell",
    "null",
    "true",
    "false",
    "starts_with(",
    ",",
    "\"unterminated",
];

/// A mutation of a byte string: 0 flip a bit, 1 set a byte, 2 overwrite 8 bytes with a
/// little-endian value, 3 truncate, 4 insert a byte, 5 remove a byte.
#[derive(Debug, Clone)]
struct Mutation {
    op: u8,
    at: usize,
    val: u64,
}

fn mutations(max: usize) -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(
        (
            0u8..6,
            any::<usize>(),
            prop_oneof![
                any::<u64>(),
                Just(0u64),
                Just(u64::MAX),
                Just(u64::MAX - 63),
                (0u64..70_000),
                Just(1u64 << 63),
            ],
        )
            .prop_map(|(op, at, val)| Mutation { op, at, val }),
        0..max,
    )
}

fn mutate(bytes: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        if bytes.is_empty() {
            bytes.push(m.val as u8);
            continue;
        }
        let at = m.at % bytes.len();
        match m.op {
            0 => bytes[at] ^= 1 << (m.val % 8),
            1 => bytes[at] = m.val as u8,
            2 => {
                let end = (at + 8).min(bytes.len());
                let v = m.val.to_le_bytes();
                bytes[at..end].copy_from_slice(&v[..end - at]);
            }
            3 => bytes.truncate(at),
            4 => bytes.insert(at, m.val as u8),
            _ => {
                bytes.remove(at);
            }
        }
    }
}

fn with_len_prefix16(first: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut out = (first.len().min(u16::MAX as usize) as u16)
        .to_le_bytes()
        .to_vec();
    out.extend_from_slice(&first[..first.len().min(u16::MAX as usize)]);
    out.extend_from_slice(rest);
    out
}

// ---- inputs built from valid files ---------------------------------------------------

/// Header patches aimed at the fields: static meta, hot words, slot tables, schema.
fn header_patch() -> impl Strategy<Value = (u16, Vec<u8>)> {
    let off = prop_oneof![
        3 => 0u16..96,
        2 => 256u16..1024,
        3 => 1024u16..25600,
        2 => 25600u16..26600,
        1 => any::<u16>(),
    ];
    (
        off,
        prop_oneof![
            prop::collection::vec(any::<u8>(), 1..9),
            prop::collection::vec(Just(0xffu8), 1..9),
            prop::collection::vec(Just(0u8), 1..9),
        ],
    )
}

fn ring_header_input(flags: u8, size: u32, patches: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![flags];
    if flags & 1 != 0 {
        out.extend_from_slice(&size.to_le_bytes());
    }
    for (off, bytes) in patches {
        out.extend_from_slice(&off.to_le_bytes());
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    out
}

/// A valid segment of Tick records (sealed or not) and its index, written by the
/// store's own builder.
fn valid_segment(n: u64, sealed: bool, base_rec: u64, interval: u64) -> (Vec<u8>, Vec<u8>) {
    let base = base_rec * 64;
    let mut b = segment::SegmentBuilder::new(base, Tick::TYPE_ID, Tick::schema().fingerprint())
        .with_interval(interval.max(64));
    for i in 0..n {
        let payload = archive(&Tick {
            seq: i,
            price: i as f64,
            venue: "V".repeat((i % 13) as usize),
        });
        let pos = b.next_position();
        if pos.checked_add(payload.len() as u64 + 256).is_none() {
            break; // positions near u64::MAX: only as many records as fit
        }
        // Positions need not be contiguous (padding and gaps are not stored).
        if i % 3 == 1 {
            b.skip_to(pos + 64);
        }
        b.push(1000 + i * 7, Tick::TYPE_ID, &payload);
    }
    let data_len = b.len() as usize;
    let empty = b.is_empty();
    let (mut seg, idx) = b.finish(&Tick::schema().encode());
    if !sealed || empty {
        // An unsealed tail is preallocated: zeros after the records.
        seg.truncate(data_len);
        seg.resize(data_len + 512, 0);
    }
    (seg, idx)
}

proptest! {
    #![proptest_config(cases(150))]

    /// Damaged ring headers: typed errors, or a topic that works.
    #[test]
    fn fuzz_ring_header(
        flags in any::<u8>(),
        size in prop_oneof![Just(0u32), Just((HEADER_SIZE as u32 + 4096) / 8), 0u32..20_000],
        patches in prop::collection::vec(header_patch(), 0..6),
    ) {
        run("ring_header", &ring_header_input(flags, size, &patches));
    }

    /// Hostile writes into the data region and the tables while publishing and reading.
    #[test]
    fn fuzz_ring_scribble(
        flags in any::<u8>(),
        first in any::<u8>(),
        ops in prop::collection::vec(
            prop_oneof![
                3 => (0u8..3, any::<u8>(), any::<u16>(), prop::collection::vec(any::<u8>(), 0..17))
                    .prop_map(|(op, w, off, b)| {
                        let mut v = vec![op, w];
                        v.extend_from_slice(&off.to_le_bytes());
                        v.push(b.len() as u8);
                        v.extend_from_slice(&b);
                        v
                    }),
                // Aim at the words that matter: commit words and record lengths of the
                // first records, the tail, consumer positions and owners.
                2 => (0u8..3, 0u16..40, prop_oneof![Just(0u64), Just(1u64), Just(5u64), Just(u64::MAX), any::<u64>(), (0u64..8192)])
                    .prop_map(|(op, rec, v)| {
                        let mut out = vec![op, 0];
                        out.extend_from_slice(&(rec * 64 + (rec % 2) * 8).to_le_bytes());
                        out.push(8);
                        out.extend_from_slice(&v.to_le_bytes());
                        out
                    }),
                1 => (0u8..3, prop_oneof![Just(256u16), Just(384), Just(512), Just(640), Just(768), Just(9216), Just(9344), Just(1024), Just(1048)], prop_oneof![Just(0u64), Just(u64::MAX), Just(u64::MAX - 4095), any::<u64>(), (0u64..100_000)])
                    .prop_map(|(op, off, v)| {
                        let mut out = vec![op, 1];
                        out.extend_from_slice(&off.to_le_bytes());
                        out.push(8);
                        out.extend_from_slice(&v.to_le_bytes());
                        out
                    }),
                4 => (3u8..8).prop_map(|op| vec![op]),
            ],
            0..40,
        ),
    ) {
        let mut data = vec![flags, first];
        for op in ops {
            data.extend_from_slice(&op);
        }
        run("ring_scribble", &data);
    }

    /// Damaged segments and indexes: read, verify, recover.
    #[test]
    fn fuzz_segment(
        n in 0u64..40,
        sealed in any::<bool>(),
        base_rec in prop_oneof![Just(0u64), 0u64..1000, Just(u64::MAX / 64 - 2)],
        interval in prop_oneof![Just(64u64), Just(512), Just(4096)],
        seg_muts in mutations(4),
        idx_muts in mutations(3),
        drop_idx in any::<bool>(),
    ) {
        let (mut seg, mut idx) = valid_segment(n, sealed, base_rec, interval);
        mutate(&mut seg, &seg_muts);
        mutate(&mut idx, &idx_muts);
        if drop_idx {
            idx.clear();
        }
        run("segment", &with_len_prefix16(&idx, &seg));
    }

    /// Index files: mutated valid ones and noise.
    #[test]
    fn fuzz_index(
        base_rec in 0u64..1000,
        n in 0u64..20,
        muts in mutations(4),
        noise in prop::collection::vec(any::<u8>(), 0..200),
        use_noise in any::<bool>(),
    ) {
        let base = base_rec * 64;
        let entries: Vec<_> = (0..n).map(|i| index::IndexEntry::new(base + i * 640, 64 + i * 640, i, 640, 0)).collect();
        let mut bytes = if use_noise { noise } else { index::encode(base, &entries) };
        mutate(&mut bytes, &muts);
        let mut data = base.to_le_bytes().to_vec();
        data.extend_from_slice(&bytes);
        run("index", &data);
    }

    /// Stored schemas of real types, mutated, with real and mutated payloads.
    #[test]
    fn fuzz_schema(
        which in 0u8..3,
        schema_muts in mutations(3),
        payload_muts in mutations(4),
        i in 0u64..8,
    ) {
        let (mut s, mut p) = match which {
            0 => (Order::schema().encode(), archive(&order(i))),
            1 => (Tick::schema().encode(), archive(&Tick { seq: i, price: 1.5, venue: "venue name".into() })),
            _ => (targets::Leg::schema().encode(), archive(&order(i).pair[0])),
        };
        mutate(&mut s, &schema_muts);
        mutate(&mut p, &payload_muts);
        run("schema", &with_len_prefix16(&s, &p));
    }

    /// Query expressions: fragments of the language shuffled and mutated, and noise,
    /// against real schemas and mutated payloads.
    #[test]
    fn fuzz_query(
        which in 0u8..3,
        parts in prop::collection::vec(prop::sample::select(QUERY_PARTS), 0..12),
        noise in prop::collection::vec(any::<u8>(), 0..64),
        use_noise in any::<bool>(),
        muts in mutations(3),
        i in 0u64..8,
    ) {
        let mut text = if use_noise { noise } else { parts.join(" ").into_bytes() };
        mutate(&mut text, &muts);
        text.truncate(255);
        let payload = if which == 0 {
            archive(&order(i))
        } else {
            archive(&Tick { seq: i, price: 150.5, venue: "AB".repeat(i as usize) })
        };
        let mut data = vec![which, text.len() as u8];
        data.extend_from_slice(&text);
        data.extend_from_slice(&payload);
        run("query", &data);
    }

    /// Real schemas with mutated archives and noise.
    #[test]
    fn fuzz_json(
        which in any::<u8>(),
        i in 0u64..16,
        muts in mutations(6),
        noise in prop::collection::vec(any::<u8>(), 0..256),
        use_noise in any::<bool>(),
    ) {
        let mut p = if use_noise {
            noise
        } else if which % 2 == 0 {
            archive(&order(i))
        } else {
            archive(&Tick { seq: i, price: -0.5, venue: "x".repeat(i as usize) })
        };
        mutate(&mut p, &muts);
        let mut data = vec![which];
        data.extend_from_slice(&p);
        run("json", &data);
    }
}

/// Unmutated inputs pass through every target (the harnesses reach real code paths).
#[test]
fn valid_inputs_work() {
    // A valid segment recovers to a clean, verified store.
    let (seg, idx) = valid_segment(20, false, 5, 512);
    run("segment", &with_len_prefix16(&idx, &seg));
    let (seg, idx) = valid_segment(20, true, 5, 512);
    run("segment", &with_len_prefix16(&idx, &seg));
    let mut out = String::new();
    shmbus::schema::decode::render_json(Order::schema(), &archive(&order(3)), &mut out).unwrap();
    assert!(out.starts_with(r#"{"id":3,"symbol":"SYM3""#), "{out}");
    run("ring_header", &[]);
    run("ring_scribble", &[0, 10, 4, 5, 3, 4, 5]);
}

/// Replays every file under `tests/corpus/<target>/` through its target.
#[test]
fn corpus_replays() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut n = 0;
    for t in targets::TARGETS {
        let dir = root.join(t);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).unwrap();
            eprintln!("corpus {t}: {}", f.display());
            run(t, &data);
            n += 1;
        }
    }
    assert!(n > 0, "no corpus files found under {}", root.display());
}

/// Writes the valid seed inputs of every target into `tests/corpus/` (run by hand:
/// `cargo test --test fuzz write_seed_corpus -- --ignored`), the starting points for
/// cargo-fuzz sessions.
#[test]
#[ignore]
fn write_seed_corpus() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let put = |t: &str, name: &str, data: &[u8]| {
        std::fs::create_dir_all(root.join(t)).unwrap();
        std::fs::write(root.join(t).join(name), data).unwrap();
    };
    put("ring_header", "seed-valid", &[]);
    put("ring_header", "seed-typed", &[2]);
    put(
        "ring_scribble",
        "seed-publish-read",
        &[0, 10, 4, 5, 3, 4, 5, 6],
    );
    put("ring_scribble", "seed-lossy", &[1, 20, 3, 3, 4, 5, 6, 3, 4]);
    for (name, sealed) in [("seed-sealed", true), ("seed-unsealed", false)] {
        let (seg, idx) = valid_segment(12, sealed, 3, 512);
        put("segment", name, &with_len_prefix16(&idx, &seg));
    }
    // A record whose position is so large that the next one overflows u64.
    let base = u64::MAX - 63;
    let mut seg = segment::header_bytes(base, Tick::TYPE_ID, 0).to_vec();
    segment::encode_record(&mut seg, base, 1, Tick::TYPE_ID, b"x");
    seg.resize(seg.len() + 128, 0);
    put(
        "segment",
        "crash-position-overflow",
        &with_len_prefix16(&[], &seg),
    );
    let entries: Vec<_> = (0..4)
        .map(|i| index::IndexEntry::new(640 + i * 640, 64 + i * 640, i, 640, 0))
        .collect();
    let mut data = 640u64.to_le_bytes().to_vec();
    data.extend_from_slice(&index::encode(640, &entries));
    put("index", "seed-valid", &data);
    put(
        "schema",
        "seed-order",
        &with_len_prefix16(&Order::schema().encode(), &archive(&order(5))),
    );
    let mut data = vec![0u8];
    data.extend_from_slice(&archive(&order(6)));
    put("json", "seed-order", &data);
    let mut data = vec![1u8];
    data.extend_from_slice(&archive(&Tick {
        seq: 1,
        price: 2.0,
        venue: "a venue".into(),
    }));
    put("json", "seed-tick", &data);
    for (name, which, text) in [
        (
            "seed-order",
            0u8,
            "side == Sell and qty > 3 or not (symbol ^= \"AB\")",
        ),
        (
            "seed-tick",
            1,
            "price > 100 and starts_with(venue, \"AB\") and @time >= 0",
        ),
        ("seed-raw", 2, "len < 64 or type != 7"),
    ] {
        let mut data = vec![which, text.len() as u8];
        data.extend_from_slice(text.as_bytes());
        if which == 0 {
            data.extend_from_slice(&archive(&order(4)));
        } else if which == 1 {
            data.extend_from_slice(&archive(&Tick {
                seq: 1,
                price: 101.0,
                venue: "ABX".into(),
            }));
        }
        put("query", name, &data);
    }
}
