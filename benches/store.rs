//! The store benchmark: the recorder against the disk it writes to, and what it costs
//! the publishers.
//!
//! In one run, on one store directory (`SHMBUS_BENCH_STORE_DIR`, default the system
//! temporary directory) and the same fsync policy (the recorder's default: `fdatasync`
//! at most once a second), it measures
//!
//! - (a) raw sequential write bandwidth: a plain loop of 256 KiB `pwrite`s from one
//!   buffer into a preallocated file, versus the recorder's sustained bandwidth while
//!   one publisher thread sends 1 KiB records (992-byte payloads) as fast as it can
//!   (`send_bytes_batch` of 16): bytes of records from the first send until the
//!   recorder has persisted the last. Both clocks stop once the data is on disk (a
//!   final `fdatasync` / `sync`), since the page cache alone takes writes many times
//!   faster than the disk. Both write 4 GiB: with 1 GiB (the size until November
//!   2026) the raw loop put it all in the page cache in ~0.13 s and then waited ~0.7 s
//!   in its final `fdatasync`, never reaching its once-a-second sync, so it measured
//!   one flush of a burst rather than a sustained rate; with 4 GiB both go through
//!   several syncs and the kernel's dirty-page throttling. The two alternate, twice,
//!   and each reports the better of its two runs: on this VM the first write to pages
//!   the guest has not touched for a while is slow (the host hands its memory back on
//!   first touch; a 2 GiB `dd` ran at 0.5, then 1.3, then 2.7 GB/s), so whichever ran
//!   first paid for it (until November 2026 the raw loop always did). For reference it
//!   also measures the device without the page cache: 1 MiB `O_DIRECT` writes;
//! - (b) the publisher's send latency (p50, p99, p99.9; each `send_bytes` timed on its
//!   own) at a paced rate of 1 KiB events, for each kind of publisher (the exclusive
//!   one, and a shared one, each on a topic of its own with the bus's default ring):
//!   without a recorder (nobody subscribed), with the recorder in a process of its own
//!   (as `shmbus record` runs it: this bench again, `SHMBUS_BENCH_ROLE=recorder`), with
//!   the recorder as a thread of the publisher's process (`Recorder::spawn`), and for
//!   reference with no recorder but a plain subscriber in a process of its own
//!   (`SHMBUS_BENCH_ROLE=reader`) that reads every record once a millisecond, and with
//!   that subscriber and the recorder in its own process (what the recorder adds to a
//!   reader), in rounds of one run of each kind with each publisher, the order
//!   rotating (10 rounds, 2 with `--quick`, or `SHMBUS_BENCH_ROUNDS`; medians, and each
//!   round's ratio; and the CPU each run's publisher sent on, with how often the
//!   scheduler moved and preempted it). Every run of a publisher sends from it into
//!   one ring, kept for all of (b); only the reader comes and goes, joining at the tail
//!   (a recorder on a store of its own).
//!   One run's p99 moves between levels from minute to minute on this VM (set by how
//!   often the publisher's first write to a page of the ring is slow, which moves with
//!   the host's load), so only runs close in time compare; a new ring for each run (as
//!   until November 2026) added the spread of one set of pages to the next. A run whose
//!   sends fall behind their pace (a send waited) is flagged, as it measured something
//!   else. The clock moves in ticks (~10 ns on this VM: the time stamp counter steps
//!   ~26 cycles at a time), so a p99 of five ticks can only read 50 or 60 ns, a 1.2×
//!   step; the p99 ratios compare each run's p99 interpolated within the tick (the
//!   tick taken from the samples), with the raw ratio beside them;
//! - (c) in the runs with the recorder, the p99.9 of the sends around segment rollovers
//!   (within one ring capacity of a segment boundary) versus the rest.
//!
//! It prints a Markdown section, and writes it to the file given with
//! `--markdown-out <file>` as well.
//!
//! ```text
//! cargo bench --bench store                 # full run (~23 GB written, ~4 min)
//! cargo bench --bench store -- --quick      # smaller counts
//! cargo bench --bench store -- --markdown-out target/store-bench.md
//! cargo bench --bench store -- --only bandwidth   # or raw, or latency (for profiling)
//! cargo bench --bench store -- --only rounds      # (b) and (c) only
//! ```
//!
//! `SHMBUS_BENCH_MIB=n` sets the bytes of both bandwidth runs (default 4096, 256 with
//! `--quick`); `SHMBUS_BENCH_RING_KIB=n` the rings of (b) (default the bus's, 1 MiB; a
//! recorder that has caught up looks at the ring once an eighth of it has arrived, but
//! at least every 4 ms and at least as often as its ring would fill at 1 GB/s, so a
//! smaller ring means more looks); `SHMBUS_BENCH_PIN=cpu` pins the publishers of (b) to
//! that CPU while they send (default 0; `none` leaves them to the scheduler; the
//! reader is never pinned, the recorder only with `SHMBUS_BENCH_RECORDER_CPU=n`, which
//! starts it, thread or process, pinned to CPU n); `SHMBUS_BENCH_READER_US=n` sets how often
//! the plain subscriber looks (default 1000), and `SHMBUS_BENCH_READER=tail` makes it
//! look at the topic's tail only, reading nothing; `SHMBUS_BENCH_STORAGE=io_uring` or
//! `pwrite` makes the recorders use that backend (default `auto`, the recorder's own:
//! io_uring where the file system takes buffered writes without blocking, `pwrite`
//! where it does not); `SHMBUS_BENCH_WRITE_KIB=n` sets the recorder's batch size
//! (default 256).

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use shmbus::store::{
    buffered_writes_nowait, list_segments, storage::default_storage, Recorder, RecorderConfig,
    RecorderHandle, StorageKind,
};
use shmbus::{Bus, Topic};

