//! The remote task layer: a stopped, traced task, and syscalls run inside it.
//!
//! A syscall is run in the task without writing any code into it: the registers are pointed
//! at an existing `syscall` instruction (found in the vdso, or any executable mapping), the
//! task is resumed with PTRACE_SYSCALL to the syscall's entry and exit stops, and the result
//! is read from rax. Nothing runs after the instruction, so nothing needs to follow it.
//!
//! ptrace belongs to the thread that attached: a `Tracee` must be used from that thread.

use std::fs;
use std::io;
use std::os::fd::AsFd;

use crate::error::{Context, Error, Result};
use crate::procfs::MapEntry;
use crate::sys::{self, PAGE_SIZE, Pid, UserRegs, WaitStatus};

const SYSCALL_INSN: [u8; 2] = [0x0f, 0x05];
const SIGTRAP_SYSGOOD: i32 = libc::SIGTRAP | 0x80;

pub struct Tracee {
    pub pid: Pid,
    /// Address of a `syscall` instruction in the task.
    syscall_ip: u64,
    /// Registers every injected syscall starts from (segment registers, flags).
    template: UserRegs,
    /// Set once an injected syscall changed the registers: they must be put back.
    regs_dirty: bool,
    /// A SIGSTOP arrived while syscalls were run in the task: re-sent when it is parked.
    stop_requested: bool,
}

fn remote_err(pid: Pid, call: &str, source: io::Error) -> Error {
    Error::Remote {
        pid,
        call: call.to_string(),
        err: source,
    }
}

