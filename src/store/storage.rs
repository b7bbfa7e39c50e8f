//! Where the recorder's bytes go: a small trait with an io_uring implementation, a
//! `pwrite` fallback, and a fault-injecting implementation for tests.
//!
//! A backend takes ownership of each [`Write`] (and so of its source bytes) when it is
//! submitted and hands it back on completion: the source outlives the operation, which
//! is what io_uring needs. The source is either an owned buffer or a [`Mapped`] range of
//! a mapping (the recorder writes records straight from the topic's ring), which keeps
//! the mapping alive. A completion reports how many *more* bytes were written; a short
//! write is normal and the caller resubmits the rest.
//!
//! Which backend a recorder gets is [`StorageKind`]'s choice ([`default_storage`]): by
//! default io_uring where the file system can take a buffered write without blocking,
//! and `pwrite` where io_uring would run every write on a kernel worker thread anyway
//! (ext4), as [`buffered_writes_nowait`] finds out.
//!
//! Syncs go through a [`Syncer`], a separate handle that a backend hands out: the
//! recorder gives one to its sync thread, which makes a sealed segment durable while
//! the recorder writes the next one.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

/// Bytes inside a memory mapping that stay valid and unchanged while the write that
/// carries them is in flight.
pub struct Mapped {
    ptr: *const u8,
    len: usize,
    _owner: Arc<dyn Send + Sync>,
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapped")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

// SAFETY: `Mapped` is a read-only view of shared memory kept alive by `_owner` (which
// is Send + Sync); nothing in it is tied to a thread.
unsafe impl Send for Mapped {}

impl Mapped {
    /// A view of `len` bytes at `ptr`.
    ///
    /// # Safety
    ///
    /// The bytes must stay mapped and readable while `owner` lives, and must not change
    /// while the write is in flight (the caller checks that, and must not trust what was
    /// written otherwise).
    pub unsafe fn new(ptr: *const u8, len: usize, owner: Arc<dyn Send + Sync>) -> Mapped {
        Mapped {
            ptr,
            len,
            _owner: owner,
        }
    }
}

/// Where a write's bytes come from.
#[derive(Debug)]
pub enum Source {
    /// An owned buffer.
    Owned(Vec<u8>),
    /// A range of a mapping, written without a copy.
    Mapped(Mapped),
}

impl Source {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Source::Owned(v) => v,
            // SAFETY: `Mapped::new`'s contract: mapped and readable while the owner
            // (held by the `Mapped`) lives.
            Source::Mapped(m) => unsafe { std::slice::from_raw_parts(m.ptr, m.len) },
        }
    }
}

/// One write: `src[done..]` goes to `offset + done` in file `fd`.
#[derive(Debug)]
pub struct Write {
    /// The file descriptor; the caller keeps the file open until the write is back.
    pub fd: RawFd,
    /// File offset of the first byte of `src`.
    pub offset: u64,
    /// The bytes.
    pub src: Source,
    /// Bytes of `src` already written.
    pub done: usize,
    /// The caller's identifier.
    pub tag: u64,
}

impl Write {
    /// Whether every byte is written.
    pub fn complete(&self) -> bool {
        self.done >= self.src.bytes().len()
    }

    /// The bytes still to write.
    pub fn rest(&self) -> &[u8] {
        let b = self.src.bytes();
        &b[self.done.min(b.len())..]
    }
}

/// A completed (or failed) write and how many more bytes it wrote.
pub type Completion = (Write, io::Result<usize>);

/// The recorder's I/O backend.
pub trait Storage: Send {
    /// A short name for messages ("io_uring", "pwrite", ...).
    fn name(&self) -> &'static str;
    /// Start a write. The backend owns `w` until it is returned by [`Storage::reap`].
    ///
    /// # Errors
    ///
    /// The write and the error if it could not be started.
    fn submit(&mut self, w: Write) -> Result<(), Box<(Write, io::Error)>>;
    /// Move finished writes to `out`, waiting until at least `min` have finished (or
    /// none are in flight).
    ///
    /// # Errors
    ///
    /// A failure of the backend itself (not of a write).
    fn reap(&mut self, min: usize, out: &mut Vec<Completion>) -> io::Result<()>;
    /// Writes submitted and not yet reaped.
    fn in_flight(&self) -> usize;
    /// The handle that syncs files for this backend; it may be used from another
    /// thread while writes go on. [`Fdatasync`] unless the backend has its own.
    fn syncer(&self) -> Arc<dyn Syncer> {
        Arc::new(Fdatasync)
    }
    /// Reserve `len` bytes for the file (a no-op where unsupported): `fallocate`
    /// unless the backend has its own.
    ///
    /// # Errors
    ///
    /// The OS error (ENOSPC when the disk is full).
    fn allocate(&mut self, fd: RawFd, len: u64) -> io::Result<()> {
        fallocate(fd, len)
    }
}

