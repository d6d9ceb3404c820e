//! The dump pipeline, top to bottom:
//!
//! 1. look without touching: refuse what cannot be restored (mappings, fds, threads);
//! 2. stop the task (PTRACE_SEIZE + INTERRUPT), block its signals;
//! 3. ask it what only it can tell (handlers, altstack, brk, ...) by syscalls run inside it,
//!    then put its registers and signal mask back at once: from here on, stasis dying leaves
//!    the task as it was;
//! 4. read the rest from outside: registers, xstate, pending signals, /proc, fds;
//! 5. find and copy its pages into pages.img;
//! 6. check the address space did not change meanwhile, write the metadata, inventory last;
//! 7. kill the task, or let it go on (--leave-running).
//!
//! A failure at any step puts the task back as it was and removes what was written.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{debug, info};

use crate::cpu;
use crate::error::{Context, Error, Result};
use crate::failpoint;
use crate::files::{self, FileTable};
use crate::image::{self, Core, Creds, Image, Inventory, ProcessEntry, ProcessImage, ThreadCore};
use crate::memory;
use crate::pagestore::PageStore;
use crate::procfs;
use crate::remote::{self, Tracee};
use crate::signals;
use crate::sys::{self, PAGE_SIZE, Pid};
use crate::task;

#[derive(Debug, Clone)]
pub struct DumpOptions {
    pub pid: Pid,
    pub dir: PathBuf,
    pub leave_running: bool,
    pub shell_job: bool,
}

#[derive(Debug, Clone)]
pub struct DumpSummary {
    pub pid: Pid,
    pub mappings: usize,
    pub pages_stored: u64,
    pub zero_pages: u64,
}

/// Only one dump of a pid at a time: an exclusive lock held for the whole dump.
struct DumpLock {
    _file: fs::File,
}

impl DumpLock {
    fn acquire(pid: Pid) -> Result<DumpLock> {
        let dir = Path::new("/run/stasis");
        let dir = if fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).is_ok() {
            dir.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let path = dir.join(format!("dump-{pid}.lock"));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx(|| format!("opening lock {}", path.display()))?;
        sys::flock_exclusive_nb(file.as_fd()).map_err(|_| Error::Target {
            pid,
            reason: "another stasis dump of this process is running".into(),
        })?;
        Ok(DumpLock { _file: file })
    }
}

pub fn dump(opts: &DumpOptions) -> Result<DumpSummary> {
    let pid = opts.pid;
    if pid <= 0 || pid == sys::getpid() {
        return Err(Error::Target {
            pid,
            reason: "not a process stasis can dump".into(),
        });
    }
    let _lock = DumpLock::acquire(pid)?;

    // 1. Refuse before touching anything.
    refuse_unsupported_task(pid, true)?;
    memory::plan(pid, &procfs::read_smaps(pid)?, &mut FileTable::default())?;
    files::dump(pid, opts.shell_job, &mut FileTable::default())?;
    let (staging, _dir_lock) = prepare_dir(&opts.dir, pid)?;
    let _cleanup = RemoveOnDrop(staging.work.clone());

    // 2. Stop it (noting first whether job control already had).
    let was_stopped = procfs::read_stat(pid)?.state == 'T';
    let mut t = Tracee::seize(pid)?;
    info!(pid, "stopped");
    let stopped = (|| {
        failpoint::hit("dump:seized")?;
        refuse_unsupported_task(pid, false)?;
        let regs = t.regs()?;
        let mask = sys::ptrace_get_sigmask(pid).ctx(|| format!("process {pid}: PTRACE_GETSIGMASK"))?;
        Ok::<_, Error>((regs, mask))
    })();
    let (orig_regs, orig_mask) = match stopped {
        Ok(x) => x,
        Err(e) => {
            // Nothing was changed yet: it goes on from its stop as if never stopped.
            let _ = t.detach(0);
            return Err(e);
        }
    };

    // The image is written beside the old one (if any) and replaces it only when complete.
    match dump_stopped(&mut t, opts, &staging.work, orig_mask, was_stopped)
        .and_then(|s| commit_image(&staging).map(|()| s))
    {
        Ok(summary) => {
            if opts.leave_running {
                cure(t, &orig_regs, orig_mask)?;
                info!(pid, "left running");
            } else {
                sys::kill(pid, libc::SIGKILL).ctx(|| format!("killing process {pid}"))?;
                // Collect the tracer's exit notification so the parent can reap it.
                while let Ok(Some(sys::WaitStatus::Stopped { .. })) = sys::waitpid(pid, 0) {}
                info!(pid, "killed");
            }
            Ok(summary)
        }
        Err(e) => {
            let _ = cure(t, &orig_regs, orig_mask);
            Err(e)
        }
    }
}