/// Payload of a 1 KiB record (32-byte header + 992 bytes).
const PAYLOAD: usize = 992;
const RECORD: u64 = 1024;

struct Config {
    quick: bool,
    /// Bytes for the bandwidth runs.
    bytes: u64,
    /// Events and rate for the latency runs.
    events: u64,
    rate: u64,
    markdown_out: Option<PathBuf>,
    store_root: PathBuf,
    only: Option<String>,
}

impl Config {
    fn from_args() -> Config {
        let args: Vec<String> = std::env::args().collect();
        let quick = args.iter().any(|a| a == "--quick");
        let markdown_out = args
            .iter()
            .position(|a| a == "--markdown-out")
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from);
        let only = args
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 1))
            .cloned();
        let store_root = std::env::var_os("SHMBUS_BENCH_STORE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        Config {
            quick,
            bytes: std::env::var("SHMBUS_BENCH_MIB")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .map(|m| m << 20)
                .unwrap_or(if quick { 256 << 20 } else { 4 << 30 }),
            events: if quick { 50_000 } else { 100_000 },
            rate: 100_000,
            markdown_out,
            store_root,
            only,
        }
    }
}

struct Dirs {
    bus: PathBuf,
    store: PathBuf,
}

impl Dirs {
    fn new(root: &Path, tag: &str) -> Dirs {
        let uniq = format!("{tag}-{}", std::process::id());
        let shm = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = Dirs {
            bus: shm.join(format!("shmbus-bench-bus-{uniq}")),
            store: root.join(format!("shmbus-bench-store-{uniq}")),
        };
        std::fs::create_dir_all(&d.bus).expect("create bus dir");
        std::fs::create_dir_all(&d.store).expect("create store dir");
        d
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.bus);
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// (a) raw: 256 KiB pwrites into a preallocated file, fdatasync at most once a second
/// and once at the end (the time runs until the data is on disk).
fn raw_bandwidth(dir: &Path, bytes: u64) -> f64 {
    let path = dir.join("raw.dat");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("create raw file");
    let fd = f.as_raw_fd();
    // SAFETY: plain syscall on a descriptor we own.
    unsafe { libc::fallocate(fd, 0, 0, bytes as libc::off_t) };
    let buf = vec![0x5au8; 256 << 10];
    let t0 = Instant::now();
    let mut last_sync = Instant::now();
    let mut off = 0u64;
    while off < bytes {
        // SAFETY: `buf` is valid for the call.
        let n = unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), off as libc::off_t) };
        assert!(
            n > 0,
            "raw write failed: {}",
            std::io::Error::last_os_error()
        );
        off += n as u64;
        if last_sync.elapsed() >= Duration::from_secs(1) {
            // SAFETY: as above.
            unsafe { libc::fdatasync(fd) };
            last_sync = Instant::now();
        }
    }
    // Until it is on disk: the page cache alone takes writes many times faster than
    // the disk, which would make this a memcpy benchmark.
    // SAFETY: as above.
    unsafe { libc::fdatasync(fd) };
    let secs = t0.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_file(&path);
    bytes as f64 / secs
}

/// (a) the device itself: 1 MiB `O_DIRECT` writes from one aligned buffer (no page
/// cache), then `fdatasync`. `None` where the file system refuses `O_DIRECT`.
fn direct_bandwidth(dir: &Path, bytes: u64) -> Option<f64> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("direct.dat");
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .ok()?;
    let fd = f.as_raw_fd();
    // SAFETY: plain syscall on a descriptor we own.
    unsafe { libc::fallocate(fd, 0, 0, bytes as libc::off_t) };
    const CHUNK: usize = 1 << 20;
    let layout = std::alloc::Layout::from_size_align(CHUNK, 4096).expect("layout");
    // SAFETY: non-zero size; freed below with the same layout.
    let buf = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!buf.is_null(), "allocate the O_DIRECT buffer");
    let t0 = Instant::now();
    let mut off = 0u64;
    let mut ok = true;
    while off < bytes {
        // SAFETY: `buf` holds CHUNK bytes, 4096-aligned as O_DIRECT needs.
        let n = unsafe { libc::pwrite(fd, buf.cast(), CHUNK, off as libc::off_t) };
        if n <= 0 {
            ok = false;
            break;
        }
        off += n as u64;
    }
    // SAFETY: as above.
    unsafe { libc::fdatasync(fd) };
    let secs = t0.elapsed().as_secs_f64();
    // SAFETY: allocated above with this layout.
    unsafe { std::alloc::dealloc(buf, layout) };
    drop(f);
    let _ = std::fs::remove_file(&path);
    ok.then_some(bytes as f64 / secs)
}

/// The bench's topic on the bus in `bus`.
fn bench_topic(bus: &Path) -> shmbus::TopicBuilder<shmbus::Raw> {
    Bus::open_dir(bus).expect("open bus").topic("bench")
}

fn recorder_config(segment_size: u64) -> RecorderConfig {
    let mut c = RecorderConfig {
        segment_size,
        storage: storage_kind(),
        ..Default::default()
    };
    if let Some(w) = std::env::var("SHMBUS_BENCH_WRITE_KIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        c.write_size = w << 10;
    }
    c
}

