//! Memory: which mappings there are, which of their pages must be stored, and putting both
//! back.
//!
//! Dump: classify every mapping (refusing what cannot come back, before anything is touched),
//! find populated private pages with PAGEMAP_SCAN (for private file mappings only pages that
//! are no longer the file's), shared memory objects once each through map_files, then copy
//! the pages into pages.img. Restore: mmap each mapping at its address inside the new
//! process, put its pages in straight from the mapped pages.img (UFFDIO_COPY for anonymous
//! memory, process_vm_writev for the rest), then set the final protection and advice.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, FileTypeExt};

use crate::error::{Context, Error, Result};
use crate::files::FileTable;
use crate::image::{
    PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, PageRun, PageSource, ShmemKind, ShmemObject, Vma, VmaKind, vmflags,
};
use crate::pagestore::{PageStore, Source};
use crate::procfs::MapEntry;
use crate::remote::Tracee;
use crate::sys::{self, Pid, ScanQuery};

const PS: usize = PAGE_SIZE as usize;

/// smaps VmFlags stasis cannot restore, with the reason given to the user.
const REFUSED_FLAGS: &[(&str, &str)] = &[
    ("io", "memory-mapped I/O (VM_IO)"),
    ("pf", "raw page-frame mapping (VM_PFNMAP)"),
    ("mm", "mixed page-frame mapping (VM_MIXEDMAP)"),
    ("ht", "hugetlbfs mapping"),
    ("ss", "shadow stack"),
    ("um", "userfaultfd-registered (missing) range"),
    ("uw", "userfaultfd-registered (write-protect) range"),
    ("ui", "userfaultfd-registered (minor) range"),
];

/// A mapping as planned for the dump: its record (pages still empty) and where its pages are.
pub struct Planned {
    pub vma: Vma,
    /// Private pages to store: populated ranges, filled in by [`scan`].
    pub ranges: Vec<(u64, u64)>,
    /// Shared file mapping: flushed, not copied.
    pub flush: bool,
}

/// A shared memory object seen in the dump, opened through map_files.
pub struct PlannedObject {
    pub object: ShmemObject,
    file: File,
    /// Byte ranges of the object holding data.
    ranges: Vec<(u64, u64)>,
}

pub struct MemPlan {
    pub vmas: Vec<Planned>,
    pub objects: Vec<PlannedObject>,
}

fn refuse(pid: Pid, e: &MapEntry, what: &str) -> Error {
    let name = if e.path.is_empty() {
        "anonymous memory"
    } else {
        e.path.as_str()
    };
    Error::Unsupported {
        pid,
        reason: format!("mapping {:x}-{:x} ({name}): {what}", e.start, e.end),
    }
}

fn prot_of(e: &MapEntry) -> u32 {
    (if e.read { PROT_READ } else { 0 }) | (if e.write { PROT_WRITE } else { 0 }) | (if e.exec { PROT_EXEC } else { 0 })
}

fn flags_of(e: &MapEntry) -> u32 {
    let mut f = 0;
    for &(bit, code, _) in vmflags::TABLE {
        if e.has_flag(code) {
            f |= bit;
        }
    }
    if e.shared && e.has_flag("mw") {
        f |= vmflags::MAYWRITE;
    }
    f
}

