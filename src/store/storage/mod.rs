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

use std::io;
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::{Arc, Once};

#[cfg(any(test, feature = "testing"))]
mod fault;
mod pwrite;
mod uring;

#[cfg(any(test, feature = "testing"))]
pub use fault::{FaultControl, FaultStorage};
pub use pwrite::PwriteStorage;
pub use uring::UringStorage;

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

pub(crate) fn cvt(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub(super) fn pwrite(fd: RawFd, buf: &[u8], offset: u64) -> io::Result<usize> {
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

pub(super) fn fdatasync(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor the caller keeps open.
    cvt(unsafe { libc::fdatasync(fd) })
}

pub(super) fn fallocate(fd: RawFd, len: u64) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor the caller keeps open.
    match cvt(unsafe { libc::fallocate(fd, 0, 0, len as libc::off_t) }) {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
        r => r,
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
    /// with the publishers (see docs/performance.md, store). See
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
