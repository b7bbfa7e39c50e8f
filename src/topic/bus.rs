//! Buses (directories of topics) and topics (ring files): naming, creation with
//! publish-after-init, opening with validation, and slot registration.

use std::fs::{self, File, OpenOptions};
use std::marker::PhantomData;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{io_err, AttachError, OpenError};
use crate::event::Event;
use crate::ring::layout::*;
use crate::ring::{my_owner, owner_pid, owner_start, owner_state, Liveness, Params, Ring};
use crate::schema::Schema;
use crate::sys::mapping::Mapping;
use crate::sys::sync::Ordering;

/// Default root of all buses when neither the API nor `SHMBUS_DIR` names one.
pub const DEFAULT_ROOT: &str = "/dev/shm/shmbus";

/// A bus: a directory of topics.
///
/// # Examples
///
/// ```
/// let dir = std::env::temp_dir().join(format!("shmbus-doc-bus-{}", std::process::id()));
/// let bus = shmbus::Bus::open_dir(&dir).unwrap();
/// assert!(bus.topics().unwrap().is_empty());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Bus {
    dir: PathBuf,
    group: bool,
}

/// Permissions of created files: owner only, or owner and group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// 0600 files, 0700 directories (the default).
    Owner,
    /// 0660 files, 0770 directories.
    Group,
}

