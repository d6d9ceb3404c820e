//! The on-disk image format against damaged and hostile images: round trip, truncation at
//! every byte, a flipped bit in every byte, bad headers, and one case per invariant of the
//! validator. Pure: no root, no processes, only files under the temp directory.

use std::fs;
use std::path::{Path, PathBuf};

use stasis::image::{
    self, Core, Fd, FdKind, Fds, HEADER_LEN, INVENTORY, Image, ImageError, Inventory, MAX_META_LEN, Mm, PAGE_SIZE,
    PAGES, PAGES_HEADER_LEN, PROT_EXEC, PROT_READ, PageSource, PagesInfo, ProcessEntry, RecordKind, Rlimit, Rseq,
    ShmemKind, SigAction, ThreadCore, Vma, VmaKind, core_name, fds_name, mm_name,
};

#[path = "common/sample_image.rs"]
mod sample_image;

use sample_image::{AT_NULL, AT_PAGESZ, PID, STORED, VDSO, page_data, pages_file, run, sample, siginfo, vma};

// ------------------------------------------------------------------------------------------------
// Fixtures

/// A directory of its own under the temp directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("stasis-image-format-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("creating a temp dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The sample written with `Image::write`, plus its pages.img.
fn written(name: &str) -> (TempDir, Image) {
    let dir = TempDir::new(name);
    let img = sample();
    image::validate(&img).expect("the sample is valid");
    img.write(dir.path()).expect("writing the image");
    fs::write(dir.path().join(PAGES), pages_file()).expect("writing pages.img");
    (dir, img)
}

/// Writes every record of `img` under the name the inventory gives it, with `encode` (so with
/// correct framing and checksums whatever the content).
fn write_raw(img: &Image, dir: &Path) {
    for (entry, p) in img.inventory.processes.iter().zip(&img.processes) {
        let pid = entry.pid;
        fs::write(dir.join(core_name(pid)), image::encode(RecordKind::Core, &p.core)).unwrap();
        fs::write(dir.join(mm_name(pid)), image::encode(RecordKind::Mm, &p.mm)).unwrap();
        fs::write(dir.join(fds_name(pid)), image::encode(RecordKind::Fds, &p.fds)).unwrap();
    }
    fs::write(
        dir.join(INVENTORY),
        image::encode(RecordKind::Inventory, &img.inventory),
    )
    .unwrap();
}

/// The metadata files of the sample, by name.
fn meta_names() -> Vec<String> {
    vec![INVENTORY.to_string(), core_name(PID), mm_name(PID), fds_name(PID)]
}

/// Loads `dir` with `Image::load` and checks pages.img against the loaded inventory.
fn load_all(dir: &Path) -> Result<Image, ImageError> {
    let img = Image::load(dir)?;
    let pages = fs::read(dir.join(PAGES)).map_err(|err| ImageError::Io {
        file: PAGES.to_string(),
        err,
    })?;
    image::verify_pages(&pages, &img.inventory.pages)?;
    Ok(img)
}