/// Classifies every mapping; refuses what cannot be restored, naming the mapping. Reads no
/// memory and changes nothing, so it runs before the target is stopped as well as after.
pub fn plan(pid: Pid, entries: &[MapEntry], files: &mut FileTable) -> Result<MemPlan> {
    let mut vmas = Vec::new();
    let mut objects: Vec<PlannedObject> = Vec::new();
    let mut by_inode: HashMap<(u32, u32, u64), u32> = HashMap::new();
    for e in entries {
        if e.path == "[vsyscall]" {
            continue; // the kernel gives every process the same one
        }
        // The vvar pages are the kernel's own PFN mapping; everything else like it is refused.
        let special = e.is_vdso_or_vvar();
        for (code, what) in REFUSED_FLAGS {
            if e.has_flag(code) && !special {
                return Err(refuse(pid, e, &format!("{what} cannot be restored")));
            }
        }
        let mut flush = false;
        let kind = match e.path.as_str() {
            "" => VmaKind::Anon,
            "[heap]" => VmaKind::Heap,
            "[stack]" => VmaKind::Stack,
            "[vdso]" => VmaKind::Vdso,
            p if p.starts_with("[vvar") => VmaKind::Vvar { name: p.to_string() },
            p if p.starts_with("[anon:") => VmaKind::Anon,
            p if p.starts_with("[") => return Err(refuse(pid, e, "special mapping not supported")),
            p if p.contains("[aio]") => return Err(refuse(pid, e, "pending asynchronous I/O (an AIO context)")),
            p if p.starts_with("anon_inode:") => return Err(refuse(pid, e, "mapping of a kernel object")),
            p if p.ends_with(" (deleted)") => {
                let name = &p[..p.len() - " (deleted)".len()];
                let kind = if name == "/dev/zero" {
                    ShmemKind::SharedAnon
                } else if let Some(n) = name.strip_prefix("/memfd:") {
                    ShmemKind::Memfd { name: n.to_string() }
                } else if name.starts_with("/SYSV") {
                    return Err(refuse(pid, e, "System V shared memory is not supported yet"));
                } else {
                    return Err(refuse(pid, e, "maps a file that was deleted"));
                };
                if !e.shared {
                    return Err(refuse(
                        pid,
                        e,
                        "private mapping of a memory object is not supported yet",
                    ));
                }
                let key = (e.dev.0, e.dev.1, e.inode);
                let object = match by_inode.get(&key) {
                    Some(&i) => i,
                    None => {
                        let path = format!("/proc/{pid}/map_files/{:x}-{:x}", e.start, e.end);
                        let file = File::open(&path).ctx(|| format!("process {pid}: opening {path}"))?;
                        let size = file.metadata().ctx(|| format!("stat of {path}"))?.len();
                        let size = size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
                        objects.push(PlannedObject {
                            object: ShmemObject {
                                kind,
                                inode: e.inode,
                                size: size.max(PAGE_SIZE),
                                pages: Vec::new(),
                            },
                            file,
                            ranges: Vec::new(),
                        });
                        by_inode.insert(key, (objects.len() - 1) as u32);
                        (objects.len() - 1) as u32
                    }
                };
                VmaKind::Shmem {
                    object,
                    pgoff: e.offset / PAGE_SIZE,
                }
            }
            p => {
                let link = format!("/proc/{pid}/map_files/{:x}-{:x}", e.start, e.end);
                let meta = fs::metadata(&link).ctx(|| format!("process {pid}: stat of mapped file {p}"))?;
                if meta.file_type().is_char_device() || meta.file_type().is_block_device() {
                    return Err(refuse(pid, e, "device mapping cannot be restored"));
                }
                if !meta.is_file() {
                    return Err(refuse(pid, e, "maps something that is not a regular file"));
                }
                let Some(file) = files.add(p, &meta) else {
                    return Err(refuse(pid, e, "unsupported file"));
                };
                flush = e.shared;
                VmaKind::File {
                    file,
                    pgoff: e.offset / PAGE_SIZE,
                }
            }
        };
        if e.shared && matches!(kind, VmaKind::Anon | VmaKind::Heap | VmaKind::Stack) {
            return Err(refuse(pid, e, "shared anonymous mapping without a backing object"));
        }
        vmas.push(Planned {
            vma: Vma {
                start: e.start,
                end: e.end,
                prot: prot_of(e),
                shared: e.shared,
                flags: flags_of(e),
                kind,
                pages: Vec::new(),
            },
            ranges: Vec::new(),
            flush,
        });
    }
    Ok(MemPlan { vmas, objects })
}

