//! The thin layer that talks to the kernel: raw syscalls, ptrace requests and raw memory.
//!
//! Nearly every `unsafe` block of stasis lives here; everything above calls these safe
//! wrappers, which check return values and turn them into `std::io::Error`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

pub type Pid = i32;

pub const PAGE_SIZE: usize = 4096;

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_int(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

// ---------------------------------------------------------------------------------------------
// ptrace

/// The general-purpose registers as the kernel's `user_regs_struct` (x86-64).
pub type UserRegs = libc::user_regs_struct;

pub const PTRACE_O_TRACESYSGOOD: libc::c_int = libc::PTRACE_O_TRACESYSGOOD;
pub const PTRACE_O_EXITKILL: libc::c_int = libc::PTRACE_O_EXITKILL;
const NT_X86_XSTATE: libc::c_int = 0x202;

fn ptrace_raw(req: libc::c_uint, pid: Pid, addr: usize, data: usize) -> io::Result<libc::c_long> {
    // SAFETY: every caller passes addr/data that the given request interprets as plain integers
    // or as pointers to live buffers of the size the request expects.
    let r = unsafe { libc::ptrace(req, pid, addr, data) };
    check(r)
}

pub fn ptrace_seize(pid: Pid, options: libc::c_int) -> io::Result<()> {
    ptrace_raw(libc::PTRACE_SEIZE, pid, 0, options as usize).map(drop)
}

pub fn ptrace_interrupt(pid: Pid) -> io::Result<()> {
    ptrace_raw(libc::PTRACE_INTERRUPT, pid, 0, 0).map(drop)
}

pub fn ptrace_setoptions(pid: Pid, options: libc::c_int) -> io::Result<()> {
    ptrace_raw(libc::PTRACE_SETOPTIONS, pid, 0, options as usize).map(drop)
}

pub fn ptrace_detach(pid: Pid, sig: i32) -> io::Result<()> {
    ptrace_raw(libc::PTRACE_DETACH, pid, 0, sig as usize).map(drop)
}

pub fn ptrace_cont(pid: Pid, sig: i32) -> io::Result<()> {
    ptrace_raw(libc::PTRACE_CONT, pid, 0, sig as usize).map(drop)
}

/// Resume until the next syscall entry or exit.
pub fn ptrace_syscall(pid: Pid, sig: i32) -> io::Result<()> {
    ptrace_raw(libc::PTRACE_SYSCALL, pid, 0, sig as usize).map(drop)
}

pub fn ptrace_getregs(pid: Pid) -> io::Result<UserRegs> {
    // SAFETY: user_regs_struct is plain integers; all-zero is a valid value.
    let mut regs: UserRegs = unsafe { std::mem::zeroed() };
    ptrace_raw(libc::PTRACE_GETREGS, pid, 0, &mut regs as *mut UserRegs as usize)?;
    Ok(regs)
}

pub fn ptrace_setregs(pid: Pid, regs: &UserRegs) -> io::Result<()> {
    ptrace_raw(libc::PTRACE_SETREGS, pid, 0, regs as *const UserRegs as usize).map(drop)
}

/// Reads the whole extended state (XSAVE area) of a stopped thread.
pub fn ptrace_get_xstate(pid: Pid) -> io::Result<Vec<u8>> {
    // The XSAVE area with AVX-512 and AMX can reach ~11 KiB; the kernel trims iov_len to the
    // real size.
    let mut buf = vec![0u8; 16384];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    ptrace_raw(
        libc::PTRACE_GETREGSET,
        pid,
        NT_X86_XSTATE as usize,
        &mut iov as *mut libc::iovec as usize,
    )?;
    buf.truncate(iov.iov_len);
    Ok(buf)
}

pub fn ptrace_set_xstate(pid: Pid, xstate: &[u8]) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: xstate.as_ptr() as *mut libc::c_void,
        iov_len: xstate.len(),
    };
    ptrace_raw(
        libc::PTRACE_SETREGSET,
        pid,
        NT_X86_XSTATE as usize,
        &mut iov as *mut libc::iovec as usize,
    )
    .map(drop)
}

pub fn ptrace_get_sigmask(pid: Pid) -> io::Result<u64> {
    let mut mask: u64 = 0;
    ptrace_raw(libc::PTRACE_GETSIGMASK, pid, 8, &mut mask as *mut u64 as usize)?;
    Ok(mask)
}

