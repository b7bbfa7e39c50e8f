//! Loom model tests of the ring protocol in [`crate::ring`].
//!
//! These run the real `Ring` code (claim, commit, padding at the wrap, back-pressure,
//! joining) on [`LoomMem`], a model of the ring file whose words are loom atomics, and
//! let loom explore the thread interleavings and the weak-memory outcomes it allows.
//!
//! Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test --release --lib loom
//! ```
//!
//! Model conventions: payloads are whole 8-byte words, written and read as relaxed
//! atomic word stores/loads, so a missing release/acquire pair shows up as a stale
//! payload word. A record at position `p` carries the payload words `tag(p, i)`, so a
//! consumer can tell a record of this lap from one of a later lap.

use std::collections::HashMap;
use std::sync::Mutex;

use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use loom::sync::Arc;
use loom::thread;
use std::sync::Arc as StdArc;

use crate::ring::layout::*;
use crate::ring::{owner, Claim, ClaimFail, Liveness, Memory, Params, ProducerCursor, Read, Ring};
use crate::sys::sync::Ordering;

/// The ring file as a sparse map of loom atomics, created on first use.
///
/// Boxes are never removed, so a returned reference stays valid as long as `self`.
/// A `std` mutex is enough: loom runs the model's threads one at a time.
struct LoomMem {
    w64: Mutex<HashMap<usize, Box<AtomicU64>>>,
    w32: Mutex<HashMap<usize, Box<AtomicU32>>>,
}

impl LoomMem {
    /// A ring file with every word the models touch created up front, so the
    /// initial values happen-before every thread. Header words start at 0; data
    /// words start as [`STALE`] bytes, like an earlier lap's leftovers, so a header
    /// or payload read without the commit word's synchronisation shows up.
    fn new(capacity: u64) -> LoomMem {
        let m = LoomMem {
            w64: Mutex::new(HashMap::new()),
            w32: Mutex::new(HashMap::new()),
        };
        for off in [OFF_TAIL, OFF_LIMIT, OFF_GEN, OFF_HORIZON, OFF_EXCLUSIVE] {
            m.word(off);
        }
        m.word32(OFF_FUTEX_SEQ);
        m.word32(OFF_FUTEX_WAITERS);
        for i in 0..MAX_CONSUMERS {
            m.word(consumer_slot(i) + C_OWNER);
            m.word(consumer_slot(i) + C_POSITION);
        }
        for off in (0..capacity as usize).step_by(8) {
            m.word(HEADER_SIZE + off).store(STALE, Ordering::Relaxed);
        }
        m
    }
}

impl Memory for LoomMem {
    fn word(&self, off: usize) -> &AtomicU64 {
        assert_eq!(off % 8, 0, "unaligned word at {off}");
        let mut map = self.w64.lock().unwrap();
        let b = map
            .entry(off)
            .or_insert_with(|| Box::new(AtomicU64::new(0)));
        let p: *const AtomicU64 = &**b;
        // SAFETY: the box is never removed from the map nor replaced while `self`
        // lives, so its heap address is stable for the lifetime of `&self`.
        unsafe { &*p }
    }

    fn word32(&self, off: usize) -> &AtomicU32 {
        assert_eq!(off % 4, 0, "unaligned word32 at {off}");
        let mut map = self.w32.lock().unwrap();
        let b = map
            .entry(off)
            .or_insert_with(|| Box::new(AtomicU32::new(0)));
        let p: *const AtomicU32 = &**b;
        // SAFETY: as in `word`.
        unsafe { &*p }
    }

    unsafe fn write(&self, off: usize, src: &[u8]) {
        assert!(
            off % 8 == 0 && src.len() % 8 == 0,
            "model writes whole words"
        );
        for (k, c) in src.chunks_exact(8).enumerate() {
            let v = u64::from_le_bytes(c.try_into().unwrap());
            self.word(off + 8 * k).store(v, Ordering::Relaxed);
        }
    }

    fn read(&self, off: usize, dst: &mut [u8]) {
        assert!(
            off % 8 == 0 && dst.len() % 8 == 0,
            "model reads whole words"
        );
        for (k, c) in dst.chunks_exact_mut(8).enumerate() {
            let v = self.word(off + 8 * k).load(Ordering::Relaxed);
            c.copy_from_slice(&v.to_le_bytes());
        }
    }

