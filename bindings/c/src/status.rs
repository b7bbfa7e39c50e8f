//! Status codes, `shmbus_strerror`, the per-thread last error, and the wrapper that runs
//! every entry point under `catch_unwind`.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use shmbus::schema::decode::DecodeError;
use shmbus::schema::encode::FromJsonError;
use shmbus::{AttachError, OpenError, RecvError, SendError};

/// What a call returned: `SHMBUS_OK` (0) or one failure class. The calling thread's
/// `shmbus_last_error()` then holds a message with the details.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum shmbus_status {
    /// Success.
    SHMBUS_OK = 0,
    /// A required pointer argument was NULL (this includes a handle variable that a
    /// `*_close` call set to NULL).
    SHMBUS_ERR_NULL = 1,
    /// An argument is out of range: a zero length, an unknown flag, a bad bus, topic
    /// or subscriber name, a capacity that is not a power of two from 4 KiB to 1 TiB,
    /// a string that is not UTF-8.
    SHMBUS_ERR_INVALID_ARGUMENT = 2,
    /// The pointer is not an open handle of the expected type.
    SHMBUS_ERR_BAD_HANDLE = 3,
    /// An operating-system call failed (creating, opening or mapping a file).
    SHMBUS_ERR_IO = 4,
    /// The topic does not exist (and the call does not create it).
    SHMBUS_ERR_NOT_FOUND = 5,
    /// A directory or ring file has unsafe ownership or permissions.
    SHMBUS_ERR_PERMISSION = 6,
    /// The file is not a ring file this build reads: bad magic or version, truncated,
    /// a corrupt header, or never completed by its creator.
    SHMBUS_ERR_BAD_FILE = 7,
    /// The topic exists with another capacity, mode or event type than requested.
    SHMBUS_ERR_MISMATCH = 8,
    /// Every producer (or subscriber) slot of the topic is taken, or a publisher
    /// holds the topic exclusively.
    SHMBUS_ERR_NO_SLOT = 9,
    /// A live subscriber already holds this subscriber name.
    SHMBUS_ERR_NAME_IN_USE = 10,
    /// The start position is not a record boundary, or was already overwritten.
    SHMBUS_ERR_POSITION = 11,
    /// Reliable mode, non-waiting call: the slowest live subscriber is a full ring
    /// behind, so there is no room now.
    SHMBUS_ERR_BACK_PRESSURED = 12,
    /// Nothing happened within the timeout: no room to publish, or no event to receive
    /// (also returned by a receive with timeout 0 when no event is ready).
    SHMBUS_ERR_TIMEOUT = 13,
    /// The length exceeds the topic's maximum payload (a quarter of its capacity).
    SHMBUS_ERR_TOO_LARGE = 14,
    /// A producer evicted this subscriber (it made no progress for the topic's consumer
    /// timeout); close it and open a new one.
    SHMBUS_ERR_EVICTED = 15,
    /// Lossy mode: producers lapped this subscriber. It skipped what was overwritten
    /// and resumed; receive again.
    SHMBUS_ERR_LAGGED = 16,
    /// The ring holds a malformed record header, or a shared header word (the tail, a
    /// subscriber position) that breaks the ring's invariants; `shmbus_last_error()`
    /// names the word and its value.
    SHMBUS_ERR_CORRUPT = 17,
    /// The payload is not a valid event of the topic's schema.
    SHMBUS_ERR_INVALID_EVENT = 18,
    /// The topic carries raw bytes: it has no schema.
    SHMBUS_ERR_NO_SCHEMA = 19,
    /// The output buffer is too small; `*needed` says how large it must be.
    SHMBUS_ERR_BUFFER_TOO_SMALL = 20,
    /// The publisher has a claim that is neither committed nor aborted.
    SHMBUS_ERR_CLAIM_PENDING = 21,
    /// The publisher has no claim to commit or abort.
    SHMBUS_ERR_NO_CLAIM = 22,
    /// The subscriber lends out no event (it was released already, or is not the one
    /// this subscriber received last).
    SHMBUS_ERR_NOT_HELD = 23,
    /// The handle is in use by a call on this thread (a poll callback called back
    /// into its own subscriber).
    SHMBUS_ERR_BUSY = 24,
    /// A failure this version of the C ABI does not classify; see `shmbus_last_error()`.
    SHMBUS_ERR_OTHER = 25,
    /// A bug: the library panicked. The call was abandoned; the handle may be unusable.
    SHMBUS_ERR_PANIC = 26,
    /// The JSON text is not JSON, or does not fit the topic's schema (a missing,
    /// unknown or mistyped field, a number out of range); `shmbus_last_error()` says
    /// what and at which column.
    SHMBUS_ERR_JSON = 27,
    /// The pending claim was turned into a gap before this commit: a subscriber judged
    /// this publisher's process dead after the topic's unblock timeout (for example a
    /// child forked without exec that uses a publisher its parent opened, or a process
    /// in another PID namespace). The event was **not** published and subscribers see
    /// a gap in its place; the claim is gone (publish again if it matters).
    SHMBUS_ERR_CLAIM_LOST = 28,
}

