//! `stasis inspect`: what an image holds, as text or as one JSON document.

use std::fmt::Write as _;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use serde::Serialize;

use crate::error::{Context, Result};
use crate::image::{self, FdKind, Image, PAGE_SIZE, ShmemKind, Vma, VmaKind, vmflags};
use crate::memory::count_pages;
use crate::sys::Mapped;

#[derive(Debug, Serialize)]
pub struct Report {
    pub format_version: u32,
    pub tool_version: String,
    pub kernel: String,
    pub created_unix_ms: u64,
    pub shell_job: bool,
    pub processes: Vec<ProcessReport>,
    pub shared_objects: Vec<ObjectReport>,
    pub totals: Totals,
}

#[derive(Debug, Serialize)]
pub struct ProcessReport {
    pub pid: i32,
    pub ppid: i32,
    pub comm: String,
    pub exe: String,
    pub cwd: String,
    pub sid: i32,
    pub pgid: i32,
    pub uid: u32,
    pub threads: Vec<ThreadReport>,
    pub mappings: Vec<MappingReport>,
    pub fds: Vec<FdReport>,
    pub signal_handlers: Vec<HandlerReport>,
    pub pending_signals: Vec<i32>,
}

#[derive(Debug, Serialize)]
pub struct ThreadReport {
    pub tid: i32,
    pub rip: String,
    pub rsp: String,
    pub blocked: String,
    pub xstate_bytes: usize,
    pub altstack: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MappingReport {
    pub start: String,
    pub end: String,
    pub perms: String,
    pub kind: String,
    pub file: Option<String>,
    pub offset: u64,
    pub flags: Vec<String>,
    pub pages_stored: u64,
    pub zero_pages: u64,
}

#[derive(Debug, Serialize)]
pub struct FdReport {
    pub fd: i32,
    pub kind: String,
    pub path: Option<String>,
    pub flags: String,
    pub pos: u64,
    pub cloexec: bool,
}

#[derive(Debug, Serialize)]
pub struct HandlerReport {
    pub signal: u32,
    pub handler: String,
    pub flags: String,
    pub mask: String,
}

#[derive(Debug, Serialize)]
pub struct ObjectReport {
    pub index: usize,
    pub kind: String,
    pub size: u64,
    pub pages_stored: u64,
    pub zero_pages: u64,
}

#[derive(Debug, Serialize, Default)]
pub struct Totals {
    pub mappings: usize,
    pub pages_stored: u64,
    pub bytes_stored: u64,
    pub zero_pages: u64,
    pub fds: usize,
}

/// Loads, validates and checks the checksum of every part of the image at `dir`.
pub fn inspect(dir: &Path) -> Result<Report> {
    let img = Image::load(dir)?;
    let f = File::open(dir.join(image::PAGES)).ctx(|| format!("opening {}", image::PAGES))?;
    let len = f.metadata().ctx(|| "stat of pages.img")?.len();
    let map = Mapped::new(f.as_fd(), len as usize, false).ctx(|| "mapping pages.img")?;
    image::verify_pages(map.as_slice(), &img.inventory.pages)?;
    Ok(report(&img))
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

fn perms(v: &Vma) -> String {
    let b = |bit, c| if v.prot & bit != 0 { c } else { '-' };
    [
        b(image::PROT_READ, 'r'),
        b(image::PROT_WRITE, 'w'),
        b(image::PROT_EXEC, 'x'),
        if v.shared { 's' } else { 'p' },
    ]
    .iter()
    .collect()
}

pub fn report(img: &Image) -> Report {
    let inv = &img.inventory;
    let mut totals = Totals::default();
    let path = |i: u32| inv.files.get(i as usize).map(|f| f.path.clone());
    let processes = img
        .processes
        .iter()
        .zip(&inv.processes)
        .map(|(p, e)| {
            let mappings: Vec<MappingReport> =
                p.mm.vmas
                    .iter()
                    .map(|v| {
                        let (stored, zero) = count_pages(&v.pages);
                        totals.pages_stored += stored;
                        totals.zero_pages += zero;
                        let (kind, file, offset) = match &v.kind {
                            VmaKind::Anon => ("anon".to_string(), None, 0),
                            VmaKind::Heap => ("heap".to_string(), None, 0),
                            VmaKind::Stack => ("stack".to_string(), None, 0),
                            VmaKind::File { file, pgoff } => ("file".to_string(), path(*file), pgoff * PAGE_SIZE),
                            VmaKind::Shmem { object, pgoff } => (format!("shmem#{object}"), None, pgoff * PAGE_SIZE),
                            VmaKind::Vdso => ("vdso".to_string(), None, 0),
                            VmaKind::Vvar { name } => (name.trim_matches(['[', ']']).to_string(), None, 0),
                        };
                        MappingReport {
                            start: hex(v.start),
                            end: hex(v.end),
                            perms: perms(v),
                            kind,
                            file,
                            offset,
                            flags: vmflags::TABLE
                                .iter()
                                .filter(|(bit, _, _)| v.flags & bit != 0)
                                .map(|(_, _, name)| name.to_string())
                                .collect(),
                            pages_stored: stored,
                            zero_pages: zero,
                        }
                    })
                    .collect();
            totals.mappings += mappings.len();
            totals.fds += p.fds.fds.len();
            let c = &p.core;
            let signo = |s: &Vec<u8>| i32::from_ne_bytes(s[..4].try_into().expect("validated siginfo"));
            ProcessReport {
                pid: c.pid,
                ppid: e.ppid,
                comm: c.comm.clone(),
                exe: path(c.mm.exe_file).unwrap_or_default(),
                cwd: c.cwd.clone(),
                sid: c.sid,
                pgid: c.pgid,
                uid: c.creds.uid[0],
                threads: c
                    .threads
                    .iter()
                    .map(|t| ThreadReport {
                        tid: t.tid,
                        rip: hex(t.regs[16]),
                        rsp: hex(t.regs[19]),
                        blocked: hex(t.sigmask),
                        xstate_bytes: t.xstate.len(),
                        altstack: (t.altstack.flags & 2 == 0)
                            .then(|| format!("{:#x}+{:#x}", t.altstack.sp, t.altstack.size)),
                    })
                    .collect(),
                mappings,
                fds: p
                    .fds
                    .fds
                    .iter()
                    .map(|f| match &f.kind {
                        FdKind::Path { file, flags, pos } => FdReport {
                            fd: f.fd,
                            kind: format!("{:?}", inv.files[*file as usize].kind).to_lowercase(),
                            path: path(*file),
                            flags: format!("{flags:#o}"),
                            pos: *pos,
                            cloexec: f.cloexec,
                        },
                        FdKind::Tty { flags } => FdReport {
                            fd: f.fd,
                            kind: "terminal".into(),
                            path: None,
                            flags: format!("{flags:#o}"),
                            pos: 0,
                            cloexec: f.cloexec,
                        },
                    })
                    .collect(),
                signal_handlers: c
                    .sigactions
                    .iter()
                    .map(|a| HandlerReport {
                        signal: a.sig,
                        handler: match a.handler {
                            0 => "default".into(),
                            1 => "ignore".into(),
                            h => hex(h),
                        },
                        flags: hex(a.flags),
                        mask: hex(a.mask),
                    })
                    .collect(),
                pending_signals: c
                    .shared_pending
                    .iter()
                    .chain(c.threads.iter().flat_map(|t| &t.pending))
                    .map(signo)
                    .collect(),
            }
        })
        .collect();
    let shared_objects = inv
        .shmem
        .iter()
        .enumerate()
        .map(|(index, o)| {
            let (stored, zero) = count_pages(&o.pages);
            totals.pages_stored += stored;
            totals.zero_pages += zero;
            ObjectReport {
                index,
                kind: match &o.kind {
                    ShmemKind::SharedAnon => "shared anonymous".to_string(),
                    ShmemKind::Memfd { name } => format!("memfd:{name}"),
                },
                size: o.size,
                pages_stored: stored,
                zero_pages: zero,
            }
        })
        .collect();
    totals.bytes_stored = totals.pages_stored * PAGE_SIZE;
    Report {
        format_version: image::FORMAT_VERSION,
        tool_version: inv.tool_version.clone(),
        kernel: inv.kernel.clone(),
        created_unix_ms: inv.created_unix_ms,
        shell_job: inv.shell_job,
        processes,
        shared_objects,
        totals,
    }
}

pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "image format {} by stasis {} on Linux {}",
        r.format_version, r.tool_version, r.kernel
    );
    for p in &r.processes {
        let _ = writeln!(
            s,
            "\nprocess {} ({}) ppid {} sid {} pgid {} uid {}",
            p.pid, p.comm, p.ppid, p.sid, p.pgid, p.uid
        );
        let _ = writeln!(s, "  exe {}\n  cwd {}", p.exe, p.cwd);
        for t in &p.threads {
            let _ = writeln!(
                s,
                "  thread {}: rip {} rsp {} blocked {} xstate {} bytes altstack {}",
                t.tid,
                t.rip,
                t.rsp,
                t.blocked,
                t.xstate_bytes,
                t.altstack.as_deref().unwrap_or("none")
            );
        }
        let _ = writeln!(s, "  mappings:");
        for m in &p.mappings {
            let _ = writeln!(
                s,
                "    {:>14}-{:<14} {} {:<8} stored {:>7} zero {:>6} {}{}{}",
                m.start,
                m.end,
                m.perms,
                m.kind,
                m.pages_stored,
                m.zero_pages,
                m.file.as_deref().unwrap_or(""),
                if m.offset != 0 {
                    format!(" @{:#x}", m.offset)
                } else {
                    String::new()
                },
                if m.flags.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", m.flags.join(","))
                },
            );
        }
        let _ = writeln!(s, "  fds:");
        for f in &p.fds {
            let _ = writeln!(
                s,
                "    {:>4} {:<10} {} flags {} pos {}{}",
                f.fd,
                f.kind,
                f.path.as_deref().unwrap_or("(restorer's terminal)"),
                f.flags,
                f.pos,
                if f.cloexec { " cloexec" } else { "" }
            );
        }
        let _ = writeln!(s, "  signal handlers:");
        for h in &p.signal_handlers {
            let _ = writeln!(s, "    {:>3} {} flags {} mask {}", h.signal, h.handler, h.flags, h.mask);
        }
        let _ = writeln!(s, "  pending signals: {:?}", p.pending_signals);
    }
    for o in &r.shared_objects {
        let _ = writeln!(
            s,
            "\nshared object {}: {} size {} stored {} zero {}",
            o.index, o.kind, o.size, o.pages_stored, o.zero_pages
        );
    }
    let t = &r.totals;
    let _ = writeln!(
        s,
        "\ntotals: {} mappings, {} pages stored ({} bytes), {} zero pages recorded, {} fds",
        t.mappings, t.pages_stored, t.bytes_stored, t.zero_pages, t.fds
    );
    s
}