impl Tracee {
    /// Seizes `pid` and stops it (PTRACE_SEIZE + PTRACE_INTERRUPT). A signal that reaches it
    /// first is delivered (its handler frame set up) before the stop, so none is held back.
    pub fn seize(pid: Pid) -> Result<Tracee> {
        sys::ptrace_seize(pid, sys::PTRACE_O_TRACESYSGOOD).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) => Error::Target {
                pid,
                reason: "cannot trace it: it is already being traced (another dump?) or not permitted".into(),
            },
            Some(libc::ESRCH) => Error::Target {
                pid,
                reason: "no such process".into(),
            },
            _ => remote_err(pid, "PTRACE_SEIZE", e),
        })?;
        let mut t = Tracee {
            pid,
            syscall_ip: 0,
            template: regs_from_words(&[0u64; 27]),
            regs_dirty: false,
            stop_requested: false,
        };
        if let Err(e) = sys::ptrace_interrupt(pid) {
            let _ = sys::ptrace_detach(pid, 0);
            return Err(remote_err(pid, "PTRACE_INTERRUPT", e));
        }
        loop {
            match sys::waitpid(pid, 0) {
                Ok(Some(WaitStatus::Stopped { event, .. })) if event == libc::PTRACE_EVENT_STOP => break,
                Ok(Some(WaitStatus::Stopped { sig, .. })) => {
                    // A signal-delivery stop: let the signal through and ask again for the
                    // stop (any trap clears a pending interrupt).
                    if let Err(e) = sys::ptrace_interrupt(pid).and_then(|()| sys::ptrace_cont(pid, sig)) {
                        let _ = sys::ptrace_detach(pid, sig);
                        return Err(remote_err(pid, "PTRACE_CONT", e));
                    }
                }
                Ok(_) => {
                    return Err(Error::Target {
                        pid,
                        reason: "exited while being stopped".into(),
                    });
                }
                Err(e) => {
                    let _ = sys::ptrace_detach(pid, 0);
                    return Err(remote_err(pid, "waitpid", e));
                }
            }
        }
        t.template = sys::ptrace_getregs(pid).map_err(|e| remote_err(pid, "PTRACE_GETREGS", e))?;
        Ok(t)
    }

    /// Takes over a child that seized itself for us: `pid` was PTRACE_SEIZEd right after clone
    /// and has stopped itself with SIGSTOP.
    pub fn from_stopped_child(pid: Pid) -> Result<Tracee> {
        let regs = sys::ptrace_getregs(pid).map_err(|e| remote_err(pid, "PTRACE_GETREGS", e))?;
        Ok(Tracee {
            pid,
            syscall_ip: 0,
            template: regs,
            regs_dirty: false,
            stop_requested: false,
        })
    }

    pub fn regs(&self) -> Result<UserRegs> {
        sys::ptrace_getregs(self.pid).map_err(|e| remote_err(self.pid, "PTRACE_GETREGS", e))
    }

    pub fn set_regs(&mut self, regs: &UserRegs) -> Result<()> {
        sys::ptrace_setregs(self.pid, regs).map_err(|e| remote_err(self.pid, "PTRACE_SETREGS", e))
    }

    pub fn syscall_ip(&self) -> u64 {
        self.syscall_ip
    }

    pub fn set_syscall_ip(&mut self, ip: u64) {
        self.syscall_ip = ip;
    }

    /// Finds a `syscall` instruction in `[start, end)` of the task's memory.
    pub fn find_syscall_insn(&self, start: u64, end: u64) -> Result<Option<u64>> {
        let len = (end - start) as usize;
        let mut buf = vec![0u8; len];
        let n = sys::process_vm_read(self.pid, &mut buf, &[(start, len)])
            .or_else(|_| {
                use std::os::unix::fs::FileExt;
                let f = std::fs::File::open(format!("/proc/{}/mem", self.pid))?;
                f.read_at(&mut buf, start)
            })
            .map_err(|e| remote_err(self.pid, "reading code to find a syscall instruction", e))?;
        Ok(buf[..n]
            .windows(2)
            .position(|w| w == SYSCALL_INSN)
            .map(|off| start + off as u64))
    }

    /// Runs syscall `nr` with `args` inside the task; returns its raw result (negative errno on
    /// failure).
    pub fn syscall_raw(&mut self, nr: i64, args: &[u64]) -> Result<i64> {
        assert!(args.len() <= 6, "a syscall takes at most six arguments");
        assert!(self.syscall_ip != 0, "no syscall instruction located");
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        let mut r = self.template;
        r.rip = self.syscall_ip;
        r.rax = nr as u64;
        // Not inside a syscall: the kernel must not apply restart logic on resume.
        r.orig_rax = u64::MAX;
        r.rdi = a[0];
        r.rsi = a[1];
        r.rdx = a[2];
        r.r10 = a[3];
        r.r8 = a[4];
        r.r9 = a[5];
        self.regs_dirty = true;
        self.set_regs(&r)?;
        self.step_to_syscall_stop()?; // entry
        self.step_to_syscall_stop()?; // exit
        Ok(self.regs()?.rax as i64)
    }

    /// Like [`syscall_raw`](Self::syscall_raw), turning a negative result into an error naming `call`.
    pub fn syscall(&mut self, call: &str, nr: i64, args: &[u64]) -> Result<u64> {
        let r = self.syscall_raw(nr, args)?;
        if (-4095..0).contains(&r) {
            return Err(remote_err(self.pid, call, io::Error::from_raw_os_error(-r as i32)));
        }
        Ok(r as u64)
    }

    fn step_to_syscall_stop(&mut self) -> Result<()> {
        let pid = self.pid;
        sys::ptrace_syscall(pid, 0).map_err(|e| remote_err(pid, "PTRACE_SYSCALL", e))?;
        loop {
            match sys::waitpid(pid, 0).map_err(|e| remote_err(pid, "waitpid", e))? {
                Some(WaitStatus::Stopped { sig, .. }) if sig == SIGTRAP_SYSGOOD => return Ok(()),
                Some(WaitStatus::Stopped { event, .. }) if event != 0 => {
                    // A pending PTRACE_INTERRUPT or group stop: go on to the syscall stop.
                    sys::ptrace_syscall(pid, 0).map_err(|e| remote_err(pid, "PTRACE_SYSCALL", e))?;
                }
                Some(WaitStatus::Stopped { sig, .. }) if sig == libc::SIGSTOP => {
                    // Every other signal is blocked while stasis works in the task; a stop
                    // request is held back and passed on when the task is parked.
                    self.stop_requested = true;
                    sys::ptrace_syscall(pid, 0).map_err(|e| remote_err(pid, "PTRACE_SYSCALL", e))?;
                }
                Some(WaitStatus::Stopped { sig, .. }) => {
                    return Err(Error::Target {
                        pid,
                        reason: format!("signal {sig} arrived while stasis was working in it"),
                    });
                }
                Some(WaitStatus::Exited(c)) => {
                    return Err(Error::Target {
                        pid,
                        reason: format!("exited with status {c} during a remote syscall"),
                    });
                }
                Some(WaitStatus::Signaled(s)) => {
                    return Err(Error::Target {
                        pid,
                        reason: format!("killed by signal {s} during a remote syscall"),
                    });
                }
                None => {}
            }
        }
    }

    /// Writes `data` into the task's memory at `addr` (scratch areas).
    pub fn write_mem(&self, addr: u64, data: &[u8]) -> Result<()> {
        let n = sys::process_vm_write(self.pid, data, &[(addr, data.len())])
            .map_err(|e| remote_err(self.pid, "writing scratch memory", e))?;
        if n != data.len() {
            return Err(remote_err(
                self.pid,
                "writing scratch memory",
                io::Error::other("short write"),
            ));
        }
        Ok(())
    }

    pub fn read_mem(&self, addr: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let n = sys::process_vm_read(self.pid, &mut buf, &[(addr, len)])
            .map_err(|e| remote_err(self.pid, "reading scratch memory", e))?;
        if n != len {
            return Err(remote_err(
                self.pid,
                "reading scratch memory",
                io::Error::other("short read"),
            ));
        }
        Ok(buf)
    }

    /// Leaves the task in a job-control stop on its way back to user space, with `regs`:
    /// from there, whatever happens next (stasis detaching, or dying and the kernel detaching
    /// it) runs the kernel's own signal and syscall-restart logic on those registers, as if
    /// the task had never stopped. After injected syscalls the task sits at a syscall-exit
    /// stop, where resuming would skip that logic (and a signal arriving just then would be
    /// handled as if no syscall had been interrupted).
    pub fn park(&mut self, regs: &UserRegs) -> Result<()> {
        let pid = self.pid;
        self.set_regs(regs)?;
        sys::ptrace_interrupt(pid).map_err(|e| remote_err(pid, "PTRACE_INTERRUPT", e))?;
        sys::ptrace_cont(pid, 0).map_err(|e| remote_err(pid, "PTRACE_CONT", e))?;
        loop {
            match sys::waitpid(pid, 0).map_err(|e| remote_err(pid, "waitpid", e))? {
                Some(WaitStatus::Stopped { event, .. }) if event == libc::PTRACE_EVENT_STOP => break,
                Some(WaitStatus::Stopped { sig, .. }) => {
                    // A signal on its way: deliver it, and ask again for the stop after it
                    // (any trap clears a pending interrupt).
                    sys::ptrace_interrupt(pid).map_err(|e| remote_err(pid, "PTRACE_INTERRUPT", e))?;
                    sys::ptrace_cont(pid, sig).map_err(|e| remote_err(pid, "PTRACE_CONT", e))?;
                }
                Some(WaitStatus::Exited(_) | WaitStatus::Signaled(_)) => {
                    return Err(Error::Target {
                        pid,
                        reason: "ended while being let go".into(),
                    });
                }
                None => {}
            }
        }
        self.regs_dirty = false;
        if std::mem::take(&mut self.stop_requested) {
            // Pending when it is let go: it stops as it leaves this stop.
            sys::kill(pid, libc::SIGSTOP).map_err(|e| remote_err(pid, "kill(SIGSTOP)", e))?;
        }
        Ok(())
    }

    /// Whether registers were changed by injected syscalls since the task was parked.
    pub fn regs_dirty(&self) -> bool {
        self.regs_dirty
    }

    pub fn detach(self, sig: i32) -> Result<()> {
        sys::ptrace_detach(self.pid, sig).map_err(|e| remote_err(self.pid, "PTRACE_DETACH", e))
    }
}

