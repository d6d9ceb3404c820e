//! The restore pipeline, top to bottom:
//!
//! 1. load and validate every record and the checksum of every stored page; check the pid is
//!    free, the files are there and unchanged, this kernel's vdso is laid out the same;
//! 2. clone3 with set_tid: the new process, a copy of the restorer, is traced from birth
//!    (exit-kill: if stasis dies, it dies). In ordinary code it sets its session, umask, cwd,
//!    name, opens every fd at its number, opens the files its mappings need and creates and
//!    fills its shared memory objects, then stops itself;
//! 3. stasis runs syscalls inside it: drop the restorer's own mappings, move the vdso and
//!    vvar to their old addresses, map every mapping and write its pages, set the mm fields,
//!    handlers, pending signals, thread registrations, rlimits, credentials;
//! 4. set registers, xstate and signal mask at its last syscall stop and let it go.
//!
//! A failure at any step kills what was created.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tracing::{debug, info};

use crate::cpu;
use crate::error::{Context, Error, Result};
use crate::failpoint;
use crate::files;
use crate::image::{self, FdKind, FileKind, Image, PAGE_SIZE, PAGES_HEADER_LEN, ProcessImage, Vma, VmaKind, vmflags};
use crate::memory::{self, MapFds, is_special};
use crate::procfs;
use crate::remote::{Tracee, locate_syscall, pick_gap};
use crate::signals;
use crate::sys::{self, Mapped, Pid, WaitStatus};
use crate::task;

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub dir: PathBuf,
    pub shell_job: bool,
}

/// A restored process, running, a child of the caller.
#[derive(Debug)]
pub struct Restored {
    pub pid: Pid,
}

impl Restored {
    /// Waits for it to end; its exit status, or 128 + the signal that killed it.
    pub fn wait(&self) -> Result<i32> {
        loop {
            match sys::waitpid(self.pid, 0).ctx(|| format!("waiting for process {}", self.pid))? {
                Some(WaitStatus::Exited(c)) => return Ok(c),
                Some(WaitStatus::Signaled(s)) => return Ok(128 + s),
                _ => {}
            }
        }
    }
}

/// fd numbers the new process uses while it is being built, above all of its own fds.
struct FdPlan {
    /// Per inventory file: the fd its mappings (and the exe link) are made from, if needed.
    files: Vec<RawFd>,
    objects: Vec<RawFd>,
    /// Where the restorer's pipes and terminal wait while the fd table is laid out.
    service: RawFd,
}