/// Refuses a process whose address space another process shares (clone with CLONE_VM, or a
/// vfork parent): that one could change it while it is being dumped. Candidates are the
/// processes with the same code, stack and brk start; kcmp confirms.
pub fn refuse_shared_mm(pid: Pid, stat: &crate::procfs::Stat) -> Result<()> {
    let key = (stat.start_code, stat.end_code, stat.start_stack, stat.start_brk);
    let Ok(dir) = fs::read_dir("/proc") else { return Ok(()) };
    for other in dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<Pid>().ok())
    {
        if other == pid {
            continue;
        }
        let Ok(o) = crate::procfs::read_stat(other) else {
            continue;
        };
        let shared = (o.start_code, o.end_code, o.start_stack, o.start_brk) == key
            && match sys::same_mm(pid, other) {
                Ok(same) => same,
                // It ended meanwhile: it shares nothing any more.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => false,
                Err(e) => {
                    return Err(Error::Sys {
                        what: format!("comparing the address spaces of {pid} and {other} (kcmp)"),
                        err: e,
                    });
                }
            };
        if shared {
            return Err(Error::Unsupported {
                pid,
                reason: format!("process {other} shares its address space (clone with CLONE_VM or vfork)"),
            });
        }
    }
    Ok(())
}

/// Whether a mapping kind is one of the kernel's special mappings (moved, not created).
pub fn is_special(kind: &VmaKind) -> bool {
    matches!(kind, VmaKind::Vdso | VmaKind::Vvar { .. })
}

/// Finds the pages to store; returns how many there are at most. Never faults a page in.
pub fn scan(pid: Pid, plan: &mut MemPlan) -> Result<u64> {
    let pagemap = File::open(format!("/proc/{pid}/pagemap")).ctx(|| format!("process {pid}: opening pagemap"))?;
    // Populated (present or swapped) pages that are not the file's (anon or COW'd) and not the
    // shared zero page.
    let q = ScanQuery {
        required: 0,
        excluded: sys::PAGE_IS_FILE | sys::PAGE_IS_PFNZERO,
        anyof: sys::PAGE_IS_PRESENT | sys::PAGE_IS_SWAPPED,
    };
    let mut total = 0u64;
    for p in &mut plan.vmas {
        let private_pages = match p.vma.kind {
            VmaKind::Anon | VmaKind::Heap | VmaKind::Stack => true,
            VmaKind::File { .. } => !p.vma.shared,
            _ => false,
        };
        if !private_pages {
            continue;
        }
        p.ranges = sys::pagemap_scan(pagemap.as_fd(), p.vma.start, p.vma.end, &q)
            .ctx(|| format!("process {pid}: PAGEMAP_SCAN of {:x}-{:x}", p.vma.start, p.vma.end))?;
        total += p.ranges.iter().map(|(s, e)| (e - s) / PAGE_SIZE).sum::<u64>();
    }
    for o in &mut plan.objects {
        o.ranges =
            data_ranges(&o.file, o.object.size).ctx(|| format!("process {pid}: finding data in shared memory"))?;
        total += o.ranges.iter().map(|(s, e)| (e - s) / PAGE_SIZE).sum::<u64>();
    }
    Ok(total)
}

/// The page-aligned data ranges of a (shmem) file, by SEEK_DATA/SEEK_HOLE.
fn data_ranges(f: &File, size: u64) -> std::io::Result<Vec<(u64, u64)>> {
    let fd = f.as_raw_fd();
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut off = 0i64;
    while (off as u64) < size {
        let d = sys::lseek_whence(fd, off, libc::SEEK_DATA);
        if d < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break;
            }
            return Err(e);
        }
        let h = sys::lseek_whence(fd, d, libc::SEEK_HOLE);
        if h < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let s = (d as u64) / PAGE_SIZE * PAGE_SIZE;
        let e = ((h as u64).div_ceil(PAGE_SIZE) * PAGE_SIZE).min(size);
        if s < e {
            out.push((s, e));
        }
        off = h;
    }
    Ok(out)
}

/// Flushes shared file mappings to their files (they are not copied).
pub fn flush_shared_files(pid: Pid, plan: &MemPlan) -> Result<()> {
    for p in plan.vmas.iter().filter(|p| p.flush) {
        let link = format!("/proc/{pid}/map_files/{:x}-{:x}", p.vma.start, p.vma.end);
        let f = File::open(&link).ctx(|| format!("process {pid}: opening {link}"))?;
        f.sync_data().ctx(|| {
            format!(
                "process {pid}: flushing shared mapping {:x}-{:x}",
                p.vma.start, p.vma.end
            )
        })?;
    }
    Ok(())
}