/// Threads, seccomp and another process sharing the address space: checked before the task
/// is stopped, and again once it is (it may have changed in between).
fn refuse_unsupported_task(pid: Pid, before_stop: bool) -> Result<()> {
    let status = procfs::read_status(pid)?;
    if status.threads != 1 {
        return Err(Error::Unsupported {
            pid,
            reason: format!(
                "it has {} threads; this version dumps single-threaded processes",
                status.threads
            ),
        });
    }
    if status.seccomp != 0 {
        return Err(Error::Unsupported {
            pid,
            reason: "it runs under seccomp, which stasis cannot restore yet (and which may kill it for the syscalls stasis runs in it)".into(),
        });
    }
    if before_stop && status.tracer_pid != 0 {
        return Err(Error::Target {
            pid,
            reason: format!("it is being traced by process {}", status.tracer_pid),
        });
    }
    memory::refuse_shared_mm(pid, &procfs::read_stat(pid)?)
}

/// Puts the task back exactly as it was and lets it go.
fn cure(mut t: Tracee, orig_regs: &sys::UserRegs, mask: u64) -> Result<()> {
    // The mask first: whatever fails after it, the kernel detaches the task when stasis exits.
    let masked = sys::ptrace_set_sigmask(t.pid, mask).ctx(|| "restoring the signal mask");
    let parked = if t.regs_dirty() { t.park(orig_regs) } else { Ok(()) };
    let detached = t.detach(0);
    masked.and(parked).and(detached)
}