impl Bus {
    /// Open (creating if needed) the bus `name` under `$SHMBUS_DIR` or
    /// [`DEFAULT_ROOT`].
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidBusName`] for a name that is not 1 to 128 of
    /// `[A-Za-z0-9._-]` or starts with `.` (the topic-name rules), [`OpenError::Io`]
    /// if the directory cannot be created, [`OpenError::UnsafePermissions`] if it is
    /// world-writable.
    pub fn open(name: &str) -> Result<Bus, OpenError> {
        check_name(name).map_err(|_| OpenError::InvalidBusName(name.to_string()))?;
        let root = std::env::var_os("SHMBUS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
        Bus::open_dir(root.join(name))
    }

    /// Open (creating if needed) a bus in an explicit directory, owner-only access.
    ///
    /// # Errors
    ///
    /// As [`Bus::open`].
    pub fn open_dir(dir: impl AsRef<Path>) -> Result<Bus, OpenError> {
        Bus::open_dir_with(dir, Access::Owner)
    }

    /// Open (creating if needed) a bus directory with the given access for new files.
    ///
    /// # Errors
    ///
    /// As [`Bus::open`].
    pub fn open_dir_with(dir: impl AsRef<Path>, access: Access) -> Result<Bus, OpenError> {
        let dir = dir.as_ref().to_path_buf();
        let mode = if access == Access::Group {
            0o770
        } else {
            0o700
        };
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(&dir)
                .map_err(io_err(&dir, "create bus directory"))?;
        }
        let md = fs::metadata(&dir).map_err(io_err(&dir, "stat bus directory"))?;
        if !md.is_dir() {
            return Err(OpenError::UnsafePermissions {
                path: dir,
                why: "not a directory".into(),
            });
        }
        if md.mode() & 0o002 != 0 {
            return Err(OpenError::UnsafePermissions {
                path: dir,
                why: "bus directory is world-writable".into(),
            });
        }
        check_owner(&dir, &md, access == Access::Group)?;
        Ok(Bus {
            dir,
            group: access == Access::Group,
        })
    }

    /// The bus directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Names of the topics (ring files) on this bus, sorted.
    ///
    /// # Errors
    ///
    /// [`OpenError::Io`] if the directory cannot be read.
    pub fn topics(&self) -> Result<Vec<String>, OpenError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io_err(&self.dir, "read bus directory"))? {
            let e = e.map_err(io_err(&self.dir, "read bus directory"))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(t) = name.strip_suffix(".ring") {
                if check_name(t).is_ok() {
                    out.push(t.to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Start configuring topic `name` (raw bytes until [`TopicBuilder::event`]).
    pub fn topic(&self, name: &str) -> TopicBuilder<Raw> {
        TopicBuilder {
            bus: self.clone(),
            name: name.to_string(),
            capacity: 1 << 20,
            capacity_set: false,
            mode: Mode::Reliable,
            mode_set: false,
            consumer_timeout: Duration::from_secs(10),
            unblock_timeout: Duration::from_secs(1),
            hold_named: false,
            trusted: false,
            described: None,
            _e: PhantomData,
        }
    }

    /// Path of a topic's ring file.
    pub fn ring_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.ring"))
    }
}

/// Check a topic (or bus) name: `[A-Za-z0-9._-]{1,128}`, not starting with `.`.
///
/// # Errors
///
/// [`OpenError::InvalidName`].
pub fn check_name(name: &str) -> Result<(), OpenError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(OpenError::InvalidName(name.to_string()))
    }
}

/// The payload kind of a topic: [`Raw`] bytes or an [`Event`] type.
pub trait Payload: 'static {
    /// Type id stored in the header (0 for raw).
    fn type_id() -> u64;
    /// Schema (None for raw).
    fn schema() -> Option<&'static Schema>;
    /// Human name.
    fn type_name() -> String;
}

/// Marker for topics of raw byte payloads.
#[derive(Debug, Clone, Copy)]
pub struct Raw;

impl Payload for Raw {
    fn type_id() -> u64 {
        0
    }
    fn schema() -> Option<&'static Schema> {
        None
    }
    fn type_name() -> String {
        "raw bytes".into()
    }
}

impl<E: Event + 'static> Payload for E {
    fn type_id() -> u64 {
        E::TYPE_ID
    }
    fn schema() -> Option<&'static Schema> {
        Some(E::schema())
    }
    fn type_name() -> String {
        E::schema().type_name().to_string()
    }
}

/// Configures and opens a topic.
#[derive(Debug, Clone)]
pub struct TopicBuilder<E> {
    bus: Bus,
    name: String,
    capacity: u64,
    capacity_set: bool,
    mode: Mode,
    mode_set: bool,
    consumer_timeout: Duration,
    unblock_timeout: Duration,
    hold_named: bool,
    trusted: bool,
    /// A schema and type id given at run time ([`TopicBuilder::with_schema`]); they
    /// take the place of `E`'s.
    described: Option<Arc<(Schema, u64)>>,
    _e: PhantomData<fn() -> E>,
}

impl TopicBuilder<Raw> {
    /// Carry events described by `schema` with type id `type_id`, known only at run
    /// time (read from a store's segments or another ring, for example) rather than as
    /// a Rust type.
    ///
    /// A topic created this way stores exactly what a topic created with
    /// `.event::<T>()` stores for the type `T` the schema came from (its type id,
    /// schema bytes and fingerprint), so a later `.event::<T>().open()` succeeds and
    /// opening it with another type fails with [`OpenError::TypeMismatch`]. Opening an
    /// existing topic this way checks it the same way: a topic carrying another type
    /// (or raw bytes) is `TypeMismatch`. The handle is raw: publish with
    /// [`crate::Publisher::send_bytes`] and this `type_id`.
    ///
    /// For a `#[derive(Event)]` type, `type_id` is `T::TYPE_ID`, which every stored
    /// record carries too.
    ///
    /// # Errors
    ///
    /// When opening: [`OpenError::InvalidConfig`] if `type_id` is 0 (which means raw
    /// bytes) or the schema encodes to more bytes than a ring's schema table holds,
    /// otherwise as [`TopicBuilder::open_or_create`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmbus::event::Event;
    ///
    /// #[shmbus::event]
    /// struct Tick { symbol: String, price: f64 }
    ///
    /// # let dir = std::env::temp_dir().join(format!("shmbus-doc-schema-{}", std::process::id()));
    /// let bus = shmbus::Bus::open_dir(&dir)?;
    /// // A schema as a tool would find it: decoded from its stored bytes.
    /// let schema = shmbus::schema::Schema::decode(&Tick::schema().encode())?;
    /// let topic = bus.topic("ticks").with_schema(schema, Tick::TYPE_ID).open_or_create()?;
    /// assert_eq!(topic.schema().unwrap().type_name(), "Tick");
    /// // Indistinguishable from a topic created by the Rust type.
    /// bus.topic("ticks").event::<Tick>().open()?;
    /// # drop(topic);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_schema(mut self, schema: Schema, type_id: u64) -> Self {
        self.described = Some(Arc::new((schema, type_id)));
        self
    }
}

impl<E: Payload> TopicBuilder<E> {
    /// Carry events of type `T` (checked against the topic's stored schema).
    pub fn event<T: Payload>(self) -> TopicBuilder<T> {
        TopicBuilder {
            bus: self.bus,
            name: self.name,
            capacity: self.capacity,
            capacity_set: self.capacity_set,
            mode: self.mode,
            mode_set: self.mode_set,
            consumer_timeout: self.consumer_timeout,
            unblock_timeout: self.unblock_timeout,
            hold_named: self.hold_named,
            trusted: self.trusted,
            described: None,
            _e: PhantomData,
        }
    }

