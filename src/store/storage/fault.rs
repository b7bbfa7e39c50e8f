//! A crash-injecting backend for tests (cargo feature `testing`): `pwrite` with short
//! writes, EIO, ENOSPC, a crash after N bytes, and failing or slow syncs.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{fallocate, fdatasync, pwrite, Completion, Storage, Syncer, Write};

/// Switches that make a [`FaultStorage`] fail. Shared with the test that drives it.
#[derive(Debug)]
pub struct FaultControl {
    /// While set, every write and allocation fails with ENOSPC.
    pub enospc: AtomicBool,
    /// The next this many writes fail with EIO.
    pub eio: AtomicU32,
    /// While set, each write writes at most half its bytes (at least one).
    pub short_writes: AtomicBool,
    /// After this many bytes in total, the "machine crashes": the write that crosses
    /// the mark writes only up to it, and every later operation fails.
    pub crash_after: AtomicU64,
    /// Bytes written so far.
    pub written: AtomicU64,
    /// Set once the crash point was reached.
    pub crashed: AtomicBool,
    /// Writes that failed because of an injected fault.
    pub injected: AtomicU64,
    /// While set, every sync fails with EIO.
    pub sync_fail: AtomicBool,
    /// Milliseconds each sync waits before it syncs (a slow disk).
    pub sync_delay_ms: AtomicU64,
    /// The files synced successfully, in order (as `/proc/self/fd` names them).
    pub synced: Mutex<Vec<PathBuf>>,
}

impl Default for FaultControl {
    fn default() -> Self {
        FaultControl {
            enospc: AtomicBool::new(false),
            eio: AtomicU32::new(0),
            short_writes: AtomicBool::new(false),
            crash_after: AtomicU64::new(u64::MAX),
            written: AtomicU64::new(0),
            crashed: AtomicBool::new(false),
            injected: AtomicU64::new(0),
            sync_fail: AtomicBool::new(false),
            sync_delay_ms: AtomicU64::new(0),
            synced: Mutex::new(Vec::new()),
        }
    }
}

impl FaultControl {
    /// The files synced successfully so far.
    pub fn synced(&self) -> Vec<PathBuf> {
        self.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// `pwrite` with injected faults: short writes, EIO, ENOSPC, a crash after N bytes, and
/// (through its [`Syncer`]) failing or slow syncs.
#[derive(Debug)]
pub struct FaultStorage {
    ctl: Arc<FaultControl>,
    done: VecDeque<Completion>,
}

impl FaultStorage {
    /// A backend driven by `ctl`.
    pub fn new(ctl: Arc<FaultControl>) -> FaultStorage {
        FaultStorage {
            ctl,
            done: VecDeque::new(),
        }
    }

    fn fail(&self, errno: i32) -> io::Error {
        self.ctl.injected.fetch_add(1, Ordering::Relaxed);
        io::Error::from_raw_os_error(errno)
    }

    fn crashed(&self) -> io::Error {
        self.ctl.injected.fetch_add(1, Ordering::Relaxed);
        io::Error::other("injected crash: the storage is gone")
    }

    fn write(&self, w: &Write) -> io::Result<usize> {
        let c = &self.ctl;
        if c.crashed.load(Ordering::SeqCst) {
            return Err(self.crashed());
        }
        if c.enospc.load(Ordering::SeqCst) {
            return Err(self.fail(libc::ENOSPC));
        }
        if c.eio
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(self.fail(libc::EIO));
        }
        let mut buf = w.rest();
        if c.short_writes.load(Ordering::SeqCst) && buf.len() > 1 {
            buf = &buf[..buf.len() / 2];
        }
        let written = c.written.load(Ordering::SeqCst);
        let limit = c.crash_after.load(Ordering::SeqCst);
        if written + buf.len() as u64 >= limit {
            let keep = limit.saturating_sub(written) as usize;
            let _ = pwrite(w.fd, &buf[..keep], w.offset + w.done as u64);
            c.written.fetch_add(keep as u64, Ordering::SeqCst);
            c.crashed.store(true, Ordering::SeqCst);
            return Err(self.crashed());
        }
        let n = pwrite(w.fd, buf, w.offset + w.done as u64)?;
        c.written.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

impl Storage for FaultStorage {
    fn name(&self) -> &'static str {
        "fault-injecting pwrite"
    }
    fn submit(&mut self, w: Write) -> Result<(), Box<(Write, io::Error)>> {
        let r = self.write(&w);
        self.done.push_back((w, r));
        Ok(())
    }
    fn reap(&mut self, _min: usize, out: &mut Vec<Completion>) -> io::Result<()> {
        out.extend(self.done.drain(..));
        Ok(())
    }
    fn in_flight(&self) -> usize {
        self.done.len()
    }
    fn syncer(&self) -> Arc<dyn Syncer> {
        Arc::new(FaultSyncer {
            ctl: self.ctl.clone(),
        })
    }
    fn allocate(&mut self, fd: RawFd, len: u64) -> io::Result<()> {
        if self.ctl.crashed.load(Ordering::SeqCst) {
            return Err(self.crashed());
        }
        if self.ctl.enospc.load(Ordering::SeqCst) {
            return Err(self.fail(libc::ENOSPC));
        }
        fallocate(fd, len)
    }
}

/// The [`Syncer`] of a [`FaultStorage`]: fails after the crash or while
/// [`FaultControl::sync_fail`] is set, and can be slow.
#[derive(Debug)]
struct FaultSyncer {
    ctl: Arc<FaultControl>,
}

impl Syncer for FaultSyncer {
    fn sync(&self, fd: RawFd) -> io::Result<()> {
        let c = &self.ctl;
        let delay = c.sync_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        if c.crashed.load(Ordering::SeqCst) {
            c.injected.fetch_add(1, Ordering::Relaxed);
            return Err(io::Error::other("injected crash: the storage is gone"));
        }
        if c.sync_fail.load(Ordering::SeqCst) {
            c.injected.fetch_add(1, Ordering::Relaxed);
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        fdatasync(fd)?;
        let path = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap_or_default();
        c.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(path);
        Ok(())
    }
}