/// Restores the image in `opts.dir`. Call it from a single-threaded process: the new
/// process starts as a fork of the caller.
pub fn restore(opts: &RestoreOptions) -> Result<Restored> {
    if procfs::read_status(sys::getpid())?.threads != 1 {
        return Err(Error::Restore(
            "restore must be called from a single-threaded process".into(),
        ));
    }
    // 1. Everything that can be checked before a process exists.
    let img = Image::load(&opts.dir)?;
    let pages_file = File::open(opts.dir.join(image::PAGES)).ctx(|| format!("opening {}", image::PAGES))?;
    let len = pages_file.metadata().ctx(|| "stat of pages.img")?.len();
    let pages_map = Mapped::new(pages_file.as_fd(), len as usize, true).ctx(|| "mapping pages.img")?;
    let t0 = std::time::Instant::now();
    image::verify_pages(pages_map.as_slice(), &img.inventory.pages)?;
    debug!(elapsed = ?t0.elapsed(), "pages verified");
    let pages = &pages_map.as_slice()[PAGES_HEADER_LEN as usize..];
    let p = &img.processes[0];
    let pid = p.core.pid;
    precheck(&img, p, opts)?;
    let plan = plan_fds(&img, p);
    let tty = if opts.shell_job { find_tty() } else { None };
    info!(pid, "image checked");

    // 2. The new process.
    let (ready_r, ready_w) = sys::pipe().ctx(|| "pipe")?;
    let (go_r, go_w) = sys::pipe().ctx(|| "pipe")?;
    let child = sys::clone3_with_pid(pid).map_err(|e| match e.raw_os_error() {
        Some(libc::EEXIST) => Error::Restore(format!("pid {pid} is in use")),
        _ => Error::Restore(format!("clone3 with pid {pid}: {e}")),
    })?;
    if child == 0 {
        drop((ready_r, go_w));
        child_main(&img, p, &plan, pages, tty, ready_w, go_r);
    }
    drop((ready_w, go_r));
    let guard = KillOnDrop(pid);
    let read_message = |ready: &OwnedFd| {
        let mut msg = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n @ 1..) = sys::read_raw(ready.as_raw_fd(), &mut buf) {
            msg.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&msg).into_owned()
    };
    if let Err(e) = sys::ptrace_seize(pid, sys::PTRACE_O_TRACESYSGOOD | sys::PTRACE_O_EXITKILL) {
        // It may have failed (and exited) first: then its message says why.
        drop(go_w);
        let msg = read_message(&ready_r);
        return Err(Error::Restore(if msg.is_empty() {
            format!("tracing the new process: {e}")
        } else {
            format!("tracing the new process: {e} (it said: {msg})")
        }));
    }
    sys::write_raw(go_w.as_raw_fd(), b"g").ctx(|| "starting the new process")?;
    let msg = read_message(&ready_r);
    if !msg.is_empty() {
        return Err(Error::Restore(msg));
    }
    match sys::waitpid(pid, 0).ctx(|| "waiting for the new process to stop")? {
        Some(WaitStatus::Stopped { sig, .. }) if sig == libc::SIGSTOP => {}
        other => {
            return Err(Error::Restore(format!(
                "the new process did not stop as expected: {other:?}"
            )));
        }
    }

    // 3 and 4.
    debug!(elapsed = ?t0.elapsed(), "new process stopped");
    let mut t = Tracee::from_stopped_child(pid)?;
    failpoint::hit("restore:stopped")?;
    build(&mut t, p, &plan, pages)?;
    failpoint::hit("restore:built")?;
    if p.core.stopped {
        // Pending when it is let go: it stops again at once, as it was.
        sys::kill(pid, libc::SIGSTOP).ctx(|| "stopping the restored process as it was")?;
    }
    debug!(elapsed = ?t0.elapsed(), "built");
    t.detach(0)?;
    std::mem::forget(guard);
    info!(pid, "restored");
    Ok(Restored { pid })
}

/// Kills and reaps a half-made process.
struct KillOnDrop(Pid);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = sys::kill(self.0, libc::SIGKILL);
        while let Ok(Some(WaitStatus::Stopped { .. })) = sys::waitpid(self.0, 0) {}
    }
}

fn precheck(img: &Image, p: &ProcessImage, opts: &RestoreOptions) -> Result<()> {
    let pid = p.core.pid;
    if Path::new(&format!("/proc/{pid}")).exists() {
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        return Err(Error::Restore(format!("pid {pid} is in use (by {})", comm.trim())));
    }
    let inv = &img.inventory;
    if inv.shell_job && !opts.shell_job && p.fds.fds.iter().any(|f| matches!(f.kind, FdKind::Tty { .. })) {
        return Err(Error::Restore(
            "the image holds terminal fds: restore with --shell-job".into(),
        ));
    }
    if opts.shell_job && find_tty().is_none() && p.fds.fds.iter().any(|f| matches!(f.kind, FdKind::Tty { .. })) {
        return Err(Error::Restore(
            "--shell-job: stasis has no terminal on fds 0-2 to give".into(),
        ));
    }
    for (what, dir) in [("working directory", &p.core.cwd), ("root directory", &p.core.root)] {
        if !Path::new(dir).is_dir() {
            return Err(Error::Restore(format!("its {what} {dir} is not there")));
        }
    }
    files::precheck(&p.fds, &inv.files)?;
    // Mapped files must be the very files that were mapped.
    let mapped = p.mm.vmas.iter().filter_map(|v| match v.kind {
        VmaKind::File { file, .. } => Some(file),
        _ => None,
    });
    for file in mapped.chain([p.core.mm.exe_file]) {
        let rec = &inv.files[file as usize];
        let meta = fs::metadata(&rec.path).map_err(|e| Error::Restore(format!("{}: {e}", rec.path)))?;
        let mtime = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
        if !meta.is_file() || meta.size() != rec.size || mtime != rec.mtime_ns {
            return Err(Error::Restore(format!(
                "{} changed since the dump (size or modification time)",
                rec.path
            )));
        }
    }
    // The vdso and vvar are moved, not recreated: this kernel's must be the same shape.
    let ours: HashMap<String, u64> = procfs::read_maps(sys::getpid())?
        .into_iter()
        .filter(|m| m.is_vdso_or_vvar())
        .map(|m| (m.path.clone(), m.len()))
        .collect();
    for v in p.mm.vmas.iter().filter(|v| is_special(&v.kind)) {
        let name = special_name(v);
        if ours.get(&name) != Some(&(v.end - v.start)) {
            return Err(Error::Restore(format!(
                "this kernel's {name} differs from the image's (dumped on another kernel?)"
            )));
        }
    }
    Ok(())
}