use shmbus_status::*;

/// Every status, in code order (for `shmbus_strerror` and the tests).
const ALL: [shmbus_status; 29] = [
    SHMBUS_OK,
    SHMBUS_ERR_NULL,
    SHMBUS_ERR_INVALID_ARGUMENT,
    SHMBUS_ERR_BAD_HANDLE,
    SHMBUS_ERR_IO,
    SHMBUS_ERR_NOT_FOUND,
    SHMBUS_ERR_PERMISSION,
    SHMBUS_ERR_BAD_FILE,
    SHMBUS_ERR_MISMATCH,
    SHMBUS_ERR_NO_SLOT,
    SHMBUS_ERR_NAME_IN_USE,
    SHMBUS_ERR_POSITION,
    SHMBUS_ERR_BACK_PRESSURED,
    SHMBUS_ERR_TIMEOUT,
    SHMBUS_ERR_TOO_LARGE,
    SHMBUS_ERR_EVICTED,
    SHMBUS_ERR_LAGGED,
    SHMBUS_ERR_CORRUPT,
    SHMBUS_ERR_INVALID_EVENT,
    SHMBUS_ERR_NO_SCHEMA,
    SHMBUS_ERR_BUFFER_TOO_SMALL,
    SHMBUS_ERR_CLAIM_PENDING,
    SHMBUS_ERR_NO_CLAIM,
    SHMBUS_ERR_NOT_HELD,
    SHMBUS_ERR_BUSY,
    SHMBUS_ERR_OTHER,
    SHMBUS_ERR_PANIC,
    SHMBUS_ERR_JSON,
    SHMBUS_ERR_CLAIM_LOST,
];

impl shmbus_status {
    fn describe(self) -> &'static CStr {
        match self {
            SHMBUS_OK => c"success",
            SHMBUS_ERR_NULL => c"a required pointer argument is NULL",
            SHMBUS_ERR_INVALID_ARGUMENT => c"invalid argument",
            SHMBUS_ERR_BAD_HANDLE => c"not an open handle of the expected type",
            SHMBUS_ERR_IO => c"an operating-system call failed",
            SHMBUS_ERR_NOT_FOUND => c"no such topic",
            SHMBUS_ERR_PERMISSION => c"unsafe ownership or permissions",
            SHMBUS_ERR_BAD_FILE => c"not a usable shmbus ring file",
            SHMBUS_ERR_MISMATCH => c"the topic exists with another capacity, mode or type",
            SHMBUS_ERR_NO_SLOT => c"all producer or subscriber slots are taken",
            SHMBUS_ERR_NAME_IN_USE => c"the subscriber name is held by a live process",
            SHMBUS_ERR_POSITION => c"invalid or overwritten start position",
            SHMBUS_ERR_BACK_PRESSURED => c"back-pressured: the ring is full for a subscriber",
            SHMBUS_ERR_TIMEOUT => c"timed out",
            SHMBUS_ERR_TOO_LARGE => c"payload exceeds the topic maximum",
            SHMBUS_ERR_EVICTED => c"this subscriber was evicted by a producer",
            SHMBUS_ERR_LAGGED => c"lapped by producers: events were skipped",
            SHMBUS_ERR_CORRUPT => c"corrupt record header in the ring",
            SHMBUS_ERR_INVALID_EVENT => c"the payload is not a valid event of the schema",
            SHMBUS_ERR_NO_SCHEMA => c"the topic has no schema (raw bytes)",
            SHMBUS_ERR_BUFFER_TOO_SMALL => c"the output buffer is too small",
            SHMBUS_ERR_CLAIM_PENDING => c"a claim is pending: commit or abort it first",
            SHMBUS_ERR_NO_CLAIM => c"no claim is pending",
            SHMBUS_ERR_NOT_HELD => c"no such event is lent out by this subscriber",
            SHMBUS_ERR_BUSY => c"the handle is in use by a call on this thread",
            SHMBUS_ERR_OTHER => c"unclassified error",
            SHMBUS_ERR_PANIC => c"internal error: the library panicked",
            SHMBUS_ERR_JSON => c"the JSON does not encode with the topic's schema",
            SHMBUS_ERR_CLAIM_LOST => {
                c"the claim was turned into a gap before its commit: the event was not published"
            }
        }
    }
}