/// The storage backend asked for with `SHMBUS_BENCH_STORAGE` (default `auto`).
fn storage_kind() -> StorageKind {
    match std::env::var("SHMBUS_BENCH_STORAGE").ok().as_deref() {
        None | Some("auto") => StorageKind::Auto,
        Some("io_uring") => StorageKind::IoUring,
        Some("pwrite") => StorageKind::Pwrite,
        Some(v) => panic!("SHMBUS_BENCH_STORAGE={v}: auto, io_uring or pwrite"),
    }
}

/// The backend the recorders get in `root`, and why, for the report.
fn storage_label(root: &Path) -> String {
    let kind = storage_kind();
    let name = default_storage(root, kind).name();
    match kind {
        StorageKind::Auto => format!(
            "`{name}` (the default's pick: this file system {} buffered writes without \
             blocking)",
            match buffered_writes_nowait(root) {
                Ok(true) => "takes",
                Ok(false) => "does not take",
                Err(_) => "could not be probed for",
            }
        ),
        _ => format!("`{name}` (asked for with `SHMBUS_BENCH_STORAGE`)"),
    }
}

fn spawn_recorder(t: &Topic, store: &Path, cfg: RecorderConfig) -> RecorderHandle {
    Recorder::spawn(t, store, cfg).expect("recorder")
}

/// (a) the recorder: one publisher as fast as it can (batches of 16 records, so that
/// the publisher is not what is measured), until everything is persisted and on disk.
fn recorder_bandwidth(root: &Path, bytes: u64) -> (f64, &'static str, u64) {
    let d = Dirs::new(root, "bw");
    let t = bench_topic(&d.bus)
        .capacity(64 << 20)
        .open_or_create()
        .expect("create topic");
    let cfg = recorder_config(256 << 20);
    let rec = spawn_recorder(&t, &d.store, cfg);
    let mut p = t.publisher().expect("publisher");
    let payload = vec![0xa5u8; PAYLOAD];
    let n = bytes / RECORD;
    let batch: Vec<&[u8]> = vec![&payload[..]; 16];
    let t0 = Instant::now();
    let mut sent = 0;
    while sent < n {
        let k = (n - sent).min(batch.len() as u64) as usize;
        p.send_bytes_batch(1, &batch[..k]).expect("send");
        sent += k as u64;
    }
    let tail = t.tail();
    assert!(
        rec.wait_persisted(tail, Duration::from_secs(600)),
        "the recorder did not catch up"
    );
    // On disk, as the raw loop's last fdatasync.
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    let secs = t0.elapsed().as_secs_f64();
    let stats = rec.stop().expect("stop recorder");
    (bytes as f64 / secs, stats.storage, stats.segments)
}

struct Latencies {
    all: Histogram<u64>,
    rollover: Histogram<u64>,
    steady: Histogram<u64>,
    segments: usize,
    /// The timed sends took longer than their pace allows (a send waited, e.g. on a
    /// full ring): the run measured something else.
    late: bool,
    /// The CPU the publisher sent on, before and after the timed sends.
    cpus: (i32, i32),
    /// How often the scheduler moved the publisher's thread to another CPU, and took
    /// the CPU from it, during the timed sends (`/proc/thread-self/sched`; zeros where
    /// the kernel does not say).
    moves: u64,
    preempted: u64,
}

/// Who reads the topic in a latency run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rec {
    /// No recorder (nobody subscribed).
    None,
    /// In a process of its own (as `shmbus record` runs it): this bench again, with
    /// `SHMBUS_BENCH_ROLE=recorder`.
    Own,
    /// A thread of the publisher's process (`Recorder::spawn`).
    Thread,
    /// No recorder, but a plain subscriber in a process of its own that reads every
    /// record (a checksum of its bytes) once a millisecond: what any reader costs.
    Reader,
    /// That plain subscriber and the recorder in its own process: what the recorder
    /// adds to a topic that has a reader already.
    Both,
}

/// The reader process's side of [`Rec::Reader`]: read the topic until told the tail
/// (a line on stdin) and past it, then report (a line on stdout).
///
/// `SHMBUS_BENCH_READER_US` sets how often it looks (default 1000 µs);
/// `SHMBUS_BENCH_READER=tail` makes it look at the topic's tail only, without
/// subscribing or reading a record (what looking costs apart from reading).
fn reader_role(bus: &Path) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let every = Duration::from_micros(
        std::env::var("SHMBUS_BENCH_READER_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000),
    );
    let tail_only = std::env::var_os("SHMBUS_BENCH_READER").is_some_and(|v| v == "tail");
    let t = bench_topic(bus).open().expect("open topic");
    let mut sub = (!tail_only).then(|| t.subscriber().open().expect("subscriber"));
    let tail = Arc::new(AtomicU64::new(u64::MAX));
    let told = tail.clone();
    std::thread::spawn(move || told.store(read_tail(), Ordering::Relaxed));
    println!("ready");
    let mut sum = 0u32;
    loop {
        let at = match sub.as_mut() {
            Some(sub) => {
                while let Some(e) = sub.try_recv_bytes().expect("receive") {
                    sum ^= crc32c::crc32c(e.bytes());
                }
                sub.position()
            }
            None => t.tail(),
        };
        if at >= tail.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(every);
    }
    std::hint::black_box(sum);
    println!("done");
}

/// The recorder process's side of [`Rec::Own`]: record the topic until told the tail to
/// wait for (a line on stdin), then stop and report the segments (a line on stdout).
fn recorder_role(bus: &Path, store: &Path, segment_size: u64, name: &str) {
    let t = bench_topic(bus).open().expect("open topic");
    let rec = spawn_recorder(&t, store, latency_recorder_config(segment_size, name));
    println!("ready");
    assert!(rec.wait_persisted(read_tail(), Duration::from_secs(600)));
    rec.stop().expect("stop recorder");
    println!("done");
}