/// Makes written bytes durable. Shared between threads: the recorder syncs through it
/// (with [`super::Fsync::EveryBatch`]) and so does its sync thread.
pub trait Syncer: Send + Sync {
    /// `fdatasync` the file (callers wait for its writes first).
    ///
    /// # Errors
    ///
    /// The OS error.
    fn sync(&self, fd: RawFd) -> io::Result<()>;
}

/// The plain [`Syncer`]: `fdatasync`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fdatasync;

impl Syncer for Fdatasync {
    fn sync(&self, fd: RawFd) -> io::Result<()> {
        fdatasync(fd)
    }
}

fn cvt(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn pwrite(fd: RawFd, buf: &[u8], offset: u64) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is a valid slice for the duration of the call.
        let r = unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), offset as libc::off_t) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn fdatasync(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor the caller keeps open.
    cvt(unsafe { libc::fdatasync(fd) })
}

fn fallocate(fd: RawFd, len: u64) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor the caller keeps open.
    match cvt(unsafe { libc::fallocate(fd, 0, 0, len as libc::off_t) }) {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
        r => r,
    }
}

/// Synchronous `pwrite`: each write is done when `submit` returns.
#[derive(Debug, Default)]
pub struct PwriteStorage {
    done: VecDeque<Completion>,
}

impl PwriteStorage {
    /// A new backend.
    pub fn new() -> PwriteStorage {
        PwriteStorage::default()
    }
}

impl Storage for PwriteStorage {
    fn name(&self) -> &'static str {
        "pwrite"
    }
    fn submit(&mut self, w: Write) -> Result<(), Box<(Write, io::Error)>> {
        let r = pwrite(w.fd, w.rest(), w.offset + w.done as u64);
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
}

/// io_uring: writes are queued and several are in flight at once.
///
/// `user_data` indexes a slab of the owned [`Write`]s, so each buffer lives in the slab
/// until its completion has been reaped.
pub struct UringStorage {
    ring: io_uring::IoUring,
    /// Set up disabled, for the thread that first uses it (see [`UringStorage::new`]).
    disabled: bool,
    slab: Vec<Option<Write>>,
    free: Vec<usize>,
    in_flight: usize,
    /// Completions drained while the submission or completion queue was full.
    stash: Vec<Completion>,
}

impl std::fmt::Debug for UringStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringStorage")
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