fn special_name(v: &Vma) -> String {
    match &v.kind {
        VmaKind::Vdso => "[vdso]".to_string(),
        VmaKind::Vvar { name } => name.clone(),
        _ => String::new(),
    }
}

/// The restorer's terminal: the first of fds 0-2 that is one.
fn find_tty() -> Option<RawFd> {
    (0..3).find(|&fd| sys::isatty(fd))
}

fn plan_fds(img: &Image, p: &ProcessImage) -> FdPlan {
    let mut next = p.fds.fds.iter().map(|f| f.fd + 1).max().unwrap_or(0).max(3);
    let mut files = vec![-1; img.inventory.files.len()];
    let used = p.mm.vmas.iter().filter_map(|v| match v.kind {
        VmaKind::File { file, .. } => Some(file),
        _ => None,
    });
    for f in used.chain([p.core.mm.exe_file]) {
        if files[f as usize] < 0 {
            files[f as usize] = next;
            next += 1;
        }
    }
    let objects = (0..img.inventory.shmem.len())
        .map(|_| {
            next += 1;
            next - 1
        })
        .collect();
    FdPlan {
        files,
        objects,
        service: next,
    }
}

/// The new process's own part: runs in the clone3 child, never returns.
fn child_main(
    img: &Image,
    p: &ProcessImage,
    plan: &FdPlan,
    pages: &[u8],
    tty: Option<RawFd>,
    ready: OwnedFd,
    go: OwnedFd,
) -> ! {
    // Where the pipe to the restorer is: setup moves it.
    let mut ready = ready.into_raw_fd();
    let go = go.into_raw_fd();
    if let Err(e) = child_setup(img, p, plan, pages, tty, &mut ready, go) {
        let _ = sys::write_raw(ready, e.to_string().as_bytes());
        sys::exit_now(1);
    }
    // Hand over: close the pipes, stop, and let the restorer do the rest.
    sys::close_raw(plan.service);
    sys::close_raw(plan.service + 1);
    sys::close_raw(plan.service + 2);
    let _ = sys::raise_raw(libc::SIGSTOP);
    // Only reached if the restorer let go without taking over.
    sys::exit_now(1)
}