fn dump_stopped(
    t: &mut Tracee,
    opts: &DumpOptions,
    work: &Path,
    orig_mask: u64,
    was_stopped: bool,
) -> Result<DumpSummary> {
    let pid = t.pid;
    let orig_regs = t.regs()?;
    let smaps = procfs::read_smaps(pid)?;
    let mut table = FileTable::default();
    let mut plan = memory::plan(pid, &smaps, &mut table)?;

    // 3. What only the task can tell. Signals stay blocked while stasis works inside it.
    sys::ptrace_set_sigmask(pid, !0).ctx(|| "blocking signals")?;
    remote::locate_syscall(t, &smaps)?;
    let scratch = remote::pick_gap(&[smaps.iter().map(|m| (m.start, m.end)).collect()], PAGE_SIZE as u64)
        .ok_or_else(|| Error::Restore("no room for a scratch page".into()))?;
    let prot = (libc::PROT_READ | libc::PROT_WRITE) as u64;
    let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE) as u64;
    t.syscall(
        "mmap(scratch)",
        libc::SYS_mmap,
        &[scratch, PAGE_SIZE as u64, prot, flags, u64::MAX, 0],
    )?;
    let asked = (|| {
        failpoint::hit("dump:injecting")?;
        let sig = signals::dump(t, scratch)?;
        let inj = task::dump_injected(t, scratch)?;
        Ok::<_, Error>((sig, inj))
    })();
    let unmapped = t.syscall("munmap(scratch)", libc::SYS_munmap, &[scratch, PAGE_SIZE as u64]);
    let ((actions, altstack), injected) = asked?;
    unmapped?;
    // From here on the task could go on at any moment without harm: it is parked where the
    // kernel would resume it exactly as it was.
    sys::ptrace_set_sigmask(pid, orig_mask).ctx(|| "restoring the signal mask")?;
    t.park(&orig_regs)?;
    debug!(pid, handlers = actions.len(), "asked the task");
    if injected.securebits & task::SECBITS_LOCKED != 0 {
        return Err(Error::Unsupported {
            pid,
            reason: format!(
                "its securebits {:#x} hold locks that cannot be restored",
                injected.securebits
            ),
        });
    }

    // 4. From outside.
    let (regs, xstate) = cpu::dump(t, &orig_regs)?;
    let (pending, shared_pending) = signals::dump_pending(pid)?;
    let (robust_list, rseq) = task::dump_thread_links(pid)?;
    let stat = procfs::read_stat(pid)?;
    let status = procfs::read_status(pid)?;
    let state = task::dump_process(pid, &stat, &status)?;
    let mm_meta = task::dump_mm(pid, &stat, injected.brk, &mut table)?;
    let fds = files::dump(pid, opts.shell_job, &mut table)?;

    // 5. Pages.
    let started = std::time::Instant::now();
    let capacity = memory::scan(pid, &mut plan)?;
    memory::flush_shared_files(pid, &plan)?;
    let mut store = PageStore::create(&work.join(image::PAGES), capacity)?;
    let (vmas, shmem) = memory::copy_pages(pid, plan, &mut store)?;
    debug!(pid, elapsed = ?started.elapsed(), "pages scanned and copied");
    failpoint::hit("dump:pages-copied")?;

    // 6. The layout must be the one the pages were read from.
    let now = procfs::read_maps(pid)?;
    if now.len() != smaps.len() || !now.iter().zip(&smaps).all(|(a, b)| a.same_layout(b)) {
        return Err(Error::Target {
            pid,
            reason: "its address space changed during the dump".into(),
        });
    }
    let pages = store.finish()?;
    let (stored, zeros) = vmas
        .iter()
        .map(|v| &v.pages)
        .chain(shmem.iter().map(|o| &o.pages))
        .map(|runs| memory::count_pages(runs))
        .fold((0, 0), |(d, z), (d1, z1)| (d + d1, z + z1));
    let mappings = vmas.len();
    let core = Core {
        pid,
        comm: state.comm,
        stopped: was_stopped,
        sid: state.sid,
        pgid: state.pgid,
        personality: state.personality,
        umask: state.umask,
        cwd: state.cwd,
        root: state.root,
        creds: Creds {
            securebits: injected.securebits,
            ..state.creds
        },
        rlimits: state.rlimits,
        pdeathsig: injected.pdeathsig,
        dumpable: injected.dumpable,
        sigactions: actions,
        shared_pending,
        mm: mm_meta,
        threads: vec![ThreadCore {
            tid: pid,
            regs,
            xstate,
            sigmask: orig_mask,
            pending,
            altstack,
            clear_child_tid: injected.clear_child_tid,
            robust_list,
            rseq,
        }],
    };
    let img = Image {
        inventory: Inventory {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            kernel: sys::kernel_release(),
            arch: std::env::consts::ARCH.to_string(),
            page_size: image::PAGE_SIZE,
            created_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            root_pid: pid,
            processes: vec![ProcessEntry { pid, ppid: stat.ppid }],
            files: table.files,
            shmem,
            pages,
            parent: None,
            shell_job: opts.shell_job,
        },
        processes: vec![ProcessImage {
            core,
            mm: image::Mm { vmas },
            fds,
        }],
    };
    // What we wrote must be what we can read back.
    image::validate(&img)?;
    failpoint::hit("dump:before-write")?;
    img.write(work)?;
    info!(pid, pages = stored, zero_pages = zeros, "image written");
    Ok(DumpSummary {
        pid,
        mappings,
        pages_stored: stored,
        zero_pages: zeros,
    })
}