pub fn ptrace_set_sigmask(pid: Pid, mask: u64) -> io::Result<()> {
    ptrace_raw(libc::PTRACE_SETSIGMASK, pid, 8, &mask as *const u64 as usize).map(drop)
}

/// Siginfo as the kernel lays it out: 128 raw bytes.
pub type RawSiginfo = [u8; 128];

/// Copies (without dequeuing) the pending signals of a thread: its private queue, or the
/// process-wide one when `shared`.
pub fn ptrace_peek_siginfo(pid: Pid, shared: bool) -> io::Result<Vec<RawSiginfo>> {
    const PTRACE_PEEKSIGINFO_SHARED: u32 = 1;
    let mut out = Vec::new();
    let mut buf = [[0u8; 128]; 32];
    loop {
        let args = libc::ptrace_peeksiginfo_args {
            off: out.len() as u64,
            flags: if shared { PTRACE_PEEKSIGINFO_SHARED } else { 0 },
            nr: buf.len() as i32,
        };
        let n = ptrace_raw(
            libc::PTRACE_PEEKSIGINFO,
            pid,
            &args as *const _ as usize,
            buf.as_mut_ptr() as usize,
        )? as usize;
        out.extend_from_slice(&buf[..n]);
        if n < buf.len() {
            return Ok(out);
        }
    }
}

#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct RseqConfig {
    pub rseq_abi_pointer: u64,
    pub rseq_abi_size: u32,
    pub signature: u32,
    pub flags: u32,
    pub pad: u32,
}

pub fn ptrace_get_rseq(pid: Pid) -> io::Result<RseqConfig> {
    let mut conf = RseqConfig::default();
    ptrace_raw(
        libc::PTRACE_GET_RSEQ_CONFIGURATION,
        pid,
        std::mem::size_of::<RseqConfig>(),
        &mut conf as *mut RseqConfig as usize,
    )?;
    Ok(conf)
}

/// What `waitpid` reported for one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStatus {
    Exited(i32),
    Signaled(i32),
    /// Stopped: the signal and the ptrace event (status >> 16).
    Stopped {
        sig: i32,
        event: i32,
    },
}

