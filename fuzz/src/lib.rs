//! Shared by the fuzz targets and the seed generator: a valid sample image, raw framing, and
//! the input layout of `load_image`.

use stasis::image::{
    self, AltStack, Core, Creds, Fd, FdKind, Fds, FileKind, FileRecord, HEADER_LEN, Image, Inventory, Mm, MmMeta,
    PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, PageRun, PageSource, PagesInfo, ProcessEntry, ProcessImage,
    RecordKind, Rlimit, Rseq, ShmemKind, ShmemObject, SigAction, ThreadCore, Vma, VmaKind, vmflags,
};

pub const SAMPLE_PID: i32 = 4242;
/// Pages stored by the sample image.
pub const SAMPLE_PAGES: u64 = 2;

/// `payload` behind a correct header of `kind` (what `image::encode` writes, for any bytes).
pub fn frame(kind: RecordKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(image::MAGIC);
    out.extend_from_slice(&image::FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(kind as u32).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&image::checksum(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The CBOR payload of an encoded record: `image::encode` without the header.
pub fn payload(encoded: &[u8]) -> &[u8] {
    &encoded[HEADER_LEN..]
}

/// The stored pages of the sample (the first byte even: see `LoadInput::pages`).
pub fn sample_pages() -> Vec<u8> {
    (0..SAMPLE_PAGES * PAGE_SIZE).map(|i| (i % 251) as u8 + 2).collect()
}

fn run(first: u64, count: u64, source: PageSource) -> PageRun {
    PageRun { first, count, source }
}

fn vma(start: u64, end: u64, prot: u32, shared: bool, kind: VmaKind, pages: Vec<PageRun>) -> Vma {
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

fn siginfo(signo: i32) -> Vec<u8> {
    let mut s = vec![0u8; 128];
    s[..4].copy_from_slice(&signo.to_le_bytes());
    s
}

/// A small valid image using every record type and variant.
pub fn sample() -> Image {
    use PageSource::{Data, Zero};
    let file = |path: &str, kind| FileRecord {
        path: path.into(),
        kind,
        size: 8192,
        mtime_ns: 1,
        rdev: 0,
    };
    let mut stack = vma(
        0x7ffd_0000_0000,
        0x7ffd_0000_4000,
        PROT_READ | PROT_WRITE,
        false,
        VmaKind::Stack,
        vec![run(2, 1, Zero), run(3, 1, Data { at: 1 })],
    );
    stack.flags = vmflags::GROWSDOWN;
    let vmas = vec![
        vma(
            0x40_0000,
            0x40_2000,
            PROT_READ | PROT_EXEC,
            false,
            VmaKind::File { file: 0, pgoff: 0 },
            vec![run(1, 1, Zero)],
        ),
        vma(
            0x60_0000,
            0x60_2000,
            PROT_READ | PROT_WRITE,
            false,
            VmaKind::Heap,
            vec![run(0, 1, Data { at: 0 })],
        ),
        vma(
            0x7f00_0000_0000,
            0x7f00_0000_1000,
            PROT_READ,
            false,
            VmaKind::Anon,
            vec![],
        ),
        vma(
            0x7f00_0001_0000,
            0x7f00_0001_2000,
            PROT_READ | PROT_WRITE,
            true,
            VmaKind::Shmem { object: 0, pgoff: 0 },
            vec![],
        ),
        vma(
            0x7f00_0002_0000,
            0x7f00_0002_1000,
            PROT_READ,
            true,
            VmaKind::File { file: 0, pgoff: 1 },
            vec![],
        ),
        stack,
        vma(
            0x7ffd_0010_0000,
            0x7ffd_0010_4000,
            PROT_READ,
            false,
            VmaKind::Vvar { name: "[vvar]".into() },
            vec![],
        ),
        vma(
            0x7ffd_0010_4000,
            0x7ffd_0010_6000,
            PROT_READ | PROT_EXEC,
            false,
            VmaKind::Vdso,
            vec![],
        ),
    ];
    let core = Core {
        pid: SAMPLE_PID,
        comm: "sample".into(),
        sid: 1,
        pgid: SAMPLE_PID,
        personality: 0,
        umask: 0o022,
        cwd: "/tmp".into(),
        root: "/".into(),
        creds: Creds {
            uid: [1000; 4],
            gid: [1000; 4],
            groups: vec![1000],
        },
        rlimits: vec![Rlimit {
            resource: 7,
            cur: 1024,
            max: 4096,
        }],
        pdeathsig: 0,
        sigactions: vec![SigAction {
            sig: 10,
            handler: 0x40_0100,
            flags: 0x0400_0004,
            restorer: 0x40_0200,
            mask: 0,
        }],
        shared_pending: vec![siginfo(10)],
        mm: MmMeta {
            start_code: 0x40_0000,
            end_code: 0x40_2000,
            start_data: 0x40_2000,
            end_data: 0x40_2000,
            start_brk: 0x60_0000,
            brk: 0x60_2000,
            start_stack: 0x7ffd_0000_3ff0,
            arg_start: 0x7ffd_0000_3f00,
            arg_end: 0x7ffd_0000_3f10,
            env_start: 0x7ffd_0000_3f10,
            env_end: 0x7ffd_0000_3f20,
            auxv: vec![6, 4096, 33, 0x7ffd_0010_4000, 0, 0],
            exe_file: 0,
        },
        threads: vec![ThreadCore {
            tid: SAMPLE_PID,
            regs: (0..27).collect(),
            xstate: vec![0x5a; 640],
            sigmask: 1 << 11,
            pending: vec![siginfo(12)],
            altstack: AltStack {
                sp: 0,
                flags: 2,
                size: 0,
            },
            clear_child_tid: 0,
            robust_list: (0x7f00_0000_0100, 24),
            rseq: Some(Rseq {
                ptr: 0x7f00_0000_0200,
                size: 32,
                signature: 0x5305_3053,
            }),
        }],
    };
    let fds = Fds {
        fds: vec![
            Fd {
                fd: 0,
                cloexec: false,
                kind: FdKind::Tty { flags: 2 },
            },
            Fd {
                fd: 3,
                cloexec: true,
                kind: FdKind::Path {
                    file: 1,
                    flags: 0o2001,
                    pos: 10,
                },
            },
            Fd {
                fd: 4,
                cloexec: false,
                kind: FdKind::Path {
                    file: 2,
                    flags: 0,
                    pos: 0,
                },
            },
        ],
    };
    Image {
        inventory: Inventory {
            tool_version: "0.1.0".into(),
            kernel: "6.18.0".into(),
            arch: std::env::consts::ARCH.into(),
            page_size: PAGE_SIZE,
            created_unix_ms: 1,
            root_pid: SAMPLE_PID,
            processes: vec![ProcessEntry {
                pid: SAMPLE_PID,
                ppid: 1,
            }],
            files: vec![
                file("/usr/bin/sample", FileKind::Regular),
                file("/tmp/log", FileKind::Regular),
                FileRecord {
                    path: "/dev/null".into(),
                    kind: FileKind::CharDevice,
                    size: 0,
                    mtime_ns: 0,
                    rdev: 259,
                },
                file("/tmp", FileKind::Directory),
            ],
            shmem: vec![
                ShmemObject {
                    kind: ShmemKind::SharedAnon,
                    inode: 7,
                    size: 2 * PAGE_SIZE,
                    pages: vec![run(1, 1, Zero)],
                },
                ShmemObject {
                    kind: ShmemKind::Memfd { name: "m".into() },
                    inode: 8,
                    size: PAGE_SIZE,
                    pages: vec![run(0, 1, Data { at: 1 })],
                },
            ],
            pages: PagesInfo {
                count: SAMPLE_PAGES,
                checksum: image::checksum(&sample_pages()),
            },
            parent: None,
            shell_job: true,
        },
        processes: vec![ProcessImage {
            core,
            mm: Mm { vmas },
            fds,
        }],
    }
}

/// The input of `load_image`: four metadata payloads and a pages blob.
///
/// Layout: four little-endian u16 lengths (inventory, core, mm, fds), the four payloads one
/// after the other, then the rest is the pages blob. Lengths beyond the end of the input are
/// cut short, so every input means something.
#[derive(Debug, Default, PartialEq)]
pub struct LoadInput<'a> {
    pub inventory: &'a [u8],
    pub core: &'a [u8],
    pub mm: &'a [u8],
    pub fds: &'a [u8],
    /// If its first byte is odd, pages.img is the blob as is (header included); otherwise the
    /// blob is raw page data behind a correct header, zero-padded to whole pages.
    pub pages: &'a [u8],
}

impl<'a> LoadInput<'a> {
    pub fn split(data: &'a [u8]) -> LoadInput<'a> {
        let (lens, mut rest) = data.split_at(data.len().min(8));
        let mut lens = lens.chunks(2).map(|c| {
            if c.len() == 2 {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                0
            }
        });
        let mut take = || {
            let n = (lens.next().unwrap_or(0) as usize).min(rest.len());
            let (head, tail) = rest.split_at(n);
            rest = tail;
            head
        };
        let (inventory, core, mm, fds) = (take(), take(), take(), take());
        LoadInput {
            inventory,
            core,
            mm,
            fds,
            pages: rest,
        }
    }

    pub fn join(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for p in [self.inventory, self.core, self.mm, self.fds] {
            out.extend_from_slice(&u16::try_from(p.len()).expect("payload under 64 KiB").to_le_bytes());
        }
        for p in [self.inventory, self.core, self.mm, self.fds, self.pages] {
            out.extend_from_slice(p);
        }
        out
    }

    /// The bytes of pages.img and the `PagesInfo` that matches them.
    pub fn pages_file(&self) -> (Vec<u8>, PagesInfo) {
        if self.pages.first().is_some_and(|b| b % 2 == 1) {
            let info = PagesInfo { count: 0, checksum: 0 };
            return (self.pages.to_vec(), info);
        }
        let count = (self.pages.len() as u64).div_ceil(PAGE_SIZE);
        let mut data = self.pages.to_vec();
        data.resize((count * PAGE_SIZE) as usize, 0);
        let info = PagesInfo {
            count,
            checksum: image::checksum(&data),
        };
        let mut file = image::pages_header(count, info.checksum);
        file.extend_from_slice(&data);
        (file, info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_valid() {
        image::validate(&sample()).unwrap();
    }

    /// The load_image seed is a valid image whose pages.img matches its inventory.
    #[test]
    fn seed_is_a_valid_image() {
        let img = sample();
        let p = &img.processes[0];
        let encoded = [
            image::encode(RecordKind::Inventory, &img.inventory),
            image::encode(RecordKind::Core, &p.core),
            image::encode(RecordKind::Mm, &p.mm),
            image::encode(RecordKind::Fds, &p.fds),
        ];
        let pages = sample_pages();
        let joined = LoadInput {
            inventory: payload(&encoded[0]),
            core: payload(&encoded[1]),
            mm: payload(&encoded[2]),
            fds: payload(&encoded[3]),
            pages: &pages,
        }
        .join();
        let input = LoadInput::split(&joined);
        let inventory: Inventory = image::decode(
            RecordKind::Inventory,
            "i",
            &frame(RecordKind::Inventory, input.inventory),
        )
        .unwrap();
        assert_eq!(inventory, img.inventory);
        let (file, info) = input.pages_file();
        assert_eq!(info, img.inventory.pages);
        image::verify_pages(&file, &info).unwrap();
    }

    #[test]
    fn split_inverts_join() {
        let input = LoadInput {
            inventory: b"abc",
            core: b"",
            mm: b"de",
            fds: b"f",
            pages: b"\0ghij",
        };
        assert_eq!(LoadInput::split(&input.join()), input);
        assert_eq!(LoadInput::split(b"\x05"), LoadInput::default());
    }
}
