//! Soak: producers, subscribers and a recorder as separate processes, SIGKILLed and
//! restarted at random on a schedule, then a check that nothing was lost or duplicated.
//!
//! ```text
//! cargo run --release --example soak -- --duration 60s [--producers 3] [--seed 1] [--rate 4000]
//! ```
//!
//! Participants (each a process re-running this binary with a role):
//! - `--producers` producers, killed and restarted. Each incarnation numbers its events
//!   0, 1, 2, … and logs the last number `send` returned for (flushed every 256
//!   events). An event is **committed** once `send` returned; a producer killed
//!   mid-send may have committed events past its log, so past the logged number events
//!   may or may not appear, but always as a prefix: 0..=M with M ≥ the logged number.
//! - two anonymous subscribers never killed (one blocking, one spinning), started at
//!   the first record: each must receive, for every producer incarnation, exactly
//!   0..=M in order, and both must see the same total order.
//! - two named subscribers (blocking and spinning, manual commit after their log is
//!   written), killed and restarted: a restart resumes at the committed position and
//!   the log is cut back to it, so the same exactly-once check applies.
//! - an anonymous subscriber killed and restarted (not checked: it joins at the tail).
//! - a recorder (`shmbus::store::Recorder` in its own process), killed and restarted;
//!   at the end a final recorder catches up and the segments must hold exactly the
//!   total order the subscribers saw, each record once.
//!
//! At the end: no ring file or temporary left in the bus directory, no slot owned by a
//! live process, a new publisher and subscriber can attach, every segment verifies,
//! and no preallocated segment is left. Exit code 0 only if all of it holds.

use std::collections::HashMap;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shmbus::store::{list_segments, verify_topic, Recorder, RecorderConfig, SegmentReader};
use shmbus::{Bus, Start, Topic, Wait};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const TOPIC: &str = "soak";
const ENV_ROLE: &str = "SHMBUS_SOAK_ROLE";
const ENV_DIR: &str = "SHMBUS_SOAK_DIR";
const ENV_ARG: &str = "SHMBUS_SOAK_ARG";
const ENV_RATE: &str = "SHMBUS_SOAK_RATE";
const PAYLOAD: usize = 24;
const REC_NAME: &str = "soak-recorder";

fn main() {
    if let Err(e) = run(std::env::args().skip(1).collect()) {
        let role = std::env::var(ENV_ROLE).unwrap_or_else(|_| "soak".into());
        eprintln!("{role} (pid {}): error: {e}", std::process::id());
        std::process::exit(1);
    }
}

/// Run the soak with `args`, or this process's child role if it is one. Returns the
/// summary line. (Also used by `tests/soak.rs`, which includes this file.)
pub fn run(args: Vec<String>) -> Res<String> {
    match std::env::var(ENV_ROLE).as_deref() {
        Ok("producer") => producer().map(|()| String::new()),
        Ok("subscriber") => subscriber().map(|()| String::new()),
        Ok("recorder") => recorder().map(|()| String::new()),
        Ok(other) => Err(format!("unknown role {other}").into()),
        Err(_) => soak(args),
    }
}

/// Whether this process is one of the soak's children.
pub fn is_child() -> bool {
    std::env::var_os(ENV_ROLE).is_some()
}

fn dir() -> PathBuf {
    PathBuf::from(std::env::var(ENV_DIR).unwrap_or_default())
}

fn open_topic(dir: &Path) -> Res<Topic> {
    Ok(Bus::open_dir(dir.join("bus"))?
        .topic(TOPIC)
        .capacity(1 << 20)
        .unblock_timeout(Duration::from_millis(100))
        .consumer_timeout(Duration::from_secs(2))
        .hold_named(true)
        .open_or_create()?)
}