/// Copies every planned page into the store; returns the finished mapping and object records.
pub fn copy_pages(pid: Pid, mut plan: MemPlan, store: &mut PageStore) -> Result<(Vec<Vma>, Vec<ShmemObject>)> {
    let mem = File::open(format!("/proc/{pid}/mem")).ctx(|| format!("process {pid}: opening mem"))?;
    for p in &mut plan.vmas {
        if p.ranges.is_empty() {
            continue;
        }
        let src = Source::Process {
            pid,
            mem: &mem,
            readable: p.vma.prot & PROT_READ != 0,
        };
        p.vma.pages = store.copy(&src, p.vma.start, &p.ranges)?;
    }
    for o in &mut plan.objects {
        o.object.pages = store.copy(&Source::File(&o.file), 0, &o.ranges)?;
    }
    Ok((
        plan.vmas.into_iter().map(|p| p.vma).collect(),
        plan.objects.into_iter().map(|o| o.object).collect(),
    ))
}

// ------------------------------------------------------------------------------------------------
// restore

/// In the new process, before it stops: creates a shared memory object and fills it.
pub fn create_object(o: &ShmemObject, pages: &[u8]) -> Result<std::os::fd::OwnedFd> {
    let fd = match &o.kind {
        ShmemKind::SharedAnon => sys::shared_anon_object(o.size as usize).ctx(|| "creating shared anonymous memory")?,
        ShmemKind::Memfd { name } => {
            let fd = sys::memfd_create(name).ctx(|| format!("memfd_create({name})"))?;
            sys::ftruncate(fd.as_fd(), o.size).ctx(|| "sizing a memfd")?;
            fd
        }
    };
    let f = File::from(fd);
    for r in &o.pages {
        if let PageSource::Data { at } = r.source {
            let data = &pages[(at * PAGE_SIZE) as usize..((at + r.count) * PAGE_SIZE) as usize];
            f.write_all_at(data, r.first * PAGE_SIZE)
                .ctx(|| "filling shared memory")?;
        }
    }
    Ok(f.into())
}

/// Where the new process finds the fds its mappings need.
pub struct MapFds<'a> {
    pub files: &'a [RawFd],
    pub objects: &'a [RawFd],
}

