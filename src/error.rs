//! Errors: one enum per operation, each convertible into the umbrella [`Error`].

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Opening a bus or creating/opening a topic failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The topic name is not `[A-Za-z0-9._-]{1,128}` or starts with `.`.
    InvalidName(String),
    /// The bus name given to [`crate::Bus::open`] is not `[A-Za-z0-9._-]{1,128}` or
    /// starts with `.` (the same rules as topic names; a bus given by its directory,
    /// [`crate::Bus::open_dir`], has no name to check).
    InvalidBusName(String),
    /// A builder setting is out of range.
    InvalidConfig(String),
    /// An I/O call failed on `path`.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The topic does not exist and the caller asked only to open it.
    NotFound(PathBuf),
    /// The file is not a shmbus ring file (wrong magic).
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// The ring file has a format version this build does not read.
    BadVersion {
        /// The file.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// Version supported.
        expected: u32,
    },
    /// The file is shorter than its header says it must be.
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The size its header requires.
        needed: u64,
    },
    /// A header field is out of range.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Which field.
        what: String,
    },
    /// The file never reached the ready state within the wait bound.
    NotReady(PathBuf),
    /// The topic exists with another capacity than the one requested.
    CapacityMismatch {
        /// Capacity in the file.
        found: u64,
        /// Capacity requested.
        requested: u64,
    },
    /// The topic exists in another mode than the one requested.
    ModeMismatch {
        /// Mode in the file.
        found: crate::Mode,
        /// Mode requested.
        requested: crate::Mode,
    },
    /// The topic carries another event type.
    TypeMismatch {
        /// The topic's type name (from its stored schema), or "raw bytes".
        found: String,
        /// The type the caller opened it with.
        expected: String,
    },
    /// A file or directory has unsafe ownership or permissions.
    UnsafePermissions {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// Attaching a publisher or subscriber to a topic failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttachError {
    /// Every producer slot is taken by a live process.
    TooManyProducers,
    /// Another publisher holds this topic exclusively (see
    /// [`crate::Topic::exclusive_publisher`]).
    ExclusivePublisher,
    /// An exclusive publisher was asked for, but other publishers are attached.
    PublishersAttached,
    /// Every consumer slot is taken.
    TooManySubscribers,
    /// A live subscriber already holds this name.
    NameInUse(String),
    /// The subscriber name is empty or longer than [`crate::ring::layout::MAX_NAME`] bytes.
    InvalidName(String),
    /// The requested start position is not a record boundary in this topic.
    InvalidPosition(u64),
    /// The requested start position has been overwritten: the oldest retained is `oldest`.
    PositionLost {
        /// Where the subscriber asked to start.
        requested: u64,
        /// The oldest position still in the ring.
        oldest: u64,
    },
    /// Mapping the ring for writing failed.
    Io(String),
    /// A shared word of the ring header breaks the ring's invariants (it was
    /// scribbled): the subscriber did not join.
    CorruptWord {
        /// Which word (e.g. `tail`, `consumer 3 position`).
        word: String,
        /// The value found in it.
        value: u64,
    },
}

/// An error rkyv reported (serialising an event, or validating an archive), kept whole
/// as the [`source`](std::error::Error::source) of the shmbus error that carries it.
/// Two are equal when they say the same thing.
#[derive(Debug)]
pub struct ArchiveError(pub rkyv::rancor::Error);

impl PartialEq for ArchiveError {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}
impl Eq for ArchiveError {}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ArchiveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Publishing failed; nothing was written.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// Reliable mode: the slowest live subscriber is a full ring behind (`try_send`).
    BackPressured,
    /// `send_timeout` waited this long under back-pressure.
    Timeout,
    /// The payload is larger than the topic's maximum.
    TooLarge {
        /// Payload length.
        len: usize,
        /// The topic's maximum payload length.
        max: usize,
    },
    /// rkyv could not serialise the event.
    Serialize(ArchiveError),
    /// The claim at `position` was turned into a gap before it was committed (a
    /// subscriber judged this producer dead after the topic's unblock timeout): the
    /// record was **not** published, and subscribers see a gap in its place. Publish
    /// it again if it matters. See the crate docs on crashes and `fork()`.
    ClaimLost {
        /// Position of the claim that was lost.
        position: u64,
    },
}