#[track_caller]
fn assert_rejected(res: Result<Image, ImageError>, file: &str, what: &str) {
    match res {
        Ok(_) => panic!("{what}: accepted"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(file), "{what}: error does not name {file}: {msg}");
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Round trip

#[test]
fn sample_is_valid_and_round_trips() {
    let (dir, img) = written("round-trip");
    let back = load_all(dir.path()).expect("loading the image");
    assert_eq!(back, img);
    assert_eq!(back.inventory.pages.count, STORED);

    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expect = img.file_names();
    expect.sort();
    assert_eq!(names, expect);
}

#[test]
fn records_round_trip_in_memory() {
    let img = sample();
    let p = &img.processes[0];
    let bytes = image::encode(RecordKind::Inventory, &img.inventory);
    assert_eq!(&bytes[..8], image::MAGIC);
    let inv: Inventory = image::decode(RecordKind::Inventory, INVENTORY, &bytes).unwrap();
    assert_eq!(inv, img.inventory);
    let core: Core = image::decode(RecordKind::Core, "c", &image::encode(RecordKind::Core, &p.core)).unwrap();
    assert_eq!(core, p.core);
    let mm: Mm = image::decode(RecordKind::Mm, "m", &image::encode(RecordKind::Mm, &p.mm)).unwrap();
    assert_eq!(mm, p.mm);
    let fds: Fds = image::decode(RecordKind::Fds, "f", &image::encode(RecordKind::Fds, &p.fds)).unwrap();
    assert_eq!(fds, p.fds);
    // decode_payload is decode without the framing.
    let core2: Core = image::decode_payload("c", &image::encode(RecordKind::Core, &p.core)[HEADER_LEN..]).unwrap();
    assert_eq!(core2, p.core);
}

#[test]
fn header_layout() {
    let img = sample();
    let bytes = image::encode(RecordKind::Mm, &img.processes[0].mm);
    let payload = &bytes[HEADER_LEN..];
    assert_eq!(&bytes[0..8], b"STASISIM");
    assert_eq!(bytes[8..12], image::FORMAT_VERSION.to_le_bytes());
    assert_eq!(bytes[12..16], 3u32.to_le_bytes());
    assert_eq!(bytes[16..24], (payload.len() as u64).to_le_bytes());
    assert_eq!(bytes[24..32], image::checksum(payload).to_le_bytes());
    assert_eq!(image::checksum(payload), xxhash_rust::xxh3::xxh3_64(payload));

    let pages = pages_file();
    assert_eq!(pages.len() as u64, PAGES_HEADER_LEN + STORED * PAGE_SIZE);
    assert_eq!(&pages[0..8], b"STASISIM");
    assert_eq!(pages[12..16], 5u32.to_le_bytes());
    assert_eq!(pages[16..24], (STORED * PAGE_SIZE).to_le_bytes());
    assert_eq!(pages[24..32], image::checksum(&page_data()).to_le_bytes());
    assert!(pages[HEADER_LEN..PAGES_HEADER_LEN as usize].iter().all(|&b| b == 0));
}

/// CBOR maps with named fields: unknown fields are ignored, `parent` may be absent.
#[test]
fn records_are_extensible_maps() {
    use ciborium::Value;
    let img = sample();
    let mut value = Value::serialized(&img.inventory).unwrap();
    let Value::Map(fields) = &mut value else {
        panic!("the inventory is not a CBOR map")
    };
    fields.retain(|(k, _)| k.as_text() != Some("parent"));
    fields.push((Value::Text("from_the_future".into()), Value::Integer(7.into())));
    let bytes = image::encode(RecordKind::Inventory, &value);
    let inv: Inventory = image::decode(RecordKind::Inventory, INVENTORY, &bytes).unwrap();
    assert_eq!(inv, img.inventory);
}

// ------------------------------------------------------------------------------------------------
// Damage

#[test]
fn truncated_metadata_is_rejected_at_every_offset() {
    let (dir, _) = written("truncate-meta");
    for name in meta_names() {
        let path = dir.path().join(&name);
        let orig = fs::read(&path).unwrap();
        for len in 0..orig.len() {
            fs::write(&path, &orig[..len]).unwrap();
            assert_rejected(Image::load(dir.path()), &name, &format!("{name} cut at {len}"));
        }
        fs::write(&path, &orig).unwrap();
    }
    load_all(dir.path()).expect("the restored image loads again");
}

#[test]
fn truncated_pages_are_rejected() {
    let img = sample();
    let pages = pages_file();
    let info = img.inventory.pages;
    let mut cuts: Vec<usize> = (0..pages.len()).step_by(PAGE_SIZE as usize).collect();
    cuts.extend([
        1,
        8,
        12,
        16,
        24,
        31,
        32,
        33,
        4095,
        4097,
        3 * 4096 + 1000,
        pages.len() - 1,
    ]);
    for len in cuts {
        let res = image::verify_pages(&pages[..len], &info);
        let err = res.expect_err(&format!("pages.img cut at {len} accepted"));
        assert!(err.to_string().contains(PAGES), "cut at {len}: {err}");
    }
    image::verify_pages(&pages, &info).expect("the whole file verifies");
    // On disk too, through the loaded inventory.
    let (dir, _) = written("truncate-pages");
    let f = fs::OpenOptions::new().write(true).open(dir.path().join(PAGES)).unwrap();
    f.set_len(pages.len() as u64 - PAGE_SIZE).unwrap();
    assert_rejected(load_all(dir.path()), PAGES, "pages.img short by a page");
    f.set_len(pages.len() as u64 + PAGE_SIZE).unwrap();
    assert_rejected(load_all(dir.path()), PAGES, "pages.img long by a page");
}

#[test]
fn flipped_bit_in_metadata_is_rejected_everywhere() {
    let (dir, _) = written("flip-meta");
    for name in meta_names() {
        let path = dir.path().join(&name);
        let orig = fs::read(&path).unwrap();
        let mut bytes = orig.clone();
        for i in 0..orig.len() {
            bytes[i] ^= 1 << (i % 8);
            fs::write(&path, &bytes).unwrap();
            assert_rejected(
                Image::load(dir.path()),
                &name,
                &format!("{name} with bit {} of byte {i} flipped", i % 8),
            );
            bytes[i] = orig[i];
        }
        fs::write(&path, &orig).unwrap();
    }
    load_all(dir.path()).expect("the restored image loads again");
}

#[test]
fn flipped_bit_in_pages_is_rejected() {
    let info = sample().inventory.pages;
    let orig = pages_file();
    let len = orig.len();
    let data = PAGES_HEADER_LEN as usize;
    let mut offsets: Vec<usize> = (0..HEADER_LEN).collect();
    offsets.extend([HEADER_LEN, 100, data - 1, data, data + 1, data + 4095, data + 4096]);
    offsets.extend((data..len).step_by(4096 + 333));
    offsets.extend([len - 4096, len - 2, len - 1]);
    for i in offsets {
        for bit in [i % 8, 7 - i % 8] {
            let mut bytes = orig.clone();
            bytes[i] ^= 1 << bit;
            let err = image::verify_pages(&bytes, &info)
                .expect_err(&format!("pages.img with bit {bit} of byte {i} flipped accepted"));
            assert!(err.to_string().contains(PAGES), "byte {i}: {err}");
        }
    }
}

#[test]
fn pages_must_match_the_inventory() {
    let pages = pages_file();
    let info = sample().inventory.pages;
    for other in [
        PagesInfo {
            count: info.count - 1,
            ..info
        },
        PagesInfo {
            count: info.count + 1,
            ..info
        },
        PagesInfo {
            checksum: info.checksum ^ 1,
            ..info
        },
        PagesInfo {
            count: u64::MAX,
            ..info
        },
        PagesInfo {
            count: 0,
            checksum: image::checksum(&[]),
        },
    ] {
        image::verify_pages(&pages, &other).expect_err(&format!("{other:?} accepted"));
    }
    // A consistent header over different data still fails the checksum.
    let mut bytes = pages.clone();
    bytes[PAGES_HEADER_LEN as usize + 5] ^= 0x40;
    let err = image::verify_pages(&bytes, &info).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    // No pages at all is a valid pages.img.
    let empty = image::pages_header(0, image::checksum(&[]));
    image::verify_pages(
        &empty,
        &PagesInfo {
            count: 0,
            checksum: image::checksum(&[]),
        },
    )
    .unwrap();
}

#[test]
fn bad_magic_is_rejected() {
    let (dir, _) = written("magic");
    for name in meta_names().into_iter().chain([PAGES.to_string()]) {
        let path = dir.path().join(&name);
        let orig = fs::read(&path).unwrap();
        let mut bytes = orig.clone();
        bytes[..8].copy_from_slice(b"CRIUIMG\0");
        fs::write(&path, &bytes).unwrap();
        let err = load_all(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&name) && err.contains("magic"), "{name}: {err}");
        fs::write(&path, &orig).unwrap();
    }
}

#[test]
fn wrong_version_is_rejected() {
    let (dir, _) = written("version");
    for name in meta_names().into_iter().chain([PAGES.to_string()]) {
        let path = dir.path().join(&name);
        let orig = fs::read(&path).unwrap();
        for version in [0, image::FORMAT_VERSION + 1, u32::MAX] {
            let mut bytes = orig.clone();
            bytes[8..12].copy_from_slice(&version.to_le_bytes());
            fs::write(&path, &bytes).unwrap();
            let err = load_all(dir.path()).unwrap_err();
            assert!(
                matches!(err, ImageError::Version { found, .. } if found == version),
                "{err:?}"
            );
            let msg = err.to_string();
            assert!(msg.contains(&name), "{msg}");
            assert!(msg.contains(&format!("version {version}")), "{msg}");
        }
        fs::write(&path, &orig).unwrap();
    }
}

#[test]
fn wrong_record_kind_is_rejected() {
    let img = sample();
    let p = &img.processes[0];
    // A well-formed core record where the mm record should be.
    let core = image::encode(RecordKind::Core, &p.core);
    let err = image::decode::<Mm>(RecordKind::Mm, "mm-1.img", &core)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mm-1.img") && err.contains("record kind 2, expected 3"),
        "{err}"
    );

    // On disk: every metadata file holding another file's record.
    let (dir, _) = written("kind");
    let inv = image::encode(RecordKind::Inventory, &img.inventory);
    for (name, bytes) in [
        (INVENTORY.to_string(), image::encode(RecordKind::Fds, &p.fds)),
        (core_name(PID), image::encode(RecordKind::Mm, &p.mm)),
        (mm_name(PID), core.clone()),
        (fds_name(PID), inv.clone()),
    ] {
        let path = dir.path().join(&name);
        let orig = fs::read(&path).unwrap();
        fs::write(&path, &bytes).unwrap();
        let err = Image::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&name) && err.contains("record kind"), "{err}");
        fs::write(&path, &orig).unwrap();
    }
    // Only the kind word changed: the checksum covers the payload only.
    for kind in [0u32, 1, 2, 3, 4, 5, 6, u32::MAX] {
        let mut bytes = inv.clone();
        bytes[12..16].copy_from_slice(&kind.to_le_bytes());
        let res = image::decode::<Inventory>(RecordKind::Inventory, INVENTORY, &bytes);
        assert_eq!(res.is_ok(), kind == 1, "kind {kind}");
    }
    let mut pages = pages_file();
    pages[12..16].copy_from_slice(&(RecordKind::Inventory as u32).to_le_bytes());
    let err = image::verify_pages(&pages, &img.inventory.pages)
        .unwrap_err()
        .to_string();
    assert!(err.contains(PAGES) && err.contains("record kind"), "{err}");
}

