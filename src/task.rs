//! Process-level state: ids, name, personality, umask, cwd/root, credentials, rlimits,
//! parent-death signal, the per-thread kernel registrations (clear_child_tid, robust list,
//! rseq), and the mm metadata PR_SET_MM_MAP restores (bounds, auxv, exe).

use std::fs;

use crate::error::{Context, Error, Result};
use crate::files::FileTable;
use crate::image::{Creds, MmMeta, Rlimit, Rseq, ThreadCore};
use crate::procfs::{self, Stat};
use crate::remote::Tracee;
use crate::sys::{self, Pid};

const RLIMIT_COUNT: u32 = 16;
const SYS_RSEQ: i64 = 334;
const RSEQ_FLAG_UNREGISTER: u64 = 1;

/// What /proc and outside syscalls tell without touching the task.
pub struct ProcessState {
    pub comm: String,
    pub sid: Pid,
    pub pgid: Pid,
    pub personality: u32,
    pub umask: u32,
    pub cwd: String,
    pub root: String,
    pub creds: Creds,
    pub rlimits: Vec<Rlimit>,
}

pub fn dump_process(pid: Pid, stat: &Stat, status: &procfs::Status) -> Result<ProcessState> {
    let pers = fs::read_to_string(format!("/proc/{pid}/personality")).ctx(|| format!("process {pid}: personality"))?;
    let personality = u32::from_str_radix(pers.trim(), 16).map_err(|_| Error::Proc {
        pid,
        file: "personality".into(),
        reason: format!("unparsable {pers:?}"),
    })?;
    let rlimits: Vec<Rlimit> = procfs::read_limits(pid)?
        .into_iter()
        .zip(0..RLIMIT_COUNT)
        .map(|((cur, max), resource)| Rlimit { resource, cur, max })
        .collect();
    let mut comm = stat.comm.clone();
    comm.truncate(15);
    Ok(ProcessState {
        comm,
        sid: stat.session,
        pgid: stat.pgrp,
        personality,
        umask: status.umask,
        cwd: procfs::readlink(pid, "cwd")?,
        root: procfs::readlink(pid, "root")?,
        creds: Creds {
            uid: status.uid,
            gid: status.gid,
            groups: status.groups.clone(),
            caps: status.caps,
            // Only the task can tell (see dump_injected); filled in by the dump.
            securebits: 0,
            no_new_privs: status.no_new_privs,
        },
        rlimits,
    })
}

/// What only the task itself can say: read by syscalls run inside it.
pub struct Injected {
    pub pdeathsig: i32,
    pub dumpable: i32,
    pub securebits: u64,
    pub brk: u64,
    pub clear_child_tid: u64,
}

pub fn dump_injected(t: &mut Tracee, scratch: u64) -> Result<Injected> {
    t.syscall(
        "prctl(PR_GET_PDEATHSIG)",
        libc::SYS_prctl,
        &[libc::PR_GET_PDEATHSIG as u64, scratch],
    )?;
    let pdeathsig = i32::from_ne_bytes(t.read_mem(scratch, 4)?.try_into().expect("4 bytes"));
    t.syscall(
        "prctl(PR_GET_TID_ADDRESS)",
        libc::SYS_prctl,
        &[libc::PR_GET_TID_ADDRESS as u64, scratch],
    )?;
    let clear_child_tid = u64::from_ne_bytes(t.read_mem(scratch, 8)?.try_into().expect("8 bytes"));
    let brk = t.syscall("brk(0)", libc::SYS_brk, &[0])?;
    let securebits = t.syscall(
        "prctl(PR_GET_SECUREBITS)",
        libc::SYS_prctl,
        &[libc::PR_GET_SECUREBITS as u64],
    )?;
    let dumpable = t.syscall(
        "prctl(PR_GET_DUMPABLE)",
        libc::SYS_prctl,
        &[libc::PR_GET_DUMPABLE as u64],
    )? as i32;
    Ok(Injected {
        pdeathsig,
        dumpable,
        securebits,
        brk,
        clear_child_tid,
    })
}