/// A peer's side of [`Peer::finish`]: the tail position, a line on stdin.
fn read_tail() -> u64 {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .expect("read tail");
    line.trim().parse().expect("tail position")
}

/// The recorder of a latency run: it joins at the tail (the publisher has been sending
/// since the first run), on a store of its own, under a name of its own (a durable
/// subscriber's name keeps its position, which the next run's recorder must not take).
fn latency_recorder_config(segment_size: u64, name: &str) -> RecorderConfig {
    RecorderConfig {
        start: shmbus::Start::Latest,
        name: name.to_owned(),
        ..recorder_config(segment_size)
    }
}

/// This bench again, in a process of its own, as the recorder or the reader of a
/// latency run, until [`Peer::finish`].
struct Peer {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Peer {
    fn recorder(bus: &Path, store: &Path, segment_size: u64, name: &str) -> Peer {
        let size = segment_size.to_string();
        Peer::start(
            "recorder",
            &[
                bus.as_os_str(),
                store.as_os_str(),
                size.as_ref(),
                name.as_ref(),
            ],
        )
    }

    /// This bench again as `role`, with `args`, once it says it is ready.
    fn start(role: &str, args: &[&std::ffi::OsStr]) -> Peer {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .env("SHMBUS_BENCH_ROLE", role)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start the {role} process: {e}"));
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("peer ready");
        assert_eq!(line.trim(), "ready", "the {role} process did not start");
        Peer { child, out }
    }

    fn finish(mut self, tail: u64) {
        use std::io::{BufRead, Write};
        let mut stdin = self.child.stdin.take().expect("stdin");
        writeln!(stdin, "{tail}").expect("tell the peer the tail");
        let mut line = String::new();
        self.out.read_line(&mut line).expect("peer done");
        assert_eq!(line.trim(), "done", "the peer process failed");
        assert!(self.child.wait().expect("wait").success());
    }
}

/// The publisher of (b), each on a topic of its own.
#[derive(Debug, Clone, Copy)]
enum PublisherKind {
    /// `Topic::exclusive_publisher`: a claim is a plain store, and a commit does not
    /// fence before it looks for sleeping subscribers (where the kernel has
    /// `membarrier`; sleepers issue the barrier instead).
    Exclusive,
    /// `Topic::publisher`: a claim is a compare-and-swap; the commit skips the fence
    /// where the kernel has `membarrier`, as the exclusive one's does.
    Shared,
}

impl PublisherKind {
    fn tag(self) -> &'static str {
        match self {
            PublisherKind::Exclusive => "lat-exclusive",
            PublisherKind::Shared => "lat-shared",
        }
    }
}

/// (b)/(c): one topic and one publisher for every latency run of a kind of publisher,
/// so that all its runs send into the same ring pages from the same process; only the
/// reader comes and goes.
struct LatencyBench {
    dirs: Dirs,
    topic: Topic,
    publisher: shmbus::Publisher,
    payload: Vec<u8>,
    /// Each send's time in one run, written through once before the first run.
    samples: Vec<u32>,
    rate: u64,
    segment_size: u64,
    runs: usize,
    /// The CPU to pin the publisher to while it sends (`SHMBUS_BENCH_PIN`, default 0).
    pin: Option<usize>,
}

impl LatencyBench {
    fn new(root: &Path, cfg: &Config, kind: PublisherKind) -> LatencyBench {
        let dirs = Dirs::new(root, kind.tag());
        // Each run's recorder leaves its name behind when it stops (a durable
        // subscriber's name holds its place for a restart); the next run's publisher
        // evicts it once it has been detached this long instead of the default 10 s, in
        // its untimed lead-in. A live recorder is never that far behind.
        let mut topic = bench_topic(&dirs.bus).consumer_timeout(Duration::from_millis(100));
        if let Some(kib) = std::env::var("SHMBUS_BENCH_RING_KIB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            topic = topic.capacity(kib << 10);
        }
        let topic = topic.open_or_create().expect("create topic");
        let publisher = match kind {
            PublisherKind::Exclusive => topic.exclusive_publisher(),
            PublisherKind::Shared => topic.publisher(),
        }
        .expect("publisher");
        LatencyBench {
            dirs,
            topic,
            publisher,
            payload: vec![0x3cu8; PAYLOAD],
            // Written through now: filling fresh pages while timing would put a page
            // fault (and its page-table update) every 1024 sends into a run.
            samples: vec![1; cfg.events as usize],
            rate: cfg.rate,
            segment_size: if cfg.quick { 16 << 20 } else { 64 << 20 },
            runs: 0,
            // Pinned by default, the same CPU for every kind of run: unpinned, the
            // scheduler put the publisher on another CPU from run to run (in the runs
            // with the recorder as a thread nearly always on the CPU that took the
            // disk's interrupts here) and sometimes moved it mid-run, so the kinds
            // differed in more than their reader.
            pin: match std::env::var("SHMBUS_BENCH_PIN").ok().as_deref() {
                Some("none") => None,
                Some(v) => Some(v.parse().expect("SHMBUS_BENCH_PIN: a CPU number or none")),
                None => Some(0),
            },
        }
    }

