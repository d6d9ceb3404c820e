//! The sample image shared by tests/image_format.rs and the fuzz crate (fuzz/src/lib.rs): a
//! realistic single-process image that uses every record type and variant, and its pages.img.
//! A plain module with no dependency on the rest of tests/common; include it with
//! `#[path = "common/sample_image.rs"] mod sample_image;` (from tests/) or
//! `#[path = "../../tests/common/sample_image.rs"] mod sample_image;` (from fuzz/src/).

use stasis::image::{
    self, AltStack, Caps, Core, Creds, Fd, FdKind, Fds, FileKind, FileRecord, Image, Inventory, Mm, MmMeta, PAGE_SIZE,
    PROT_EXEC, PROT_READ, PROT_WRITE, PageRun, PageSource, PagesInfo, ProcessEntry, ProcessImage, Rlimit, Rseq,
    ShmemKind, ShmemObject, SigAction, ThreadCore, Vma, VmaKind, vmflags,
};

pub const PID: i32 = 4242;
/// Pages stored in pages.img by the sample image.
pub const STORED: u64 = 10;

pub const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
pub const AT_PAGESZ: u64 = 6;
const AT_ENTRY: u64 = 9;
const AT_RANDOM: u64 = 25;
const AT_SYSINFO_EHDR: u64 = 33;

pub const VDSO: u64 = 0x7ffd_0010_4000;

/// A raw 128-byte siginfo as the kernel gives it: signo, errno, code (SI_USER), pid, uid.
pub fn siginfo(signo: i32) -> Vec<u8> {
    let mut s = vec![0u8; 128];
    s[0..4].copy_from_slice(&signo.to_le_bytes());
    s[16..20].copy_from_slice(&1000i32.to_le_bytes());
    s[20..24].copy_from_slice(&1000u32.to_le_bytes());
    s
}

pub fn run(first: u64, count: u64, source: PageSource) -> PageRun {
    PageRun { first, count, source }
}

pub fn vma(start: u64, end: u64, prot: u32, shared: bool, kind: VmaKind, pages: Vec<PageRun>) -> Vma {
    Vma {
        start,
        end,
        prot,
        shared,
        flags: 0,
        kind,
        pages,
    }
}

fn file(path: &str, kind: FileKind, size: u64, rdev: u64) -> FileRecord {
    FileRecord {
        path: path.to_string(),
        kind,
        size,
        mtime_ns: 1_700_000_000_123_456_789,
        rdev,
    }
}