    /// Data capacity in bytes (a power of two, 4 KiB to 1 TiB; default 1 MiB). When
    /// set, opening an existing topic of another capacity is an error.
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.capacity = bytes;
        self.capacity_set = true;
        self
    }

    /// Reliable (default) or lossy delivery. When set, opening an existing topic in
    /// the other mode is an error.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self.mode_set = true;
        self
    }

    /// Shorthand for `mode(Mode::Lossy)`.
    pub fn lossy(self) -> Self {
        self.mode(Mode::Lossy)
    }

    /// How long a blocked producer tolerates a live subscriber that makes no progress
    /// (or a named subscriber whose process is gone) before evicting it. Default 10 s.
    pub fn consumer_timeout(mut self, t: Duration) -> Self {
        self.consumer_timeout = t;
        self
    }

    /// How long a subscriber waits on a claimed, uncommitted record before checking
    /// whether its producer died (and turning the claim into a gap). Default 1 s.
    pub fn unblock_timeout(mut self, t: Duration) -> Self {
        self.unblock_timeout = t;
        self
    }

    /// Never evict named subscribers: producers wait for them however long it takes.
    pub fn hold_named(mut self, hold: bool) -> Self {
        self.hold_named = hold;
        self
    }

    /// Skip rkyv validation when reading (only where every producer is trusted code).
    pub fn trusted(mut self, trusted: bool) -> Self {
        self.trusted = trusted;
        self
    }

    /// Open the topic, creating it if it does not exist. Safe to race from many
    /// processes: exactly one ring file results and every caller attaches to it.
    ///
    /// # Errors
    ///
    /// Any [`OpenError`]: bad name or settings, I/O, a corrupt or mismatched file.
    pub fn open_or_create(self) -> Result<Topic<E>, OpenError> {
        self.open_inner(true)
    }

    /// Open an existing topic.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`] if it does not exist, otherwise as
    /// [`TopicBuilder::open_or_create`].
    pub fn open(self) -> Result<Topic<E>, OpenError> {
        self.open_inner(false)
    }

    /// The type id and schema the topic must carry: those given with
    /// [`TopicBuilder::with_schema`], else `E`'s.
    fn payload_type(&self) -> (u64, Option<&Schema>) {
        match &self.described {
            Some(d) => (d.1, Some(&d.0)),
            None => (E::type_id(), E::schema()),
        }
    }

    fn open_inner(self, create: bool) -> Result<Topic<E>, OpenError> {
        check_name(&self.name)?;
        if let Some(d) = &self.described {
            if d.1 == 0 {
                return Err(OpenError::InvalidConfig(format!(
                    "type id 0 means raw bytes: a topic of {} needs a non-zero type id",
                    d.0.type_name()
                )));
            }
        }
        let cap = self.capacity;
        if !cap.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&cap) {
            return Err(OpenError::InvalidConfig(format!(
                "capacity {cap} must be a power of two from {MIN_CAPACITY} to {MAX_CAPACITY}"
            )));
        }
        if let Some(s) = self.payload_type().1 {
            if s.encode().len() > MAX_SCHEMA {
                return Err(OpenError::InvalidConfig(format!(
                    "schema of {} encodes to more than {MAX_SCHEMA} bytes",
                    s.type_name()
                )));
            }
        }
        let path = self.bus.ring_path(&self.name);
        let mut tries = 0;
        loop {
            match open_file(&path) {
                Ok(file) => return self.attach(file, path),
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                    return Err(OpenError::UnsafePermissions {
                        path,
                        why: "the ring file is a symbolic link".into(),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                    // Bounded: the file only vanishes again if someone keeps deleting it.
                    tries += 1;
                    if tries > 100 {
                        return Err(OpenError::NotReady(path));
                    }
                    self.create(&path)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(OpenError::NotFound(path))
                }
                Err(e) => return Err(io_err(&path, "open ring file")(e)),
            }
        }
    }

    /// Create the ring file under a temporary name, initialise it completely, then
    /// link it into place. Succeeds whether we or a racing creator won.
    fn create(&self, path: &Path) -> Result<(), OpenError> {
        let tmp = self.bus.dir.join(format!(
            ".{}.ring.{}.{}",
            self.name,
            crate::sys::os::pid(),
            crate::sys::os::now_ns()
        ));
        let mode = if self.bus.group { 0o660 } else { 0o600 };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_err(&tmp, "create ring file"))?;
        let result = (|| {
            file.set_len(HEADER_SIZE as u64 + self.capacity)
                .map_err(io_err(&tmp, "size ring file"))?;
            if self.bus.group {
                // umask may have removed group bits.
                fs::set_permissions(&tmp, fs::Permissions::from_mode(0o660))
                    .map_err(io_err(&tmp, "chmod ring file"))?;
            }
            // Fill the pages now so a full /dev/shm fails here, not with SIGBUS later.
            // SAFETY: fallocate on our own new file descriptor.
            let r = unsafe {
                libc::fallocate(
                    std::os::fd::AsRawFd::as_raw_fd(&file),
                    0,
                    0,
                    (HEADER_SIZE as u64 + self.capacity) as libc::off_t,
                )
            };
            if r != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
                    return Err(io_err(&tmp, "allocate ring file")(e));
                }
            }
            let map = Mapping::new(
                file.try_clone().map_err(io_err(&tmp, "dup ring file"))?,
                tmp.clone(),
                self.capacity,
                true,
            )
            .map_err(io_err(&tmp, "map ring file"))?;
            self.init(&map);
            drop(map);
            match fs::hard_link(&tmp, path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(io_err(path, "link ring file")(e)),
            }
        })();
        let _ = fs::remove_file(&tmp);
        result
    }

    fn init(&self, map: &Mapping) {
        let (type_id, schema) = self.payload_type();
        let fingerprint = schema.map(|s| s.fingerprint()).unwrap_or(0);
        let schema = schema.map(|s| s.encode()).unwrap_or_default();
        let meta = Meta {
            magic: MAGIC,
            version: VERSION,
            ready: 0,
            header_size: HEADER_SIZE as u64,
            capacity: self.capacity,
            mode: self.mode.to_raw(),
            flags: if self.hold_named {
                META_FLAG_HOLD_NAMED
            } else {
                0
            },
            max_producers: MAX_PRODUCERS as u32,
            max_consumers: MAX_CONSUMERS as u32,
            type_id,
            fingerprint,
            consumer_timeout_ns: self.consumer_timeout.as_nanos().min(u64::MAX as u128) as u64,
            unblock_timeout_ns: self.unblock_timeout.as_nanos().min(u64::MAX as u128) as u64,
            created_ns: crate::sys::os::now_ns(),
            schema_len: schema.len() as u32,
            max_payload: (self.capacity / 4).min(u32::MAX as u64) as u32,
        };
        // SAFETY: the file is ours alone until linked; the header mapping is writable
        // and HEADER_SIZE bytes long.
        unsafe {
            let base = map.header_bytes().as_ptr() as *mut u8;
            std::ptr::copy_nonoverlapping(zerocopy::IntoBytes::as_bytes(&meta).as_ptr(), base, 96);
            std::ptr::copy_nonoverlapping(schema.as_ptr(), base.add(SCHEMA_TABLE), schema.len());
        }
        use crate::ring::Memory;
        for i in 0..MAX_PRODUCERS {
            map.word(producer_slot(i) + P_CLAIM)
                .store(NO_CLAIM, Ordering::Relaxed);
        }
        // Release: everything above is visible to whoever acquires the ready state.
        map.word32(OFF_READY).store(READY, Ordering::Release);
    }

    fn attach(self, file: File, path: PathBuf) -> Result<Topic<E>, OpenError> {
        let md = file.metadata().map_err(io_err(&path, "stat ring file"))?;
        check_file_permissions(&path, &md, self.bus.group)?;
        let size = md.len();
        if size < HEADER_SIZE as u64 {
            return Err(OpenError::Truncated {
                path,
                size,
                needed: HEADER_SIZE as u64,
            });
        }
        // Map the header alone first to learn the capacity.
        let mut head = vec![0u8; 96];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0)
            .map_err(io_err(&path, "read ring header"))?;
        let mut waited = 0;
        let meta = loop {
            match Meta::check(&head, size) {
                Ok(m) => break m,
                Err(MetaProblem::NotReady) if waited < 200 => {
                    waited += 1;
                    std::thread::sleep(Duration::from_millis(5));
                    std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0)
                        .map_err(io_err(&path, "read ring header"))?;
                }
                Err(p) => return Err(meta_error(path, p)),
            }
        };
        let mode = Mode::from_raw(meta.mode).unwrap_or(Mode::Reliable);
        if self.capacity_set && meta.capacity != self.capacity {
            return Err(OpenError::CapacityMismatch {
                found: meta.capacity,
                requested: self.capacity,
            });
        }
        if self.mode_set && mode != self.mode {
            return Err(OpenError::ModeMismatch {
                found: mode,
                requested: self.mode,
            });
        }
        // Subscribers read the data region through a read-only mapping; publishers get
        // a read-write one of their own (`Topic::writable_ring`).
        let map = Mapping::new(file, path.clone(), meta.capacity, false)
            .map_err(io_err(&path, "map ring file"))?;
        let stored_schema =
            &map.header_bytes()[SCHEMA_TABLE..SCHEMA_TABLE + meta.schema_len as usize];
        let schema = if meta.schema_len == 0 {
            None
        } else {
            Some(
                Schema::decode(stored_schema).map_err(|e| OpenError::Corrupt {
                    path: path.clone(),
                    what: format!("schema table: {e}"),
                })?,
            )
        };
        let found_name = schema
            .as_ref()
            .map(|s| s.type_name().to_string())
            .unwrap_or_else(|| "raw bytes".into());
        let (expect_id, expect_schema) = self.payload_type();
        let expect_fp = expect_schema.map(|s| s.fingerprint()).unwrap_or(0);
        // A raw handle may open any topic (tools, C); a typed one (or one described by a
        // schema) needs the same type.
        if expect_id != 0 && (meta.type_id != expect_id || meta.fingerprint != expect_fp) {
            return Err(OpenError::TypeMismatch {
                found: found_name,
                expected: match expect_schema {
                    Some(s) if self.described.is_some() => s.type_name().to_string(),
                    _ => E::type_name(),
                },
            });
        }
        let params = Params {
            capacity: meta.capacity,
            mode,
            max_payload: meta.max_payload as usize,
            consumer_timeout_ns: meta.consumer_timeout_ns,
            unblock_timeout_ns: meta.unblock_timeout_ns,
            hold_named: meta.flags & META_FLAG_HOLD_NAMED != 0,
        };
        Ok(Topic {
            inner: Arc::new(TopicInner {
                ring: Ring::new(map, params),
                ring_rw: std::sync::OnceLock::new(),
                name: self.name,
                meta,
                schema,
                trusted: self.trusted,
            }),
            _e: PhantomData,
        })
    }
}