impl UringStorage {
    /// Set up a ring of `entries` and check that the kernel supports writes on it.
    ///
    /// Where the kernel has it (6.1 and later), the ring runs completions only when
    /// its one user asks for them (`DEFER_TASKRUN`): otherwise every completion of a
    /// write that the kernel's worker finished interrupts the recorder, sleeping or
    /// not, to post it. Such a ring belongs to one thread, so it is set up disabled
    /// and enabled by the first thread that writes through it (the recorder's, which
    /// is not the one that creates it).
    ///
    /// # Errors
    ///
    /// The setup error (ENOSYS, EPERM under seccomp, ...) or `Unsupported`.
    pub fn new(entries: u32) -> io::Result<UringStorage> {
        let (ring, disabled) = match io_uring::IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_taskrun_flag()
            .setup_r_disabled()
            .build(entries)
        {
            Ok(r) => (r, true),
            // Older kernels refuse the flags (EINVAL): a plain ring.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                (io_uring::IoUring::new(entries)?, false)
            }
            Err(e) => return Err(e),
        };
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        if !probe.is_supported(io_uring::opcode::Write::CODE) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring does not support IORING_OP_WRITE on this kernel",
            ));
        }
        Ok(UringStorage {
            ring,
            disabled,
            slab: Vec::new(),
            free: Vec::new(),
            in_flight: 0,
            stash: Vec::new(),
        })
    }

    /// Enable a ring set up disabled: it belongs to the calling thread from now on.
    fn enable(&mut self) -> io::Result<()> {
        if self.disabled {
            self.ring.submitter().register_enable_rings()?;
            self.disabled = false;
        }
        Ok(())
    }

    fn drain(&mut self, out: &mut Vec<Completion>) -> usize {
        let mut n = 0;
        let cq = self.ring.completion();
        for cqe in cq {
            let i = cqe.user_data() as usize;
            let Some(w) = self.slab.get_mut(i).and_then(Option::take) else {
                continue;
            };
            self.free.push(i);
            self.in_flight -= 1;
            let r = cqe.result();
            let res = if r < 0 {
                Err(io::Error::from_raw_os_error(-r))
            } else {
                Ok(r as usize)
            };
            out.push((w, res));
            n += 1;
        }
        n
    }

    fn enter(&mut self, want: usize, out: &mut Vec<Completion>) -> io::Result<()> {
        loop {
            match self.ring.submit_and_wait(want) {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    // The completion queue is full: make room and try again.
                    self.drain(out);
                    if want == 0 {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Storage for UringStorage {
    fn name(&self) -> &'static str {
        "io_uring"
    }

    fn submit(&mut self, w: Write) -> Result<(), Box<(Write, io::Error)>> {
        if let Err(e) = self.enable() {
            return Err(Box::new((w, e)));
        }
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slab.push(None);
                self.slab.len() - 1
            }
        };
        let rest = w.rest();
        let len = rest.len().min(u32::MAX as usize) as u32;
        let ptr = rest.as_ptr();
        let entry = io_uring::opcode::Write::new(io_uring::types::Fd(w.fd), ptr, len)
            .offset(w.offset + w.done as u64)
            .build()
            .user_data(slot as u64);
        self.slab[slot] = Some(w);
        let mut spare = Vec::new();
        loop {
            // SAFETY: the entry points into the source of the Write now owned by
            // `self.slab[slot]`: a Vec's heap buffer (which does not move with the Vec) or
            // a mapping kept alive by the `Mapped`; neither goes away until the
            // completion is reaped in `drain` (and `drop` waits for every completion).
            let pushed = unsafe { self.ring.submission().push(&entry) };
            if pushed.is_ok() {
                break;
            }
            // Submission queue full: hand the queued entries to the kernel.
            if let Err(e) = self.enter(0, &mut spare) {
                self.stash.append(&mut spare);
                let w = self.slab[slot].take().unwrap_or_else(|| unreachable!());
                self.free.push(slot);
                return Err(Box::new((w, e)));
            }
        }
        self.in_flight += 1;
        // Completions drained while making room are reported by the next reap.
        self.stash.append(&mut spare);
        // Hand the entry to the kernel now. If that fails it stays queued and goes in
        // with the next `enter`.
        let mut more = Vec::new();
        let _ = self.enter(0, &mut more);
        self.stash.append(&mut more);
        Ok(())
    }

    fn reap(&mut self, min: usize, out: &mut Vec<Completion>) -> io::Result<()> {
        let start = out.len();
        out.append(&mut self.stash);
        if self.ring.submission().taskrun() {
            // Completions wait for us to run them (`DEFER_TASKRUN`).
            self.enter(0, out)?;
        }
        self.drain(out);
        while out.len() - start < min && self.in_flight > 0 {
            self.enter(1, out)?;
            self.drain(out);
        }
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.in_flight + self.stash.len()
    }
}

impl Drop for UringStorage {
    fn drop(&mut self) {
        // The kernel may still read from buffers of writes in flight: wait for them
        // before the slab (and the buffers) go.
        let mut out = Vec::new();
        while self.in_flight > 0 {
            if self.enter(1, &mut out).is_err() {
                break;
            }
            self.drain(&mut out);
            out.clear();
        }
    }
}

static FALLBACK_WARNING: Once = Once::new();

/// Which backend [`Recorder::spawn`](super::Recorder::spawn) writes through
/// ([`RecorderConfig::storage`](super::RecorderConfig::storage)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageKind {
    /// io_uring where the store's file system can take a buffered write without
    /// blocking (XFS, btrfs: the write is done in the recorder's own system call, and
    /// several are in flight); `pwrite` where it cannot (ext4, tmpfs), since there
    /// io_uring hands every buffered write to a kernel worker thread, and writes to
    /// one file wait for each other on that worker: the same copy into the page cache
    /// as `pwrite`, on one more busy thread, which on a machine with few CPUs competes
    /// with the publishers (see the README's Store section). See
    /// [`buffered_writes_nowait`]. The default.
    #[default]
    Auto,
    /// io_uring wherever it can be set up.
    IoUring,
    /// `pwrite` on the recorder's thread.
    Pwrite,
}