/// Removes a directory (the unfinished image) whatever way the dump ends; after a
/// successful one it is already gone.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Where the new image is written before it replaces the old one.
struct Staging {
    /// DIR with symlinks resolved: the directory that is replaced, not a link to it.
    dir: PathBuf,
    work: PathBuf,
    /// `work` is a sibling of DIR, to be exchanged with it in one rename; otherwise it is
    /// inside DIR (which holds other files) and the files move one by one.
    exchange: bool,
}

/// Creates DIR (0700), locks it against other dumps into it, and makes an empty work
/// directory for the new image: beside DIR when DIR holds nothing but an image (so the two
/// can be exchanged atomically), inside it otherwise. The lock lasts as long as the file.
fn prepare_dir(dir: &Path, pid: Pid) -> Result<(Staging, fs::File)> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .ctx(|| format!("creating {}", dir.display()))?;
    let dir = &fs::canonicalize(dir).ctx(|| format!("resolving {}", dir.display()))?;
    let lock = fs::File::open(dir).ctx(|| format!("opening {}", dir.display()))?;
    sys::flock_exclusive_nb(lock.as_fd()).map_err(|_| Error::Sys {
        what: format!("locking {}", dir.display()),
        err: std::io::Error::other("another stasis dump is writing into this directory"),
    })?;
    let only_image = fs::read_dir(dir)
        .ctx(|| format!("reading {}", dir.display()))?
        .flatten()
        .all(|e| is_image_file(&e.file_name().to_string_lossy()));
    let sibling = match (dir.parent(), dir.file_name()) {
        (Some(parent), Some(name)) if only_image => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            Some(parent.join(format!(".{}.partial-{pid}", name.to_string_lossy())))
        }
        _ => None,
    };
    let exchange = sibling.is_some();
    let work = sibling.unwrap_or_else(|| dir.join(format!(".partial-{pid}")));
    let _ = fs::remove_dir_all(&work);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&work)
        .ctx(|| format!("creating {}", work.display()))?;
    Ok((
        Staging {
            dir: dir.clone(),
            work,
            exchange,
        },
        lock,
    ))
}

/// Replaces the image in `dir` (if any) with the complete one in `staging`. Exchanging the
/// two directories is atomic: DIR is always one whole image. Where that cannot be done, the
/// old inventory goes first and the new one comes last, so DIR never looks like a complete
/// image made of two dumps (but a crash in between leaves none).
fn commit_image(staging: &Staging) -> Result<()> {
    let (work, dir) = (&staging.work, staging.dir.as_path());
    if staging.exchange && sys::rename_exchange(work, dir).is_ok() {
        // `work` now holds the old image.
        let _ = fs::remove_dir_all(work);
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        return fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .ctx(|| format!("syncing {}", parent.display()));
    }
    remove_image(dir);
    let mut names: Vec<_> = fs::read_dir(work)
        .ctx(|| format!("reading {}", work.display()))?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort_by_key(|n| n == image::INVENTORY);
    for name in names {
        fs::rename(work.join(&name), dir.join(&name)).ctx(|| format!("moving {name:?} into {}", dir.display()))?;
    }
    fs::remove_dir(work).ctx(|| format!("removing {}", work.display()))?;
    // The renames are durable only once the directory is.
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("syncing {}", dir.display()))
}

/// Whether a file name is one an image consists of.
fn is_image_file(name: &str) -> bool {
    name == image::INVENTORY
        || name == image::PAGES
        || ["core-", "mm-", "fds-"].iter().any(|p| name.starts_with(p)) && name.ends_with(".img")
}

/// Removes stasis image files from `dir`, the inventory first so a half-removed directory
/// never looks like a complete image.
fn remove_image(dir: &Path) {
    let _ = fs::remove_file(dir.join(image::INVENTORY));
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if is_image_file(&e.file_name().to_string_lossy()) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}