/// Points the tracee's syscall injection at a `syscall` instruction: in the vdso, or else in
/// any readable executable mapping. Only pages already present are searched (and so run):
/// touching another would make the task bigger than it was.
pub fn locate_syscall(t: &mut Tracee, maps: &[MapEntry]) -> Result<()> {
    let pagemap =
        fs::File::open(format!("/proc/{}/pagemap", t.pid)).ctx(|| format!("process {}: opening pagemap", t.pid))?;
    let present = sys::ScanQuery {
        required: 0,
        excluded: 0,
        anyof: sys::PAGE_IS_PRESENT,
    };
    let vdso = maps.iter().filter(|m| m.path == "[vdso]");
    let code = maps.iter().filter(|m| m.exec && m.read && m.path != "[vsyscall]");
    let candidates: Vec<&MapEntry> = vdso.chain(code).collect();
    for m in &candidates {
        let ranges = sys::pagemap_scan(pagemap.as_fd(), m.start, m.end, &present).unwrap_or_default();
        for (start, end) in ranges {
            if let Some(ip) = t.find_syscall_insn(start, end)? {
                t.set_syscall_ip(ip);
                return Ok(());
            }
        }
    }
    // None in a present page: take one anywhere.
    for m in &candidates {
        if let Some(ip) = t.find_syscall_insn(m.start, m.end)? {
            t.set_syscall_ip(ip);
            return Ok(());
        }
    }
    Err(Error::Target {
        pid: t.pid,
        reason: "no syscall instruction found in its code".into(),
    })
}

