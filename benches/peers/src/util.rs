//! Clock, CPU pinning, percentiles and the tiny line protocol between the harness and
//! its child processes.

use std::io::BufRead;

use hdrhistogram::Histogram;

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine, so a
/// timestamp written by one process can be compared with `now` in another.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Pin the calling thread to one CPU; a failure is printed, not fatal.
pub fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity
    // only touch that local set; pid 0 means the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!(
                "warning: could not pin to CPU {cpu}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Restrict the calling process to a set of CPUs (used for helper processes such as
/// redis-server that are not pinned to one CPU).
pub fn allow_cpus(cpus: &[usize]) {
    // SAFETY: as in `pin`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("histogram bounds")
}

/// Latency percentiles in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pct {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
    pub count: u64,
}

impl Pct {
    pub fn of(h: &Histogram<u64>) -> Pct {
        Pct {
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
            count: h.len(),
        }
    }

    /// The child's output line.
    pub fn line(&self) -> String {
        format!(
            "lat {} {} {} {} {} {}",
            self.p50, self.p99, self.p999, self.p9999, self.max, self.count
        )
    }

    pub fn parse(line: &str) -> Option<Pct> {
        let v: Vec<u64> = line
            .strip_prefix("lat ")?
            .split_whitespace()
            .map(|s| s.parse().ok())
            .collect::<Option<_>>()?;
        (v.len() == 6).then(|| Pct {
            p50: v[0],
            p99: v[1],
            p999: v[2],
            p9999: v[3],
            max: v[4],
            count: v[5],
        })
    }

    /// The median of each figure over repetitions (max: the median of the maxima).
    pub fn median(v: &[Pct]) -> Pct {
        let m = |f: fn(&Pct) -> u64| median_u64(v.iter().map(f).collect());
        Pct {
            p50: m(|p| p.p50),
            p99: m(|p| p.p99),
            p999: m(|p| p.p999),
            p9999: m(|p| p.p9999),
            max: m(|p| p.max),
            count: v.iter().map(|p| p.count).sum(),
        }
    }
}

pub fn median_u64(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

pub fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

static READY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Tell the harness this process is set up (once): it starts the next process of the
/// group only then. Transports whose setup blocks on the peer (accept, FIFO open) call
/// it before blocking.
pub fn announce_ready() {
    if !READY.swap(true, std::sync::atomic::Ordering::Relaxed) {
        emit("ready");
    }
}

/// Announce readiness, then wait for the harness's "go" line on stdin.
pub fn ready_then_wait_go() {
    announce_ready();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok();
    if line.trim() != "go" {
        eprintln!("child: expected 'go', got {line:?}; exiting");
        std::process::exit(3);
    }
}

/// Print one result line and flush it.
pub fn emit(line: &str) {
    use std::io::Write;
    println!("{line}");
    std::io::stdout().flush().ok();
}

/// Busy-wait until the monotonic clock reaches `t` (ns).
pub fn spin_until(t: u64) {
    while mono_ns() < t {
        std::hint::spin_loop();
    }
}

/// Fill a message: sequence number, then a second word, then a byte pattern.
pub fn fill(msg: &mut [u8], seq: u64, word2: u64) {
    if msg.len() < 8 {
        return;
    }
    msg[..8].copy_from_slice(&seq.to_le_bytes());
    if msg.len() >= 16 {
        msg[8..16].copy_from_slice(&word2.to_le_bytes());
    }
}

pub fn word(msg: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(msg[8 * i..8 * i + 8].try_into().expect("8 bytes"))
}
