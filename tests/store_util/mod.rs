//! Helpers for the store tests: temporary bus and store directories, checked payloads,
//! reading a whole store back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use shmbus::store::{list_segments, SegmentReader};

/// A bus directory (in /dev/shm when there is one) and a store directory (on disk),
/// both removed on drop.
pub struct Dirs {
    pub bus: PathBuf,
    pub store: PathBuf,
}

impl Dirs {
    pub fn new(tag: &str) -> Dirs {
        let uniq = format!(
            "{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let shm = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let bus = shm.join(format!("shmbus-store-bus-{uniq}"));
        let store = std::env::temp_dir().join(format!("shmbus-store-{uniq}"));
        std::fs::create_dir_all(&bus).unwrap();
        std::fs::create_dir_all(&store).unwrap();
        Dirs { bus, store }
    }

    pub fn from_env() -> Dirs {
        Dirs {
            bus: PathBuf::from(std::env::var("STORE_TEST_BUS").unwrap()),
            store: PathBuf::from(std::env::var("STORE_TEST_STORE").unwrap()),
        }
    }

    pub fn bus(&self) -> shmbus::Bus {
        shmbus::Bus::open_dir(&self.bus).unwrap()
    }

    pub fn topic_dir(&self, topic: &str) -> PathBuf {
        self.store.join(topic)
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        if std::env::var("STORE_TEST_ROLE").is_err() {
            let _ = std::fs::remove_dir_all(&self.bus);
            let _ = std::fs::remove_dir_all(&self.store);
        }
    }
}

/// A 16-byte payload: producer, sequence, and a checksum of both.
pub fn payload(producer: u32, seq: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..4].copy_from_slice(&producer.to_le_bytes());
    b[4..12].copy_from_slice(&seq.to_le_bytes());
    let c = crc32c::crc32c(&b[..12]);
    b[12..16].copy_from_slice(&c.to_le_bytes());
    b
}

/// Decode and check a payload.
pub fn decode(b: &[u8]) -> (u32, u64) {
    assert_eq!(b.len(), 16, "payload length");
    assert_eq!(
        crc32c::crc32c(&b[..12]),
        u32::from_le_bytes(b[12..16].try_into().unwrap()),
        "payload checksum"
    );
    (
        u32::from_le_bytes(b[0..4].try_into().unwrap()),
        u64::from_le_bytes(b[4..12].try_into().unwrap()),
    )
}

/// Every record of a topic's store, in order: (position, producer, seq, timestamp).
/// Checks every record checksum, every sealed segment's footer, and that positions
/// strictly increase across segments.
pub fn read_store(dir: &Path) -> Vec<(u64, u32, u64, u64)> {
    let mut out = Vec::new();
    let mut last: Option<u64> = None;
    for s in list_segments(dir).unwrap() {
        let r = SegmentReader::open(&s.path).unwrap();
        r.verify().unwrap();
        for rec in r.iter() {
            let rec = rec.unwrap();
            if let Some(l) = last {
                assert!(
                    rec.position > l,
                    "positions must increase: {} after {l}",
                    rec.position
                );
            }
            last = Some(rec.position);
            let (p, q) = decode(rec.bytes);
            out.push((rec.position, p, q, rec.timestamp));
        }
    }
    out
}

/// Check that producers `0..producers` each appear with sequences `0..per` exactly
/// once, in order.
pub fn check_exactly_once(recs: &[(u64, u32, u64, u64)], producers: u32, per: u64) {
    let mut next = vec![0u64; producers as usize];
    for &(pos, p, q, _) in recs {
        assert!(p < producers, "unknown producer {p} at {pos}");
        assert_eq!(
            q, next[p as usize],
            "producer {p}: expected seq {} at position {pos}, found {q}",
            next[p as usize]
        );
        next[p as usize] += 1;
    }
    for (p, n) in next.iter().enumerate() {
        assert_eq!(
            *n, per,
            "producer {p} has {n} records on disk, expected {per}"
        );
    }
}

#[path = "../common/mod.rs"]
mod common;
#[allow(unused_imports)]
pub use common::wait_until;