/// A free, page-aligned range of `len` bytes with a free page on each side (so the kernel
/// cannot merge it with a neighbour), outside every range of every list.
pub fn pick_gap(busy: &[Vec<(u64, u64)>], len: u64) -> Option<u64> {
    const LOW: u64 = 1 << 32;
    const HIGH: u64 = 0x7fff_0000_0000;
    let ps = PAGE_SIZE as u64;
    let mut all: Vec<(u64, u64)> = busy.iter().flatten().copied().collect();
    all.sort_unstable();
    let candidates = std::iter::once(LOW).chain(all.iter().map(|&(_, e)| e + ps));
    candidates
        .filter(|&c| c >= LOW && c + len + ps <= HIGH)
        .find(|&c| all.iter().all(|&(s, e)| e + ps <= c || s >= c + len + ps))
}

/// user_regs_struct <-> the 27 words the image stores, in the kernel's order.
pub fn regs_to_words(r: &UserRegs) -> Vec<u64> {
    vec![
        r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx, r.rsi, r.rdi,
        r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base, r.gs_base, r.ds, r.es, r.fs, r.gs,
    ]
}

pub fn regs_from_words(w: &[u64]) -> UserRegs {
    UserRegs {
        r15: w[0],
        r14: w[1],
        r13: w[2],
        r12: w[3],
        rbp: w[4],
        rbx: w[5],
        r11: w[6],
        r10: w[7],
        r9: w[8],
        r8: w[9],
        rax: w[10],
        rcx: w[11],
        rdx: w[12],
        rsi: w[13],
        rdi: w[14],
        orig_rax: w[15],
        rip: w[16],
        cs: w[17],
        eflags: w[18],
        rsp: w[19],
        ss: w[20],
        fs_base: w[21],
        gs_base: w[22],
        ds: w[23],
        es: w[24],
        fs: w[25],
        gs: w[26],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_avoids_neighbours() {
        let busy = vec![vec![
            (1 << 32, (1 << 32) + 0x3000),
            ((1 << 32) + 0x5000, (1 << 32) + 0x9000),
        ]];
        let g = pick_gap(&busy, 0x1000).unwrap();
        assert_eq!(g, (1 << 32) + 0xa000);
        let g = pick_gap(&[vec![]], 0x1000).unwrap();
        assert_eq!(g, 1 << 32);
    }
}