fn checksum(p: u32, inc: u32, seq: u64) -> u64 {
    shmbus::schema::fnv1a64(&[p.to_le_bytes(), inc.to_le_bytes()].concat())
        ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// (producer, incarnation, seq) of a payload, if its checksum holds.
fn decode(b: &[u8]) -> Option<(u32, u32, u64)> {
    if b.len() != PAYLOAD {
        return None;
    }
    let p = u32::from_le_bytes(b[0..4].try_into().ok()?);
    let inc = u32::from_le_bytes(b[4..8].try_into().ok()?);
    let seq = u64::from_le_bytes(b[8..16].try_into().ok()?);
    let sum = u64::from_le_bytes(b[16..24].try_into().ok()?);
    (sum == checksum(p, inc, seq)).then_some((p, inc, seq))
}

// ---- children ------------------------------------------------------------------------

/// Arg: `<producer id>:<incarnation>`. Logs `<incarnation> <last committed seq>` lines.
fn producer() -> Res<()> {
    let arg = std::env::var(ENV_ARG)?;
    let (p, inc) = arg.split_once(':').ok_or("bad producer arg")?;
    let (p, inc): (u32, u32) = (p.parse()?, inc.parse()?);
    let rate: u64 = std::env::var(ENV_RATE)?.parse()?;
    let topic = open_topic(&dir())?;
    let mut publisher = topic.publisher()?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir().join(format!("producer-{p}.log")))?;
    let t0 = Instant::now();
    let mut seq = 0u64;
    loop {
        let mut b = [0u8; PAYLOAD];
        b[0..4].copy_from_slice(&p.to_le_bytes());
        b[4..8].copy_from_slice(&inc.to_le_bytes());
        b[8..16].copy_from_slice(&seq.to_le_bytes());
        b[16..24].copy_from_slice(&checksum(p, inc, seq).to_le_bytes());
        publisher.send_bytes(1, &b)?;
        if seq % 256 == 255 {
            writeln!(log, "{inc} {seq}")?;
        }
        seq += 1;
        if dir().join("stop-producers").exists() && seq % 256 == 0 {
            writeln!(log, "{inc} {}", seq - 1)?;
            return Ok(());
        }
        // Pace: `rate` events per second.
        let due = Duration::from_micros(seq * 1_000_000 / rate.max(1));
        if let Some(d) = due.checked_sub(t0.elapsed()) {
            std::thread::sleep(d);
        }
    }
}

/// Arg: `<name>:<wait>:<log?>` (name `-` for anonymous; wait `block` or `spin`).
/// Logs 24-byte records (position, producer, incarnation, seq).
fn subscriber() -> Res<()> {
    let arg = std::env::var(ENV_ARG)?;
    let parts: Vec<&str> = arg.split(':').collect();
    let (name, wait, logged) = (parts[0], parts[1], parts[2] == "log");
    let topic = open_topic(&dir())?;
    let mut b = topic
        .subscriber()
        .start(Start::Earliest)
        .wait(if wait == "spin" {
            Wait::Spin
        } else {
            Wait::Block
        });
    let named = name != "-";
    if named {
        b = b.named(name).manual_commit(true);
    }
    let mut sub = b.open()?;
    let log_path = dir().join(format!("sub-{}.log", if named { name } else { wait }));
    if named && logged {
        // Cut the log back to the committed position: what follows is redelivered.
        let mut bytes = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&log_path) {
            f.read_to_end(&mut bytes)?;
        }
        let keep = bytes
            .chunks_exact(24)
            .take_while(|c| u64::from_le_bytes(c[0..8].try_into().unwrap()) < sub.position())
            .count()
            * 24;
        // One ftruncate: a kill during it leaves the log either whole or cut.
        if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&log_path) {
            f.set_len(keep as u64)?;
        }
    }
    let mut log = logged
        .then(|| -> Res<_> {
            Ok(BufWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log_path)?,
            ))
        })
        .transpose()?;
    let mut n = 0u64;
    loop {
        let stop = std::fs::read_to_string(dir().join("stop-subscribers"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if stop.is_some_and(|t| sub.position() >= t) {
            break;
        }
        let got = sub.recv_bytes_timeout(Duration::from_millis(50))?;
        if let Some(ev) = got {
            let (p, inc, seq) =
                decode(ev.bytes()).ok_or_else(|| format!("bad payload at {}", ev.position()))?;
            if let Some(l) = log.as_mut() {
                l.write_all(&ev.position().to_le_bytes())?;
                l.write_all(&p.to_le_bytes())?;
                l.write_all(&inc.to_le_bytes())?;
                l.write_all(&seq.to_le_bytes())?;
            }
            n += 1;
        }
        if named && (n % 64 == 0 || got.is_none()) {
            if let Some(l) = log.as_mut() {
                l.flush()?;
            }
            sub.commit();
        }
    }
    if let Some(l) = log.as_mut() {
        l.flush()?;
    }
    sub.commit();
    Ok(())
}

fn rec_config() -> RecorderConfig {
    RecorderConfig {
        name: REC_NAME.into(),
        segment_size: 4 << 20,
        ..RecorderConfig::default()
    }
}

fn recorder() -> Res<()> {
    let topic = open_topic(&dir())?;
    let rec = Recorder::spawn(&topic, dir().join("store"), rec_config())?;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        for e in rec.take_errors() {
            eprintln!("recorder: {e}");
        }
        if rec.is_finished() {
            return Err("recorder thread ended".into());
        }
    }
}