/// A realistic single-process image: every kind of mapping, stored and zero runs, both kinds
/// of shared memory object, both kinds of fd. The pages checksum is filled in by `pages_file`.
pub fn sample() -> Image {
    use PageSource::{Data, Zero};
    const RW: u32 = PROT_READ | PROT_WRITE;

    let files = vec![
        file("/usr/bin/sample", FileKind::Regular, 3 * PAGE_SIZE, 0),
        file("/usr/lib/libc.so.6", FileKind::Regular, 2_000_000, 0),
        file("/tmp/data.txt", FileKind::Regular, 4000, 0),
        file("/dev/null", FileKind::CharDevice, 0, (1 << 8) | 3),
        file("/home", FileKind::Directory, 4096, 0),
    ];
    let shmem = vec![
        ShmemObject {
            kind: ShmemKind::SharedAnon,
            inode: 1234,
            size: 4 * PAGE_SIZE,
            pages: vec![run(0, 1, Data { at: 8 }), run(2, 1, Zero)],
        },
        ShmemObject {
            kind: ShmemKind::Memfd {
                name: "cache".to_string(),
            },
            inode: 5678,
            size: 8 * PAGE_SIZE,
            pages: vec![run(3, 1, Data { at: 9 })],
        },
    ];
    let mut stack = vma(
        0x7ffd_0000_0000,
        0x7ffd_0002_1000,
        RW,
        false,
        VmaKind::Stack,
        vec![run(30, 1, Zero), run(31, 2, Data { at: 3 })],
    );
    stack.flags = vmflags::GROWSDOWN;
    let mut shared_file = vma(
        0x7f00_0003_0000,
        0x7f00_0003_1000,
        PROT_READ,
        true,
        VmaKind::File { file: 2, pgoff: 0 },
        vec![],
    );
    shared_file.flags = vmflags::MAYWRITE;
    let vmas = vec![
        vma(
            0x40_0000,
            0x40_1000,
            PROT_READ | PROT_EXEC,
            false,
            VmaKind::File { file: 0, pgoff: 0 },
            vec![],
        ),
        vma(
            0x40_1000,
            0x40_3000,
            RW,
            false,
            VmaKind::File { file: 0, pgoff: 1 },
            vec![run(1, 1, Data { at: 5 })],
        ),
        vma(
            0x60_0000,
            0x60_4000,
            RW,
            false,
            VmaKind::Heap,
            vec![run(0, 3, Data { at: 0 }), run(3, 1, Zero)],
        ),
        vma(
            0x7f00_0000_0000,
            0x7f00_0000_4000,
            RW,
            false,
            VmaKind::Anon,
            vec![run(0, 1, Zero), run(1, 2, Data { at: 6 })],
        ),
        vma(
            0x7f00_0001_0000,
            0x7f00_0001_4000,
            RW,
            true,
            VmaKind::Shmem { object: 0, pgoff: 0 },
            vec![],
        ),
        vma(
            0x7f00_0002_0000,
            0x7f00_0002_2000,
            RW,
            true,
            VmaKind::Shmem { object: 1, pgoff: 2 },
            vec![],
        ),
        shared_file,
        vma(
            0x7f00_0004_0000,
            0x7f00_0005_0000,
            PROT_READ | PROT_EXEC,
            false,
            VmaKind::File { file: 1, pgoff: 0 },
            vec![],
        ),
        stack,
        vma(
            VDSO - 4 * PAGE_SIZE,
            VDSO,
            PROT_READ,
            false,
            VmaKind::Vvar {
                name: "[vvar]".to_string(),
            },
            vec![],
        ),
        vma(
            VDSO,
            VDSO + 2 * PAGE_SIZE,
            PROT_READ | PROT_EXEC,
            false,
            VmaKind::Vdso,
            vec![],
        ),
    ];

    let mut regs: Vec<u64> = (0..27).map(|i| 0x1000 + i).collect();
    regs[16] = 0x40_0123; // rip
    regs[17] = 0x33; // cs
    regs[18] = 0x246; // eflags
    regs[19] = 0x7ffd_0002_0e00; // rsp
    regs[20] = 0x2b; // ss
    let thread = ThreadCore {
        tid: PID,
        regs,
        xstate: (0..1024u32).map(|i| (i * 7) as u8).collect(),
        sigmask: 1 << (12 - 1),
        pending: vec![siginfo(12)],
        altstack: AltStack {
            sp: 0,
            flags: 2, // SS_DISABLE
            size: 0,
        },
        clear_child_tid: 0x7f00_0000_0a10,
        robust_list: (0x7f00_0000_0a20, 24),
        rseq: Some(Rseq {
            ptr: 0x7f00_0000_0b00,
            size: 32,
            signature: 0x5305_3053,
        }),
    };
    let core = Core {
        pid: PID,
        comm: "sample".to_string(),
        stopped: false,
        sid: 4000,
        pgid: PID,
        personality: 0,
        umask: 0o022,
        cwd: "/home".to_string(),
        root: "/".to_string(),
        creds: Creds {
            uid: [1000; 4],
            gid: [1000; 4],
            groups: vec![27, 1000],
            caps: Caps {
                bounding: (1 << 41) - 1,
                ..Caps::default()
            },
            securebits: 0,
            no_new_privs: true,
        },
        rlimits: vec![
            Rlimit {
                resource: 3, // RLIMIT_STACK
                cur: 8 << 20,
                max: u64::MAX,
            },
            Rlimit {
                resource: 7, // RLIMIT_NOFILE
                cur: 1024,
                max: 4096,
            },
        ],
        pdeathsig: 0,
        dumpable: 1,
        sigactions: vec![
            SigAction {
                sig: 2,
                handler: 0x40_0200,
                flags: 0x0400_0004, // SA_RESTORER | SA_SIGINFO
                restorer: 0x7f00_0004_1000,
                mask: 1 << (10 - 1),
            },
            SigAction {
                sig: 10,
                handler: 0x40_0300,
                flags: 0x0400_0000,
                restorer: 0x7f00_0004_1000,
                mask: 0,
            },
            SigAction {
                sig: 13,
                handler: 1, // SIG_IGN
                flags: 0,
                restorer: 0,
                mask: 0,
            },
        ],
        shared_pending: vec![siginfo(10)],
        mm: MmMeta {
            start_code: 0x40_0000,
            end_code: 0x40_1000,
            start_data: 0x40_1000,
            end_data: 0x40_3000,
            start_brk: 0x60_0000,
            brk: 0x60_4000,
            start_stack: 0x7ffd_0002_0ff0,
            arg_start: 0x7ffd_0002_0f10,
            arg_end: 0x7ffd_0002_0f30,
            env_start: 0x7ffd_0002_0f30,
            env_end: 0x7ffd_0002_0fe0,
            auxv: vec![
                AT_SYSINFO_EHDR,
                VDSO,
                AT_PAGESZ,
                PAGE_SIZE,
                AT_PHDR,
                0x40_0040,
                AT_ENTRY,
                0x40_0100,
                AT_RANDOM,
                0x7ffd_0002_0f00,
                AT_NULL,
                0,
            ],
            exe_file: 0,
        },
        threads: vec![thread],
    };
    let fds = Fds {
        fds: vec![
            Fd {
                fd: 0,
                cloexec: false,
                kind: FdKind::Tty { flags: 2 },
            },
            Fd {
                fd: 1,
                cloexec: false,
                kind: FdKind::Tty { flags: 2 },
            },
            Fd {
                fd: 2,
                cloexec: false,
                kind: FdKind::Tty { flags: 2 },
            },
            Fd {
                fd: 3,
                cloexec: true,
                kind: FdKind::Path {
                    file: 2,
                    flags: (libc::O_RDWR | libc::O_APPEND) as u32,
                    pos: 100,
                },
            },
            Fd {
                fd: 4,
                cloexec: false,
                kind: FdKind::Path {
                    file: 3,
                    flags: libc::O_WRONLY as u32,
                    pos: 0,
                },
            },
            Fd {
                fd: 7,
                cloexec: true,
                kind: FdKind::Path {
                    file: 4,
                    flags: (libc::O_RDONLY | libc::O_DIRECTORY) as u32,
                    pos: 0,
                },
            },
        ],
    };
    Image {
        inventory: Inventory {
            tool_version: "0.1.0".to_string(),
            kernel: "6.18.0".to_string(),
            arch: std::env::consts::ARCH.to_string(),
            page_size: PAGE_SIZE,
            created_unix_ms: 1_700_000_000_000,
            root_pid: PID,
            processes: vec![ProcessEntry { pid: PID, ppid: 1 }],
            files,
            shmem,
            pages: PagesInfo {
                count: STORED,
                checksum: image::checksum(&page_data()),
            },
            parent: None,
            shell_job: true,
        },
        processes: vec![ProcessImage {
            core,
            mm: Mm { vmas },
            fds: Fds { fds: fds.fds },
        }],
    }
}

/// The stored pages of the sample: every page different, none all zero.
pub fn page_data() -> Vec<u8> {
    (0..STORED * PAGE_SIZE)
        .map(|i| ((i / PAGE_SIZE) as u8 + 1).wrapping_mul(31) ^ (i as u8))
        .collect()
}

/// The whole pages.img of the sample.
pub fn pages_file() -> Vec<u8> {
    let data = page_data();
    let mut f = image::pages_header(STORED, image::checksum(&data));
    f.extend_from_slice(&data);
    f
}