/// Waits for one specific task (never -1: tests run many of these in parallel).
pub fn waitpid(pid: Pid, flags: libc::c_int) -> io::Result<Option<WaitStatus>> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, flags | libc::__WALL) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Ok(None);
        }
        break;
    }
    Ok(Some(if libc::WIFEXITED(status) {
        WaitStatus::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        WaitStatus::Signaled(libc::WTERMSIG(status))
    } else {
        WaitStatus::Stopped {
            sig: libc::WSTOPSIG(status),
            event: status >> 16,
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// memory of other processes

/// Reads `remote` ranges of `pid` into one contiguous local buffer. Returns bytes read.
pub fn process_vm_read(pid: Pid, local: &mut [u8], remote: &[(u64, usize)]) -> io::Result<usize> {
    let liov = [libc::iovec {
        iov_base: local.as_mut_ptr().cast(),
        iov_len: local.len(),
    }];
    let riov: Vec<libc::iovec> = remote
        .iter()
        .map(|&(addr, len)| libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: len,
        })
        .collect();
    // SAFETY: the local iovec covers a live, exclusively borrowed buffer; the remote iovecs are
    // only interpreted in the other process's address space by the kernel.
    let r = unsafe { libc::process_vm_readv(pid, liov.as_ptr(), 1, riov.as_ptr(), riov.len() as u64, 0) };
    check(r as libc::c_long).map(|n| n as usize)
}

/// Writes one contiguous local buffer into `remote` ranges of `pid`. Returns bytes written.
pub fn process_vm_write(pid: Pid, local: &[u8], remote: &[(u64, usize)]) -> io::Result<usize> {
    let liov = [libc::iovec {
        iov_base: local.as_ptr() as *mut libc::c_void,
        iov_len: local.len(),
    }];
    let riov: Vec<libc::iovec> = remote
        .iter()
        .map(|&(addr, len)| libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: len,
        })
        .collect();
    // SAFETY: the local iovec covers a live buffer that the kernel only reads.
    let r = unsafe { libc::process_vm_writev(pid, liov.as_ptr(), 1, riov.as_ptr(), riov.len() as u64, 0) };
    check(r as libc::c_long).map(|n| n as usize)
}

// ---------------------------------------------------------------------------------------------
// PAGEMAP_SCAN

pub const PAGE_IS_FILE: u64 = 1 << 2;
pub const PAGE_IS_PRESENT: u64 = 1 << 3;
pub const PAGE_IS_SWAPPED: u64 = 1 << 4;
pub const PAGE_IS_PFNZERO: u64 = 1 << 5;

#[repr(C)]
#[derive(Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

const PAGEMAP_SCAN: libc::c_ulong = 0xC060_6610; // _IOWR('f', 16, struct pm_scan_arg)

/// A selection of pages for [`pagemap_scan`]: a page matches when every bit of `required` is
/// set, no bit of `excluded` is set, and (if `anyof` is not zero) one bit of `anyof` is set.
pub struct ScanQuery {
    pub required: u64,
    pub excluded: u64,
    pub anyof: u64,
}

/// Runs of matching pages in `[start, end)` of the process whose pagemap `fd` is, as
/// `(start, end)` address pairs.
pub fn pagemap_scan(fd: BorrowedFd<'_>, start: u64, end: u64, q: &ScanQuery) -> io::Result<Vec<(u64, u64)>> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut regions = vec![PageRegion::default(); 512];
    let mut cur = start;
    while cur < end {
        let mut arg = PmScanArg {
            size: std::mem::size_of::<PmScanArg>() as u64,
            start: cur,
            end,
            vec: regions.as_mut_ptr() as u64,
            vec_len: regions.len() as u64,
            category_inverted: q.excluded,
            category_mask: q.required | q.excluded,
            category_anyof_mask: q.anyof,
            return_mask: q.required | q.anyof,
            ..Default::default()
        };
        // SAFETY: arg is a valid pm_scan_arg whose vec points at `regions.len()` entries.
        let n = unsafe { libc::ioctl(fd.as_raw_fd(), PAGEMAP_SCAN, &mut arg as *mut PmScanArg) };
        let n = check_int(n)? as usize;
        for r in &regions[..n] {
            match out.last_mut() {
                Some(last) if last.1 == r.start => last.1 = r.end,
                _ => out.push((r.start, r.end)),
            }
        }
        if arg.walk_end <= cur {
            break;
        }
        cur = arg.walk_end;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// process creation

/// `clone3` with `set_tid`: creates a child process (fork semantics, no shared memory) whose
/// pid is `pid`. Returns 0 in the child and the pid in the parent.
///
/// The child runs on a copy of the caller's stack; it must keep to raw syscalls and plain
/// libc calls that do not rely on glibc's cached thread id. The caller must be
/// single-threaded: the child allocates, and a lock held by another thread at the clone
/// would never be released in it.
pub fn clone3_with_pid(pid: Pid) -> io::Result<Pid> {
    let set_tid: [libc::pid_t; 1] = [pid];
    // SAFETY: clone_args is plain integers.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.exit_signal = libc::SIGCHLD as u64;
    args.set_tid = set_tid.as_ptr() as u64;
    args.set_tid_size = 1;
    // SAFETY: fork-like clone3 (no CLONE_VM, no new stack): the child continues on a private copy
    // of this address space, exactly as after fork(2).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    check(r).map(|p| p as Pid)
}

// ---------------------------------------------------------------------------------------------
// small wrappers used by restore's child side and by dump

pub fn kill(pid: Pid, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall.
    check_int(unsafe { libc::kill(pid, sig) }).map(drop)
}

pub fn getpid() -> Pid {
    // SAFETY: plain syscall, cannot fail.
    unsafe { libc::getpid() }
}

/// Sends `sig` to ourselves by raw syscall (glibc's raise() trusts a cached tid that is wrong
/// in a clone3 child).
pub fn raise_raw(sig: i32) -> io::Result<()> {
    kill(getpid(), sig)
}

pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and runs no atexit handlers, which a forked child must not run.
    unsafe { libc::_exit(code) }
}

pub fn block_all_signals() -> io::Result<()> {
    // SAFETY: set is initialised by sigfillset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        check_int(libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())).map(drop)
    }
}

pub fn prctl(option: libc::c_int, a2: u64, a3: u64, a4: u64, a5: u64) -> io::Result<libc::c_int> {
    // SAFETY: callers pass options whose pointer arguments (if any) point at live memory.
    check_int(unsafe { libc::prctl(option, a2, a3, a4, a5) })
}

pub fn setsid() -> io::Result<()> {
    // SAFETY: plain syscall.
    check_int(unsafe { libc::setsid() }).map(drop)
}

pub fn setpgid(pid: Pid, pgid: Pid) -> io::Result<()> {
    // SAFETY: plain syscall.
    check_int(unsafe { libc::setpgid(pid, pgid) }).map(drop)
}

pub fn umask(mask: u32) -> u32 {
    // SAFETY: plain syscall, cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

pub fn chdir(path: &str) -> io::Result<()> {
    let c = cstr(path)?;
    // SAFETY: c is a valid NUL-terminated string.
    check_int(unsafe { libc::chdir(c.as_ptr()) }).map(drop)
}

pub fn chroot(path: &str) -> io::Result<()> {
    let c = cstr(path)?;
    // SAFETY: c is a valid NUL-terminated string.
    check_int(unsafe { libc::chroot(c.as_ptr()) }).map(drop)
}

pub fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

pub fn open(path: &str, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    // SAFETY: c is a valid NUL-terminated string.
    let fd = check_int(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: fd was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Moves `fd` to exactly `target` (closing what was there), clearing or setting close-on-exec.
pub fn dup_to(fd: RawFd, target: RawFd, cloexec: bool) -> io::Result<()> {
    if fd == target {
        // SAFETY: plain fcntl on an open fd.
        check_int(unsafe { libc::fcntl(fd, libc::F_SETFD, if cloexec { libc::FD_CLOEXEC } else { 0 }) })?;
        return Ok(());
    }
    // SAFETY: plain syscall; dup3 replaces target atomically.
    check_int(unsafe { libc::dup3(fd, target, if cloexec { libc::O_CLOEXEC } else { 0 }) }).map(drop)
}

/// Closes every fd in `[first, last]`.
pub fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: plain syscall; the caller owns the fds in the range by protocol.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) }).map(drop)
}

pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a valid out-array of two ints.
    check_int(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn read_raw(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is a live, exclusively borrowed buffer of buf.len() bytes.
    let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    check(r as libc::c_long).map(|n| n as usize)
}

pub fn write_raw(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is a live buffer of buf.len() bytes.
    let r = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    check(r as libc::c_long).map(|n| n as usize)
}

/// Duplicates `fd` to the lowest free number at or above `min` (close-on-exec).
pub fn dup_above(fd: RawFd, min: RawFd) -> io::Result<RawFd> {
    // SAFETY: plain fcntl on an open fd.
    check_int(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) })
}