/// The kernel registrations of a thread readable from outside.
pub fn dump_thread_links(pid: Pid) -> Result<((u64, u64), Option<Rseq>)> {
    let robust = sys::get_robust_list(pid).ctx(|| format!("thread {pid}: get_robust_list"))?;
    let rseq = sys::ptrace_get_rseq(pid).ctx(|| format!("thread {pid}: PTRACE_GET_RSEQ_CONFIGURATION"))?;
    let rseq = (rseq.rseq_abi_pointer != 0).then_some(Rseq {
        ptr: rseq.rseq_abi_pointer,
        size: rseq.rseq_abi_size,
        signature: rseq.signature,
    });
    Ok((robust, rseq))
}

pub fn dump_mm(pid: Pid, stat: &Stat, brk: u64, files: &mut FileTable) -> Result<MmMeta> {
    let exe = procfs::readlink(pid, "exe")?;
    let meta = fs::metadata(format!("/proc/{pid}/exe")).ctx(|| format!("process {pid}: stat of exe"))?;
    if exe.ends_with(" (deleted)") {
        return Err(Error::Unsupported {
            pid,
            reason: format!("its executable {exe} was deleted"),
        });
    }
    let exe_file = files.add(&exe, &meta).ok_or_else(|| Error::Unsupported {
        pid,
        reason: format!("its executable {exe} is not a regular file"),
    })?;
    Ok(MmMeta {
        start_code: stat.start_code,
        end_code: stat.end_code,
        start_data: stat.start_data,
        end_data: stat.end_data,
        start_brk: stat.start_brk,
        brk,
        start_stack: stat.start_stack,
        arg_start: stat.arg_start,
        arg_end: stat.arg_end,
        env_start: stat.env_start,
        env_end: stat.env_end,
        auxv: procfs::read_auxv(pid)?,
        exe_file,
    })
}

// ------------------------------------------------------------------------------------------------
// restore

/// In the new process, before it stops: session, group, umask, cwd, name. The root comes
/// last ([`enter_root`]): every path stasis opens is the restorer's.
pub fn restore_in_child(pid: Pid, sid: Pid, pgid: Pid, umask: u32, cwd: &str, comm: &str) -> Result<()> {
    if sid == pid {
        sys::setsid().ctx(|| "setsid")?;
    } else if pgid == pid {
        sys::setpgid(0, 0).ctx(|| "setpgid")?;
    }
    sys::umask(umask);
    sys::chdir(cwd).ctx(|| format!("chdir to {cwd}"))?;
    let name = sys::cstr(comm).ctx(|| "process name")?;
    sys::prctl(libc::PR_SET_NAME, name.as_ptr() as u64, 0, 0, 0).ctx(|| "PR_SET_NAME")?;
    Ok(())
}

/// In the new process, after everything it opens by path: its root directory (the cwd,
/// already entered by its outside path, stays).
pub fn enter_root(root: &str) -> Result<()> {
    if root != "/" {
        sys::chroot(root).ctx(|| format!("chroot to {root}"))?;
    }
    Ok(())
}

/// Drops the restorer's own rseq registration (inherited from the fork; its area is about to
/// be unmapped, and the kernel would fault on it).
pub fn unregister_inherited_rseq(t: &mut Tracee) -> Result<()> {
    let conf = sys::ptrace_get_rseq(t.pid).ctx(|| "PTRACE_GET_RSEQ_CONFIGURATION")?;
    if conf.rseq_abi_pointer != 0 {
        t.syscall(
            "rseq(unregister)",
            SYS_RSEQ,
            &[
                conf.rseq_abi_pointer,
                conf.rseq_abi_size as u64,
                RSEQ_FLAG_UNREGISTER,
                conf.signature as u64,
            ],
        )?;
    }
    Ok(())
}

