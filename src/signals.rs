//! Signals: handlers (with flags, restorer and mask), the blocked mask, pending signals of
//! the thread and of the process, and the alternate signal stack.

use crate::error::{Error, Result};
use crate::image::{AltStack, SigAction};
use crate::remote::Tracee;
use crate::sys::{self, Pid};

const SIGKILL: u32 = 9;
const SIGSTOP: u32 = 19;
/// struct sigaction as rt_sigaction sees it: handler, flags, restorer, mask.
const SIGACTION_LEN: usize = 32;
/// stack_t: ss_sp, ss_flags (+ padding), ss_size.
const STACK_T_LEN: usize = 24;
const SS_ONSTACK: u32 = 1;
const SS_DISABLE: u32 = 2;

fn word(b: &[u8], i: usize) -> u64 {
    u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
}

/// Reads every non-default handler and the alternate stack, by syscalls in the task.
/// `scratch` is a writable page of the task.
pub fn dump(t: &mut Tracee, scratch: u64) -> Result<(Vec<SigAction>, AltStack)> {
    let mut actions = Vec::new();
    for sig in (1..=64u32).filter(|&s| s != SIGKILL && s != SIGSTOP) {
        t.syscall("rt_sigaction", libc::SYS_rt_sigaction, &[sig as u64, 0, scratch, 8])?;
        let b = t.read_mem(scratch, SIGACTION_LEN)?;
        let a = SigAction {
            sig,
            handler: word(&b, 0),
            flags: word(&b, 1),
            restorer: word(&b, 2),
            mask: word(&b, 3),
        };
        if (a.handler, a.flags, a.restorer, a.mask) != (0, 0, 0, 0) {
            actions.push(a);
        }
    }
    t.syscall("sigaltstack", libc::SYS_sigaltstack, &[0, scratch])?;
    let b = t.read_mem(scratch, STACK_T_LEN)?;
    let alt = AltStack {
        sp: word(&b, 0),
        flags: word(&b, 1) as u32,
        size: word(&b, 2),
    };
    Ok((actions, alt))
}

/// Raw 128-byte siginfo records, in queue order.
pub type Siginfos = Vec<Vec<u8>>;

/// Pending signals, private to the thread and shared by the process, without dequeuing them.
pub fn dump_pending(pid: Pid) -> Result<(Siginfos, Siginfos)> {
    let peek = |shared| {
        sys::ptrace_peek_siginfo(pid, shared)
            .map(|v| v.into_iter().map(|s| s.to_vec()).collect())
            .map_err(|e| Error::Remote {
                pid,
                call: "PTRACE_PEEKSIGINFO".into(),
                err: e,
            })
    };
    Ok((peek(false)?, peek(true)?))
}

/// Sets every handler (those not in the image to the default: the new process inherited the
/// restorer's) and the alternate stack.
pub fn restore_actions(t: &mut Tracee, scratch: u64, actions: &[SigAction], alt: &AltStack) -> Result<()> {
    for sig in (1..=64u32).filter(|&s| s != SIGKILL && s != SIGSTOP) {
        let a = actions.iter().find(|a| a.sig == sig).copied().unwrap_or(SigAction {
            sig,
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        });
        let mut b = Vec::with_capacity(SIGACTION_LEN);
        for w in [a.handler, a.flags, a.restorer, a.mask] {
            b.extend_from_slice(&w.to_ne_bytes());
        }
        t.write_mem(scratch, &b)?;
        t.syscall(
            &format!("rt_sigaction({sig})"),
            libc::SYS_rt_sigaction,
            &[sig as u64, scratch, 0, 8],
        )?;
    }
    // "Currently on the alternate stack" is a state, not a setting.
    let flags = alt.flags & !SS_ONSTACK;
    let (sp, size) = if flags & SS_DISABLE != 0 {
        (0, 0)
    } else {
        (alt.sp, alt.size)
    };
    let mut b = Vec::with_capacity(STACK_T_LEN);
    for w in [sp, flags as u64, size] {
        b.extend_from_slice(&w.to_ne_bytes());
    }
    t.write_mem(scratch, &b)?;
    t.syscall("sigaltstack", libc::SYS_sigaltstack, &[scratch, 0])?;
    Ok(())
}

/// Queues the pending signals again, in their order, with their siginfo. The task blocks
/// every signal while stasis works in it, so they stay pending until it runs.
pub fn restore_pending(t: &mut Tracee, scratch: u64, tid: Pid, private: &[Vec<u8>], shared: &[Vec<u8>]) -> Result<()> {
    for (info, is_shared) in shared
        .iter()
        .map(|i| (i, true))
        .chain(private.iter().map(|i| (i, false)))
    {
        let signo = i32::from_ne_bytes(info[..4].try_into().expect("validated siginfo"));
        if signo as u32 == SIGKILL || signo as u32 == SIGSTOP {
            continue;
        }
        t.write_mem(scratch, info)?;
        if is_shared {
            t.syscall(
                "rt_sigqueueinfo",
                libc::SYS_rt_sigqueueinfo,
                &[t.pid as u64, signo as u64, scratch],
            )?;
        } else {
            t.syscall(
                "rt_tgsigqueueinfo",
                libc::SYS_rt_tgsigqueueinfo,
                &[t.pid as u64, tid as u64, signo as u64, scratch],
            )?;
        }
    }
    Ok(())
}