#[test]
fn short_header_is_rejected() {
    let img = sample();
    let bytes = image::encode(RecordKind::Inventory, &img.inventory);
    for len in 0..HEADER_LEN {
        let err = image::decode::<Inventory>(RecordKind::Inventory, INVENTORY, &bytes[..len])
            .unwrap_err()
            .to_string();
        assert!(err.contains(INVENTORY) && err.contains("truncated header"), "{err}");
        let err = image::verify_pages(&pages_file()[..len], &img.inventory.pages)
            .unwrap_err()
            .to_string();
        assert!(err.contains(PAGES) && err.contains("truncated header"), "{err}");
    }
}

#[test]
fn padded_or_garbage_payload_is_rejected() {
    let img = sample();
    let mut bytes = image::encode(RecordKind::Inventory, &img.inventory);
    bytes.push(0);
    let err = image::decode::<Inventory>(RecordKind::Inventory, INVENTORY, &bytes).unwrap_err();
    assert!(err.to_string().contains("padded"), "{err}");

    // Garbage with correct framing: decoding fails, naming the file.
    for payload in [&b""[..], b"\xff", b"\xa0", b"\x9f\x00", b"hello world"] {
        let mut framed = bytes[..HEADER_LEN].to_vec();
        framed[16..24].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        framed[24..32].copy_from_slice(&image::checksum(payload).to_le_bytes());
        framed.extend_from_slice(payload);
        let err = image::decode::<Inventory>(RecordKind::Inventory, INVENTORY, &framed).unwrap_err();
        assert!(
            err.to_string().contains(INVENTORY) && err.to_string().contains("malformed"),
            "{err}"
        );
        assert!(image::decode_payload::<Core>("x", payload).is_err());
    }
    // A record of the wrong type decodes to an error, not to a default.
    let core = image::encode(RecordKind::Core, &img.processes[0].core);
    assert!(image::decode_payload::<Mm>("x", &core[HEADER_LEN..]).is_err());
    assert!(image::decode_payload::<Inventory>("x", &core[HEADER_LEN..]).is_err());
}