/// The mm fields, auxv and exe link, in one PR_SET_MM_MAP.
pub fn restore_mm(t: &mut Tracee, scratch: u64, mm: &MmMeta, exe_fd: i32) -> Result<()> {
    // struct prctl_mm_map: 11 addresses, auxv pointer, auxv_size (u32), exe_fd (u32).
    let auxv_at = scratch + 256;
    let mut b = Vec::with_capacity(104);
    for w in [
        mm.start_code,
        mm.end_code,
        mm.start_data,
        mm.end_data,
        mm.start_brk,
        mm.brk,
        mm.start_stack,
        mm.arg_start,
        mm.arg_end,
        mm.env_start,
        mm.env_end,
        auxv_at,
    ] {
        b.extend_from_slice(&w.to_ne_bytes());
    }
    b.extend_from_slice(&((mm.auxv.len() * 8) as u32).to_ne_bytes());
    b.extend_from_slice(&(exe_fd as u32).to_ne_bytes());
    let auxv: Vec<u8> = mm.auxv.iter().flat_map(|w| w.to_ne_bytes()).collect();
    t.write_mem(scratch, &b)?;
    t.write_mem(auxv_at, &auxv)?;
    t.syscall(
        "prctl(PR_SET_MM, PR_SET_MM_MAP)",
        libc::SYS_prctl,
        &[
            libc::PR_SET_MM as u64,
            libc::PR_SET_MM_MAP as u64,
            scratch,
            b.len() as u64,
            0,
        ],
    )?;
    Ok(())
}

/// Per-thread kernel registrations: clear_child_tid, robust list, rseq.
pub fn restore_thread_links(t: &mut Tracee, th: &ThreadCore) -> Result<()> {
    t.syscall("set_tid_address", libc::SYS_set_tid_address, &[th.clear_child_tid])?;
    if th.robust_list.0 != 0 {
        t.syscall(
            "set_robust_list",
            libc::SYS_set_robust_list,
            &[th.robust_list.0, th.robust_list.1],
        )?;
    }
    if let Some(r) = th.rseq {
        t.syscall("rseq", SYS_RSEQ, &[r.ptr, r.size as u64, 0, r.signature as u64])?;
    }
    Ok(())
}

/// Personality, rlimits, then credentials: bounding set, ids and groups, capability sets,
/// no_new_privs; then what a change of credentials resets: parent-death signal, dumpable.
pub fn restore_process(t: &mut Tracee, scratch: u64, c: &crate::image::Core) -> Result<()> {
    t.syscall("personality", libc::SYS_personality, &[c.personality as u64])?;
    for r in &c.rlimits {
        let mut b = r.cur.to_ne_bytes().to_vec();
        b.extend_from_slice(&r.max.to_ne_bytes());
        t.write_mem(scratch, &b)?;
        t.syscall(
            &format!("prlimit64({})", r.resource),
            libc::SYS_prlimit64,
            &[0, r.resource as u64, scratch, 0],
        )?;
    }
    restore_creds(t, scratch, &c.creds)?;
    t.syscall(
        "prctl(PR_SET_PDEATHSIG)",
        libc::SYS_prctl,
        &[libc::PR_SET_PDEATHSIG as u64, c.pdeathsig as u64],
    )?;
    // 2 (root-only core dumps) is the kernel's to set, not ours.
    if c.dumpable < 2 {
        t.syscall(
            "prctl(PR_SET_DUMPABLE)",
            libc::SYS_prctl,
            &[libc::PR_SET_DUMPABLE as u64, c.dumpable as u64],
        )?;
    }
    Ok(())
}

/// Bits of securebits (linux/securebits.h).
pub const SECBIT_KEEP_CAPS: u64 = 1 << 4;
/// The *_LOCKED bits: once set they cannot be changed, not even by stasis.
pub const SECBITS_LOCKED: u64 = (1 << 1) | (1 << 3) | (1 << 5) | (1 << 7);

/// capset v3 of (effective, permitted, inheritable): header {version, pid 0}, then those
/// three for the low and for the high 32 capabilities.
fn capset(t: &mut Tracee, scratch: u64, effective: u64, permitted: u64, inheritable: u64) -> Result<()> {
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut b = Vec::with_capacity(32);
    for w in [LINUX_CAPABILITY_VERSION_3, 0] {
        b.extend_from_slice(&w.to_ne_bytes());
    }
    for half in [0, 32] {
        for set in [effective, permitted, inheritable] {
            b.extend_from_slice(&((set >> half) as u32).to_ne_bytes());
        }
    }
    t.write_mem(scratch, &b)?;
    t.syscall("capset", libc::SYS_capset, &[scratch, scratch + 8])?;
    Ok(())
}

