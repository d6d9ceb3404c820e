//! CPU state of a thread: general-purpose registers (with fs/gs base), the XSAVE area
//! (x87, SSE, AVX, AVX-512 ...), and what a task caught inside a syscall resumes with.

use crate::error::{Error, Result};
use crate::remote::{self, Tracee};
use crate::sys::{self, UserRegs};

const ERESTARTSYS: i64 = -512;
const ERESTARTNOINTR: i64 = -513;
const ERESTARTNOHAND: i64 = -514;
const ERESTART_RESTARTBLOCK: i64 = -516;
/// Length of the `syscall` instruction: a restarted syscall resumes at rip - 2.
const SYSCALL_INSN_LEN: u64 = 2;

/// Registers (as image words) and XSAVE area of a stopped thread; `regs` are the ones it
/// stopped with, taken before anything was injected.
pub fn dump(t: &Tracee, regs: &UserRegs) -> Result<(Vec<u64>, Vec<u8>)> {
    let xstate = sys::ptrace_get_xstate(t.pid).map_err(|e| Error::Remote {
        pid: t.pid,
        call: "PTRACE_GETREGSET(NT_X86_XSTATE)".into(),
        err: e,
    })?;
    Ok((remote::regs_to_words(regs), xstate))
}

/// Where the thread goes on after stasis lets it go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// The same task (dump --leave-running): the kernel still holds its restart block.
    SameTask,
    /// A restored task: no kernel state of the interrupted syscall survives.
    Restored,
}

/// The registers to resume with. A task stopped inside an interrupted syscall has rax set to
/// an internal -ERESTART* code that the kernel would have turned into "execute the syscall
/// again" on its way back to user space; stasis resumes it from a syscall stop, where that
/// no longer happens, so it does the same here.
pub fn resume_regs(words: &[u64], how: Resume) -> UserRegs {
    let mut r = remote::regs_from_words(words);
    if (r.orig_rax as i64) >= 0 {
        match r.rax as i64 {
            ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => {
                r.rax = r.orig_rax;
                r.rip -= SYSCALL_INSN_LEN;
            }
            ERESTART_RESTARTBLOCK => {
                // The same task resumes through restart_syscall, which finds its remaining
                // time in the kernel; a restored one runs the original syscall again with
                // its original arguments (a relative sleep starts over, never returns early).
                r.rax = match how {
                    Resume::SameTask => libc::SYS_restart_syscall as u64,
                    Resume::Restored => r.orig_rax,
                };
                r.rip -= SYSCALL_INSN_LEN;
            }
            _ => {}
        }
    }
    r
}

/// Puts the final registers and XSAVE area into a thread at its last stop.
pub fn restore(t: &mut Tracee, words: &[u64], xstate: &[u8], how: Resume) -> Result<()> {
    sys::ptrace_set_xstate(t.pid, xstate).map_err(|e| Error::Restore(format!("setting the FPU/AVX state: {e}")))?;
    let regs = resume_regs(words, how);
    t.set_regs(&regs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(rax: i64, orig: i64, rip: u64) -> Vec<u64> {
        let mut w = vec![0u64; 27];
        w[10] = rax as u64;
        w[15] = orig as u64;
        w[16] = rip;
        w
    }

    #[test]
    fn interrupted_syscalls_restart() {
        let r = resume_regs(&words(ERESTARTNOHAND, 34, 0x1002), Resume::Restored);
        assert_eq!((r.rax, r.rip), (34, 0x1000));
        let r = resume_regs(&words(ERESTART_RESTARTBLOCK, 230, 0x1002), Resume::Restored);
        assert_eq!((r.rax, r.rip), (230, 0x1000));
        let r = resume_regs(&words(ERESTART_RESTARTBLOCK, 230, 0x1002), Resume::SameTask);
        assert_eq!((r.rax, r.rip), (libc::SYS_restart_syscall as u64, 0x1000));
        // A finished syscall or user code is left alone.
        let r = resume_regs(&words(-4, 0, 0x1002), Resume::Restored);
        assert_eq!((r.rax as i64, r.rip), (-4, 0x1002));
        let r = resume_regs(&words(ERESTARTSYS, -1, 0x1002), Resume::Restored);
        assert_eq!(r.rip, 0x1002);
    }
}
