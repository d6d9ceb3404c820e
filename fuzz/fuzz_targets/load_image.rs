//! Hostile images on disk: the input split into four metadata payloads and a pages blob (see
//! `LoadInput`), framed with correct headers, written to a directory under /dev/shm (one per
//! process, reused), then `Image::load` and `verify_pages`. Nothing may panic.
#![no_main]

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stasis::image::{self, INVENTORY, Image, Inventory, PAGES, RecordKind, core_name, fds_name, mm_name};
use stasis_fuzz::{LoadInput, frame};

extern "C" fn remove_dir() {
    if let Some(d) = DIR.get() {
        let _ = fs::remove_dir_all(d);
    }
}

static DIR: OnceLock<PathBuf> = OnceLock::new();

fn dir() -> &'static PathBuf {
    DIR.get_or_init(|| {
        let d = PathBuf::from(format!("/dev/shm/stasis-fuzz-load-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("creating the image directory under /dev/shm");
        // SAFETY: registers a plain function without captured state, run once at exit.
        unsafe { libc::atexit(remove_dir) };
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let input = LoadInput::split(data);
    let dir = dir();
    // The records are found through the inventory's pids: name the files after them.
    let mut pids: Vec<i32> = image::decode_payload::<Inventory>(INVENTORY, input.inventory)
        .map(|inv| inv.processes.iter().take(4).map(|p| p.pid).collect())
        .unwrap_or_default();
    if pids.is_empty() {
        pids.push(1);
    }
    let mut written = vec![dir.join(INVENTORY), dir.join(PAGES)];
    fs::write(&written[0], frame(RecordKind::Inventory, input.inventory)).unwrap();
    let (pages, info) = input.pages_file();
    fs::write(&written[1], &pages).unwrap();
    for pid in pids {
        for (name, kind, payload) in [
            (core_name(pid), RecordKind::Core, input.core),
            (mm_name(pid), RecordKind::Mm, input.mm),
            (fds_name(pid), RecordKind::Fds, input.fds),
        ] {
            let path = dir.join(name);
            fs::write(&path, frame(kind, payload)).unwrap();
            written.push(path);
        }
    }

    if let Ok(img) = Image::load(dir) {
        let _ = image::verify_pages(&pages, &img.inventory.pages);
        // Loading is decoding plus validation: a loaded image validates again.
        image::validate(&img).expect("a loaded image is valid");
    }
    let framed = input.pages.first().is_none_or(|b| b % 2 == 0);
    let checked = image::verify_pages(&pages, &info);
    assert!(
        !framed || checked.is_ok(),
        "a correctly framed pages.img fails: {checked:?}"
    );

    for path in written {
        let _ = fs::remove_file(path);
    }
});