fn child_setup(
    img: &Image,
    p: &ProcessImage,
    plan: &FdPlan,
    pages: &[u8],
    tty: Option<RawFd>,
    ready: &mut RawFd,
    go: RawFd,
) -> Result<()> {
    sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64, 0, 0, 0).ctx(|| "PR_SET_PDEATHSIG")?;
    sys::block_all_signals().ctx(|| "blocking signals")?;
    // Park the pipes and the terminal above every fd the process will have.
    // Room for every fd number the process had (its own rlimits come back at the end).
    let svc = plan.service;
    sys::ensure_nofile(svc as u64 + 32).ctx(|| format!("raising RLIMIT_NOFILE to hold fd {svc}"))?;
    // Copy them high first: their current numbers may be among the destinations.
    let high = svc + 16;
    let ready_hi = sys::dup_above(*ready, high).ctx(|| "moving a pipe")?;
    let go_hi = sys::dup_above(go, high).ctx(|| "moving a pipe")?;
    let tty_hi = tty
        .map(|t| sys::dup_above(t, high))
        .transpose()
        .ctx(|| "keeping the terminal")?;
    sys::dup_to(ready_hi, svc, true).ctx(|| "moving a pipe")?;
    *ready = svc;
    sys::dup_to(go_hi, svc + 1, true).ctx(|| "moving a pipe")?;
    let tty = match tty_hi {
        Some(t) => {
            sys::dup_to(t, svc + 2, true).ctx(|| "keeping the terminal")?;
            Some(svc + 2)
        }
        None => None,
    };
    sys::close_range(0, svc as u32 - 1).ctx(|| "closing the restorer's fds")?;
    sys::close_range(svc as u32 + 3, u32::MAX).ctx(|| "closing the restorer's fds")?;
    let c = &p.core;
    task::restore_in_child(c.pid, c.sid, c.pgid, c.umask, &c.cwd, &c.comm)?;
    files::restore(&p.fds, &img.inventory.files, tty)?;
    let writable: Vec<bool> = (0..img.inventory.files.len())
        .map(|i| {
            p.mm.vmas.iter().any(|v| {
                v.shared
                    && v.flags & vmflags::MAYWRITE != 0
                    && matches!(v.kind, VmaKind::File { file, .. } if file as usize == i)
            })
        })
        .collect();
    for (i, &fd) in plan.files.iter().enumerate() {
        if fd < 0 {
            continue;
        }
        let rec = &img.inventory.files[i];
        debug_assert_eq!(rec.kind, FileKind::Regular);
        let mode = if writable[i] { libc::O_RDWR } else { libc::O_RDONLY };
        let f = sys::open(&rec.path, mode, 0).ctx(|| format!("opening {}", rec.path))?;
        sys::move_fd(f, fd, true).ctx(|| "placing a mapping fd")?;
    }
    for (o, &fd) in img.inventory.shmem.iter().zip(&plan.objects) {
        let f = memory::create_object(o, pages)?;
        sys::move_fd(f, fd, true).ctx(|| "placing a shared memory fd")?;
    }
    task::enter_root(&c.root)?;
    // Wait until the restorer traces us, so the stop below is seen.
    let mut b = [0u8; 1];
    match sys::read_raw(svc + 1, &mut b).ctx(|| "waiting for the restorer")? {
        1 => Ok(()),
        _ => Err(Error::Restore("the restorer went away".into())),
    }
}