/// Puts an open fd at exactly `target` (closing what was there) and gives up ownership.
pub fn move_fd(fd: OwnedFd, target: RawFd, cloexec: bool) -> io::Result<()> {
    let raw = fd.into_raw_fd();
    dup_to(raw, target, cloexec)?;
    if raw != target {
        close_raw(raw);
    }
    Ok(())
}

pub fn close_raw(fd: RawFd) {
    // SAFETY: closing an fd number we own by protocol; errors (EBADF) are irrelevant here.
    unsafe { libc::close(fd) };
}

pub fn lseek(fd: RawFd, off: u64) -> io::Result<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::lseek(fd, off as libc::off_t, libc::SEEK_SET) } as libc::c_long).map(drop)
}

/// lseek with any whence; returns the raw result (-1 with errno set on failure).
pub fn lseek_whence(fd: RawFd, off: i64, whence: i32) -> i64 {
    // SAFETY: plain syscall on an fd the caller owns.
    unsafe { libc::lseek(fd, off, whence) }
}

pub fn memfd_create(name: &str) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: c is a valid NUL-terminated string.
    let fd = check_int(unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A shared anonymous object of `size` bytes, the same kind of file MAP_SHARED|MAP_ANONYMOUS
/// creates ("/dev/zero (deleted)"), returned as an fd through /proc/self/map_files.
pub fn shared_anon_object(size: usize) -> io::Result<OwnedFd> {
    // SAFETY: a fresh mapping at a kernel-chosen address; unmapped before returning.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let start = addr as u64;
    let path = format!("/proc/self/map_files/{:x}-{:x}", start, start + size as u64);
    let fd = open(&path, libc::O_RDWR, 0);
    // SAFETY: unmapping exactly the mapping created above.
    unsafe { libc::munmap(addr, size) };
    fd
}

pub fn ftruncate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    // SAFETY: plain syscall.
    check_int(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) }).map(drop)
}