    /// `n` sends paced at the rate, each timed into `samples` if `timed`. Returns the
    /// position of the first, and whether the sends fell behind their pace by more
    /// than 10 ms.
    fn send(&mut self, n: usize, timed: bool) -> (u64, bool) {
        let gap = Duration::from_nanos(1_000_000_000 / self.rate);
        let mut first = 0;
        let mut last = 0;
        let start = Instant::now();
        for i in 0..n {
            let due = start + gap * i as u32;
            while Instant::now() < due {
                std::hint::spin_loop();
            }
            let s = Instant::now();
            last = self.publisher.send_bytes(1, &self.payload).expect("send");
            if timed {
                self.samples[i] = s.elapsed().as_nanos().min(u32::MAX as u128) as u32;
            }
            if i == 0 {
                first = last;
            }
        }
        assert_eq!(
            last,
            first + (n as u64 - 1) * RECORD,
            "one publisher, 1 KiB records"
        );
        (
            first,
            start.elapsed() > gap * n as u32 + Duration::from_millis(10),
        )
    }

    /// One run: start the recorder (or none), untimed sends while it joins and
    /// settles, the timed sends, then stop it once it has persisted them.
    fn run(&mut self, rec: Rec) -> Latencies {
        self.runs += 1;
        let name = format!("run-{}", self.runs);
        let store = self.dirs.store.join(&name);
        // The publisher's thread is pinned (`SHMBUS_BENCH_PIN`) for the sends only:
        // what starts the reader (a thread or a process) inherits no pinning.
        // `SHMBUS_BENCH_RECORDER_CPU=n` starts the recorder (thread or process) pinned
        // to CPU n, away from the publisher's.
        let rec_cpu = std::env::var("SHMBUS_BENCH_RECORDER_CPU")
            .ok()
            .and_then(|v| v.parse::<usize>().ok());
        let pinning = self.pin.is_some() || rec_cpu.is_some();
        if pinning {
            set_cpus(rec_cpu);
        }
        let thread = (rec == Rec::Thread).then(|| {
            spawn_recorder(
                &self.topic,
                &store,
                latency_recorder_config(self.segment_size, &name),
            )
        });
        let mut peers = Vec::new();
        if matches!(rec, Rec::Own | Rec::Both) {
            peers.push(Peer::recorder(
                &self.dirs.bus,
                &store,
                self.segment_size,
                &name,
            ));
        }
        if pinning {
            set_cpus(None);
        }
        if matches!(rec, Rec::Reader | Rec::Both) {
            peers.push(Peer::start("reader", &[self.dirs.bus.as_os_str()]));
        }
        if pinning {
            set_cpus(self.pin);
        }
        // Four laps untimed, none of which is what this measures. Before the first
        // run, the first touch of each page of the ring is a page fault (about 1.5 µs).
        // The send after the first lap may find the previous run's recorder name a full
        // ring behind, and waits until the name has been detached for the topic's
        // consumer timeout before evicting it: it is the last of its call, so the
        // pacing starts afresh after the wait instead of sending the overdue ones in a
        // burst. And the recorder has no rate to pace its looks by until it has seen
        // some records.
        let ring = self.topic.capacity();
        let lap = (ring / RECORD) as usize;
        self.send(lap + 1, false);
        self.send(3 * lap, false);
        let n = self.samples.len();
        // SAFETY: sched_getcpu takes no arguments and touches no memory of ours.
        let cpu_before = unsafe { libc::sched_getcpu() };
        let sched_before = sched_counts();
        let (first, late) = self.send(n, true);
        let sched_after = sched_counts();
        // SAFETY: as above.
        let cpus = (cpu_before, unsafe { libc::sched_getcpu() });
        let (moves, preempted) = (
            sched_after.0.saturating_sub(sched_before.0),
            sched_after.1.saturating_sub(sched_before.1),
        );
        if late {
            eprintln!("warning: a {rec:?} run fell behind its pace: a send waited");
        }
        let tail = self.topic.tail();
        if let Some(r) = thread {
            assert!(r.wait_persisted(tail, Duration::from_secs(600)));
            r.stop().expect("stop recorder");
        }
        for p in peers {
            p.finish(tail);
        }
        let bases: Vec<u64> = if matches!(rec, Rec::None | Rec::Reader) {
            Vec::new()
        } else {
            list_segments(&store.join("bench"))
                .expect("list segments")
                .iter()
                .skip(1)
                .map(|s| s.base)
                .collect()
        };
        let _ = std::fs::remove_dir_all(&store);
        let mut l = Latencies {
            all: histogram(),
            rollover: histogram(),
            steady: histogram(),
            segments: bases.len() + 1,
            late,
            cpus,
            moves,
            preempted,
        };
        for (i, &ns) in self.samples.iter().enumerate() {
            let (pos, ns) = (first + i as u64 * RECORD, u64::from(ns.max(1)));
            let near = bases.iter().any(|&b| pos + ring >= b && pos <= b + ring);
            l.all.record(ns).expect("record");
            if near {
                l.rollover.record(ns).expect("record");
            } else {
                l.steady.record(ns).expect("record");
            }
        }
        l
    }
}

/// The calling thread's migrations and involuntary context switches so far, from
/// `/proc/thread-self/sched` (zeros where it is missing).
fn sched_counts() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/thread-self/sched").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("se.nr_migrations"), field("nr_involuntary_switches"))
}