/// capget v3 of the task itself: (effective, permitted, inheritable).
fn capget(t: &mut Tracee, scratch: u64) -> Result<(u64, u64, u64)> {
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut h = LINUX_CAPABILITY_VERSION_3.to_ne_bytes().to_vec();
    h.extend_from_slice(&0u32.to_ne_bytes());
    t.write_mem(scratch, &h)?;
    t.syscall("capget", libc::SYS_capget, &[scratch, scratch + 8])?;
    let d = t.read_mem(scratch + 8, 24)?;
    let w = |i: usize| u64::from(u32::from_ne_bytes(d[i * 4..i * 4 + 4].try_into().expect("4 bytes")));
    Ok((w(0) | w(3) << 32, w(1) | w(4) << 32, w(2) | w(5) << 32))
}

/// Credentials in the order the kernel allows: the inheritable set (it must fit in the
/// bounding set plus the old inheritable one), bounding-set drops and securebits while
/// still privileged, groups and ids with the permitted set kept, then the capability sets,
/// ambient capabilities, keep-caps and no_new_privs.
fn restore_creds(t: &mut Tracee, scratch: u64, creds: &Creds) -> Result<()> {
    const CAP_LAST: u64 = 63;
    let caps = creds.caps;
    let full = u64::MAX >> (63 - CAP_LAST);
    // First only the inheritable set, keeping the restorer's effective and permitted ones.
    let (effective, permitted, _) = capget(t, scratch)?;
    capset(t, scratch, effective, permitted, caps.inheritable & full)?;
    // Its current bounding set (the restorer's), read from outside: only those can be dropped.
    let current_bounding = procfs::read_status(t.pid)?.caps.bounding;
    for cap in (0..=CAP_LAST).filter(|c| current_bounding & (1 << c) != 0 && caps.bounding & (1 << c) == 0) {
        t.syscall(
            "prctl(PR_CAPBSET_DROP)",
            libc::SYS_prctl,
            &[libc::PR_CAPBSET_DROP as u64, cap],
        )?;
    }
    // Keep the permitted set across the change of ids; capset trims it below.
    let bits = (creds.securebits & !SECBITS_LOCKED) | SECBIT_KEEP_CAPS;
    t.syscall(
        "prctl(PR_SET_SECUREBITS)",
        libc::SYS_prctl,
        &[libc::PR_SET_SECUREBITS as u64, bits],
    )?;
    let groups: Vec<u8> = creds.groups.iter().flat_map(|g| g.to_ne_bytes()).collect();
    t.write_mem(scratch, &groups)?;
    t.syscall("setgroups", libc::SYS_setgroups, &[creds.groups.len() as u64, scratch])?;
    let g = creds.gid;
    t.syscall(
        "setresgid",
        libc::SYS_setresgid,
        &[g[0] as u64, g[1] as u64, g[2] as u64],
    )?;
    let u = creds.uid;
    t.syscall(
        "setresuid",
        libc::SYS_setresuid,
        &[u[0] as u64, u[1] as u64, u[2] as u64],
    )?;
    // setfs[ug]id return the previous value, never an error: ask again to know it took.
    for (name, nr, want) in [
        ("setfsgid", libc::SYS_setfsgid, g[3]),
        ("setfsuid", libc::SYS_setfsuid, u[3]),
    ] {
        t.syscall(name, nr, &[want as u64])?;
        if t.syscall(name, nr, &[u32::MAX as u64])? as u32 != want {
            return Err(crate::error::Error::Restore(format!("{name}({want}) did not take")));
        }
    }
    capset(t, scratch, caps.effective, caps.permitted, caps.inheritable)?;
    for cap in (0..=CAP_LAST).filter(|c| caps.ambient & (1 << c) != 0) {
        t.syscall(
            "prctl(PR_CAP_AMBIENT_RAISE)",
            libc::SYS_prctl,
            &[libc::PR_CAP_AMBIENT as u64, libc::PR_CAP_AMBIENT_RAISE as u64, cap],
        )?;
    }
    let keep = u64::from(creds.securebits & SECBIT_KEEP_CAPS != 0);
    t.syscall(
        "prctl(PR_SET_KEEPCAPS)",
        libc::SYS_prctl,
        &[libc::PR_SET_KEEPCAPS as u64, keep],
    )?;
    if creds.no_new_privs {
        t.syscall(
            "prctl(PR_SET_NO_NEW_PRIVS)",
            libc::SYS_prctl,
            &[libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0, 0, 0],
        )?;
    }
    Ok(())
}
