//! Every invariant of an image, checked against hostile input before anything is restored.
//! docs/image-format.md lists the same rules; keep them together.

use std::collections::HashSet;

use super::records::*;
use super::{Image, ImageError};

pub const MAX_PROCESSES: usize = 1;
pub const MAX_THREADS: usize = 1;
/// The highest user address on x86-64 with 5-level paging; the restore finds out whether this
/// kernel allows as much.
pub const MAX_USER_ADDR: u64 = 1 << 56;
pub const MAX_VMAS: usize = 1 << 20;
pub const MAX_RUNS: usize = 1 << 24;
pub const MAX_FDS: i32 = 1 << 20;
pub const MAX_XSTATE: usize = 64 << 10;
const MAX_PID: i32 = 1 << 22;
const SIGINFO_LEN: usize = 128;
const USER_REGS_WORDS: usize = 27;
/// Bigger than the kernel's saved_auxv; the kernel has the last word.
const MAX_AUXV_WORDS: usize = 128;

fn bad(msg: impl Into<String>) -> ImageError {
    ImageError::Invalid(msg.into())
}

pub fn validate(img: &Image) -> Result<(), ImageError> {
    let inv = &img.inventory;
    if inv.page_size != PAGE_SIZE {
        return Err(bad(format!(
            "page size {} (this machine uses {PAGE_SIZE})",
            inv.page_size
        )));
    }
    if inv.arch != std::env::consts::ARCH {
        return Err(bad(format!(
            "image is for {}, this is {}",
            inv.arch,
            std::env::consts::ARCH
        )));
    }
    if inv.parent.is_some() {
        return Err(bad(
            "incremental images (with a parent) are not supported by this version",
        ));
    }
    if inv.processes.is_empty() || inv.processes.len() > MAX_PROCESSES {
        return Err(bad(format!(
            "{} processes (this version restores exactly one)",
            inv.processes.len()
        )));
    }
    if img.processes.len() != inv.processes.len() {
        return Err(bad("process records do not match the inventory"));
    }
    if inv.processes[0].pid != inv.root_pid {
        return Err(bad("the first process is not the root"));
    }
    let mut pids = HashSet::new();
    for p in &inv.processes {
        check_pid(p.pid, "pid")?;
        if !pids.insert(p.pid) {
            return Err(bad(format!("pid {} appears twice", p.pid)));
        }
    }
    for f in &inv.files {
        check_path(&f.path)?;
    }
    for (i, o) in inv.shmem.iter().enumerate() {
        if o.size == 0 || o.size % PAGE_SIZE != 0 || o.size > MAX_USER_ADDR {
            return Err(bad(format!(
                "shared object {i}: size {} is not a positive page multiple",
                o.size
            )));
        }
        if let ShmemKind::Memfd { name } = &o.kind
            && (name.len() > 249 || name.contains('\0') || name.contains('/'))
        {
            return Err(bad(format!("shared object {i}: bad memfd name")));
        }
        check_runs(
            &o.pages,
            o.size / PAGE_SIZE,
            inv.pages.count,
            &format!("shared object {i}"),
        )?;
    }
    for (entry, p) in inv.processes.iter().zip(&img.processes) {
        if p.core.pid != entry.pid {
            return Err(bad(format!(
                "core record of pid {} is for pid {}",
                entry.pid, p.core.pid
            )));
        }
        check_core(&p.core, inv)?;
        check_mm(&p.mm, inv)?;
        check_fds(&p.fds, inv)?;
    }
    Ok(())
}

fn check_pid(pid: i32, what: &str) -> Result<(), ImageError> {
    if pid <= 0 || pid > MAX_PID {
        return Err(bad(format!("{what} {pid} is out of range")));
    }
    Ok(())
}

fn check_path(p: &str) -> Result<(), ImageError> {
    if !p.starts_with('/') || p.contains('\0') || p.len() > 4096 {
        return Err(bad(format!(
            "bad path {p:?}: must be absolute, without NUL, at most 4096 bytes"
        )));
    }
    Ok(())
}

fn file_ref(inv: &Inventory, idx: u32, what: &str) -> Result<FileKind, ImageError> {
    inv.files.get(idx as usize).map(|f| f.kind).ok_or_else(|| {
        bad(format!(
            "{what}: file index {idx} out of range ({} files)",
            inv.files.len()
        ))
    })
}