    fn cas_data_word(&self, off: usize, current: u64, new: u64) -> bool {
        self.word(off)
            .compare_exchange(current, new, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }

    fn store_gap(&self, off: usize, len: u32, commit: u64) {
        self.word(off + R_LEN).store(len as u64, Ordering::Relaxed);
        self.word(off).store(commit, Ordering::Release);
    }
}

/// Everyone is alive; time is a counter (so eviction never triggers).
struct Live(std::sync::atomic::AtomicU64);

impl Live {
    fn new() -> Live {
        Live(std::sync::atomic::AtomicU64::new(0))
    }
}

impl Liveness for Live {
    fn alive(&self, _pid: u32, _start28: u64) -> bool {
        true
    }
    fn now_ns(&self) -> u64 {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

const TYPE: u64 = 0x7e57;
/// Initial data bytes: not a commit word (bit 0 clear), and a length that runs past
/// any lap end.
const STALE: u64 = 0xdead_beef_dead_be00;
/// Consumer slots whose bound `publish` checks (model (d) registers none up front).
const MODEL_CONSUMERS: usize = 1;

/// Payload word `i` of the record at position `pos`.
fn tag(pos: u64, i: usize) -> u64 {
    (pos << 8) | 0x80 | i as u64
}

fn ring(capacity: u64) -> Arc<Ring<LoomMem>> {
    Arc::new(Ring::new(
        LoomMem::new(capacity),
        Params {
            capacity,
            mode: Mode::Reliable,
            max_payload: capacity as usize / 4, // as `TopicBuilder` sets it
            consumer_timeout_ns: u64::MAX,
            unblock_timeout_ns: u64::MAX,
            hold_named: true,
        },
    ))
}

/// Register consumer slot `slot` at `pos`, as the subscriber does before joining.
fn register(r: &Ring<LoomMem>, slot: usize, pos: u64) {
    r.cword(slot, C_POSITION).store(pos, Ordering::SeqCst);
    r.cword(slot, C_OWNER)
        .store(owner(1, 1, SLOT_ACTIVE), Ordering::SeqCst);
}

/// Claim `len` payload bytes, waiting like `Publisher::send`. Returns the claim and
/// how many times the ring was full.
fn claim(r: &Ring<LoomMem>, cur: &mut ProducerCursor, len: usize, live: &Live) -> (Claim, u32) {
    let mut full = 0;
    loop {
        match r.try_claim(cur, len, live) {
            Ok((c, must_wait)) => {
                if must_wait {
                    r.wait_writable(cur, c.pos + record_size(len), live);
                }
                return (c, full);
            }
            Err(ClaimFail::Full) => {
                full += 1;
                thread::yield_now();
            }
        }
    }
}

/// Write and commit a claimed record, as `Publisher::publish` does.
fn write_commit(r: &Ring<LoomMem>, cur: &mut ProducerCursor, c: Claim) {
    let mut payload = vec![0u8; c.len];
    for (i, w) in payload.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&tag(c.pos, i).to_le_bytes());
    }
    // SAFETY: the claim owns these bytes until commit.
    unsafe { r.mem.write(r.data_off(c.pos) + RECORD_HEADER, &payload) };
    r.begin_commit(cur, c.pos)
        .expect("nobody unblocks in this model");
    r.write_header(c.pos, c.len, TYPE, c.pos + 1);
    r.commit(cur, c).expect("nobody unblocks in this model");
}

/// Claim, write and commit one record of `len` payload bytes. Returns its position
/// and how many times the ring was full.
fn publish(r: &Ring<LoomMem>, cur: &mut ProducerCursor, len: usize, live: &Live) -> (u64, u32) {
    let (c, full) = claim(r, cur, len, live);
    // Back-pressure: the claim never ends more than a capacity past a consumer that
    // was registered throughout (positions only grow, so a later read is a valid bound).
    for i in 0..MODEL_CONSUMERS {
        if owner_is_active(r, i) {
            let p = r.cword(i, C_POSITION).load(Ordering::SeqCst);
            assert!(
                c.pos + record_size(len) <= p + r.p.capacity,
                "claim [{}, {}) overruns consumer {i} at {p}",
                c.pos,
                c.pos + record_size(len)
            );
        }
    }
    write_commit(r, cur, c);
    (c.pos, full)
}

fn owner_is_active(r: &Ring<LoomMem>, slot: usize) -> bool {
    crate::ring::owner_state(r.cword(slot, C_OWNER).load(Ordering::SeqCst)) == SLOT_ACTIVE
}

/// A reliable consumer in slot `slot` reading from `pos` until it has seen `n` data
/// records, like `Subscriber::next`: it publishes a position only once it is done with
/// the records before it. Returns (position, payload length) of each record.
fn consume(r: &Ring<LoomMem>, slot: usize, mut pos: u64, n: usize) -> Vec<(u64, usize)> {
    let mut seen = Vec::new();
    while seen.len() < n {
        match r.read_at(pos) {
            Read::Record(h) => {
                assert_eq!(h.type_id, TYPE, "header at {pos}");
                assert_eq!(h.timestamp, pos + 1, "header at {pos}");
                let off = r.data_off(pos) + RECORD_HEADER;
                let mut buf = vec![0u8; h.len as usize];
                r.mem.read(off, &mut buf);
                check_payload(pos, &buf);
                seen.push((pos, h.len as usize));
                // The record is still ours until we publish a later position. (No
                // yield here: loom's scheduler preempts at every atomic access anyway,
                // and after a yield loom stops offering stale values it has shown.)
                r.mem.read(off, &mut buf);
                check_payload(pos, &buf);
                pos = h.next();
                r.cword(slot, C_POSITION).store(pos, Ordering::Release);
            }
            Read::Skip { next, gap } => {
                assert!(!gap, "no gaps in these models");
                pos = next;
                r.cword(slot, C_POSITION).store(pos, Ordering::Release);
            }
            Read::NotYet => {
                let w = r.mem.word(r.data_off(pos)).load(Ordering::Relaxed);
                assert!(
                    w & COMMITTED == 0 || w & !FLAG_MASK <= pos,
                    "unread record at {pos} overwritten by {}",
                    w & !FLAG_MASK
                );
                thread::yield_now();
            }
            other => panic!("unexpected {other:?} at {pos}"),
        }
    }
    seen
}

fn check_payload(pos: u64, buf: &[u8]) {
    for (i, w) in buf.chunks_exact(8).enumerate() {
        let v = u64::from_le_bytes(w.try_into().unwrap());
        assert_eq!(v, tag(pos, i), "payload word {i} of the record at {pos}");
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.max_branches = b.max_branches.max(100_000);
    let runs = StdArc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    b.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    });
    eprintln!(
        "loom: {} executions",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// (a) Two producers each commit one record; one consumer reads both, in tail order,
/// intact, exactly once.
#[test]
fn loom_two_producers_one_consumer() {
    model(|| {
        let r = ring(256);
        register(&r, 0, 0);
        let producers: Vec<_> = (0..2)
            .map(|slot| {
                let r = r.clone();
                thread::spawn(move || {
                    let live = Live::new();
                    let mut cur = ProducerCursor::new(slot);
                    publish(&r, &mut cur, 8, &live).0
                })
            })
            .collect();
        let seen = consume(&r, 0, 0, 2);
        let mut claimed: Vec<u64> = producers.into_iter().map(|h| h.join().unwrap()).collect();
        claimed.sort_unstable();
        assert_eq!(claimed, vec![0, 64]);
        assert_eq!(seen, vec![(0, 8), (64, 8)]);
        assert_eq!(r.tail().load(Ordering::SeqCst), 128);
    });
}

/// (b) A producer wraps a 512-byte ring: a 128-byte padding record to the end of the
/// lap, then the record at the lap start. The consumer reads everything in order.
#[test]
fn loom_wrap_with_padding() {
    model(|| {
        let r = ring(512);
        register(&r, 0, 0);
        let p = {
            let r = r.clone();
            thread::spawn(move || {
                let live = Live::new();
                let mut cur = ProducerCursor::new(0);
                // 64 + 192 + 128 bytes, then 192 bytes that do not fit before 512:
                // padding [384, 512) and the record at 512 (once the consumer is
                // past 192).
                let a = publish(&r, &mut cur, 8, &live).0;
                let b = publish(&r, &mut cur, 128, &live).0;
                let c = publish(&r, &mut cur, 72, &live).0;
                let d = publish(&r, &mut cur, 128, &live).0;
                assert_eq!((a, b, c, d), (0, 64, 256, 512));
            })
        };
        let seen = consume(&r, 0, 0, 4);
        p.join().unwrap();
        assert_eq!(seen, vec![(0, 8), (64, 128), (256, 72), (512, 128)]);
        assert_eq!(r.tail().load(Ordering::SeqCst), 704);
        let w = r.mem.word(r.data_off(384)).load(Ordering::SeqCst);
        assert_eq!(w, 384 | COMMITTED | PADDING);
    });
}

/// (c) Back-pressure: with the consumer at 0, a fifth 64-byte record does not fit in
/// 256 bytes. The producer gets `Full` until the consumer advances and never
/// overwrites a record the consumer has not finished with.
#[test]
fn loom_back_pressure() {
    model(|| {
        let r = ring(256);
        register(&r, 0, 0);
        let full_seen = Arc::new(AtomicBool::new(false));
        let p = {
            let r = r.clone();
            let full_seen = full_seen.clone();
            thread::spawn(move || {
                let live = Live::new();
                let mut cur = ProducerCursor::new(0);
                // Four records fill the ring; the consumer is held back until the
                // producer has been refused once, so the refusal is certain.
                for k in 0..4 {
                    let (pos, full) = publish(&r, &mut cur, 8, &live);
                    assert_eq!((pos, full), (64 * k, 0));
                }
                let c = r.try_claim(&mut cur, 8, &live);
                assert_eq!(c, Err(ClaimFail::Full));
                full_seen.store(true, Ordering::Release);
                let (pos, _) = publish(&r, &mut cur, 8, &live);
                assert_eq!(pos, 256);
                let (pos, _) = publish(&r, &mut cur, 8, &live);
                assert_eq!(pos, 320);
            })
        };
        while !full_seen.load(Ordering::Acquire) {
            thread::yield_now();
        }
        let seen = consume(&r, 0, 0, 6);
        p.join().unwrap();
        let positions: Vec<u64> = seen.iter().map(|s| s.0).collect();
        assert_eq!(positions, vec![0, 64, 128, 192, 256, 320]);
    });
}

/// (c') Back-pressure with a free-running consumer: whatever the interleaving, no
/// claim ends past the consumer's position plus the capacity.
#[test]
fn loom_back_pressure_free_running() {
    model(|| {
        let r = ring(256);
        register(&r, 0, 0);
        let p = {
            let r = r.clone();
            thread::spawn(move || {
                let live = Live::new();
                let mut cur = ProducerCursor::new(0);
                for k in 0..5 {
                    assert_eq!(publish(&r, &mut cur, 8, &live).0, 64 * k);
                }
            })
        };
        let seen = consume(&r, 0, 0, 5);
        p.join().unwrap();
        assert_eq!(seen.len(), 5);
    });
}

/// (d) A consumer joins at position 0 of a full ring while a producer, whose cached
/// limit predates the join, claims the next record (which reuses position 0's bytes).
/// Either the producer sees the new generation and waits for the joiner, or the
/// joiner sees the claim and starts later; nothing it reads is overwritten.
#[test]
fn loom_join_races_claim() {
    model(|| {
        let r = ring(256);
        const JOINER: usize = 1; // not bound-checked by `publish`: it joins late
        let live = Live::new();
        let mut cur = ProducerCursor::new(0);
        // Fill the ring with no consumer: the cached limit is unbounded.
        for k in 0..4 {
            assert_eq!(publish(&r, &mut cur, 8, &live).0, 64 * k);
        }
        assert_eq!(cur.limit, u64::MAX);
        let p = {
            let r = r.clone();
            thread::spawn(move || {
                let live = Live::new();
                assert_eq!(publish(&r, &mut cur, 8, &live).0, 256);
            })
        };
        // As `SubscriberBuilder::open` does for `Start::Position(0)`.
        register(&r, JOINER, 0);
        let at = r.join(JOINER, 0);
        assert!(at == 0 || at == 256, "joined at {at}");
        let n = ((320 - at) / 64) as usize;
        let seen = consume(&r, JOINER, at, n);
        p.join().unwrap();
        assert_eq!(seen.last().map(|s| s.0), Some(256));
    });
}

/// An exclusive producer's cursor (plain tail stores, horizon instead of a generation
/// check per claim).
fn exclusive_cursor() -> ProducerCursor {
    let mut cur = ProducerCursor::new(0);
    cur.exclusive = true;
    cur
}

/// (e) An exclusive producer writes the next record without any check, because it is
/// inside the horizon it published earlier, while a consumer joins at position 0. The
/// joiner starts no earlier than a capacity before that horizon, so the unchecked
/// write (which reuses position 0's bytes) never touches what it reads.
#[test]
fn loom_exclusive_claim_inside_the_horizon_races_join() {
    model(|| {
        let r = ring(256);
        const JOINER: usize = 1;
        let live = Live::new();
        let mut cur = exclusive_cursor();
        for k in 0..4 {
            assert_eq!(publish(&r, &mut cur, 8, &live).0, 64 * k);
        }
        // The fourth claim stepped the horizon to 256 + 128.
        assert_eq!(cur.horizon, 384);
        let p = {
            let r = r.clone();
            thread::spawn(move || {
                let live = Live::new();
                assert_eq!(publish(&r, &mut cur, 8, &live).0, 256);
                assert_eq!(cur.horizon, 384, "no new check inside the horizon");
            })
        };
        register(&r, JOINER, 0);
        let at = r.join(JOINER, 0);
        // A capacity before the horizon, or the next lap start when the walk from this
        // lap's start finds it already overwritten.
        assert!(at == 128 || at == 256, "joined at {at}");
        let seen = consume(&r, JOINER, at, ((320 - at) / 64) as usize);
        p.join().unwrap();
        assert_eq!(seen.last().map(|s| s.0), Some(256));
    });
}

/// (f) An exclusive producer steps its horizon (publish, fence, generation check) for
/// a claim that reuses the bytes of position 128, while a consumer joins there.
/// Either the producer sees the joiner and waits for it, or the joiner sees the new
/// horizon and starts after it; nothing it reads is overwritten.
#[test]
fn loom_exclusive_horizon_step_races_join() {
    model(|| {
        let r = ring(256);
        const JOINER: usize = 1;
        let live = Live::new();
        let mut cur = exclusive_cursor();
        for k in 0..6 {
            assert_eq!(publish(&r, &mut cur, 8, &live).0, 64 * k);
        }
        assert_eq!(cur.horizon, 384);
        let p = {
            let r = r.clone();
            thread::spawn(move || {
                let live = Live::new();
                assert_eq!(publish(&r, &mut cur, 8, &live).0, 384);
            })
        };
        register(&r, JOINER, 128);
        let at = r.join(JOINER, 128);
        assert!([128, 256, 320].contains(&at), "joined at {at}");
        let n = ((448 - at) / 64) as usize;
        let seen = consume(&r, JOINER, at, n);
        p.join().unwrap();
        assert_eq!(seen.last().map(|s| s.0), Some(384));
    });
}

/// Everyone is judged dead: an unblocker that misjudges a live producer (a forked child
/// with its parent's identity, another PID namespace).
struct Dead;

impl Liveness for Dead {
    fn alive(&self, _pid: u32, _start28: u64) -> bool {
        false
    }
    fn now_ns(&self) -> u64 {
        0
    }
}

/// The producer side of (g): claim `len` bytes, write the payload, then try to
/// commit as `Publisher::publish` does. Returns the record's position and whether the commit
/// was reported as successful.
fn stalled_publish(r: &Ring<LoomMem>, len: usize) -> (u64, bool) {
    let live = Live::new();
    let mut cur = ProducerCursor::new(0);
    r.pword(0, P_OWNER)
        .store(owner(7, 7, SLOT_ACTIVE), Ordering::SeqCst);
    let (c, _) = claim(r, &mut cur, len, &live);
    let mut payload = vec![0u8; c.len];
    for (i, w) in payload.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&tag(c.pos, i).to_le_bytes());
    }
    // SAFETY: the claim owns these bytes until commit (or until it is lost, after
    // which readers skip them as a gap).
    unsafe { r.mem.write(r.data_off(c.pos) + RECORD_HEADER, &payload) };
    if r.begin_commit(&mut cur, c.pos).is_err() {
        return (c.pos, false);
    }
    r.write_header(c.pos, c.len, TYPE, c.pos + 1);
    (c.pos, r.commit(&mut cur, c).is_ok())
}