/// Creates every non-special mapping at its address and fills it.
pub fn restore_vmas(t: &mut Tracee, vmas: &[Vma], pages: &[u8], fds: &MapFds<'_>) -> Result<()> {
    let zeros = vec![0u8; 64 * PS];
    let uffd = Filler::new(t)?;
    for v in vmas {
        if matches!(v.kind, VmaKind::Vdso | VmaKind::Vvar { .. }) {
            continue;
        }
        let len = v.end - v.start;
        let has_data = !v.pages.is_empty();
        let map_prot = if has_data {
            v.prot | PROT_READ | PROT_WRITE
        } else {
            v.prot
        };
        let mut flags = libc::MAP_FIXED_NOREPLACE | if v.shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE };
        if v.flags & vmflags::GROWSDOWN != 0 {
            flags |= libc::MAP_GROWSDOWN;
        }
        if v.flags & vmflags::NORESERVE != 0 {
            flags |= libc::MAP_NORESERVE;
        }
        let (fd, off) = match v.kind {
            VmaKind::File { file, pgoff } => (fds.files[file as usize] as u64, pgoff * PAGE_SIZE),
            VmaKind::Shmem { object, pgoff } => (fds.objects[object as usize] as u64, pgoff * PAGE_SIZE),
            _ => {
                flags |= libc::MAP_ANONYMOUS;
                (u64::MAX, 0)
            }
        };
        let what = format!("mmap of {:x}-{:x}", v.start, v.end);
        let got = t.syscall(
            &what,
            libc::SYS_mmap,
            &[v.start, len, map_prot as u64, flags as u64, fd, off],
        )?;
        if got != v.start {
            return Err(Error::Restore(format!("{what} landed at {got:x}")));
        }
        for (bit, advice) in [
            (vmflags::HUGEPAGE, libc::MADV_HUGEPAGE),
            (vmflags::NOHUGEPAGE, libc::MADV_NOHUGEPAGE),
        ] {
            if v.flags & bit != 0 {
                t.syscall("madvise", libc::SYS_madvise, &[v.start, len, advice as u64])?;
            }
        }
        if has_data {
            match &uffd.uffd {
                Some(u) if matches!(v.kind, VmaKind::Anon | VmaKind::Heap | VmaKind::Stack) => {
                    copy_runs(u, v, pages)?;
                }
                _ => {
                    populate(t, v)?;
                    write_runs(t.pid, v, pages, &zeros)?;
                }
            }
        }
        if map_prot != v.prot {
            t.syscall("mprotect", libc::SYS_mprotect, &[v.start, len, v.prot as u64])?;
        }
        for (bit, advice) in [
            (vmflags::DONTFORK, libc::MADV_DONTFORK),
            (vmflags::DONTDUMP, libc::MADV_DONTDUMP),
            (vmflags::WIPEONFORK, libc::MADV_WIPEONFORK),
            (vmflags::MERGEABLE, libc::MADV_MERGEABLE),
        ] {
            if v.flags & bit != 0 {
                t.syscall("madvise", libc::SYS_madvise, &[v.start, len, advice as u64])?;
            }
        }
        if v.flags & vmflags::LOCKED != 0 {
            let onfault = if v.flags & vmflags::LOCKONFAULT != 0 { 1 } else { 0 }; // MLOCK_ONFAULT
            t.syscall("mlock2", libc::SYS_mlock2, &[v.start, len, onfault])?;
        }
    }
    uffd.close(t)
}

/// A userfaultfd made inside the new process and held by the restorer: UFFDIO_COPY puts
/// stored pages into fresh anonymous memory in one copy, without the kernel zeroing each
/// page first as a write fault would. Where the kernel has none, pages are written with
/// process_vm_writev instead.
struct Filler {
    uffd: Option<sys::Uffd>,
    /// Its fd number inside the new process, closed at the end.
    remote_fd: Option<u64>,
}

impl Filler {
    fn new(t: &mut Tracee) -> Result<Filler> {
        let flags = (libc::O_CLOEXEC | libc::O_NONBLOCK) as u64;
        let Ok(fd @ 0..) = t.syscall_raw(libc::SYS_userfaultfd, &[flags]) else {
            return Ok(Filler {
                uffd: None,
                remote_fd: None,
            });
        };
        let uffd = sys::Uffd::from_process(t.pid, fd as i32).ok();
        Ok(Filler {
            uffd,
            remote_fd: Some(fd as u64),
        })
    }

    fn close(self, t: &mut Tracee) -> Result<()> {
        drop(self.uffd);
        if let Some(fd) = self.remote_fd {
            t.syscall("close(userfaultfd)", libc::SYS_close, &[fd])?;
        }
        Ok(())
    }
}

/// Copies a fresh anonymous mapping's stored pages with UFFDIO_COPY (zero runs stay
/// unpopulated: they read as zeros). Large mappings are copied by two threads, each taking
/// half of the bytes: page allocation and copy both scale with cores.
fn copy_runs(u: &sys::Uffd, v: &Vma, pages: &[u8]) -> Result<()> {
    const PARALLEL_FROM: u64 = 64 << 20;
    let err = |e| Error::Restore(format!("copying the pages of {:x}-{:x}: {e}", v.start, v.end));
    // (destination, source) pieces, split so the halves are equal in bytes.
    let mut jobs: Vec<(u64, &[u8])> = v
        .pages
        .iter()
        .filter_map(|r| match r.source {
            PageSource::Data { at } => Some((
                v.start + r.first * PAGE_SIZE,
                &pages[(at * PAGE_SIZE) as usize..((at + r.count) * PAGE_SIZE) as usize],
            )),
            PageSource::Zero => None,
        })
        .collect();
    let total: u64 = jobs.iter().map(|(_, s)| s.len() as u64).sum();
    u.register(v.start, v.end - v.start).map_err(err)?;
    let copy_all = |jobs: &[(u64, &[u8])]| jobs.iter().try_for_each(|&(dst, src)| u.copy(dst, src));
    let copied = if total < PARALLEL_FROM {
        copy_all(&jobs)
    } else {
        let second = split_half(&mut jobs, total / 2);
        std::thread::scope(|scope| {
            let other = scope.spawn(|| copy_all(&second));
            let mine = copy_all(&jobs);
            other
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("copy thread panicked")))
                .and(mine)
        })
    };
    copied.map_err(err)?;
    u.unregister(v.start, v.end - v.start).map_err(err)
}