fn check_core(c: &Core, inv: &Inventory) -> Result<(), ImageError> {
    let who = format!("process {}", c.pid);
    if c.comm.len() > 15 {
        return Err(bad(format!("{who}: name longer than 15 bytes")));
    }
    check_path(&c.cwd)?;
    check_path(&c.root)?;
    if c.umask > 0o777 {
        return Err(bad(format!("{who}: umask {:o}", c.umask)));
    }
    let mut seen = HashSet::new();
    for r in &c.rlimits {
        if r.resource >= 16 || !seen.insert(r.resource) || r.cur > r.max {
            return Err(bad(format!("{who}: bad rlimit {r:?}")));
        }
    }
    if c.creds.groups.len() > 1024 {
        return Err(bad(format!(
            "{who}: {} supplementary groups (at most 1024)",
            c.creds.groups.len()
        )));
    }
    if !(0..=2).contains(&c.dumpable) {
        return Err(bad(format!("{who}: dumpable {}", c.dumpable)));
    }
    if !(0..=64).contains(&c.pdeathsig) {
        return Err(bad(format!("{who}: parent-death signal {}", c.pdeathsig)));
    }
    let mut seen = HashSet::new();
    for a in &c.sigactions {
        if a.sig == 0 || a.sig > 64 || a.sig == 9 || a.sig == 19 || !seen.insert(a.sig) {
            return Err(bad(format!("{who}: bad sigaction for signal {}", a.sig)));
        }
    }
    check_siginfos(&c.shared_pending, &who)?;
    let mm = &c.mm;
    if !mm.auxv.len().is_multiple_of(2)
        || mm.auxv.len() > MAX_AUXV_WORDS
        || mm.auxv.len() < 2
        || mm.auxv[mm.auxv.len() - 2] != 0
    {
        return Err(bad(format!(
            "{who}: auxv must be pairs ending with AT_NULL, at most {MAX_AUXV_WORDS} words"
        )));
    }
    for (name, v) in [
        ("start_code", mm.start_code),
        ("end_code", mm.end_code),
        ("start_data", mm.start_data),
        ("end_data", mm.end_data),
        ("start_brk", mm.start_brk),
        ("brk", mm.brk),
        ("start_stack", mm.start_stack),
        ("arg_start", mm.arg_start),
        ("arg_end", mm.arg_end),
        ("env_start", mm.env_start),
        ("env_end", mm.env_end),
    ] {
        if v >= MAX_USER_ADDR {
            return Err(bad(format!("{who}: mm {name} {v:#x} is not a user address")));
        }
    }
    if mm.start_code > mm.end_code || mm.start_data > mm.end_data || mm.start_brk > mm.brk {
        return Err(bad(format!("{who}: mm bounds are out of order")));
    }
    if mm.arg_start > mm.arg_end || mm.env_start > mm.env_end {
        return Err(bad(format!("{who}: arg/env bounds are out of order")));
    }
    if file_ref(inv, mm.exe_file, &format!("{who}: exe"))? != FileKind::Regular {
        return Err(bad(format!("{who}: exe is not a regular file")));
    }
    if c.threads.is_empty() || c.threads.len() > MAX_THREADS {
        return Err(bad(format!(
            "{who}: {} threads (this version restores one)",
            c.threads.len()
        )));
    }
    if c.threads[0].tid != c.pid {
        return Err(bad(format!("{who}: main thread has tid {}", c.threads[0].tid)));
    }
    for t in &c.threads {
        check_pid(t.tid, "tid")?;
        if t.regs.len() != USER_REGS_WORDS {
            return Err(bad(format!(
                "{who}: thread {}: {} register words, expected {USER_REGS_WORDS}",
                t.tid,
                t.regs.len()
            )));
        }
        // 512 legacy area + 64 header at least.
        if t.xstate.len() < 576 || t.xstate.len() > MAX_XSTATE {
            return Err(bad(format!(
                "{who}: thread {}: xstate of {} bytes",
                t.tid,
                t.xstate.len()
            )));
        }
        check_siginfos(&t.pending, &who)?;
        if let Some(r) = t.rseq
            && (r.ptr >= MAX_USER_ADDR || r.size < 32 || r.size > 4096)
        {
            return Err(bad(format!("{who}: thread {}: bad rseq area", t.tid)));
        }
    }
    Ok(())
}

fn check_siginfos(v: &[Vec<u8>], who: &str) -> Result<(), ImageError> {
    if v.len() > 1 << 16 {
        return Err(bad(format!("{who}: too many pending signals")));
    }
    for s in v {
        let signo = s.get(..4).map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")));
        if s.len() != SIGINFO_LEN || !matches!(signo, Some(1..=64)) {
            return Err(bad(format!("{who}: malformed pending siginfo")));
        }
    }
    Ok(())
}