/// Steps 3 and 4: everything done by syscalls inside the stopped new process.
fn build(t: &mut Tracee, p: &ProcessImage, plan: &FdPlan, pages: &[u8]) -> Result<()> {
    let pid = t.pid;
    let own = procfs::read_maps(pid)?;
    // The syscall instruction must be in the vdso: everything else of the restorer goes.
    let vdso: Vec<procfs::MapEntry> = own.iter().filter(|m| m.path == "[vdso]").cloned().collect();
    locate_syscall(t, &vdso)?;
    sys::ptrace_set_sigmask(pid, !0).ctx(|| "blocking signals")?;
    task::unregister_inherited_rseq(t)?;

    let vmas = &p.mm.vmas;
    let target: Vec<(u64, u64)> = vmas.iter().map(|v| (v.start, v.end)).collect();
    let current: Vec<(u64, u64)> = own.iter().map(|m| (m.start, m.end)).collect();
    let ps = PAGE_SIZE;
    let scratch = pick_gap(&[target.clone(), current.clone()], ps)
        .ok_or_else(|| Error::Restore("no room for a scratch page".into()))?;
    let prot = (libc::PROT_READ | libc::PROT_WRITE) as u64;
    let anon = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE) as u64;
    t.syscall("mmap(scratch)", libc::SYS_mmap, &[scratch, ps, prot, anon, u64::MAX, 0])?;

    // Drop the restorer's image: everything but the kernel's special mappings.
    let specials: Vec<&procfs::MapEntry> = own.iter().filter(|m| m.is_vdso_or_vvar()).collect();
    for m in own
        .iter()
        .filter(|m| m.path != "[vsyscall]" && !specials.iter().any(|s| s.start == m.start))
    {
        t.syscall("munmap", libc::SYS_munmap, &[m.start, m.len()])?;
    }
    // Move vdso and vvar to their old addresses, through a parking area so that old and new
    // places may overlap.
    let total: u64 = specials.iter().map(|s| s.len()).sum();
    let park = pick_gap(&[target.clone(), current, vec![(scratch, scratch + ps)]], total)
        .ok_or_else(|| Error::Restore("no room to move the vdso".into()))?;
    let vdso_off = |t: &Tracee, start: u64| t.syscall_ip() - start;
    let mut at = park;
    let mut parked = Vec::new();
    for s in &specials {
        let off = (s.path == "[vdso]").then(|| vdso_off(t, s.start));
        mremap(t, s.start, s.len(), at)?;
        if let Some(off) = off {
            t.set_syscall_ip(at + off);
        }
        parked.push((s.path.clone(), at, s.len()));
        at += s.len();
    }
    let mut unwanted = Vec::new();
    for (name, from, len) in parked {
        match vmas.iter().find(|v| is_special(&v.kind) && special_name(v) == name) {
            Some(v) => {
                let off = (name == "[vdso]").then(|| vdso_off(t, from));
                mremap(t, from, len, v.start)?;
                if let Some(off) = off {
                    t.set_syscall_ip(v.start + off);
                }
            }
            None => unwanted.push((name, from, len)),
        }
    }
    debug!(pid, "address space cleared");
    let c = &p.core;
    let th = &c.threads[0];
    // The exe link can change only while the old exe is unmapped and before the new one
    // is mapped (if it is the same file, mapping it first would make it busy).
    task::restore_mm(t, scratch, &c.mm, plan.files[c.mm.exe_file as usize])?;

    memory::restore_vmas(
        t,
        vmas,
        pages,
        &MapFds {
            files: &plan.files,
            objects: &plan.objects,
        },
    )?;
    signals::restore_actions(t, scratch, &c.sigactions, &th.altstack)?;
    signals::restore_pending(t, scratch, th.tid, &th.pending, &c.shared_pending)?;
    for &fd in plan.files.iter().chain(&plan.objects).filter(|&&fd| fd >= 0) {
        t.syscall("close", libc::SYS_close, &[fd as u64])?;
    }
    task::restore_thread_links(t, th)?;
    task::restore_process(t, scratch, c)?;
    memory::seal(t, vmas)?;
    // Last syscalls: the scratch page, then special mappings the process did not have (the
    // vdso last: the syscall instruction lives there).
    t.syscall("munmap(scratch)", libc::SYS_munmap, &[scratch, ps])?;
    unwanted.sort_by_key(|(name, _, _)| name == "[vdso]");
    for (_, from, len) in unwanted {
        t.syscall("munmap", libc::SYS_munmap, &[from, len])?;
    }
    cpu::restore_xstate(t, &th.xstate)?;
    sys::ptrace_set_sigmask(pid, th.sigmask).ctx(|| "setting the signal mask")?;
    t.park(&cpu::resume_regs(&th.regs))
}

fn mremap(t: &mut Tracee, from: u64, len: u64, to: u64) -> Result<()> {
    if from == to {
        return Ok(());
    }
    let flags = (libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED) as u64;
    let got = t.syscall("mremap", libc::SYS_mremap, &[from, len, len, flags, to])?;
    if got != to {
        return Err(Error::Restore(format!("mremap to {to:x} landed at {got:x}")));
    }
    Ok(())
}
