//! The whole bus in one command: real processes on one machine.
//!
//! ```text
//! cargo run --release --example demo [-- --count 200000 --publishers 2]
//! ```
//!
//! The demo process creates a bus under `/dev/shm` and a store under the temp dir,
//! creates the topic `ticks` and runs a [`Recorder`] that persists it. It then starts
//! itself again (`std::env::current_exe()`, role chosen by an environment variable) as
//! one subscriber process and `--publishers` publisher processes that each publish
//! `--count` ticks. The subscriber checks that it received every event and each
//! publisher's events in order; the demo then stops the recorder (sealing the last
//! segment), verifies every segment on disk, prints a summary and removes both
//! directories. Any mismatch makes the exit code non-zero.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{open_topic, publish, rate, receive, subscriber, Args, Res};
use shmbus::store::{verify_topic, Fsync, Recorder, RecorderConfig};

const USAGE: &str = "demo [--count N (per publisher, default 200000)] [--publishers P (default 2)]";
const TOPIC: &str = "ticks";
const SUBSCRIBER: &str = "demo-subscriber";
/// How long the children may take, all together.
const RUN_LIMIT: Duration = Duration::from_secs(120);

// Environment of the child processes.
const ENV_ROLE: &str = "SHMBUS_DEMO_ROLE";
const ENV_BUS: &str = "SHMBUS_DEMO_BUS";
const ENV_COUNT: &str = "SHMBUS_DEMO_COUNT";
const ENV_SYMBOL: &str = "SHMBUS_DEMO_SYMBOL";

fn main() {
    let r = match std::env::var(ENV_ROLE).as_deref() {
        Ok("publisher") => child_publisher(),
        Ok("subscriber") => child_subscriber(),
        Ok(other) => Err(format!("unknown {ENV_ROLE} `{other}`").into()),
        Err(_) => demo(),
    };
    if let Err(e) = r {
        let role = std::env::var(ENV_ROLE).unwrap_or_else(|_| "demo".into());
        eprintln!("{role} (pid {}): error: {e}", std::process::id());
        std::process::exit(1);
    }
}

fn env(key: &str) -> Res<String> {
    std::env::var(key).map_err(|_| format!("{key} is not set").into())
}

// ---- child processes ----------------------------------------------------------------

fn child_publisher() -> Res<()> {
    let topic = open_topic(Path::new(&env(ENV_BUS)?), TOPIC)?;
    let r = publish(&topic, &env(ENV_SYMBOL)?, env(ENV_COUNT)?.parse()?)?;
    // The one line the demo process reads.
    println!("events={} ns={}", r.events, r.elapsed.as_nanos());
    Ok(())
}

fn child_subscriber() -> Res<()> {
    let topic = open_topic(Path::new(&env(ENV_BUS)?), TOPIC)?;
    let mut sub = subscriber(&topic, SUBSCRIBER)?;
    let r = receive(&mut sub, env(ENV_COUNT)?.parse()?)?;
    println!("events={} ns={}", r.events, r.elapsed.as_nanos());
    for (symbol, n) in &r.per_symbol {
        println!("symbol={symbol} events={n}");
    }
    println!("first={}", r.first_json);
    Ok(())
}

// ---- the demo process ---------------------------------------------------------------

/// Removes the demo's directories however the demo ends.
struct TempDirs(Vec<PathBuf>);

impl Drop for TempDirs {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

struct Proc {
    label: String,
    child: Child,
    status: Option<ExitStatus>,
}

/// The child processes; any still running when this is dropped are killed.
struct Procs(Vec<Proc>);

impl Drop for Procs {
    fn drop(&mut self) {
        for p in &mut self.0 {
            if p.status.is_none() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
    }
}

impl Procs {
    fn spawn(&mut self, label: &str, bus: &Path, role: &str, count: u64, symbol: &str) -> Res<()> {
        let child = Command::new(std::env::current_exe()?)
            .env(ENV_ROLE, role)
            .env(ENV_BUS, bus)
            .env(ENV_COUNT, count.to_string())
            .env(ENV_SYMBOL, symbol)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        self.0.push(Proc {
            label: label.to_string(),
            child,
            status: None,
        });
        Ok(())
    }

    /// Reap what has exited; an error for a child that failed.
    fn poll(&mut self) -> Res<bool> {
        let mut all = true;
        for p in &mut self.0 {
            if p.status.is_none() {
                p.status = p.child.try_wait()?;
            }
            match p.status {
                None => all = false,
                Some(s) if !s.success() => {
                    return Err(format!("{} (pid {}) failed: {s}", p.label, p.child.id()).into())
                }
                Some(_) => {}
            }
        }
        Ok(all)
    }