/// Splits `jobs` where `bytes` of them are before the cut (splitting one piece at a page
/// boundary if needed); `jobs` keeps the first part, the rest is returned.
fn split_half<'a>(jobs: &mut Vec<(u64, &'a [u8])>, bytes: u64) -> Vec<(u64, &'a [u8])> {
    let mut seen = 0u64;
    for i in 0..jobs.len() {
        let (dst, src) = jobs[i];
        let len = src.len() as u64;
        if seen + len > bytes {
            let cut = ((bytes - seen) / PAGE_SIZE * PAGE_SIZE) as usize;
            let mut rest = jobs.split_off(i);
            if cut > 0 {
                jobs.push((dst, &src[..cut]));
                rest[0] = (dst + cut as u64, &src[cut..]);
            }
            return rest;
        }
        seen += len;
    }
    Vec::new()
}

/// Allocates the pages that are about to be written in one go (MADV_POPULATE_WRITE), which
/// is cheaper than a fault per page during the copy. Only those pages: the process must not
/// come back bigger than it was.
fn populate(t: &mut Tracee, v: &Vma) -> Result<()> {
    const MADV_POPULATE_WRITE: u64 = 23;
    for r in v.pages.iter().filter(|r| matches!(r.source, PageSource::Data { .. })) {
        let start = v.start + r.first * PAGE_SIZE;
        // Best effort: the copy faults in whatever this did not.
        let _ = t.syscall_raw(libc::SYS_madvise, &[start, r.count * PAGE_SIZE, MADV_POPULATE_WRITE]);
    }
    Ok(())
}

/// Writes a mapping's stored pages (and, for file mappings, its pages of zeros: there the
/// file's contents would show through) in as few process_vm_writev calls as the layout allows.
fn write_runs(pid: Pid, v: &Vma, pages: &[u8], zeros: &[u8]) -> Result<()> {
    let err = |e| Error::Restore(format!("writing the pages of {:x}-{:x}: {e}", v.start, v.end));
    let file_backed = matches!(v.kind, VmaKind::File { .. });
    // Consecutive data runs are contiguous in pages.img: one local slice, many remote ranges.
    let mut i = 0;
    let runs = &v.pages;
    while i < runs.len() {
        match runs[i].source {
            PageSource::Data { at } => {
                let mut remote = Vec::new();
                let mut count = 0u64;
                let mut j = i;
                while j < runs.len() && remote.len() < 1024 {
                    match runs[j].source {
                        PageSource::Data { at: a } if a == at + count => {
                            remote.push((
                                v.start + runs[j].first * PAGE_SIZE,
                                (runs[j].count * PAGE_SIZE) as usize,
                            ));
                            count += runs[j].count;
                            j += 1;
                        }
                        _ => break,
                    }
                }
                let local = &pages[(at * PAGE_SIZE) as usize..((at + count) * PAGE_SIZE) as usize];
                let n = sys::process_vm_write(pid, local, &remote).map_err(err)?;
                if n != local.len() {
                    return Err(err(std::io::Error::other("short write")));
                }
                i = j;
            }
            PageSource::Zero => {
                if file_backed {
                    let r = runs[i];
                    let mut done = 0;
                    while done < r.count {
                        let n = (r.count - done).min((zeros.len() / PS) as u64);
                        let addr = v.start + (r.first + done) * PAGE_SIZE;
                        sys::process_vm_write(
                            pid,
                            &zeros[..(n * PAGE_SIZE) as usize],
                            &[(addr, (n * PAGE_SIZE) as usize)],
                        )
                        .map_err(err)?;
                        done += n;
                    }
                }
                i += 1;
            }
        }
    }
    Ok(())
}

