//! Creating and opening topics: the payload kind, [`TopicBuilder`], creation with
//! publish-after-init, and opening with validation.

use std::fs::{self, File, OpenOptions};
use std::marker::PhantomData;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{io_err, OpenError};
use crate::event::Event;
use crate::ring::layout::*;
use crate::ring::{Params, Ring};
use crate::schema::Schema;
use crate::sys::mapping::Mapping;
use crate::topic::*;

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
    /// Defaults for topic `name` of `bus` (see [`Bus::topic`]).
    pub(super) fn new(bus: Bus, name: &str) -> TopicBuilder<Raw> {
        TopicBuilder {
            bus,
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
        let tmp = self.bus.dir.join(crate::topic::names::temp_ring_name(
            &self.name,
            crate::sys::os::pid(),
            crate::sys::os::now_ns(),
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
        crate::ring::init_slots(map);
        crate::ring::publish_ready(map);
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
