//! Buses (directories of topics): naming, the bus directory and its permissions, and
//! the ownership rules every ring file and store directory must meet.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{io_err, OpenError};
use crate::ring::layout::*;
use crate::topic::*;

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
    pub(super) dir: PathBuf,
    pub(super) group: bool,
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
        Bus::open_dir(crate::topic::names::bus_dir(name))
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
        TopicBuilder::new(self.clone(), name)
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

/// Open an existing ring file; never through a symbolic link (one planted in the bus
/// directory could point a producer's writes at any file the caller can write).
pub(super) fn open_file(path: &Path) -> std::io::Result<File> {
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

pub(super) fn check_file_permissions(
    path: &Path,
    md: &fs::Metadata,
    group: bool,
) -> Result<(), OpenError> {
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

pub(super) fn meta_error(path: PathBuf, p: MetaProblem) -> OpenError {
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