/// Pin the calling thread to `cpu`, or let it run on every CPU (`None`).
fn set_cpus(cpu: Option<usize>) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity
    // only read and write that local set; pid 0 is the calling thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        match cpu {
            Some(c) => libc::CPU_SET(c, &mut set),
            None => (0..libc::CPU_SETSIZE as usize).for_each(|c| libc::CPU_SET(c, &mut set)),
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        eprintln!(
            "warning: could not set the publisher's CPUs ({cpu:?}): {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The sends near a rollover and the rest, over `runs`.
fn near_and_rest<'a>(
    runs: impl Iterator<Item = &'a Latencies>,
) -> (Histogram<u64>, Histogram<u64>) {
    let (mut near, mut rest) = (histogram(), histogram());
    for l in runs {
        near.add(&l.rollover).expect("histogram");
        rest.add(&l.steady).expect("histogram");
    }
    (near, rest)
}

fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("histogram")
}

/// The clock's tick as the samples show it: the values that hold at least 0.1% of the
/// samples, grouped where they lie within 2 ns of each other (one tick reads as 25 or
/// 26 cycles of the time stamp counter on this VM, so 50 and 51 ns are the same five
/// ticks), and the smallest step between the groups' centres. Two `Instant::now` calls
/// in a row almost never show a single tick, so the samples are the better witness;
/// a clock with a finer tick than the samples' spread gives one group, and 1 ns.
fn clock_tick<'a>(hs: impl Iterator<Item = &'a Histogram<u64>>) -> f64 {
    let mut all = histogram();
    for h in hs {
        all.add(h).expect("histogram");
    }
    let floor = (all.len() / 1000).max(1);
    let mut groups: Vec<(f64, f64, u64)> = Vec::new(); // (last value, weighted sum, count)
    for v in all.iter_recorded().filter(|v| v.count_at_value() >= floor) {
        let (x, n) = (v.value_iterated_to() as f64, v.count_at_value());
        match groups.last_mut() {
            Some(g) if x - g.0 <= 2.0 => *g = (x, g.1 + x * n as f64, g.2 + n),
            _ => groups.push((x, x * n as f64, n)),
        }
    }
    groups
        .windows(2)
        .map(|w| w[1].1 / w[1].2 as f64 - w[0].1 / w[0].2 as f64)
        .min_by(f64::total_cmp)
        .unwrap_or(1.0)
}

/// The `p` quantile of `h` interpolated within the clock's tick: each recorded value
/// stands for samples spread evenly over the tick around it (values are binned by
/// `round(v / tick)`, since one tick reads as 25 or 26 cycles), so a tail that grows by
/// a few samples moves the quantile by part of a tick rather than a whole one.
fn qi(h: &Histogram<u64>, p: f64, tick: f64) -> f64 {
    let mut bins = std::collections::BTreeMap::<u64, u64>::new();
    for v in h.iter_recorded() {
        *bins
            .entry((v.value_iterated_to() as f64 / tick).round() as u64)
            .or_default() += v.count_at_value();
    }
    let want = p * h.len() as f64;
    let mut below = 0.0;
    for (&bin, &n) in &bins {
        let n = n as f64;
        if below + n >= want {
            return (bin as f64 - 0.5 + (want - below) / n) * tick;
        }
        below += n;
    }
    bins.keys().last().map_or(0.0, |&b| (b as f64 + 0.5) * tick)
}