/// Receiving failed.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// A producer evicted this subscriber (it was dead-looking or stuck too long).
    Evicted,
    /// Lossy mode: producers lapped this subscriber; it skipped `missed_bytes` and
    /// resumed at `resumed_at`.
    Lagged {
        /// Bytes of the log that were overwritten before they were read.
        missed_bytes: u64,
        /// Where reading resumes.
        resumed_at: u64,
    },
    /// A record's payload is not a valid archive of the subscriber's event type.
    Invalid {
        /// The record's position.
        position: u64,
        /// What validation said.
        source: ArchiveError,
    },
    /// A record carries another type id than the subscriber's event type.
    WrongType {
        /// The record's position.
        position: u64,
        /// Its type id.
        found: u64,
    },
    /// The ring holds a malformed record header (a writer wrote garbage).
    Corrupt {
        /// The record's position.
        position: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// A shared word of the ring header breaks the ring's invariants (it was
    /// scribbled), so the records the subscriber waits for may never come: it stops
    /// waiting and writes nothing.
    CorruptWord {
        /// Where the subscriber is.
        position: u64,
        /// Which word (e.g. `tail`, `consumer 3 position`).
        word: String,
        /// The value found in it.
        value: u64,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::InvalidName(n) => write!(
                f,
                "invalid topic name {n:?}: use 1 to 128 of [A-Za-z0-9._-], not starting with '.'"
            ),
            OpenError::InvalidBusName(n) => write!(
                f,
                "invalid bus name {n:?}: use 1 to 128 of [A-Za-z0-9._-], not starting with '.'"
            ),
            OpenError::InvalidConfig(why) => write!(f, "invalid topic configuration: {why}"),
            OpenError::Io { path, op, source } => {
                write!(f, "{op} {}: {source}", path.display())
            }
            OpenError::NotFound(p) => write!(f, "no such topic: {}", p.display()),
            OpenError::BadMagic { path } => {
                write!(
                    f,
                    "{} is not a shmbus ring file (bad magic)",
                    path.display()
                )
            }
            OpenError::BadVersion {
                path,
                found,
                expected,
            } => write!(
                f,
                "{} has ring format version {found}; this build reads version {expected}",
                path.display()
            ),
            OpenError::Truncated { path, size, needed } => write!(
                f,
                "{} is truncated: {size} bytes, its header needs {needed}",
                path.display()
            ),
            OpenError::Corrupt { path, what } => {
                write!(f, "{} is corrupt: bad {what}", path.display())
            }
            OpenError::NotReady(p) => {
                write!(f, "{} was never completed by its creator", p.display())
            }
            OpenError::CapacityMismatch { found, requested } => write!(
                f,
                "topic exists with capacity {found} bytes, {requested} was requested"
            ),
            OpenError::ModeMismatch { found, requested } => {
                write!(
                    f,
                    "topic exists in {found:?} mode, {requested:?} was requested"
                )
            }
            OpenError::TypeMismatch { found, expected } => {
                write!(f, "topic carries {found}, opened as {expected}")
            }
            OpenError::UnsafePermissions { path, why } => {
                write!(f, "refusing {}: {why}", path.display())
            }
        }
    }
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachError::TooManyProducers => write!(
                f,
                "all {} producer slots are held by live processes",
                crate::ring::layout::MAX_PRODUCERS
            ),
            AttachError::ExclusivePublisher => {
                write!(f, "another publisher holds this topic exclusively")
            }
            AttachError::PublishersAttached => write!(
                f,
                "cannot publish exclusively: other publishers are attached to this topic"
            ),
            AttachError::TooManySubscribers => write!(
                f,
                "all {} subscriber slots are taken",
                crate::ring::layout::MAX_CONSUMERS
            ),
            AttachError::NameInUse(n) => {
                write!(f, "subscriber name {n:?} is held by a live process")
            }
            AttachError::InvalidName(n) => write!(
                f,
                "invalid subscriber name {n:?}: 1 to {} bytes",
                crate::ring::layout::MAX_NAME
            ),
            AttachError::InvalidPosition(p) => {
                write!(f, "position {p} is not a record boundary in this topic")
            }
            AttachError::PositionLost { requested, oldest } => write!(
                f,
                "position {requested} was overwritten; the oldest retained is {oldest}"
            ),
            AttachError::Io(e) => write!(f, "{e}"),
            AttachError::CorruptWord { word, value } => {
                write!(f, "corrupt ring header: {word} is {value} ({value:#x})")
            }
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::BackPressured => write!(
                f,
                "back-pressured: the slowest subscriber is a full ring behind"
            ),
            SendError::Timeout => write!(f, "timed out under back-pressure"),
            SendError::TooLarge { len, max } => {
                write!(
                    f,
                    "payload of {len} bytes exceeds the topic maximum of {max}"
                )
            }
            SendError::Serialize(e) => write!(f, "could not serialise the event: {e}"),
            SendError::ClaimLost { position } => write!(
                f,
                "the claim at position {position} was turned into a gap before its commit \
                 (this producer was judged dead): the record was not published"
            ),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Evicted => write!(f, "this subscriber was evicted by a producer"),
            RecvError::Lagged {
                missed_bytes,
                resumed_at,
            } => write!(
                f,
                "lapped by producers: missed {missed_bytes} bytes, resumed at position {resumed_at}"
            ),
            RecvError::Invalid { position, source } => {
                write!(f, "record at {position} is not a valid event: {source}")
            }
            RecvError::WrongType { position, found } => {
                write!(
                    f,
                    "record at {position} has type id {found:#x}, not this subscriber's"
                )
            }
            RecvError::Corrupt { position, what } => {
                write!(f, "corrupt record header at {position}: {what}")
            }
            RecvError::CorruptWord {
                position,
                word,
                value,
            } => write!(
                f,
                "corrupt ring header: {word} is {value} ({value:#x}); stopped at {position}"
            ),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
