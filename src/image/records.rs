//! The typed records of an image. Pure data: no syscalls, no /proc.
//!
//! Every record is serialised as CBOR (self-describing, so later versions can add fields
//! with `#[serde(default)]` and old readers ignore what they do not know). docs/image-format.md
//! describes every field and invariant; keep it in step with this file.

use serde::{Deserialize, Serialize};

/// Bumped on any change an older reader would misread.
pub const FORMAT_VERSION: u32 = 1;
pub const PAGE_SIZE: u64 = 4096;

/// `inventory.img`: what the image holds. Written last: an image without it is incomplete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub tool_version: String,
    pub kernel: String,
    pub arch: String,
    pub page_size: u64,
    pub created_unix_ms: u64,
    /// The pid the dump was asked for; the root of the tree.
    pub root_pid: i32,
    /// Every process in the image (one for now), parents before children.
    pub processes: Vec<ProcessEntry>,
    /// Files referred to by mappings, fds and the mm's exe link, by index.
    pub files: Vec<FileRecord>,
    /// Shared memory objects (shared anon, memfd), stored once each, by index.
    pub shmem: Vec<ShmemObject>,
    /// `pages.img`: how many pages it holds and their xxh3-64.
    pub pages: PagesInfo,
    /// Reserved for incremental dumps: the directory of the image this one is a delta of.
    /// Must be absent in this version.
    #[serde(default)]
    pub parent: Option<String>,
    /// Terminal fds were recorded as "the restorer's terminal".
    pub shell_job: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessEntry {
    pub pid: i32,
    pub ppid: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PagesInfo {
    pub count: u64,
    pub checksum: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileKind {
    Regular,
    Directory,
    CharDevice,
}

/// A file by path, with the identity it had at dump time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    pub kind: FileKind,
    pub size: u64,
    pub mtime_ns: i64,
    /// st_rdev of character devices.
    pub rdev: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShmemKind {
    /// MAP_SHARED|MAP_ANONYMOUS: "/dev/zero (deleted)".
    SharedAnon,
    /// memfd_create(name): "/memfd:NAME (deleted)".
    Memfd { name: String },
}

/// A shared memory object: its size and its populated pages, by page index in the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShmemObject {
    pub kind: ShmemKind,
    /// The inode at dump time (identity within the image only).
    pub inode: u64,
    /// Bytes; a multiple of the page size.
    pub size: u64,
    pub pages: Vec<PageRun>,
}

/// Where the contents of a run of pages are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PageSource {
    /// Stored in pages.img from page index `at` on, `count` pages contiguous.
    Data { at: u64 },
    /// Populated pages that held only zeros: recorded, not stored.
    Zero,
}

/// `count` pages starting at page index `first` of their mapping or object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRun {
    pub first: u64,
    pub count: u64,
    pub source: PageSource,
}

// ------------------------------------------------------------------------------------------------
// core-PID.img

/// `core-PID.img`: a process's task state other than memory and fds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Core {
    pub pid: i32,
    pub comm: String,
    /// Stopped by job control (SIGSTOP, SIGTSTP ...) when dumped: it comes back stopped.
    pub stopped: bool,
    pub sid: i32,
    pub pgid: i32,
    pub personality: u32,
    pub umask: u32,
    pub cwd: String,
    pub root: String,
    pub creds: Creds,
    pub rlimits: Vec<Rlimit>,
    pub pdeathsig: i32,
    /// PR_GET_DUMPABLE: 0, 1 or 2.
    pub dumpable: i32,
    pub sigactions: Vec<SigAction>,
    /// Process-wide pending signals, as raw 128-byte siginfo.
    pub shared_pending: Vec<Vec<u8>>,
    pub mm: MmMeta,
    pub threads: Vec<ThreadCore>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Creds {
    /// real, effective, saved, filesystem
    pub uid: [u32; 4],
    pub gid: [u32; 4],
    pub groups: Vec<u32>,
    pub caps: Caps,
    /// PR_GET_SECUREBITS (keep-caps included); the *_LOCKED bits are not restored.
    pub securebits: u64,
    pub no_new_privs: bool,
}

/// Capability sets, one bit per capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Caps {
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub ambient: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub resource: u32,
    pub cur: u64,
    pub max: u64,
}