/// Open an existing ring file; never through a symbolic link (one planted in the bus
/// directory could point a producer's writes at any file the caller can write).
fn open_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// The ownership rule for bus directories, ring files and store directories: the
/// owner must be the caller's effective uid or root. Anything else is accepted only
/// when shared through a group (`group`): the file's group must then be the caller's
/// effective gid or one of its supplementary groups. Root is not exempt: a root process
/// refuses files that another user controls, like anyone else.
///
/// # Errors
///
/// [`OpenError::UnsafePermissions`] naming the owner.
pub(crate) fn check_owner(path: &Path, md: &fs::Metadata, group: bool) -> Result<(), OpenError> {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if md.uid() == me || md.uid() == 0 {
        return Ok(());
    }
    if group && in_my_groups(md.gid()) {
        return Ok(());
    }
    Err(OpenError::UnsafePermissions {
        path: path.into(),
        why: if group {
            format!(
                "owned by uid {} (not uid {me} or root) and by group {}, which this process is not in",
                md.uid(),
                md.gid()
            )
        } else {
            format!(
                "owned by uid {}, not by uid {me} or root (open the bus with Access::Group to share it through a group)",
                md.uid()
            )
        },
    })
}

/// Whether `gid` is the effective gid or a supplementary group of this process.
fn in_my_groups(gid: u32) -> bool {
    // SAFETY: getegid has no preconditions.
    if unsafe { libc::getegid() } == gid {
        return true;
    }
    let mut groups = vec![0 as libc::gid_t; 1024];
    // SAFETY: the buffer holds `groups.len()` gids; getgroups writes at most that many.
    let n = unsafe { libc::getgroups(groups.len() as libc::c_int, groups.as_mut_ptr()) };
    n > 0 && groups[..n as usize].contains(&gid)
}