/// The median of `v` (the upper one of an even count), which must not be empty.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn q(h: &Histogram<u64>, p: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(p)
    }
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench`-less test flags: skip.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    if std::env::var_os("SHMBUS_BENCH_ROLE").is_some_and(|r| r == "reader") {
        reader_role(Path::new(&std::env::args().nth(1).expect("bus")));
        return;
    }
    if std::env::var_os("SHMBUS_BENCH_ROLE").is_some_and(|r| r == "recorder") {
        let a: Vec<String> = std::env::args().collect();
        let size = a[3].parse().expect("segment size");
        recorder_role(Path::new(&a[1]), Path::new(&a[2]), size, &a[4]);
        return;
    }
    let cfg = Config::from_args();
    if cfg.only.as_deref() == Some("raw") {
        let raw_dir = Dirs::new(&cfg.store_root, "raw");
        let raw = raw_bandwidth(&raw_dir.store, cfg.bytes);
        println!("raw: {:.0} MB/s", raw / 1e6);
        if let Some(d) = direct_bandwidth(&raw_dir.store, cfg.bytes) {
            println!("O_DIRECT: {:.0} MB/s", d / 1e6);
        }
        return;
    }
    if cfg.only.as_deref() == Some("bandwidth") {
        let (bw, storage, segs) = recorder_bandwidth(&cfg.store_root, cfg.bytes);
        println!(
            "recorder: {:.0} MB/s ({storage}, {segs} segments)",
            bw / 1e6
        );
        return;
    }
    if cfg.only.as_deref() == Some("latency") {
        let l = LatencyBench::new(&cfg.store_root, &cfg, PublisherKind::Exclusive).run(Rec::Thread);
        println!(
            "with the recorder: p50 {} ns, p99 {} ns, p99.9 {} ns",
            q(&l.all, 0.5),
            q(&l.all, 0.99),
            q(&l.all, 0.999)
        );
        return;
    }
    let rounds_only = cfg.only.as_deref() == Some("rounds");
    let storage = storage_label(&cfg.store_root);
    let (raws, direct, recbws, segs) = if rounds_only {
        (vec![0.0], None, vec![0.0], 0)
    } else {
        let raw_dir = Dirs::new(&cfg.store_root, "raw");
        eprintln!("store bench: O_DIRECT bandwidth...");
        let direct = direct_bandwidth(&raw_dir.store, cfg.bytes);
        // Two rounds of the raw loop and the recorder, alternating: the first write
        // of a run of fresh pages is slow on this VM (its memory comes back from the
        // host on first touch: a 2 GiB `dd` ran at 0.5, then 1.3, then 2.7 GB/s),
        // so whichever ran first paid for it.
        let (mut raws, mut recbws, mut segs) = (vec![], vec![], 0);
        for round in 1..=2 {
            eprintln!(
                "store bench: raw bandwidth ({} MiB, {round}/2)...",
                cfg.bytes >> 20
            );
            raws.push(raw_bandwidth(&raw_dir.store, cfg.bytes));
            eprintln!("store bench: recorder bandwidth ({round}/2)...");
            let bw;
            (bw, _, segs) = recorder_bandwidth(&cfg.store_root, cfg.bytes);
            recbws.push(bw);
        }
        drop(raw_dir);
        (raws, direct, recbws, segs)
    };
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (raw, recbw) = (best(&raws), best(&recbws));
    let shown = |v: &[f64]| {
        v.iter()
            .map(|b| format!("{:.0}", b / 1e6))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // (b) in rounds: each round runs every kind of reader once with each publisher,
    // the order rotating from round to round, so drift in the machine falls on every
    // kind; each figure is the median over the rounds, and each ratio is given per
    // round too.
    let rounds = std::env::var("SHMBUS_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(if cfg.quick { 2 } else { 10 });
    let publishers = [PublisherKind::Exclusive, PublisherKind::Shared];
    let mut benches = publishers.map(|p| LatencyBench::new(&cfg.store_root, &cfg, p));
    let mut runs: [[Vec<Latencies>; 5]; 2] = Default::default();
    for i in 0..rounds {
        for b in [i % 2, 1 - i % 2] {
            for k in 0..KINDS.len() {
                let kind = (i + k) % KINDS.len();
                eprintln!(
                    "store bench: send latency, {:?} publisher, {:?} ({}/{rounds})...",
                    publishers[b],
                    KINDS[kind],
                    i + 1
                );
                runs[b][kind].push(benches[b].run(KINDS[kind]));
            }
        }
    }
    let (ring, pin) = (benches[0].topic.capacity(), benches[0].pin);
    drop(benches);

    let mb = |b: f64| b / 1e6;
    let mut md = String::new();
    md.push_str("### Store: recorder versus the disk\n\n");
    md.push_str(&format!(
        "Store directory `{}`, fsync at most once a second, storage backend {storage}{}.\n\n",
        cfg.store_root.display(),
        if cfg.quick { ", `--quick`" } else { "" }
    ));
    if !rounds_only {
        md.push_str("| (a) sequential write bandwidth | MB/s |\n|---|---:|\n");
        md.push_str(&format!(
            "| raw: 256 KiB `pwrite` loop, {} MiB, the better of two runs ({}) | {:.0} |\n",
            cfg.bytes >> 20,
            shown(&raws),
            mb(raw)
        ));
        md.push_str(&format!(
            "| recorder: 1 KiB records, one publisher at full speed ({segs} segments), the better of two runs ({}) | {:.0} |\n",
            shown(&recbws),
            mb(recbw)
        ));
        md.push_str(&format!(
            "| ratio recorder / raw | **{:.2}** (target ≥ 0.9) |\n",
            recbw / raw
        ));
        match direct {
        Some(d) => md.push_str(&format!(
            "| the device: 1 MiB `O_DIRECT` writes, no page cache | {:.0} |\n| ratio recorder / `O_DIRECT` | {:.2} |\n\n",
            mb(d),
            recbw / d
        )),
        None => md.push_str("| the device: `O_DIRECT` refused by this file system | |\n\n"),
    }
    }
    for (p, runs) in publishers.iter().zip(&runs) {
        let tick = clock_tick(runs.iter().flatten().map(|l| &l.all));
        latency_report(&mut md, *p, runs, ring, pin, tick, &cfg);
    }
    println!("{md}");
    if let Some(p) = &cfg.markdown_out {
        std::fs::write(p, &md).expect("write --markdown-out file");
    }
}

/// The kinds of reader of (b), in the order of their runs in a round.
const KINDS: [Rec; 5] = [Rec::None, Rec::Own, Rec::Thread, Rec::Reader, Rec::Both];

/// (b) and (c) of one publisher's runs (by kind of reader, in the order of [`KINDS`]),
/// as Markdown.
fn latency_report(
    md: &mut String,
    publisher: PublisherKind,
    runs: &[Vec<Latencies>; 5],
    ring: u64,
    pin: Option<usize>,
    tick: f64,
    cfg: &Config,
) {
    let rounds = runs[0].len();
    let [bases, owns, threads, readers, boths] = runs;
    let late: usize = runs.iter().flatten().filter(|l| l.late).count();
    // The median over `runs` of each run's `p` quantile.
    let median_q =
        |runs: &[Latencies], p: f64| median(runs.iter().map(|l| q(&l.all, p) as f64).collect());
    // Each run's figure with the CPU the publisher sent on (`a→b` if it ended on
    // another), and how often it was moved (`m`) and preempted (`p`) if at all.
    let list = |runs: &[Latencies], p: f64| {
        runs.iter()
            .map(|l| {
                let cpus = match l.cpus {
                    (a, b) if a == b => format!("{a}"),
                    (a, b) => format!("{a}→{b}"),
                };
                let sched = match (l.moves, l.preempted) {
                    (0, 0) => String::new(),
                    (m, p) => format!(" ({m}m {p}p)"),
                };
                format!("{}@{cpus}{sched}", q(&l.all, p))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    // The median over `runs` of each run's p99 interpolated within the clock's tick.
    let median_i =
        |runs: &[Latencies]| median(runs.iter().map(|l| qi(&l.all, 0.99, tick)).collect());
    let ratio = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
    // The interpolated p99 ratio of each round to `bases`, and their median.
    let per_round = |withs: &[Latencies], bases: &[Latencies]| {
        let v: Vec<f64> = bases
            .iter()
            .zip(withs)
            .map(|(b, w)| ratio(qi(&w.all, 0.99, tick), qi(&b.all, 0.99, tick)))
            .collect();
        let shown = v
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ");
        (shown, median(v))
    };
    let (rollover, steady) = near_and_rest(owns.iter().chain(threads));
    let segments = owns.last().map_or(0, |l| l.segments);

    md.push_str(&format!(
        "(b) {}: `send_bytes` latency, 1 KiB events paced at {} events/s, {} events per \
         run after four untimed laps of the ring, one {} KiB ring and this publisher for \
         all its runs ({}); {rounds} rounds of five runs (no reader at all; the recorder in its \
         own process; the recorder as a thread of the publisher's process; for reference, \
         no recorder but a plain subscriber in its own process reading every record each \
         millisecond; and that subscriber with the recorder in its own process beside \
         it), the order rotating; medians over the rounds. p99 of each run, @ the CPU \
         the publisher sent on (and how often the scheduler moved it, m, and preempted \
         it, p, while it sent): without {}; own process {}; thread {}; plain subscriber \
         {}; subscriber and recorder {}.{} The clock ticks every {tick:.1} ns here (as \
         the samples show it), so a p99 of a few ticks can only move a whole tick at a \
         time (50 → 60 ns is 1.2×); the ratios in bold compare each run's p99 \
         interpolated within the tick (every recorded value standing for samples spread \
         evenly over the tick around it), and the raw p99 ratio is given beside them.\n\n",
        match publisher {
            PublisherKind::Exclusive => {
                "The exclusive publisher (`Topic::exclusive_publisher`: its claim is a plain \
                 store, and its commit does not fence where the kernel has `membarrier`)"
            }
            PublisherKind::Shared => {
                "A shared publisher (`Topic::publisher`: its claim is a compare-and-swap, \
                 and its commit does not fence where the kernel has `membarrier`)"
            }
        },
        cfg.rate,
        cfg.events,
        ring >> 10,
        match pin {
            Some(c) => format!("pinned to CPU {c} while it sends"),
            None => "not pinned".to_owned(),
        },
        list(bases, 0.99),
        list(owns, 0.99),
        list(threads, 0.99),
        list(readers, 0.99),
        list(boths, 0.99),
        if late > 0 {
            format!(
                " **{late} runs fell behind their pace** (a send waited; see the \
                 warnings): their figures are not comparable."
            )
        } else {
            String::new()
        }
    ));
    md.push_str("| | p50 | p99 | p99 interpolated | p99.9 |\n|---|---:|---:|---:|---:|\n");
    for (name, runs) in [
        ("without a recorder (no reader at all)", bases),
        ("the recorder in its own process", owns),
        (
            "the recorder as a thread of the publisher's process",
            threads,
        ),
        (
            "no recorder, a plain subscriber in its own process",
            readers,
        ),
        (
            "that plain subscriber and the recorder in its own process",
            boths,
        ),
    ] {
        md.push_str(&format!(
            "| {name} | {:.0} ns | {:.0} ns | {:.1} ns | {:.0} ns |\n",
            median_q(runs, 0.5),
            median_q(runs, 0.99),
            median_i(runs),
            median_q(runs, 0.999)
        ));
    }
    let target = " (target ≤ 1.1)";
    let withs = [
        ("own process / without", owns, bases, target),
        ("thread / without", threads, bases, target),
        ("plain subscriber / without", readers, bases, ""),
        (
            "subscriber and recorder / subscriber alone",
            boths,
            readers,
            " (what the recorder adds to a reader)",
        ),
    ];
    for (name, withs, bases, target) in withs {
        let r = |p: f64| ratio(median_q(withs, p), median_q(bases, p));
        md.push_str(&format!(
            "| ratio, {name} | {:.2} | {:.2} | **{:.2}**{target} | {:.2} |\n",
            r(0.5),
            r(0.99),
            ratio(median_i(withs), median_i(bases)),
            r(0.999)
        ));
    }
    md.push('\n');
    for (name, withs, bases, _) in withs {
        let (shown, med) = per_round(withs, bases);
        md.push_str(&format!(
            "p99 ratio (interpolated) in each round, {name}: {shown} (median {med:.2}).\n"
        ));
    }
    md.push('\n');
    md.push_str(&format!(
        "(c) {publisher:?} publisher, with the recorder ({} runs, {} segments in the last): p99.9 of sends within one \
         ring capacity of a segment rollover {} ns ({} sends), elsewhere {} ns ({} sends).\n",
        owns.len() + threads.len(),
        segments,
        q(&rollover, 0.999),
        rollover.len(),
        q(&steady, 0.999),
        steady.len()
    ));
    for (name, withs) in [("own process", owns), ("thread", threads)] {
        let (near, rest) = near_and_rest(withs.iter());
        md.push_str(&format!(
            "{name}: p99 / p99.9 near a rollover {} / {} ns, elsewhere {} / {} ns.\n",
            q(&near, 0.99),
            q(&near, 0.999),
            q(&rest, 0.99),
            q(&rest, 0.999)
        ));
    }
    md.push('\n');
}