    fn wait_all(&mut self, limit: Duration) -> Res<()> {
        let t0 = Instant::now();
        while !self.poll()? {
            if t0.elapsed() > limit {
                return Err(format!("the child processes did not finish within {limit:?}").into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn output(&mut self, i: usize) -> Res<String> {
        let mut s = String::new();
        if let Some(mut out) = self.0[i].child.stdout.take() {
            out.read_to_string(&mut s)?;
        }
        Ok(s)
    }
}

/// The `key=value` of a child's output line starting with `key=`.
fn field<'a>(out: &'a str, line_key: &str, key: &str) -> Option<&'a str> {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{line_key}=")))?;
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn demo() -> Res<()> {
    let args = Args::parse(USAGE, &["count", "publishers"])?;
    let per_pub = args.num("count", Some(200_000))?;
    let publishers = args.num("publishers", Some(2))?;
    let total = per_pub * publishers;

    let pid = std::process::id();
    let shm = Path::new("/dev/shm");
    let bus_base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let bus_dir = bus_base.join(format!("shmbus-demo-{pid}-bus"));
    let store_dir = std::env::temp_dir().join(format!("shmbus-demo-{pid}-store"));
    // Declared first, so dropped last: after the recorder and the children.
    let _dirs = TempDirs(vec![bus_dir.clone(), store_dir.clone()]);

    println!("bus   {}", bus_dir.display());
    println!("store {}", store_dir.display());
    let topic = open_topic(&bus_dir, TOPIC)?;
    let rec = Recorder::spawn(
        &topic,
        &store_dir,
        RecorderConfig {
            segment_size: 8 << 20,
            fsync: Fsync::Never,
            ..RecorderConfig::default()
        },
    )?;
    println!(
        "recorder running in this process (pid {pid}, {})",
        rec.stats().storage
    );

    let mut procs = Procs(Vec::new());
    let t0 = Instant::now();
    // The subscriber attaches before any event is published, so it sees them all.
    procs.spawn("subscriber", &bus_dir, "subscriber", total, "")?;
    let attached = Instant::now();
    while !topic
        .subscribers()
        .iter()
        .any(|s| s.alive && s.name.as_deref() == Some(SUBSCRIBER))
    {
        procs.poll()?;
        if attached.elapsed() > Duration::from_secs(10) {
            return Err("the subscriber process did not attach within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("subscriber process pid {} attached", procs.0[0].child.id());
    for i in 0..publishers {
        procs.spawn(
            &format!("publisher {i}"),
            &bus_dir,
            "publisher",
            per_pub,
            &format!("P{i}"),
        )?;
    }
    let pids: Vec<String> = procs.0[1..]
        .iter()
        .map(|p| p.child.id().to_string())
        .collect();
    println!(
        "{publishers} publisher processes started (pids {})",
        pids.join(", ")
    );

    procs.wait_all(RUN_LIMIT)?;

    // Everything published is in the ring; wait for the recorder to write it, then seal.
    let tail = topic.tail();
    if !rec.wait_persisted(tail, Duration::from_secs(30)) {
        return Err(format!("the recorder did not persist up to {tail} within 30 s").into());
    }
    let stats = rec.stop()?;
    let elapsed = t0.elapsed();

    // What the children report.
    let mut published = 0;
    let mut pub_ns = 0u128;
    for i in 1..procs.0.len() {
        let out = procs.output(i)?;
        let n: u64 = field(&out, "events", "events")
            .ok_or("bad publisher output")?
            .parse()?;
        let ns: u128 = field(&out, "events", "ns")
            .ok_or("bad publisher output")?
            .parse()?;
        published += n;
        pub_ns = pub_ns.max(ns);
    }
    let sub_out = procs.output(0)?;
    let received: u64 = field(&sub_out, "events", "events")
        .ok_or("bad subscriber output")?
        .parse()?;
    let sub_ns: u128 = field(&sub_out, "events", "ns")
        .ok_or("bad subscriber output")?
        .parse()?;
    let first = sub_out
        .lines()
        .find_map(|l| l.strip_prefix("first="))
        .unwrap_or("");
    let mut in_order = true;
    for i in 0..publishers {
        let sym = format!("P{i}");
        let n = sub_out
            .lines()
            .find(|l| l.starts_with(&format!("symbol={sym} ")))
            .and_then(|l| l.rsplit('=').next())
            .and_then(|n| n.parse::<u64>().ok());
        in_order &= n == Some(per_pub);
    }

    // Read the store back: every record's checksum, every seal, every index.
    let checks = verify_topic(&shmbus::store::topic_dir(&store_dir, TOPIC))?;
    let mut persisted = 0;
    let mut sealed = 0;
    for c in &checks {
        persisted += c.records;
        sealed += u64::from(c.sealed);
        if let Some(e) = &c.error {
            return Err(format!("segment {} is damaged: {e}", c.path.display()).into());
        }
    }

    let secs = |ns: u128| Duration::from_nanos(ns as u64);
    println!();
    println!("first event (JSON from the stored schema): {first}");
    println!();
    println!("  {:<28} {:>12}", "events published", published);
    println!("  {:<28} {:>12}", "events received", received);
    println!(
        "  {:<28} {:>12}",
        "per-publisher order",
        if in_order { "ok" } else { "WRONG" }
    );
    println!("  {:<28} {:>12}", "events persisted (verified)", persisted);
    println!(
        "  {:<28} {:>12}",
        "segments (sealed)",
        format!("{} ({sealed})", checks.len())
    );
    println!("  {:<28} {:>12}", "payload bytes persisted", stats.bytes);
    println!(
        "  {:<28} {:>12}",
        "publish rate (all)",
        rate(published, secs(pub_ns))
    );
    println!(
        "  {:<28} {:>12}",
        "receive rate",
        rate(received, secs(sub_ns))
    );
    println!("  {:<28} {:>10.3} s", "elapsed", elapsed.as_secs_f64());
    println!();

    let ok = published == total
        && received == total
        && in_order
        && persisted == total
        && stats.records == total
        && sealed == checks.len() as u64;
    if !ok {
        return Err(format!(
            "MISMATCH: expected {total} events everywhere (recorder counted {}, {sealed} of {} segments sealed)",
            stats.records,
            checks.len()
        )
        .into());
    }
    println!("OK: {total} events published by {publishers} processes, received in order, persisted and verified");
    Ok(())
}