fn check_file_permissions(path: &Path, md: &fs::Metadata, group: bool) -> Result<(), OpenError> {
    if !md.is_file() {
        return Err(OpenError::UnsafePermissions {
            path: path.into(),
            why: "not a regular file".into(),
        });
    }
    if md.mode() & 0o002 != 0 {
        return Err(OpenError::UnsafePermissions {
            path: path.into(),
            why: "ring file is world-writable".into(),
        });
    }
    check_owner(path, md, group)
}

fn meta_error(path: PathBuf, p: MetaProblem) -> OpenError {
    match p {
        MetaProblem::Truncated { size, needed } => OpenError::Truncated { path, size, needed },
        MetaProblem::BadMagic(_) => OpenError::BadMagic { path },
        MetaProblem::BadVersion(found) => OpenError::BadVersion {
            path,
            found,
            expected: VERSION,
        },
        MetaProblem::NotReady => OpenError::NotReady(path),
        MetaProblem::Corrupt(what) => OpenError::Corrupt {
            path,
            what: what.into(),
        },
    }
}

/// The OS liveness oracle.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OsLiveness;

impl Liveness for OsLiveness {
    fn alive(&self, pid: u32, start28: u64) -> bool {
        crate::sys::os::alive(pid, start28)
    }
    fn now_ns(&self) -> u64 {
        crate::sys::os::now_ns()
    }
}

pub(crate) struct TopicInner {
    /// Header read-write, data read-only: what subscribers and tools use.
    pub ring: Ring<Mapping>,
    /// Header and data read-write: made for the first publisher.
    pub ring_rw: std::sync::OnceLock<Arc<Ring<Mapping>>>,
    pub name: String,
    pub meta: Meta,
    pub schema: Option<Schema>,
    pub trusted: bool,
}

/// An open topic. Cheap to clone; publishers and subscribers are made from it.
pub struct Topic<E = Raw> {
    pub(crate) inner: Arc<TopicInner>,
    _e: PhantomData<fn() -> E>,
}

impl<E> Clone for Topic<E> {
    fn clone(&self) -> Self {
        Topic {
            inner: self.inner.clone(),
            _e: PhantomData,
        }
    }
}

impl<E> std::fmt::Debug for Topic<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.inner.name)
            .field("path", &self.inner.ring.mem.path)
            .finish()
    }
}