// ---- the orchestrator ----------------------------------------------------------------------

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Part {
    label: String,
    role: &'static str,
    arg: String,
    killable: bool,
    child: Option<Child>,
    incarnation: u32,
    kills: u64,
}

/// However the soak ends, no participant outlives it.
impl Drop for Part {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(dir: &Path, role: &str, arg: &str, rate: u64) -> Res<Child> {
    Ok(Command::new(std::env::current_exe()?)
        .env(ENV_ROLE, role)
        .env(ENV_DIR, dir)
        .env(ENV_ARG, arg)
        .env(ENV_RATE, rate.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?)
}

fn parse_duration(s: &str) -> Res<Duration> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse()?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        _ => return Err(format!("bad duration {s}").into()),
    })
}

struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        if std::env::var_os("SHMBUS_SOAK_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn soak(args: Vec<String>) -> Res<String> {
    let mut duration = Duration::from_secs(60);
    let (mut producers, mut seed, mut rate) = (3u32, 1u64, 4000u64);
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        let v = args.next().ok_or(format!("{a} needs a value"))?;
        match a.as_str() {
            "--duration" => duration = parse_duration(&v)?,
            "--producers" => producers = v.parse()?,
            "--seed" => seed = v.parse()?,
            "--rate" => rate = v.parse()?,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("shmbus-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = Cleanup(dir.clone());
    let topic = open_topic(&dir)?;
    let mut rng = Rng(seed.max(1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut parts = Vec::new();
    let mut add = |label: String, role, arg: String, killable| {
        parts.push(Part {
            label,
            role,
            arg,
            killable,
            child: None,
            incarnation: 0,
            kills: 0,
        })
    };
    add("recorder".into(), "recorder", String::new(), true);
    add(
        "sub-block".into(),
        "subscriber",
        "-:block:log".into(),
        false,
    );
    add("sub-spin".into(), "subscriber", "-:spin:log".into(), false);
    add(
        "named-block".into(),
        "subscriber",
        "named-block:block:log".into(),
        true,
    );
    add(
        "named-spin".into(),
        "subscriber",
        "named-spin:spin:log".into(),
        true,
    );
    add(
        "anon-killable".into(),
        "subscriber",
        "-:block:nolog".into(),
        true,
    );
    for p in 0..producers {
        add(format!("producer-{p}"), "producer", format!("{p}:"), true);
    }
    // Subscribers and the recorder first, so they start at the first record.
    for part in parts.iter_mut().filter(|p| p.role != "producer") {
        part.child = Some(spawn(&dir, part.role, &part.arg, rate)?);
    }
    let attached = Instant::now();
    while topic.subscribers().len() < 6 {
        if attached.elapsed() > Duration::from_secs(30) {
            return Err("subscribers did not attach".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for part in parts.iter_mut().filter(|p| p.role == "producer") {
        let arg = format!("{}0", part.arg);
        part.child = Some(spawn(&dir, part.role, &arg, rate)?);
    }
    println!(
        "soak: {} participants, {duration:?}, dir {}",
        parts.len(),
        dir.display()
    );
    let t0 = Instant::now();
    let mut kills = 0u64;
    while t0.elapsed() < duration {
        std::thread::sleep(Duration::from_millis(100 + rng.below(300)));
        // A participant that died by itself is a failure.
        for part in &mut parts {
            if let Some(c) = part.child.as_mut() {
                if let Some(st) = c.try_wait()? {
                    return Err(format!("{} exited on its own: {st}", part.label).into());
                }
            }
        }
        let killable: Vec<usize> = (0..parts.len()).filter(|&i| parts[i].killable).collect();
        let i = killable[rng.below(killable.len() as u64) as usize];
        let part = &mut parts[i];
        if let Some(mut c) = part.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGKILL) };
            c.wait()?;
            kills += 1;
            part.kills += 1;
        }
        std::thread::sleep(Duration::from_millis(rng.below(200)));
        part.incarnation += 1;
        let arg = if part.role == "producer" {
            format!("{}{}", part.arg, part.incarnation)
        } else {
            part.arg.clone()
        };
        part.child = Some(spawn(&dir, part.role, &arg, rate)?);
    }
    // Wind down: producers stop at a logged boundary, then subscribers drain to the tail.
    std::fs::write(dir.join("stop-producers"), "")?;
    for part in parts.iter_mut().filter(|p| p.role == "producer") {
        let st = part.child.take().ok_or("no producer")?.wait()?;
        if !st.success() {
            return Err(format!("{} failed: {st}", part.label).into());
        }
    }
    let tail = topic.tail();
    std::fs::write(dir.join("stop-subscribers"), tail.to_string())?;
    for part in parts.iter_mut().filter(|p| p.role == "subscriber") {
        let st = part.child.take().ok_or("no subscriber")?.wait()?;
        if !st.success() {
            return Err(format!("{} failed: {st}", part.label).into());
        }
    }
    for part in parts.iter_mut().filter(|p| p.role == "recorder") {
        let mut c = part.child.take().ok_or("no recorder")?;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGKILL) };
        c.wait()?;
    }
    // A final recorder catches up and seals.
    let rec = Recorder::spawn(&topic, dir.join("store"), rec_config())?;
    if !rec.wait_persisted(tail, Duration::from_secs(120)) {
        return Err(format!(
            "recorder persisted only up to {} of {tail}",
            rec.persisted()
        )
        .into());
    }
    rec.stop()?;
    let report = verify(&dir, &topic, producers)?;
    let per: Vec<String> = parts
        .iter()
        .filter(|p| p.kills > 0)
        .map(|p| format!("{}={}", p.label, p.kills))
        .collect();
    let summary = format!(
        "soak: OK: {duration:?}, {kills} SIGKILLs ({}), {report}",
        per.join(" ")
    );
    println!("{summary}");
    Ok(summary)
}

/// The logged (position, producer, incarnation, seq) records of a subscriber.
fn read_log(path: &Path) -> Res<Vec<(u64, u32, u32, u64)>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes
        .chunks_exact(24)
        .map(|c| {
            (
                u64::from_le_bytes(c[0..8].try_into().unwrap()),
                u32::from_le_bytes(c[8..12].try_into().unwrap()),
                u32::from_le_bytes(c[12..16].try_into().unwrap()),
                u64::from_le_bytes(c[16..24].try_into().unwrap()),
            )
        })
        .collect())
}