pub fn getrlimit(pid: Pid, resource: u32) -> io::Result<(u64, u64)> {
    let mut old = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: old is a valid out-pointer; new is null (read only).
    check_int(unsafe { libc::prlimit64(pid, resource as _, std::ptr::null(), &mut old) })?;
    Ok((old.rlim_cur, old.rlim_max))
}

/// Makes sure this process may hold fd numbers below `need`.
pub fn ensure_nofile(need: u64) -> io::Result<()> {
    let (cur, max) = getrlimit(0, libc::RLIMIT_NOFILE)?;
    if cur >= need {
        return Ok(());
    }
    let new = libc::rlimit64 {
        rlim_cur: need,
        rlim_max: max.max(need),
    };
    // SAFETY: new is a valid rlimit; the old value is not asked for.
    check_int(unsafe { libc::prlimit64(0, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) }).map(drop)
}

/// Whether two processes share one address space (kcmp KCMP_VM).
pub fn same_mm(a: Pid, b: Pid) -> io::Result<bool> {
    const KCMP_VM: u64 = 1;
    // SAFETY: plain syscall with integer arguments.
    let r = check(unsafe { libc::syscall(libc::SYS_kcmp, a, b, KCMP_VM, 0u64, 0u64) })?;
    Ok(r == 0)
}

pub fn get_robust_list(pid: Pid) -> io::Result<(u64, u64)> {
    let mut head: u64 = 0;
    let mut len: usize = 0;
    // SAFETY: out-pointers to locals.
    let r = unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            pid,
            &mut head as *mut u64,
            &mut len as *mut usize,
        )
    };
    check(r)?;
    Ok((head, len as u64))
}

/// A read-only view of a whole file, for page data that is copied straight out of it.
///
/// The file must not be truncated or written while it is mapped (a truncation turns reads
/// into SIGBUS): stasis maps only image files it opened itself, owned by root, mode 0600.
pub struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapped {
    /// Maps `len` bytes of `fd` from offset 0, read-only; `populate` maps every page up front.
    pub fn new(fd: BorrowedFd<'_>, len: usize, populate: bool) -> io::Result<Mapped> {
        if len == 0 {
            return Ok(Mapped {
                ptr: std::ptr::null_mut(),
                len: 0,
            });
        }
        let flags = libc::MAP_SHARED | if populate { libc::MAP_POPULATE } else { 0 };
        // SAFETY: a fresh read-only mapping of a file we hold open, at a kernel-chosen address.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, flags, fd.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapped { ptr, len })
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: ptr..ptr+len is a live read-only mapping owned by self; nothing writes to
        // the file while it is mapped (see the type's documentation).
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: unmapping exactly the mapping this value created.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

/// `uname -r`.
pub fn kernel_release() -> String {
    // SAFETY: utsname is plain bytes; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::from("unknown");
    }
    let bytes: Vec<u8> = u.release.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: plain call.
    unsafe { libc::isatty(fd) == 1 }
}

/// Exchanges two paths atomically (renameat2 with RENAME_EXCHANGE).
pub fn rename_exchange(a: &std::path::Path, b: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let cb = CString::new(b.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    const RENAME_EXCHANGE: u32 = 2;
    // SAFETY: both are valid NUL-terminated strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            RENAME_EXCHANGE,
        )
    };
    check(r).map(drop)
}

pub fn flock_exclusive_nb(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall on an open fd.
    check_int(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }).map(drop)
}

/// Whether userfaultfd offers write-protection of anonymous memory; the answer in words.
pub fn probe_uffd_wp() -> Result<String, String> {
    #[repr(C)]
    struct UffdioApi {
        api: u64,
        features: u64,
        ioctls: u64,
    }
    const UFFD_FEATURE_PAGEFAULT_FLAG_WP: u64 = 1 << 0;
    const UFFD_USER_MODE_ONLY: libc::c_int = 1;
    // SAFETY: plain syscall creating a new fd.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | UFFD_USER_MODE_ONLY) };
    if fd < 0 {
        return Err(format!("userfaultfd: {}", io::Error::last_os_error()));
    }
    // SAFETY: fd was just created and is owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let mut api = UffdioApi {
        api: UFFD_API,
        features: 0,
        ioctls: 0,
    };
    // SAFETY: api is a valid uffdio_api for the UFFDIO_API ioctl.
    if unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API, &mut api as *mut UffdioApi) } < 0 {
        return Err(format!("UFFDIO_API: {}", io::Error::last_os_error()));
    }
    if api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP != 0 {
        Ok("supported".into())
    } else {
        Err("userfaultfd without write-protect".into())
    }
}

