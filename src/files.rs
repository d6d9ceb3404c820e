//! Files: the table of files an image refers to (by mappings, fds and the exe link), the fd
//! table's dump, and its restore (run inside the new process before it stops).

use std::fs;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use crate::error::{Context, Error, Result};
use crate::image::{Fd, FdKind, Fds, FileKind, FileRecord};
use crate::procfs;
use crate::sys::{self, Pid};

/// Character devices whose every open is the same: null, zero, full, random, urandom.
const STATELESS_DEVICES: &[(u32, u32)] = &[(1, 3), (1, 5), (1, 7), (1, 8), (1, 9)];

/// Files by path, each once.
#[derive(Default)]
pub struct FileTable {
    pub files: Vec<FileRecord>,
}

impl FileTable {
    /// Adds (or finds) the file `meta` describes, at `path`.
    pub fn add(&mut self, path: &str, meta: &fs::Metadata) -> Option<u32> {
        let ft = meta.file_type();
        let kind = if ft.is_file() {
            FileKind::Regular
        } else if ft.is_dir() {
            FileKind::Directory
        } else if ft.is_char_device() {
            FileKind::CharDevice
        } else {
            return None;
        };
        if let Some(i) = self.files.iter().position(|f| f.path == path) {
            return Some(i as u32);
        }
        self.files.push(FileRecord {
            path: path.to_string(),
            kind,
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            rdev: meta.rdev(),
        });
        Some((self.files.len() - 1) as u32)
    }
}

/// Records every fd of `pid`; refuses what cannot be reopened, naming the fd.
pub fn dump(pid: Pid, shell_job: bool, table: &mut FileTable) -> Result<Fds> {
    let mut fds = Vec::new();
    for fd in procfs::list_fds(pid)? {
        let link = procfs::readlink(pid, &format!("fd/{fd}"))?;
        let info = procfs::read_fdinfo(pid, fd)?;
        let refuse = |what: &str| Error::Unsupported {
            pid,
            reason: format!("fd {fd} ({link}): {what}"),
        };
        let cloexec = info.flags & libc::O_CLOEXEC as u32 != 0;
        let mut flags = info.flags & !(libc::O_CLOEXEC as u32);
        // A file made with O_TMPFILE and linked since is reopened as the file it now is.
        if flags & libc::O_TMPFILE as u32 == libc::O_TMPFILE as u32 {
            flags &= !(libc::O_TMPFILE as u32);
        }
        if !link.starts_with('/') {
            return Err(refuse(
                "this kind of file is not supported yet (pipes, sockets, eventfd, ... are refused)",
            ));
        }
        if link.ends_with(" (deleted)") {
            return Err(refuse("the file was deleted and cannot be reopened"));
        }
        // Stat through the fd itself: the path may now name another file.
        let meta = fs::metadata(format!("/proc/{pid}/fd/{fd}")).ctx(|| format!("process {pid}: stat of fd {fd}"))?;
        let ft = meta.file_type();
        let is_tty = ft.is_char_device()
            && (link.starts_with("/dev/pts/") || link.starts_with("/dev/tty") || link == "/dev/console");
        if is_tty {
            if !shell_job {
                return Err(refuse(
                    "is a terminal: dump and restore with --shell-job to use the restorer's terminal",
                ));
            }
            fds.push(Fd {
                fd,
                cloexec,
                kind: FdKind::Tty { flags },
            });
            continue;
        }
        if ft.is_block_device() {
            return Err(refuse("block devices are not supported"));
        }
        if ft.is_char_device() && !STATELESS_DEVICES.contains(&(libc::major(meta.rdev()), libc::minor(meta.rdev()))) {
            return Err(refuse("this device keeps state that reopening it would lose"));
        }
        let Some(file) = table.add(&link, &meta) else {
            return Err(refuse("this kind of file is not supported yet"));
        };
        fds.push(Fd {
            fd,
            cloexec,
            kind: FdKind::Path {
                file,
                flags,
                pos: info.pos,
            },
        });
    }
    Ok(Fds { fds })
}

/// Checks before anything is created that every file an fd needs is there and of the same
/// kind (devices: the same device).
pub fn precheck(fds: &Fds, files: &[FileRecord]) -> Result<()> {
    for f in &fds.fds {
        if let FdKind::Path { file, .. } = f.kind {
            let rec = &files[file as usize];
            let meta =
                fs::metadata(&rec.path).map_err(|e| Error::Restore(format!("fd {}: {}: {e}", f.fd, rec.path)))?;
            let same_kind = match rec.kind {
                FileKind::Regular => meta.is_file(),
                FileKind::Directory => meta.is_dir(),
                FileKind::CharDevice => meta.file_type().is_char_device() && meta.rdev() == rec.rdev,
            };
            if !same_kind {
                return Err(Error::Restore(format!(
                    "fd {}: {} is no longer the same kind of file",
                    f.fd, rec.path
                )));
            }
        }
    }
    Ok(())
}

/// In the new process: opens every fd at its number with its flags and offset. `tty` is an
/// fd of the restorer's terminal (for --shell-job images).
pub fn restore(fds: &Fds, files: &[FileRecord], tty: Option<RawFd>) -> Result<()> {
    for f in &fds.fds {
        match f.kind {
            FdKind::Path { file, flags, pos } => {
                let rec = &files[file as usize];
                let fd = sys::open(&rec.path, flags as i32 & !libc::O_CLOEXEC, 0)
                    .ctx(|| format!("fd {}: opening {}", f.fd, rec.path))?;
                if rec.kind == FileKind::Regular || rec.kind == FileKind::Directory {
                    sys::lseek(fd.as_raw_fd(), pos).ctx(|| format!("fd {}: seeking {} to {pos}", f.fd, rec.path))?;
                }
                sys::move_fd(fd, f.fd, f.cloexec).ctx(|| format!("placing fd {}", f.fd))?;
            }
            FdKind::Tty { .. } => {
                let t =
                    tty.ok_or_else(|| Error::Restore(format!("fd {} needs a terminal, and stasis has none", f.fd)))?;
                sys::dup_to(t, f.fd, f.cloexec).ctx(|| format!("placing terminal fd {}", f.fd))?;
            }
        }
    }
    Ok(())
}