/// Check a stream: positions increase, each (producer, incarnation) is 0..=M in order
/// with M at least the logged committed seq. Returns the number of events.
fn check_stream(
    what: &str,
    s: &[(u64, u32, u32, u64)],
    committed: &HashMap<(u32, u32), u64>,
) -> Res<u64> {
    let mut next: HashMap<(u32, u32), u64> = HashMap::new();
    let mut last_pos = None;
    for &(pos, p, inc, seq) in s {
        if last_pos.is_some_and(|l| pos <= l) {
            return Err(format!("{what}: position {pos} after {last_pos:?}").into());
        }
        last_pos = Some(pos);
        let n = next.entry((p, inc)).or_insert(0);
        if seq != *n {
            return Err(
                format!("{what}: producer {p}.{inc} seq {seq}, expected {n} (at {pos})").into(),
            );
        }
        *n += 1;
    }
    for (&(p, inc), &c) in committed {
        let got = next.get(&(p, inc)).copied().unwrap_or(0);
        if got <= c {
            return Err(
                format!("{what}: producer {p}.{inc} committed up to {c}, delivered {got}").into(),
            );
        }
    }
    Ok(s.len() as u64)
}

fn verify(dir: &Path, topic: &Topic, producers: u32) -> Res<String> {
    // Committed: the last logged seq of every incarnation.
    let mut committed = HashMap::new();
    for p in 0..producers {
        let log =
            std::fs::read_to_string(dir.join(format!("producer-{p}.log"))).unwrap_or_default();
        for l in log.lines() {
            let mut it = l.split_whitespace();
            if let (Some(inc), Some(seq)) = (it.next(), it.next()) {
                if let (Ok(inc), Ok(seq)) = (inc.parse::<u32>(), seq.parse::<u64>()) {
                    let e = committed.entry((p, inc)).or_insert(seq);
                    *e = (*e).max(seq);
                }
            }
        }
    }
    let block = read_log(&dir.join("sub-block.log"))?;
    let mut total = check_stream("sub-block", &block, &committed)?;
    for name in ["sub-spin", "sub-named-block", "sub-named-spin"] {
        let s = read_log(&dir.join(format!("{name}.log")))?;
        total += check_stream(name, &s, &committed)?;
        if s != block {
            return Err(format!(
                "{name} saw another stream than sub-block ({} vs {} events)",
                s.len(),
                block.len()
            )
            .into());
        }
    }
    // The store: the same stream, each record once.
    let sdir = dir.join("store").join(TOPIC);
    for c in verify_topic(&sdir)? {
        if let Some(e) = c.error {
            return Err(format!("segment {}: {e}", c.path.display()).into());
        }
    }
    let mut stored = Vec::new();
    let segs = list_segments(&sdir)?;
    for s in &segs {
        if !s.idx_path().exists() {
            return Err(format!("{} has no index", s.path.display()).into());
        }
        for r in SegmentReader::open(&s.path)?.iter() {
            let r = r?;
            let (p, inc, seq) = decode(r.bytes).ok_or("bad stored payload")?;
            stored.push((r.position, p, inc, seq));
        }
    }
    check_stream("store", &stored, &committed)?;
    if stored != block {
        return Err(format!(
            "the store holds another stream ({} vs {} events)",
            stored.len(),
            block.len()
        )
        .into());
    }
    // Leaks: files, slots.
    let mut names: Vec<String> = std::fs::read_dir(dir.join("bus"))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    if names != [format!("{TOPIC}.ring")] {
        return Err(format!("bus directory holds {names:?}").into());
    }
    for e in std::fs::read_dir(&sdir)? {
        let n = e?.file_name().to_string_lossy().into_owned();
        if !(n.ends_with(".seg") || n.ends_with(".idx") || n == ".lock") {
            return Err(format!("store holds a leftover {n}").into());
        }
    }
    let live_p = topic.producers().iter().filter(|p| p.alive).count();
    let live_s = topic.subscribers().iter().filter(|s| s.alive).count();
    if live_p + live_s != 0 {
        return Err(format!(
            "{live_p} producer and {live_s} subscriber slots still owned by live processes"
        )
        .into());
    }
    let dead_p = topic.producers().len();
    drop(topic.publisher()?);
    drop(topic.subscriber().open()?);
    Ok(format!(
        "{} incarnations, {} events in one total order verified in 4 subscribers ({total} deliveries) and {} segments; {dead_p} producer slots of killed processes awaiting reuse",
        committed.len(),
        block.len(),
        segs.len()
    ))
}