impl std::error::Error for AttachError {}
impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Serialize(e) => Some(e),
            _ => None,
        }
    }
}
impl std::error::Error for RecvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecvError::Invalid { source, .. } => Some(source),
            _ => None,
        }
    }
}
/// Defines [`Error`] from one list of (variant, error type): the enum, its `Display`
/// (the wrapped error's), its `source` (the wrapped error) and a `From` for each type.
macro_rules! umbrella {
    ($($(#[$doc:meta])* $variant:ident($ty:ty)),* $(,)?) => {
        /// Any shmbus error.
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum Error {
            $($(#[$doc])* $variant($ty),)*
        }

        impl fmt::Display for Error {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $(Error::$variant(e) => e.fmt(f),)*
                }
            }
        }

        impl std::error::Error for Error {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $(Error::$variant(e) => Some(e),)*
                }
            }
        }

        $(impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                Error::$variant(e)
            }
        })*
    };
}

umbrella!(
    /// See [`OpenError`].
    Open(OpenError),
    /// See [`AttachError`].
    Attach(AttachError),
    /// See [`SendError`].
    Send(SendError),
    /// See [`RecvError`].
    Recv(RecvError),
    /// See [`SchemaError`](crate::schema::SchemaError).
    Schema(crate::schema::SchemaError),
    /// See [`DecodeError`](crate::schema::DecodeError).
    Decode(crate::schema::DecodeError),
    /// See [`FromJsonError`](crate::schema::FromJsonError).
    FromJson(crate::schema::FromJsonError),
    /// See [`StoreError`](crate::store::StoreError).
    Store(crate::store::StoreError),
    /// See [`QueryError`](crate::query::QueryError) (a query's parse errors included).
    Query(crate::query::QueryError),
);

impl From<crate::query::ParseError> for Error {
    fn from(e: crate::query::ParseError) -> Self {
        Error::Query(crate::query::QueryError::Parse(e))
    }
}

/// Shorthand for an [`OpenError::Io`].
pub(crate) fn io_err(
    path: impl Into<PathBuf>,
    op: &'static str,
) -> impl FnOnce(io::Error) -> OpenError {
    let path = path.into();
    move |source| OpenError::Io { path, op, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every error type of the library converts into [`Error`] with `?`, keeping itself
    /// as the source.
    #[test]
    fn every_error_type_converts_into_the_umbrella() {
        fn lift<E: Into<Error>>(e: E) -> Error {
            e.into()
        }
        let schema_err = crate::schema::Schema::decode(b"nope").unwrap_err();
        let decode_err = crate::schema::render_json(
            &crate::schema::Schema::new("T", crate::schema::Kind::U64).unwrap(),
            b"",
            &mut String::new(),
        )
        .unwrap_err();
        let json_err = crate::schema::from_json(
            &crate::schema::Schema::new("T", crate::schema::Kind::U64).unwrap(),
            "{",
        )
        .unwrap_err();
        let parse_err = crate::query::parse_expr("price >").unwrap_err();
        let all = [
            lift(OpenError::InvalidName("..".into())),
            lift(AttachError::TooManyProducers),
            lift(SendError::Timeout),
            lift(RecvError::Evicted),
            lift(schema_err),
            lift(decode_err),
            lift(json_err),
            lift(parse_err),
        ];
        for e in &all {
            let source = std::error::Error::source(e).expect("the wrapped error is the source");
            assert_eq!(source.to_string(), e.to_string());
        }
    }
}