/// Seals the mappings that were sealed (last: a sealed mapping cannot be changed any more).
pub fn seal(t: &mut Tracee, vmas: &[Vma]) -> Result<()> {
    const SYS_MSEAL: i64 = 462;
    for v in vmas.iter().filter(|v| v.flags & vmflags::SEALED != 0) {
        t.syscall("mseal", SYS_MSEAL, &[v.start, v.end - v.start, 0])?;
    }
    Ok(())
}

/// Pages stored for a run list (for inspect and totals).
pub fn count_pages(runs: &[PageRun]) -> (u64, u64) {
    runs.iter().fold((0, 0), |(d, z), r| match r.source {
        PageSource::Data { .. } => (d + r.count, z),
        PageSource::Zero => (d, z + r.count),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, flags: &[&str]) -> MapEntry {
        MapEntry {
            start: 0x7f00_0000_0000,
            end: 0x7f00_0000_2000,
            read: true,
            write: true,
            exec: false,
            shared: false,
            offset: 0,
            dev: (0, 0),
            inode: 0,
            path: path.into(),
            vm_flags: flags.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn refusal(e: MapEntry) -> String {
        match plan(1, &[e], &mut FileTable::default()) {
            Err(err) => err.to_string(),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn refuses_device_like_mappings_naming_them() {
        let msg = refusal(entry("", &["rd", "wr", "io", "pf"]));
        assert!(
            msg.contains("7f0000000000-7f0000002000") && msg.contains("VM_IO"),
            "{msg}"
        );
        assert!(refusal(entry("", &["rd", "pf"])).contains("VM_PFNMAP"));
        assert!(refusal(entry("", &["rd", "ht"])).contains("hugetlbfs"));
        assert!(refusal(entry("", &["rd", "uw"])).contains("userfaultfd"));
        assert!(refusal(entry("/[aio] (deleted)", &["rd"])).contains("asynchronous I/O"));
        assert!(refusal(entry("anon_inode:[io_uring]", &["rd"])).contains("kernel object"));
        assert!(refusal(entry("/SYSV0000002a (deleted)", &["rd"])).contains("System V"));
    }

    #[test]
    fn split_half_cuts_at_a_page() {
        let data = vec![0u8; 10 * PS];
        let mut jobs: Vec<(u64, &[u8])> = vec![(0x1000, &data[..2 * PS]), (0x10000, &data[2 * PS..])];
        let rest = split_half(&mut jobs, 5 * PAGE_SIZE);
        assert_eq!(jobs.len(), 2);
        assert_eq!((jobs[1].0, jobs[1].1.len()), (0x10000, 3 * PS));
        assert_eq!((rest[0].0, rest[0].1.len()), (0x10000 + 3 * PAGE_SIZE, 5 * PS));
        let total: usize = jobs.iter().chain(&rest).map(|(_, s)| s.len()).sum();
        assert_eq!(total, 10 * PS);
    }

    #[test]
    fn keeps_the_vvar_pfn_mapping_and_flags() {
        let mut e = entry("[vvar]", &["rd", "mr", "pf", "io", "de", "dd"]);
        e.write = false;
        let p = plan(
            1,
            &[e, entry("", &["rd", "wr", "gd", "hg", "dc"])],
            &mut FileTable::default(),
        )
        .unwrap();
        assert_eq!(p.vmas.len(), 2);
        assert_eq!(p.vmas[0].vma.kind, VmaKind::Vvar { name: "[vvar]".into() });
        let f = p.vmas[1].vma.flags;
        assert_eq!(f, vmflags::GROWSDOWN | vmflags::HUGEPAGE | vmflags::DONTFORK);
    }
}