static SIGTERM_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    SIGTERM_SEEN.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Installs a SIGTERM handler that only sets the returned flag (for sample workloads).
pub fn sigterm_flag() -> &'static std::sync::atomic::AtomicBool {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { libc::signal(libc::SIGTERM, on_sigterm as *const () as libc::sighandler_t) };
    &SIGTERM_SEEN
}

/// Makes `cmd` close every inherited fd above 2 in the child before exec (a dumped process
/// must not hold fds it did not open, like a test harness's pipes).
pub fn close_inherited_fds(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure only makes one async-signal-safe syscall between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
}

/// A new pseudo-terminal: (master, slave).
pub fn openpty() -> io::Result<(OwnedFd, OwnedFd)> {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: out-pointers to locals; name, termios and winsize may be null.
    check_int(unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    })?;
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) })
}

// ---------------------------------------------------------------------------------------------
// userfaultfd: filling another process's fresh anonymous memory without zeroing it first

/// A userfaultfd of another process's mm, taken from it with pidfd_getfd.
pub struct Uffd {
    fd: OwnedFd,
}

const UFFD_API: u64 = 0xaa;
const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00;
const UFFDIO_UNREGISTER: libc::c_ulong = 0x8010_aa01;
const UFFDIO_COPY: libc::c_ulong = 0xc028_aa03;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;

#[repr(C)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioCopy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}

impl Uffd {
    /// Takes fd number `target_fd` of process `pid` (a userfaultfd it created) and
    /// handshakes the API.
    pub fn from_process(pid: Pid, target_fd: i32) -> io::Result<Uffd> {
        // SAFETY: plain syscalls creating new fds, owned right away.
        let pidfd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
        // SAFETY: pidfd was just created and is owned here.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
        // SAFETY: plain syscall creating a new fd.
        let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target_fd, 0) })?;
        // SAFETY: fd was just created and is owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        let mut api = [UFFD_API, 0, 0];
        // SAFETY: api is a valid struct uffdio_api (three u64).
        check_int(unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API, api.as_mut_ptr()) })?;
        Ok(Uffd { fd })
    }

    /// Registers `[start, start+len)` for missing-page handling (needed for UFFDIO_COPY).
    pub fn register(&self, start: u64, len: u64) -> io::Result<()> {
        let mut r = UffdioRegister {
            start,
            len,
            mode: UFFDIO_REGISTER_MODE_MISSING,
            ioctls: 0,
        };
        // SAFETY: r is a valid struct uffdio_register.
        check_int(unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_REGISTER, &mut r as *mut UffdioRegister) }).map(drop)
    }

    pub fn unregister(&self, start: u64, len: u64) -> io::Result<()> {
        let mut r = [start, len];
        // SAFETY: r is a valid struct uffdio_range.
        check_int(unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_UNREGISTER, r.as_mut_ptr()) }).map(drop)
    }

    /// Copies `src` into the other process at `dst` (page aligned, not yet populated).
    pub fn copy(&self, dst: u64, src: &[u8]) -> io::Result<()> {
        let mut done = 0usize;
        while done < src.len() {
            let mut c = UffdioCopy {
                dst: dst + done as u64,
                src: src[done..].as_ptr() as u64,
                len: (src.len() - done) as u64,
                mode: 0,
                copy: 0,
            };
            // SAFETY: c describes a live source buffer of c.len bytes; the destination lies in
            // the other process's registered range and is checked by the kernel.
            let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_COPY, &mut c as *mut UffdioCopy) };
            if c.copy > 0 {
                done += c.copy as usize;
            }
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EAGAIN) || e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e);
            }
            if c.copy <= 0 {
                return Err(io::Error::other("UFFDIO_COPY made no progress"));
            }
        }
        Ok(())
    }
}