/// Runs must be sorted, non-empty, non-overlapping, inside `npages`, and their stored pages
/// inside pages.img.
fn check_runs(runs: &[PageRun], npages: u64, stored: u64, what: &str) -> Result<(), ImageError> {
    if runs.len() > MAX_RUNS {
        return Err(bad(format!("{what}: too many page runs")));
    }
    let mut next = 0u64;
    for r in runs {
        let end = r.first.checked_add(r.count);
        match end {
            Some(end) if r.count > 0 && r.first >= next && end <= npages => next = end,
            _ => {
                return Err(bad(format!(
                    "{what}: page run {}+{} overlaps, is empty, or lies outside its {npages} pages",
                    r.first, r.count
                )));
            }
        }
        if let PageSource::Data { at } = r.source
            && at.checked_add(r.count).is_none_or(|e| e > stored)
        {
            return Err(bad(format!(
                "{what}: page run at {at}+{} lies outside pages.img ({stored} pages)",
                r.count
            )));
        }
    }
    Ok(())
}

fn check_mm(mm: &Mm, inv: &Inventory) -> Result<(), ImageError> {
    if mm.vmas.len() > MAX_VMAS {
        return Err(bad("too many mappings"));
    }
    let mut prev_end = 0u64;
    let mut vdso = 0;
    for v in &mm.vmas {
        let what = format!("mapping {:x}-{:x}", v.start, v.end);
        if v.start % PAGE_SIZE != 0 || v.end % PAGE_SIZE != 0 || v.start >= v.end || v.end > MAX_USER_ADDR {
            return Err(bad(format!("{what}: not a page-aligned user range")));
        }
        if v.start < prev_end {
            return Err(bad(format!("{what}: overlaps or is out of order")));
        }
        prev_end = v.end;
        if v.prot & !(PROT_READ | PROT_WRITE | PROT_EXEC) != 0 || v.flags & !vmflags::ALL != 0 {
            return Err(bad(format!("{what}: unknown protection or flag bits")));
        }
        let carries_pages = match &v.kind {
            VmaKind::Anon | VmaKind::Heap | VmaKind::Stack => {
                if v.shared {
                    return Err(bad(format!("{what}: anonymous memory marked shared")));
                }
                true
            }
            VmaKind::File { file, pgoff } => {
                if file_ref(inv, *file, &what)? != FileKind::Regular {
                    return Err(bad(format!("{what}: maps a file that is not a regular file")));
                }
                // The restorer maps at byte offset pgoff * PAGE_SIZE, an off_t: it must fit.
                let end = pgoff.checked_add(v.npages()).and_then(|e| e.checked_mul(PAGE_SIZE));
                if end.is_none_or(|e| e > i64::MAX as u64) {
                    return Err(bad(format!("{what}: file offset overflows")));
                }
                !v.shared
            }
            VmaKind::Shmem { object, pgoff } => {
                let o = inv
                    .shmem
                    .get(*object as usize)
                    .ok_or_else(|| bad(format!("{what}: shared object {object} out of range")))?;
                if !v.shared || pgoff.checked_add(v.npages()).is_none_or(|e| e > o.size / PAGE_SIZE) {
                    return Err(bad(format!("{what}: lies outside its shared object")));
                }
                false
            }
            VmaKind::Vdso => {
                vdso += 1;
                false
            }
            VmaKind::Vvar { name } => {
                if !name.starts_with("[vvar") {
                    return Err(bad(format!("{what}: unknown special mapping {name:?}")));
                }
                false
            }
        };
        if !carries_pages && !v.pages.is_empty() {
            return Err(bad(format!("{what}: this kind of mapping carries no pages")));
        }
        check_runs(&v.pages, v.npages(), inv.pages.count, &what)?;
    }
    if vdso > 1 {
        return Err(bad("more than one [vdso]"));
    }
    Ok(())
}

fn check_fds(fds: &Fds, inv: &Inventory) -> Result<(), ImageError> {
    let mut seen = HashSet::new();
    for f in &fds.fds {
        if f.fd < 0 || f.fd >= MAX_FDS || !seen.insert(f.fd) {
            return Err(bad(format!("fd {} is out of range or appears twice", f.fd)));
        }
        match &f.kind {
            FdKind::Path { file, flags, .. } => {
                file_ref(inv, *file, &format!("fd {}", f.fd))?;
                // O_TMPFILE includes O_DIRECTORY: only the whole of it creates a file.
                let tmpfile = flags & libc::O_TMPFILE as u32 == libc::O_TMPFILE as u32;
                if tmpfile || flags & (libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL) as u32 != 0 {
                    return Err(bad(format!("fd {}: flags {flags:o} would create or truncate", f.fd)));
                }
            }
            FdKind::Tty { .. } => {
                if !inv.shell_job {
                    return Err(bad(format!(
                        "fd {} is a terminal but the image is not a shell job",
                        f.fd
                    )));
                }
            }
        }
    }
    Ok(())
}