/// A snapshot of one producer slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerInfo {
    /// Slot index.
    pub slot: usize,
    /// Process id.
    pub pid: u32,
    /// Whether the process is running.
    pub alive: bool,
    /// Records published.
    pub records: u64,
    /// Payload bytes published.
    pub bytes: u64,
    /// Times it found the ring full.
    pub stalls: u64,
    /// Position of a claim in flight, if any.
    pub claim: Option<u64>,
}

/// State of a subscriber slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberState {
    /// Attached.
    Active,
    /// Evicted by a producer.
    Evicted,
    /// Named, with no process attached.
    Detached,
}

/// A snapshot of one subscriber slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberInfo {
    /// Slot index.
    pub slot: usize,
    /// Name, for durable subscribers.
    pub name: Option<String>,
    /// Process id (0 when detached).
    pub pid: u32,
    /// Whether its process is running.
    pub alive: bool,
    /// State.
    pub state: SubscriberState,
    /// Position after the last record handed out (its progress).
    pub position: u64,
    /// Bytes between its position and the tail.
    pub lag: u64,
    /// Last heartbeat, ns since the Unix epoch.
    pub heartbeat_ns: u64,
}

/// Counters of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicStats {
    /// Next position to be claimed.
    pub tail: u64,
    /// Records published (sum over attached producers).
    pub records: u64,
    /// Payload bytes published (sum over attached producers).
    pub bytes: u64,
    /// Back-pressure stalls (sum over attached producers).
    pub stalls: u64,
    /// Gap records written for dead producers' claims.
    pub gaps: u64,
    /// Bytes covered by gap records.
    pub gap_bytes: u64,
    /// Subscribers evicted.
    pub evictions: u64,
}

/// The ring header's shared words other than the tail and the counters: a racy
/// snapshot for tools (`shmbus info`), never a basis for synchronisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderWords {
    /// Limit cache: the claim end producers may reach before rescanning subscribers.
    pub limit: u64,
    /// Consumer generation: bumped whenever a subscriber joins.
    pub consumer_generation: u64,
    /// Futex sequence word that sleeping subscribers wait on.
    pub futex_seq: u32,
    /// Subscribers announced as sleeping on the futex.
    pub sleepers: u32,
    /// Pid of the subscriber turning a dead producer's claim into a gap (0 when free).
    pub unblock_holder: u32,
    /// Producer slots taken over from dead processes.
    pub reaped_producers: u64,
}

impl<E: Payload> Topic<E> {
    /// A snapshot of the header's shared words (see [`HeaderWords`]).
    pub fn header_words(&self) -> HeaderWords {
        use crate::ring::Memory;
        let m = &self.inner.ring.mem;
        HeaderWords {
            limit: m.word(OFF_LIMIT).load(Ordering::Relaxed),
            consumer_generation: m.word(OFF_GEN).load(Ordering::Relaxed),
            futex_seq: m.word32(OFF_FUTEX_SEQ).load(Ordering::Relaxed),
            sleepers: m.word32(OFF_FUTEX_WAITERS).load(Ordering::Relaxed),
            unblock_holder: owner_pid(m.word(OFF_UNBLOCK_LOCK).load(Ordering::Relaxed)),
            reaped_producers: m.word(OFF_REAPED).load(Ordering::Relaxed),
        }
    }

    /// The topic name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Path of the ring file.
    pub fn path(&self) -> &Path {
        &self.inner.ring.mem.path
    }