/// The backend `kind` picks for a store directory `dir`: see [`StorageKind`]. Where
/// io_uring is asked for (or would be picked) but cannot be set up (ENOSYS, EPERM
/// under seccomp, ...), `pwrite`, with a one-time warning on stderr.
pub fn default_storage(dir: &Path, kind: StorageKind) -> Box<dyn Storage> {
    match kind {
        StorageKind::Pwrite => return Box::new(PwriteStorage::new()),
        // A directory the probe cannot use keeps io_uring: the writes will tell.
        StorageKind::Auto if !buffered_writes_nowait(dir).unwrap_or(true) => {
            return Box::new(PwriteStorage::new());
        }
        StorageKind::Auto | StorageKind::IoUring => {}
    }
    match UringStorage::new(64) {
        Ok(u) => Box::new(u),
        Err(e) => {
            FALLBACK_WARNING.call_once(|| {
                eprintln!(
                    "shmbus: io_uring is unavailable ({e}); the recorder falls back to pwrite"
                );
            });
            Box::new(PwriteStorage::new())
        }
    }
}

/// Whether the file system of `dir` can take a buffered write without blocking, which
/// is what io_uring needs to do a write in the submitting thread's own system call
/// rather than hand it to a kernel worker thread.
///
/// Probed with a one-byte `RWF_NOWAIT` write to an unnamed temporary file in `dir`
/// (`O_TMPFILE`, gone when closed, even if the process dies): a file system without
/// non-blocking buffered writes refuses it with `EOPNOTSUPP` (ext4 and tmpfs as of
/// Linux 6.18); one with them (XFS, btrfs) writes it, or reports `EAGAIN` where the
/// write would have to wait.
///
/// # Errors
///
/// The temporary file cannot be created (no such directory, no permission, a file
/// system without `O_TMPFILE`), or the write fails otherwise.
pub fn buffered_writes_nowait(dir: &Path) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(dir)?;
    let byte = [0u8];
    let iov = libc::iovec {
        iov_base: byte.as_ptr() as *mut libc::c_void,
        iov_len: 1,
    };
    // SAFETY: `iov` describes one valid byte that outlives the call; the descriptor is
    // open. Arguments: fd, iov, iovcnt, offset (low and high words), flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pwritev2,
            f.as_raw_fd(),
            &iov as *const libc::iovec,
            1,
            0,
            0,
            libc::RWF_NOWAIT,
        )
    };
    if r >= 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) => Ok(true),
        Some(libc::EOPNOTSUPP) => Ok(false),
        _ => Err(e),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    /// The recorder's case: the ring is set up on the caller's thread and written from
    /// the recorder's, whose polls (`reap` without waiting) must see completions, which
    /// a ring that defers them to its user posts only when asked.
    #[test]
    fn a_uring_set_up_on_one_thread_writes_from_another_and_polls_its_completions() {
        let mut st = match UringStorage::new(8) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("io_uring unavailable here ({e}): nothing to check");
                return;
            }
        };
        let path = std::env::temp_dir().join(format!("shmbus-uring-{}", std::process::id()));
        let file = std::fs::File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .expect("create file");
        let mapped: Arc<Vec<u8>> = Arc::new((0..4096u32).map(|i| (i % 251) as u8).collect());
        let fd = file.as_raw_fd();
        let t = std::thread::spawn(move || {
            let owner: Arc<dyn Send + Sync> = mapped.clone();
            // SAFETY: the bytes live in `mapped`, kept alive by `owner`, and never change.
            let m = unsafe { Mapped::new(mapped.as_ptr(), mapped.len(), owner) };
            let writes = [
                (0, Source::Owned(vec![7u8; 512])),
                (512, Source::Mapped(m)),
                (4608, Source::Owned(vec![9u8; 100])),
            ];
            for (tag, (offset, src)) in writes.into_iter().enumerate() {
                let w = Write {
                    fd,
                    offset,
                    src,
                    done: 0,
                    tag: tag as u64,
                };
                st.submit(w).map_err(|b| b.1).expect("submit");
            }
            let (mut out, t0) = (Vec::new(), Instant::now());
            while out.len() < 3 {
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "polling reaped {} of 3 completions",
                    out.len()
                );
                st.reap(0, &mut out).expect("reap");
                std::thread::sleep(Duration::from_millis(1));
            }
            for (w, r) in &out {
                assert_eq!(
                    r.as_ref().ok(),
                    Some(&w.src.bytes().len()),
                    "write {}",
                    w.tag
                );
            }
            assert_eq!(st.in_flight(), 0);
            mapped
        });
        let mapped = t.join().expect("writer thread");
        let got = std::fs::read(&path).expect("read back");
        let _ = std::fs::remove_file(&path);
        assert_eq!(got.len(), 4708);
        assert!(got[..512].iter().all(|&b| b == 7));
        assert_eq!(&got[512..4608], &mapped[..]);
        assert!(got[4608..].iter().all(|&b| b == 9));
    }
}
