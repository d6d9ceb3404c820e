//! CPU state of a thread: general-purpose registers (with fs/gs base), the XSAVE area
//! (x87, SSE, AVX, AVX-512 ...), and what a task caught inside a syscall resumes with.

use crate::error::{Error, Result};
use crate::remote::{self, Tracee};
use crate::sys::{self, UserRegs};

const ERESTARTNOHAND: i64 = -514;
const ERESTART_RESTARTBLOCK: i64 = -516;

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

/// The registers a restored thread resumes with: the ones it was dumped with, so that the
/// kernel's own syscall-restart logic (run when the thread leaves its last stop, see
/// [`Tracee::park`]) decides, as it would have, between running an interrupted syscall again
/// and returning EINTR to a signal handler.
///
/// One case differs: -ERESTART_RESTARTBLOCK asks the kernel to resume through the restart
/// block of the task (nanosleep's remaining time, say), which a new process does not have.
/// It becomes -ERESTARTNOHAND: the original syscall runs again with its original arguments
/// (a relative sleep starts over instead of failing), or EINTR if a handler runs first —
/// what the restart block would have given. A thread dumped while already inside
/// restart_syscall (orig_rax 219) cannot be helped: that syscall returns EINTR.
pub fn resume_regs(words: &[u64]) -> UserRegs {
    let mut r = remote::regs_from_words(words);
    if (r.orig_rax as i64) >= 0 && r.rax as i64 == ERESTART_RESTARTBLOCK {
        r.rax = ERESTARTNOHAND as u64;
    }
    r
}

/// Puts a restored thread's XSAVE area back.
pub fn restore_xstate(t: &Tracee, xstate: &[u8]) -> Result<()> {
    sys::ptrace_set_xstate(t.pid, xstate).map_err(|e| Error::Restore(format!("setting the FPU/AVX state: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ERESTARTSYS: i64 = -512;

    fn words(rax: i64, orig: i64, rip: u64) -> Vec<u64> {
        let mut w = vec![0u64; 27];
        w[10] = rax as u64;
        w[15] = orig as u64;
        w[16] = rip;
        w
    }

    #[test]
    fn only_the_restart_block_is_rewritten() {
        let r = resume_regs(&words(ERESTART_RESTARTBLOCK, 230, 0x1002));
        assert_eq!((r.rax as i64, r.orig_rax, r.rip), (ERESTARTNOHAND, 230, 0x1002));
        for (rax, orig) in [
            (ERESTARTNOHAND, 34),
            (ERESTARTSYS, 0),
            (-4, 0),
            (ERESTART_RESTARTBLOCK, -1),
        ] {
            let r = resume_regs(&words(rax, orig, 0x1002));
            assert_eq!((r.rax as i64, r.orig_rax as i64, r.rip), (rax, orig, 0x1002));
        }
    }
}