    /// Data capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.inner.meta.capacity
    }

    /// Delivery mode.
    pub fn mode(&self) -> Mode {
        self.inner.ring.p.mode
    }

    /// Largest payload one record may carry.
    pub fn max_payload(&self) -> usize {
        self.inner.ring.p.max_payload
    }

    /// The stored schema (None for raw topics).
    pub fn schema(&self) -> Option<&Schema> {
        self.inner.schema.as_ref()
    }

    /// The static header fields.
    pub fn meta(&self) -> Meta {
        self.inner.meta
    }

    /// Next position to be claimed.
    pub fn tail(&self) -> u64 {
        self.inner.ring.tail().load(Ordering::Acquire)
    }

    /// Oldest position still readable from the ring.
    pub fn earliest(&self) -> u64 {
        self.inner.ring.earliest()
    }

    /// Counters.
    pub fn stats(&self) -> TopicStats {
        use crate::ring::Memory;
        let r = &self.inner.ring;
        let mut s = TopicStats {
            tail: self.tail(),
            ..Default::default()
        };
        for i in 0..MAX_PRODUCERS {
            if owner_state(r.pword(i, P_OWNER).load(Ordering::Relaxed)) == SLOT_ACTIVE {
                s.records += r.pword(i, P_RECORDS).load(Ordering::Relaxed);
                s.bytes += r.pword(i, P_BYTES).load(Ordering::Relaxed);
                s.stalls += r.pword(i, P_STALLS).load(Ordering::Relaxed);
            }
        }
        s.gaps = r.mem.word(OFF_GAPS).load(Ordering::Relaxed);
        s.gap_bytes = r.mem.word(OFF_GAP_BYTES).load(Ordering::Relaxed);
        s.evictions = r.mem.word(OFF_EVICTIONS).load(Ordering::Relaxed);
        s
    }

    /// Attached producers.
    pub fn producers(&self) -> Vec<ProducerInfo> {
        let r = &self.inner.ring;
        (0..MAX_PRODUCERS)
            .filter_map(|i| {
                let o = r.pword(i, P_OWNER).load(Ordering::Acquire);
                if owner_state(o) != SLOT_ACTIVE {
                    return None;
                }
                let claim = r.pword(i, P_CLAIM).load(Ordering::Relaxed);
                Some(ProducerInfo {
                    slot: i,
                    pid: owner_pid(o),
                    alive: crate::sys::os::alive(owner_pid(o), owner_start(o)),
                    records: r.pword(i, P_RECORDS).load(Ordering::Relaxed),
                    bytes: r.pword(i, P_BYTES).load(Ordering::Relaxed),
                    stalls: r.pword(i, P_STALLS).load(Ordering::Relaxed),
                    claim: (claim != NO_CLAIM).then_some(claim),
                })
            })
            .collect()
    }

    /// Attached, detached (named) and evicted subscribers.
    pub fn subscribers(&self) -> Vec<SubscriberInfo> {
        let r = &self.inner.ring;
        let tail = self.tail();
        (0..MAX_CONSUMERS)
            .filter_map(|i| {
                let o = r.cword(i, C_OWNER).load(Ordering::Acquire);
                let state = match owner_state(o) {
                    SLOT_ACTIVE => SubscriberState::Active,
                    SLOT_EVICTED => SubscriberState::Evicted,
                    SLOT_DETACHED => SubscriberState::Detached,
                    _ => return None,
                };
                let position = r
                    .cword(i, C_POSITION)
                    .load(Ordering::Acquire)
                    .max(r.cword(i, C_PROGRESS).load(Ordering::Acquire));
                Some(SubscriberInfo {
                    slot: i,
                    name: self.slot_name(i),
                    pid: owner_pid(o),
                    alive: owner_state(o) == SLOT_ACTIVE
                        && crate::sys::os::alive(owner_pid(o), owner_start(o)),
                    state,
                    position,
                    lag: tail.saturating_sub(position),
                    heartbeat_ns: r.cword(i, C_HEARTBEAT).load(Ordering::Relaxed),
                })
            })
            .collect()
    }

    pub(crate) fn slot_name(&self, i: usize) -> Option<String> {
        use crate::ring::Memory;
        let r = &self.inner.ring;
        let flags = r
            .mem
            .word32(consumer_slot(i) + C_FLAGS)
            .load(Ordering::Acquire);
        if flags & C_FLAG_NAMED == 0 {
            return None;
        }
        let len = (r
            .mem
            .word32(consumer_slot(i) + C_NAME_LEN)
            .load(Ordering::Acquire) as usize)
            .min(MAX_NAME);
        let off = consumer_slot(i) + C_NAME;
        Some(String::from_utf8_lossy(&r.mem.header_bytes()[off..off + len]).into_owned())
    }

    /// The read-write view of the ring, mapped on first use.
    pub(crate) fn writable_ring(&self) -> Result<Arc<Ring<Mapping>>, AttachError> {
        if let Some(r) = self.inner.ring_rw.get() {
            return Ok(r.clone());
        }
        let r = &self.inner.ring;
        let file = r
            .mem
            .try_clone_file()
            .map_err(|e| AttachError::Io(e.to_string()))?;
        let map = Mapping::new(file, r.mem.path.clone(), r.p.capacity, true).map_err(|e| {
            AttachError::Io(format!("map {} read-write: {e}", r.mem.path.display()))
        })?;
        let _ = self.inner.ring_rw.set(Arc::new(Ring::new(map, r.p)));
        Ok(self
            .inner
            .ring_rw
            .get()
            .cloned()
            .unwrap_or_else(|| unreachable!("set above")))
    }

    /// Register a producer slot for this process.
    pub(crate) fn register_producer(&self) -> Result<usize, AttachError> {
        let r = &self.inner.ring;
        let me = my_owner(SLOT_ACTIVE);
        for pass in 0..2 {
            for i in 0..MAX_PRODUCERS {
                let ow = r.pword(i, P_OWNER);
                let o = ow.load(Ordering::Acquire);
                let free = owner_state(o) == SLOT_FREE
                    || (pass == 1 && !crate::sys::os::alive(owner_pid(o), owner_start(o)));
                if free
                    && ow
                        .compare_exchange(o, me, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                {
                    if o != SLOT_FREE {
                        use crate::ring::Memory;
                        r.mem.word(OFF_REAPED).fetch_add(1, Ordering::Relaxed);
                    }
                    r.pword(i, P_START)
                        .store(crate::sys::os::own_start_time(), Ordering::Release);
                    r.pword(i, P_HEARTBEAT)
                        .store(crate::sys::os::now_ns(), Ordering::Relaxed);
                    r.pword(i, P_CLAIM).store(NO_CLAIM, Ordering::Release);
                    for f in [P_RECORDS, P_BYTES, P_STALLS] {
                        r.pword(i, f).store(0, Ordering::Relaxed);
                    }
                    return Ok(i);
                }
            }
        }
        Err(AttachError::TooManyProducers)
    }

    /// Whether the exclusive-producer word `w` names a live producer other than the
    /// one in slot `mine`: its slot must still be held by the process the word names
    /// (a slot reused after the holder died is not the holder).
    fn exclusive_holder_alive(&self, w: u64, mine: usize) -> bool {
        let Some((slot, pid)) = exclusive_holder(w).filter(|&(slot, _)| slot != mine) else {
            return false;
        };
        let o = self.inner.ring.pword(slot, P_OWNER).load(Ordering::SeqCst);
        owner_state(o) == SLOT_ACTIVE
            && owner_pid(o) == pid
            && crate::sys::os::alive(owner_pid(o), owner_start(o))
    }

    /// A shared publisher in slot `slot` just registered: refuse if an exclusive one
    /// holds the topic, and clear the word if it names one that died. (Dekker with
    /// [`Topic::claim_exclusive`]: each side publishes itself, fences, then looks for
    /// the other.)
    pub(crate) fn check_not_exclusive(&self, slot: usize) -> Result<(), AttachError> {
        use crate::ring::Memory;
        crate::sys::sync::fence(Ordering::SeqCst);
        let word = self.inner.ring.mem.word(OFF_EXCLUSIVE);
        let w = word.load(Ordering::SeqCst);
        if self.exclusive_holder_alive(w, slot) {
            return Err(AttachError::ExclusivePublisher);
        }
        if w != 0 {
            // Its pid is in the word, so a new holder never has the same value.
            let _ = word.compare_exchange(w, 0, Ordering::SeqCst, Ordering::Relaxed);
        }
        Ok(())
    }

    /// A shared publisher of this process will skip its commits' fence before the
    /// waiter check (see `Ring::wake_from`): mark the topic, for good, so that every
    /// sleeper issues the barrier in its place. A sleeper that loaded the mark before
    /// this store announced itself before it too, and the fence after it makes this
    /// publisher's waiter checks see that announcement.
    pub(crate) fn mark_light_shared(&self) {
        use crate::ring::Memory;
        self.inner
            .ring
            .mem
            .word(OFF_LIGHT_SHARED)
            .fetch_or(1, Ordering::SeqCst);
        crate::sys::sync::fence(Ordering::SeqCst);
    }

    /// Make the publisher in slot `slot` the topic's only one: take the exclusive word
    /// (from nobody, or from a holder that died), then check that no other live
    /// producer is attached.
    pub(crate) fn claim_exclusive(&self, slot: usize, light: bool) -> Result<(), AttachError> {
        use crate::ring::Memory;
        let r = &self.inner.ring;
        let word = r.mem.word(OFF_EXCLUSIVE);
        let me = exclusive_word(slot, crate::sys::os::pid(), light);
        loop {
            let w = word.load(Ordering::SeqCst);
            if self.exclusive_holder_alive(w, slot) {
                return Err(AttachError::ExclusivePublisher);
            }
            if word
                .compare_exchange(w, me, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                break;
            }
        }
        crate::sys::sync::fence(Ordering::SeqCst);
        for i in (0..MAX_PRODUCERS).filter(|&i| i != slot) {
            let o = r.pword(i, P_OWNER).load(Ordering::SeqCst);
            if owner_state(o) == SLOT_ACTIVE && crate::sys::os::alive(owner_pid(o), owner_start(o))
            {
                let _ = word.compare_exchange(me, 0, Ordering::SeqCst, Ordering::Relaxed);
                return Err(AttachError::PublishersAttached);
            }
        }
        Ok(())
    }

    /// Free producer slot `slot` (a publisher that could not attach after all).
    pub(crate) fn free_producer(&self, slot: usize) {
        self.inner
            .ring
            .pword(slot, P_OWNER)
            .store(SLOT_FREE, Ordering::Release);
    }
}

impl<E> Topic<E> {
    /// The exclusive publisher in slot `slot` detaches: clear the exclusive word if it
    /// still names that slot.
    pub(crate) fn release_exclusive(&self, slot: usize) {
        use crate::ring::Memory;
        let word = self.inner.ring.mem.word(OFF_EXCLUSIVE);
        let w = word.load(Ordering::SeqCst);
        if exclusive_holder(w).is_some_and(|(s, _)| s == slot) {
            let _ = word.compare_exchange(w, 0, Ordering::SeqCst, Ordering::Relaxed);
        }
    }
}