/// The kernel's struct sigaction for rt_sigaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigAction {
    pub sig: u32,
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// The mm fields PR_SET_MM_MAP sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MmMeta {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    /// (type, value) words ending with AT_NULL.
    pub auxv: Vec<u64>,
    /// Index into the inventory's files: /proc/PID/exe.
    pub exe_file: u32,
}

/// One thread's CPU and signal state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadCore {
    pub tid: i32,
    /// user_regs_struct as the kernel lays it out (27 words, x86-64).
    pub regs: Vec<u64>,
    /// The XSAVE area (FPU, SSE, AVX, AVX-512 ...), as PTRACE_GETREGSET NT_X86_XSTATE gives it.
    pub xstate: Vec<u8>,
    pub sigmask: u64,
    /// This thread's private pending signals, raw 128-byte siginfo.
    pub pending: Vec<Vec<u8>>,
    pub altstack: AltStack,
    pub clear_child_tid: u64,
    pub robust_list: (u64, u64),
    pub rseq: Option<Rseq>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AltStack {
    pub sp: u64,
    pub flags: u32,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rseq {
    pub ptr: u64,
    pub size: u32,
    pub signature: u32,
}

// ------------------------------------------------------------------------------------------------
// mm-PID.img

/// `mm-PID.img`: every mapping of the address space, in address order, with its pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mm {
    pub vmas: Vec<Vma>,
}

pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;

/// VMA properties beyond protection, restored with mmap flags, madvise, mlock and mseal.
pub mod vmflags {
    pub const GROWSDOWN: u32 = 1 << 0;
    pub const DONTFORK: u32 = 1 << 1;
    pub const LOCKED: u32 = 1 << 2;
    pub const LOCKONFAULT: u32 = 1 << 3;
    pub const HUGEPAGE: u32 = 1 << 4;
    pub const NOHUGEPAGE: u32 = 1 << 5;
    pub const DONTDUMP: u32 = 1 << 6;
    pub const WIPEONFORK: u32 = 1 << 7;
    pub const MERGEABLE: u32 = 1 << 8;
    pub const NORESERVE: u32 = 1 << 9;
    pub const SEALED: u32 = 1 << 10;
    /// A shared file mapping that may be made writable: its file is reopened read-write.
    pub const MAYWRITE: u32 = 1 << 11;
    pub const ALL: u32 = (1 << 12) - 1;
    /// (bit, smaps VmFlags code, name for inspect)
    pub const TABLE: &[(u32, &str, &str)] = &[
        (GROWSDOWN, "gd", "growsdown"),
        (DONTFORK, "dc", "dontfork"),
        (LOCKED, "lo", "locked"),
        (LOCKONFAULT, "lf", "lockonfault"),
        (HUGEPAGE, "hg", "hugepage"),
        (NOHUGEPAGE, "nh", "nohugepage"),
        (DONTDUMP, "dd", "dontdump"),
        (WIPEONFORK, "wf", "wipeonfork"),
        (MERGEABLE, "mg", "mergeable"),
        (NORESERVE, "nr", "noreserve"),
        (SEALED, "sl", "sealed"),
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmaKind {
    /// Private anonymous memory.
    Anon,
    /// Private anonymous memory the kernel names [heap] (the brk area).
    Heap,
    /// Private anonymous memory the kernel names [stack].
    Stack,
    /// A file mapping; private ones carry their COW'd pages, shared ones none.
    File {
        file: u32,
        pgoff: u64,
    },
    /// A mapping of a shared memory object of the inventory.
    Shmem {
        object: u32,
        pgoff: u64,
    },
    Vdso,
    /// [vvar], [vvar_vclock]: data pages of the vdso, moved with it.
    Vvar {
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
    pub shared: bool,
    pub flags: u32,
    pub kind: VmaKind,
    /// Populated private pages, by page index from `start`.
    pub pages: Vec<PageRun>,
}

impl Vma {
    pub fn npages(&self) -> u64 {
        (self.end - self.start) / PAGE_SIZE
    }
}

// ------------------------------------------------------------------------------------------------
// fds-PID.img

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fds {
    pub fds: Vec<Fd>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fd {
    pub fd: i32,
    pub cloexec: bool,
    pub kind: FdKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FdKind {
    /// A file, directory or device reopened by path with `flags` (O_* without O_CLOEXEC) at `pos`.
    Path { file: u32, flags: u32, pos: u64 },
    /// A terminal: the restorer's terminal takes its place (--shell-job).
    Tty { flags: u32 },
}