/// A static, NUL-terminated description of a status code (never NULL; an unknown code
/// gives "unknown shmbus status code"). Thread-safe.
#[no_mangle]
pub extern "C" fn shmbus_strerror(code: c_int) -> *const c_char {
    let s = usize::try_from(code)
        .ok()
        .and_then(|i| ALL.get(i))
        .map(|s| s.describe())
        .unwrap_or(c"unknown shmbus status code");
    s.as_ptr()
}

thread_local! {
    /// The calling thread's last failure message, NUL-terminated (empty: none yet).
    static LAST_ERROR: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The message of the calling thread's most recent failed call (an empty string if no
/// call on this thread has failed). Calls that succeed leave it as it was.
///
/// The pointer stays valid until the next failing call on the same thread; copy the
/// string to keep it. Thread-safe (each thread has its own message).
#[no_mangle]
pub extern "C" fn shmbus_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|m| {
            let m = m.borrow();
            if m.is_empty() {
                c"".as_ptr()
            } else {
                m.as_ptr().cast()
            }
        })
        .unwrap_or(c"".as_ptr())
}

fn set_last_error(msg: &str) {
    let _ = LAST_ERROR.try_with(|m| {
        if let Ok(mut m) = m.try_borrow_mut() {
            m.clear();
            m.extend(msg.bytes().filter(|&b| b != 0));
            m.push(0);
        }
    });
}

/// A failed call: its status and message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: shmbus_status,
    pub msg: Cow<'static, str>,
}

// Failures are built out of line and marked cold, so that the success path of every
// entry point stays a short run of checks (callgrind counted the C path's overhead).
impl Failure {
    #[cold]
    #[inline(never)]
    pub fn new(code: shmbus_status, msg: impl Into<Cow<'static, str>>) -> Failure {
        Failure {
            code,
            msg: msg.into(),
        }
    }

    /// A NULL pointer argument.
    #[cold]
    #[inline(never)]
    pub fn null(what: &'static str) -> Failure {
        Failure::new(SHMBUS_ERR_NULL, format!("{what} is NULL"))
    }

    #[cold]
    #[inline(never)]
    pub fn invalid(msg: impl Into<Cow<'static, str>>) -> Failure {
        Failure::new(SHMBUS_ERR_INVALID_ARGUMENT, msg)
    }
}