/// Run (g) with the consumer blocked at `at`, where the producer's claim (after
/// padding, if any) ends at `end`.
fn stalled_producer_races_unblocker(r: Arc<Ring<LoomMem>>, at: u64, len: usize, end: u64) {
    register(&r, 0, at);
    let p = {
        let r = r.clone();
        thread::spawn(move || stalled_publish(&r, len))
    };
    let u = {
        let r = r.clone();
        thread::spawn(move || {
            // Blocked at `at` with the claim in the tail, past the unblock timeout.
            while r.tail().load(Ordering::SeqCst) <= at {
                thread::yield_now();
            }
            r.unblock(at, &Dead)
        })
    };
    let (pos, committed) = p.join().unwrap();
    let _ = u.join().unwrap();
    // Whatever the unblocker did, the consumer at `at` now finds the outcome.
    let mut q = at;
    let outcome = loop {
        match r.read_at(q) {
            Read::Record(h) => {
                assert_eq!((h.position, h.len as usize, h.type_id), (pos, len, TYPE));
                let mut buf = vec![0u8; len];
                r.mem.read(r.data_off(pos) + RECORD_HEADER, &mut buf);
                check_payload(pos, &buf);
                assert_eq!(h.next(), end);
                break true;
            }
            Read::Skip { next, gap: false } => q = next,
            Read::Skip { next, gap: true } if next >= end => break false,
            Read::Skip { next, gap: true } => {
                // The losing producer wrote its own length into the gap's header: a
                // shorter skip, to its record's position, which it never committed.
                assert_eq!(next, pos, "gap [{q}, {next}) ends off a record boundary");
                assert_eq!(r.read_at(pos), Read::NotYet);
                assert!(!committed);
                // A consumer blocked there unblocks it in turn (no intent holds it).
                assert!(r.unblock(pos, &Dead));
                q = next;
            }
            other => panic!("{other:?} at {q} after both sides finished"),
        }
    };
    assert_eq!(
        outcome,
        committed,
        "commit reported {committed}, but the consumer read a {}",
        if outcome { "record" } else { "gap" }
    );
    OUTCOMES[usize::from(outcome)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// How often (g) ended with a gap (0) and with the record (1): both must occur, or
/// the model did not race the two sides.
static OUTCOMES: [std::sync::atomic::AtomicUsize; 2] = [
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
];

fn assert_both_outcomes() {
    let n = OUTCOMES
        .each_ref()
        .map(|o| o.swap(0, std::sync::atomic::Ordering::Relaxed));
    eprintln!("loom: {} gaps, {} records", n[0], n[1]);
    assert!(
        n[0] > 0 && n[1] > 0,
        "outcomes {n:?}: the model never raced"
    );
}

/// (g) A producer stalled between claim and commit races an unblocker that judges it
/// dead. Exactly one of: the commit succeeds and the record is read, or the commit
/// fails and a gap is read. Never a successful commit with a gap in its place, and a
/// gap's header, even one the losing producer wrote its length into, ends at a
/// boundary at or past the claim's record.
#[test]
fn loom_stalled_producer_races_unblocker() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    model(|| stalled_producer_races_unblocker(ring(256), 0, 8, 64));
    assert_both_outcomes();
}

/// (g) and (g') share the outcome counters.
static SERIAL: Mutex<()> = Mutex::new(());

/// (g') As (g), for a claim that crosses the end of the lap: the padding in front of
/// the record is written and decided at commit time, so a producer whose padding
/// position became a gap loses the whole claim (the gap starts at the padding).
#[test]
fn loom_stalled_producer_at_the_wrap_races_unblocker() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    model(|| {
        let r = ring(256);
        // Three records (192 bytes) already committed and read: the next 96-byte
        // record does not fit before 256, so the claim is padding [192, 256) then the
        // record at 256.
        let live = Live::new();
        let mut cur = ProducerCursor::new(1);
        for k in 0..3 {
            assert_eq!(publish(&r, &mut cur, 8, &live).0, 64 * k);
        }
        stalled_producer_races_unblocker(r, 192, 96, 384);
    });
    assert_both_outcomes();
}