#[test]
fn missing_files_are_rejected() {
    let (dir, _) = written("missing");
    for name in meta_names().into_iter().chain([PAGES.to_string()]) {
        let path = dir.path().join(&name);
        let orig = fs::read(&path).unwrap();
        fs::remove_file(&path).unwrap();
        assert_rejected(load_all(dir.path()), &name, &format!("without {name}"));
        fs::write(&path, &orig).unwrap();
    }
    load_all(dir.path()).unwrap();
}

#[test]
fn oversized_metadata_is_refused_unread() {
    let (dir, _) = written("oversized");
    let path = dir.path().join(core_name(PID));
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(MAX_META_LEN + 1).unwrap(); // sparse: nothing is written
    let err = Image::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&core_name(PID)) && err.contains("too large"), "{err}");
}

// ------------------------------------------------------------------------------------------------
// Semantic validation: valid framing and checksums, invalid content

/// `img` must fail `validate` with a message holding `expect`; its records must still encode
/// and decode (the framing is fine); and `Image::load` must refuse it once written.
fn rejects(img: &Image, expect: &str, name: &str) {
    let err = image::validate(img).expect_err("validate accepted an invalid image");
    assert!(matches!(err, ImageError::Invalid(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(expect), "expected {expect:?} in {msg:?}");

    let inv: Inventory = image::decode(
        RecordKind::Inventory,
        INVENTORY,
        &image::encode(RecordKind::Inventory, &img.inventory),
    )
    .expect("framing of the inventory");
    assert_eq!(inv, img.inventory);
    for p in &img.processes {
        let core: Core = image::decode(RecordKind::Core, "core", &image::encode(RecordKind::Core, &p.core))
            .expect("framing of core");
        assert_eq!(core, p.core);
        let mm: Mm = image::decode(RecordKind::Mm, "mm", &image::encode(RecordKind::Mm, &p.mm)).expect("framing of mm");
        assert_eq!(mm, p.mm);
        let fds: Fds =
            image::decode(RecordKind::Fds, "fds", &image::encode(RecordKind::Fds, &p.fds)).expect("framing of fds");
        assert_eq!(fds, p.fds);
    }

    // On disk the records are found through the inventory: an image whose process records do
    // not pair with it cannot be written as such.
    if img.processes.len() == img.inventory.processes.len() {
        let dir = TempDir::new(&format!("invalid-{name}"));
        write_raw(img, dir.path());
        fs::write(dir.path().join(PAGES), pages_file()).unwrap();
        match Image::load(dir.path()) {
            Ok(_) => panic!("Image::load accepted it"),
            Err(e) => assert!(matches!(e, ImageError::Invalid(_)), "{e:?}"),
        }
    }
}

#[test]
fn rejects_helper_accepts_the_sample() {
    // The baseline for every case below: the unmodified sample passes everything.
    let img = sample();
    image::validate(&img).unwrap();
    let dir = TempDir::new("raw-sample");
    write_raw(&img, dir.path());
    fs::write(dir.path().join(PAGES), pages_file()).unwrap();
    assert_eq!(load_all(dir.path()).unwrap(), img);
}

/// Every limit at its edge is still valid: the invariants reject no more than they must.
#[test]
fn boundaries_are_accepted() {
    let mut img = sample();
    img.inventory.files[2].path = format!("/{}", "a".repeat(4095));
    img.inventory.shmem[1].kind = ShmemKind::Memfd { name: "n".repeat(249) };
    img.inventory.shmem[1].pages = vec![run(3, 1, PageSource::Data { at: 9 }), run(4, 4, PageSource::Zero)];
    let p = &mut img.processes[0];
    p.core.comm = "a".repeat(15);
    p.core.umask = 0o777;
    p.core.pdeathsig = 64;
    p.core.rlimits.push(Rlimit {
        resource: 15,
        cur: 5,
        max: 5,
    });
    p.core.sigactions.push(SigAction {
        sig: 64,
        handler: 0x40_0400,
        flags: 0,
        restorer: 0,
        mask: u64::MAX,
    });
    p.core.shared_pending.extend([siginfo(1), siginfo(64)]);
    let mut auxv = [AT_PAGESZ, PAGE_SIZE].repeat(63);
    auxv.extend([AT_NULL, 0]);
    assert_eq!(auxv.len(), 128);
    p.core.mm.auxv = auxv;
    p.core.mm.env_end = (1 << 56) - 1;
    let t = &mut p.core.threads[0];
    t.xstate = vec![0; 576];
    t.rseq = Some(Rseq {
        ptr: (1 << 56) - 4096,
        size: 4096,
        signature: 0,
    });
    t.pending.push(siginfo(64));
    let vmas = &mut p.mm.vmas;
    // The largest file offset mmap takes: the mapping ends 4 KiB below 2^63.
    vmas[0].kind = VmaKind::File {
        file: 0,
        pgoff: (1 << 51) - 2,
    };
    // The last stored page, the last page of the mapping.
    vmas[2].pages = vec![
        run(0, 1, PageSource::Zero),
        run(1, 3, PageSource::Data { at: STORED - 3 }),
    ];
    // A shared mapping of the tail of its object.
    vmas[5].kind = VmaKind::Shmem { object: 1, pgoff: 6 };
    vmas.push(vma(
        (1 << 56) - PAGE_SIZE,
        1 << 56,
        PROT_READ,
        false,
        VmaKind::Anon,
        vec![run(0, 1, PageSource::Data { at: 0 })],
    ));
    p.fds.fds.push(Fd {
        fd: (1 << 20) - 1,
        cloexec: false,
        kind: FdKind::Path {
            file: 1,
            flags: (libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK) as u32,
            pos: u64::MAX,
        },
    });
    image::validate(&img).expect("edge values are valid");
    let dir = TempDir::new("boundaries");
    write_raw(&img, dir.path());
    fs::write(dir.path().join(PAGES), pages_file()).unwrap();
    assert_eq!(load_all(dir.path()).unwrap(), img);

    // The largest pid.
    let mut img = sample();
    let pid = 1 << 22;
    img.inventory.root_pid = pid;
    img.inventory.processes[0].pid = pid;
    img.processes[0].core.pid = pid;
    img.processes[0].core.threads[0].tid = pid;
    image::validate(&img).expect("pid 2^22 is valid");
}

/// One test per invariant: `name: "part of the error", |img| { break the invariant }`.
macro_rules! invalid {
    ($($name:ident: $expect:literal, |$img:ident| $edit:block)*) => {$(
        #[test]
        fn $name() {
            #[allow(unused_mut)]
            let mut $img = sample();
            $edit
            rejects(&$img, $expect, stringify!($name));
        }
    )*};
}

mod invariant {
    use super::*;

    fn vmas(img: &mut Image) -> &mut Vec<Vma> {
        &mut img.processes[0].mm.vmas
    }
    fn vma_of(img: &mut Image, pred: impl Fn(&VmaKind) -> bool) -> &mut Vma {
        vmas(img)
            .iter_mut()
            .find(|v| pred(&v.kind))
            .expect("the sample has one")
    }
    fn heap(img: &mut Image) -> &mut Vma {
        vma_of(img, |k| matches!(k, VmaKind::Heap))
    }
    fn core(img: &mut Image) -> &mut Core {
        &mut img.processes[0].core
    }
    fn thread(img: &mut Image) -> &mut ThreadCore {
        &mut img.processes[0].core.threads[0]
    }
    fn fds(img: &mut Image) -> &mut Vec<Fd> {
        &mut img.processes[0].fds.fds
    }
    fn set_pid(img: &mut Image, pid: i32) {
        img.inventory.root_pid = pid;
        img.inventory.processes[0].pid = pid;
        core(img).pid = pid;
        thread(img).tid = pid;
    }
    fn second_process(img: &mut Image, pid: i32) {
        let mut p = img.processes[0].clone();
        p.core.pid = pid;
        p.core.threads[0].tid = pid;
        img.processes.push(p);
        img.inventory.processes.push(ProcessEntry { pid, ppid: PID });
    }

    invalid! {
        // ---- inventory
        page_size_not_4096: "page size", |img| { img.inventory.page_size = 65536; }
        wrong_arch: "image is for", |img| {
            img.inventory.arch = if cfg!(target_arch = "aarch64") { "x86_64" } else { "aarch64" }.into();
        }
        parent_set: "incremental", |img| { img.inventory.parent = Some("/images/base".into()); }
        no_processes: "0 processes", |img| {
            img.inventory.processes.clear();
            img.processes.clear();
        }
        two_processes: "2 processes", |img| { second_process(&mut img, PID + 1); }
        two_processes_same_pid: "2 processes", |img| { second_process(&mut img, PID); }
        process_records_do_not_match_inventory: "do not match the inventory", |img| {
            let p = img.processes[0].clone();
            img.processes.push(p);
        }
        no_process_records: "do not match the inventory", |img| { img.processes.clear(); }
        first_process_not_root: "not the root", |img| { img.inventory.root_pid = PID + 1; }
        pid_zero: "pid 0 is out of range", |img| { set_pid(&mut img, 0); }
        pid_negative: "pid -1 is out of range", |img| { set_pid(&mut img, -1); }
        pid_too_large: "is out of range", |img| { set_pid(&mut img, (1 << 22) + 1); }
        file_path_relative: "bad path", |img| { img.inventory.files[2].path = "tmp/data.txt".into(); }
        file_path_empty: "bad path", |img| { img.inventory.files[2].path = String::new(); }
        file_path_with_nul: "bad path", |img| { img.inventory.files[2].path = "/tmp/a\0b".into(); }
        file_path_too_long: "bad path", |img| {
            img.inventory.files[2].path = format!("/{}", "a".repeat(4096));
        }
        shmem_size_zero: "not a positive page multiple", |img| { img.inventory.shmem[1].size = 0; }
        shmem_size_unaligned: "not a positive page multiple", |img| {
            img.inventory.shmem[1].size = 8 * PAGE_SIZE + 1;
        }
        shmem_size_too_large: "not a positive page multiple", |img| {
            img.inventory.shmem[1].size = (1 << 56) + PAGE_SIZE;
        }
        memfd_name_too_long: "bad memfd name", |img| {
            img.inventory.shmem[1].kind = ShmemKind::Memfd { name: "n".repeat(250) };
        }
        memfd_name_with_slash: "bad memfd name", |img| {
            img.inventory.shmem[1].kind = ShmemKind::Memfd { name: "../x".into() };
        }
        memfd_name_with_nul: "bad memfd name", |img| {
            img.inventory.shmem[1].kind = ShmemKind::Memfd { name: "a\0b".into() };
        }
        shmem_run_outside_object: "lies outside its 8 pages", |img| {
            img.inventory.shmem[1].pages = vec![run(7, 2, PageSource::Zero)];
        }
        shmem_run_beyond_pages_count: "outside pages.img", |img| {
            img.inventory.shmem[1].pages = vec![run(3, 2, PageSource::Data { at: STORED - 1 })];
        }

        // ---- core
        core_record_for_another_pid: "is for pid", |img| { core(&mut img).pid = PID + 1; }
        comm_too_long: "name longer than 15 bytes", |img| { core(&mut img).comm = "a".repeat(16); }
        cwd_relative: "bad path", |img| { core(&mut img).cwd = "home".into(); }
        root_with_nul: "bad path", |img| { core(&mut img).root = "/\0".into(); }
        umask_too_large: "umask", |img| { core(&mut img).umask = 0o1000; }
        rlimit_unknown_resource: "bad rlimit", |img| { core(&mut img).rlimits[0].resource = 16; }
        rlimit_twice: "bad rlimit", |img| {
            let r = core(&mut img).rlimits[0];
            core(&mut img).rlimits.push(r);
        }
        rlimit_cur_above_max: "bad rlimit", |img| {
            let r = &mut core(&mut img).rlimits[1];
            r.cur = r.max + 1;
        }
        pdeathsig_too_large: "parent-death signal", |img| { core(&mut img).pdeathsig = 65; }
        pdeathsig_negative: "parent-death signal", |img| { core(&mut img).pdeathsig = -1; }
        sigaction_signal_zero: "bad sigaction", |img| { core(&mut img).sigactions[0].sig = 0; }
        sigaction_signal_too_large: "bad sigaction", |img| { core(&mut img).sigactions[0].sig = 65; }
        sigkill_handler: "bad sigaction for signal 9", |img| { core(&mut img).sigactions[0].sig = 9; }
        sigstop_handler: "bad sigaction for signal 19", |img| { core(&mut img).sigactions[0].sig = 19; }
        sigaction_twice: "bad sigaction", |img| { core(&mut img).sigactions[1].sig = 2; }
        shared_pending_bad_signal_number: "malformed pending siginfo", |img| {
            core(&mut img).shared_pending[0] = siginfo(65);
        }
        shared_pending_signal_zero: "malformed pending siginfo", |img| {
            core(&mut img).shared_pending[0] = siginfo(0);
        }
        shared_pending_short_siginfo: "malformed pending siginfo", |img| {
            core(&mut img).shared_pending[0].truncate(127);
        }
        shared_pending_long_siginfo: "malformed pending siginfo", |img| {
            core(&mut img).shared_pending[0].push(0);
        }
        shared_pending_empty_siginfo: "malformed pending siginfo", |img| {
            core(&mut img).shared_pending[0].clear();
        }
        too_many_pending_signals: "too many pending signals", |img| {
            core(&mut img).shared_pending = vec![Vec::new(); (1 << 16) + 1];
        }
        auxv_not_ending_in_at_null: "auxv", |img| {
            let auxv = &mut core(&mut img).mm.auxv;
            auxv.truncate(auxv.len() - 2);
        }
        auxv_odd_length: "auxv", |img| { core(&mut img).mm.auxv.push(0); }
        auxv_empty: "auxv", |img| { core(&mut img).mm.auxv.clear(); }
        auxv_too_long: "auxv", |img| {
            let mut auxv = [AT_PAGESZ, PAGE_SIZE].repeat(64);
            auxv.extend([AT_NULL, 0]);
            core(&mut img).mm.auxv = auxv;
        }
        mm_field_not_user_address: "is not a user address", |img| {
            core(&mut img).mm.start_stack = 1 << 56;
        }
        mm_env_end_not_user_address: "mm env_end", |img| {
            core(&mut img).mm.env_end = u64::MAX;
        }
        mm_code_bounds_out_of_order: "mm bounds are out of order", |img| {
            core(&mut img).mm.end_code = core(&mut img).mm.start_code - 1;
        }
        mm_data_bounds_out_of_order: "mm bounds are out of order", |img| {
            core(&mut img).mm.start_data = core(&mut img).mm.end_data + 1;
        }
        mm_brk_below_start_brk: "mm bounds are out of order", |img| {
            core(&mut img).mm.brk = core(&mut img).mm.start_brk - PAGE_SIZE;
        }
        arg_bounds_out_of_order: "arg/env bounds", |img| {
            core(&mut img).mm.arg_end = core(&mut img).mm.arg_start - 1;
        }
        env_bounds_out_of_order: "arg/env bounds", |img| {
            core(&mut img).mm.env_start = core(&mut img).mm.env_end + 1;
        }
        exe_file_out_of_range: "file index 5 out of range", |img| { core(&mut img).mm.exe_file = 5; }
        exe_not_regular: "exe is not a regular file", |img| { core(&mut img).mm.exe_file = 3; }
        no_threads: "0 threads", |img| { core(&mut img).threads.clear(); }
        two_threads: "2 threads", |img| {
            let mut t = thread(&mut img).clone();
            t.tid = PID + 1;
            core(&mut img).threads.push(t);
        }
        main_thread_tid_not_pid: "main thread has tid", |img| { thread(&mut img).tid = PID + 1; }
        regs_too_short: "26 register words, expected 27", |img| { thread(&mut img).regs.pop(); }
        regs_too_long: "28 register words, expected 27", |img| { thread(&mut img).regs.push(0); }
        xstate_too_small: "xstate of 575 bytes", |img| { thread(&mut img).xstate.truncate(575); }
        xstate_too_large: "xstate of", |img| { thread(&mut img).xstate = vec![0; (64 << 10) + 1]; }
        thread_pending_bad_signal_number: "malformed pending siginfo", |img| {
            thread(&mut img).pending.push(siginfo(-3));
        }
        rseq_not_user_address: "bad rseq area", |img| {
            thread(&mut img).rseq.as_mut().unwrap().ptr = 1 << 56;
        }
        rseq_too_small: "bad rseq area", |img| { thread(&mut img).rseq.as_mut().unwrap().size = 31; }
        rseq_too_large: "bad rseq area", |img| { thread(&mut img).rseq.as_mut().unwrap().size = 4097; }

        // ---- mm: mappings
        vma_start_unaligned: "not a page-aligned user range", |img| { heap(&mut img).start += 1; }
        vma_end_unaligned: "not a page-aligned user range", |img| { heap(&mut img).end -= 1; }
        vma_empty: "not a page-aligned user range", |img| {
            let v = heap(&mut img);
            v.end = v.start;
            v.pages.clear();
        }
        vma_inverted: "not a page-aligned user range", |img| {
            let v = heap(&mut img);
            (v.start, v.end) = (v.end, v.start);
        }
        vma_beyond_user_addresses: "not a page-aligned user range", |img| {
            vmas(&mut img).push(vma((1 << 56) - PAGE_SIZE, (1 << 56) + PAGE_SIZE, PROT_READ, false, VmaKind::Anon, vec![]));
        }
        vmas_overlapping: "overlaps or is out of order", |img| {
            let v = heap(&mut img).clone();
            let i = vmas(&mut img).iter().position(|x| x.kind == VmaKind::Heap).unwrap();
            let w = vma(v.end - PAGE_SIZE, v.end + PAGE_SIZE, PROT_READ, false, VmaKind::Anon, vec![]);
            vmas(&mut img).insert(i + 1, w);
        }
        vmas_out_of_order: "overlaps or is out of order", |img| { vmas(&mut img).swap(2, 3); }
        vma_unknown_prot_bits: "unknown protection or flag bits", |img| { heap(&mut img).prot |= 8; }
        vma_unknown_flag_bits: "unknown protection or flag bits", |img| { heap(&mut img).flags |= 1 << 12; }
        anon_marked_shared: "anonymous memory marked shared", |img| {
            vma_of(&mut img, |k| matches!(k, VmaKind::Anon)).shared = true;
        }
        heap_marked_shared: "anonymous memory marked shared", |img| { heap(&mut img).shared = true; }
        stack_marked_shared: "anonymous memory marked shared", |img| {
            vma_of(&mut img, |k| matches!(k, VmaKind::Stack)).shared = true;
        }
        file_mapping_index_out_of_range: "file index 9 out of range", |img| {
            vmas(&mut img)[0].kind = VmaKind::File { file: 9, pgoff: 0 };
        }
        file_mapping_of_a_directory: "not a regular file", |img| {
            vmas(&mut img)[0].kind = VmaKind::File { file: 4, pgoff: 0 };
        }
        file_mapping_of_a_device: "not a regular file", |img| {
            vmas(&mut img)[0].kind = VmaKind::File { file: 3, pgoff: 0 };
        }
        file_pgoff_overflows: "file offset overflows", |img| {
            vmas(&mut img)[0].kind = VmaKind::File { file: 0, pgoff: u64::MAX };
        }
        // pgoff + npages fits in u64 but the byte offset (pgoff * 4096) does not.
        file_byte_offset_overflows: "file offset overflows", |img| {
            vmas(&mut img)[0].kind = VmaKind::File { file: 0, pgoff: 1 << 52 };
        }
        // The byte offset fits in u64 but not in an off_t (what mmap takes).
        file_byte_offset_beyond_off_t: "file offset overflows", |img| {
            vmas(&mut img)[0].kind = VmaKind::File { file: 0, pgoff: (1 << 51) - 1 };
        }
        shmem_object_out_of_range: "shared object 2 out of range", |img| {
            vma_of(&mut img, |k| matches!(k, VmaKind::Shmem { .. })).kind = VmaKind::Shmem { object: 2, pgoff: 0 };
        }
        shmem_mapping_private: "lies outside its shared object", |img| {
            vma_of(&mut img, |k| matches!(k, VmaKind::Shmem { .. })).shared = false;
        }
        shmem_pgoff_beyond_object: "lies outside its shared object", |img| {
            // object 1 has 8 pages; the mapping has 2.
            vma_of(&mut img, |k| matches!(k, VmaKind::Shmem { object: 1, .. })).kind = VmaKind::Shmem { object: 1, pgoff: 7 };
        }
        shmem_pgoff_overflows: "lies outside its shared object", |img| {
            vma_of(&mut img, |k| matches!(k, VmaKind::Shmem { object: 1, .. })).kind = VmaKind::Shmem { object: 1, pgoff: u64::MAX };
        }
        vvar_unknown_name: "unknown special mapping", |img| {
            vma_of(&mut img, |k| matches!(k, VmaKind::Vvar { .. })).kind = VmaKind::Vvar { name: "[vsyscall]".into() };
        }
        two_vdsos: "more than one [vdso]", |img| {
            let v = vma(VDSO + 2 * PAGE_SIZE, VDSO + 4 * PAGE_SIZE, PROT_READ | PROT_EXEC, false, VmaKind::Vdso, vec![]);
            vmas(&mut img).push(v);
        }
        pages_on_shared_file_mapping: "carries no pages", |img| {
            vma_of(&mut img, |k| matches!(k, VmaKind::File { file: 2, .. })).pages = vec![run(0, 1, PageSource::Zero)];
        }
        pages_on_shmem_mapping: "carries no pages", |img| {
            vma_of(&mut img, |k| matches!(k, VmaKind::Shmem { .. })).pages = vec![run(0, 1, PageSource::Data { at: 0 })];
        }
        pages_on_vdso: "carries no pages", |img| {
            vma_of(&mut img, |k| matches!(k, VmaKind::Vdso)).pages = vec![run(0, 1, PageSource::Data { at: 0 })];
        }
        pages_on_vvar: "carries no pages", |img| {
            vma_of(&mut img, |k| matches!(k, VmaKind::Vvar { .. })).pages = vec![run(0, 1, PageSource::Zero)];
        }

        // ---- mm: page runs
        run_outside_vma: "lies outside its 4 pages", |img| {
            heap(&mut img).pages = vec![run(3, 2, PageSource::Zero)];
        }
        run_starting_past_vma: "lies outside its 4 pages", |img| {
            heap(&mut img).pages = vec![run(4, 1, PageSource::Zero)];
        }
        run_empty: "is empty", |img| { heap(&mut img).pages = vec![run(1, 0, PageSource::Zero)]; }
        runs_overlapping: "overlaps", |img| {
            heap(&mut img).pages = vec![run(0, 2, PageSource::Zero), run(1, 2, PageSource::Zero)];
        }
        runs_out_of_order: "overlaps", |img| { heap(&mut img).pages.reverse(); }
        run_first_plus_count_overflows: "lies outside", |img| {
            heap(&mut img).pages = vec![run(u64::MAX, 2, PageSource::Zero)];
        }
        run_beyond_pages_count: "outside pages.img (10 pages)", |img| {
            heap(&mut img).pages = vec![run(0, 3, PageSource::Data { at: STORED - 2 })];
        }
        run_at_overflows: "outside pages.img", |img| {
            heap(&mut img).pages = vec![run(0, 3, PageSource::Data { at: u64::MAX - 1 })];
        }
        run_on_file_mapping_beyond_pages_count: "outside pages.img", |img| {
            vmas(&mut img)[1].pages = vec![run(1, 1, PageSource::Data { at: STORED })];
        }

        // ---- fds
        fd_negative: "fd -1 is out of range", |img| { fds(&mut img)[3].fd = -1; }
        fd_too_large: "out of range", |img| { fds(&mut img)[3].fd = 1 << 20; }
        fd_twice: "fd 3 is out of range or appears twice", |img| { fds(&mut img)[4].fd = 3; }
        fd_file_index_out_of_range: "file index 5 out of range", |img| {
            fds(&mut img)[3].kind = FdKind::Path { file: 5, flags: 0, pos: 0 };
        }
        fd_with_o_creat: "would create or truncate", |img| {
            fds(&mut img)[3].kind = FdKind::Path { file: 2, flags: (libc::O_RDWR | libc::O_CREAT) as u32, pos: 0 };
        }
        fd_with_o_trunc: "would create or truncate", |img| {
            fds(&mut img)[3].kind = FdKind::Path { file: 2, flags: (libc::O_WRONLY | libc::O_TRUNC) as u32, pos: 0 };
        }
        fd_with_o_excl: "would create or truncate", |img| {
            fds(&mut img)[3].kind = FdKind::Path { file: 2, flags: libc::O_EXCL as u32, pos: 0 };
        }
        tty_fd_without_shell_job: "not a shell job", |img| { img.inventory.shell_job = false; }
    }
}