impl From<OpenError> for Failure {
    #[cold]
    #[inline(never)]
    fn from(e: OpenError) -> Failure {
        let code = match &e {
            OpenError::InvalidName(_)
            | OpenError::InvalidBusName(_)
            | OpenError::InvalidConfig(_) => SHMBUS_ERR_INVALID_ARGUMENT,
            OpenError::Io { .. } => SHMBUS_ERR_IO,
            OpenError::NotFound(_) => SHMBUS_ERR_NOT_FOUND,
            OpenError::BadMagic { .. }
            | OpenError::BadVersion { .. }
            | OpenError::Truncated { .. }
            | OpenError::Corrupt { .. }
            | OpenError::NotReady(_) => SHMBUS_ERR_BAD_FILE,
            OpenError::CapacityMismatch { .. }
            | OpenError::ModeMismatch { .. }
            | OpenError::TypeMismatch { .. } => SHMBUS_ERR_MISMATCH,
            OpenError::UnsafePermissions { .. } => SHMBUS_ERR_PERMISSION,
            _ => SHMBUS_ERR_OTHER,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<AttachError> for Failure {
    #[cold]
    #[inline(never)]
    fn from(e: AttachError) -> Failure {
        let code = match &e {
            AttachError::TooManyProducers
            | AttachError::TooManySubscribers
            | AttachError::ExclusivePublisher
            | AttachError::PublishersAttached => SHMBUS_ERR_NO_SLOT,
            AttachError::NameInUse(_) => SHMBUS_ERR_NAME_IN_USE,
            AttachError::InvalidName(_) => SHMBUS_ERR_INVALID_ARGUMENT,
            AttachError::InvalidPosition(_) | AttachError::PositionLost { .. } => {
                SHMBUS_ERR_POSITION
            }
            AttachError::Io(_) => SHMBUS_ERR_IO,
            AttachError::CorruptWord { .. } => SHMBUS_ERR_CORRUPT,
            _ => SHMBUS_ERR_OTHER,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<SendError> for Failure {
    #[cold]
    #[inline(never)]
    fn from(e: SendError) -> Failure {
        // The two that a publisher loop may see often get static messages.
        match e {
            SendError::BackPressured => Failure::new(
                SHMBUS_ERR_BACK_PRESSURED,
                "back-pressured: the slowest subscriber is a full ring behind",
            ),
            SendError::Timeout => Failure::new(SHMBUS_ERR_TIMEOUT, "timed out under back-pressure"),
            SendError::TooLarge { .. } => Failure::new(SHMBUS_ERR_TOO_LARGE, e.to_string()),
            SendError::ClaimLost { .. } => Failure::new(SHMBUS_ERR_CLAIM_LOST, e.to_string()),
            _ => Failure::new(SHMBUS_ERR_OTHER, e.to_string()),
        }
    }
}

impl From<RecvError> for Failure {
    #[cold]
    #[inline(never)]
    fn from(e: RecvError) -> Failure {
        let code = match &e {
            RecvError::Evicted => SHMBUS_ERR_EVICTED,
            RecvError::Lagged { .. } => SHMBUS_ERR_LAGGED,
            RecvError::Invalid { .. } | RecvError::WrongType { .. } => SHMBUS_ERR_INVALID_EVENT,
            RecvError::Corrupt { .. } | RecvError::CorruptWord { .. } => SHMBUS_ERR_CORRUPT,
            _ => SHMBUS_ERR_OTHER,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<DecodeError> for Failure {
    #[cold]
    #[inline(never)]
    fn from(e: DecodeError) -> Failure {
        Failure::new(
            SHMBUS_ERR_INVALID_EVENT,
            format!("cannot render the event with the topic's schema: {e}"),
        )
    }
}

impl From<FromJsonError> for Failure {
    #[cold]
    #[inline(never)]
    fn from(e: FromJsonError) -> Failure {
        Failure::new(SHMBUS_ERR_JSON, e.to_string())
    }
}

/// Records a failure's message as the thread's last error; returns its code.
#[cold]
#[inline(never)]
fn failed(failure: Failure) -> shmbus_status {
    set_last_error(&failure.msg);
    failure.code
}

/// Runs one entry point: catches panics, records the failure message, returns the code.
#[inline]
pub(crate) fn ffi(f: impl FnOnce() -> Result<(), Failure>) -> shmbus_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => SHMBUS_OK,
        Ok(Err(failure)) => failed(failure),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            set_last_error(&format!("internal error: shmbus panicked: {what}"));
            SHMBUS_ERR_PANIC
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dense_and_described() {
        for (i, s) in ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
            // SAFETY: shmbus_strerror returns a static NUL-terminated string.
            let text = unsafe { CStr::from_ptr(shmbus_strerror(i as c_int)) };
            assert_eq!(text, s.describe());
        }
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(shmbus_strerror(-1)) };
        assert_eq!(unknown, c"unknown shmbus status code");
    }

    #[test]
    fn panics_become_a_code() {
        let s = ffi(|| panic!("boom"));
        assert_eq!(s, SHMBUS_ERR_PANIC);
        // SAFETY: shmbus_last_error returns a NUL-terminated thread-local string.
        let msg = unsafe { CStr::from_ptr(shmbus_last_error()) };
        assert!(msg.to_str().unwrap().contains("boom"));
    }
}
