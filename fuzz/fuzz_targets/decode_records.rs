//! Hostile bytes as every record type, bare and framed, then whatever decodes through the
//! validator. Nothing may panic; framing must not change what a payload decodes to.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use stasis::image::{
    self, Core, Fds, INVENTORY, Image, ImageError, Inventory, Mm, PagesInfo, RecordKind, core_name, fds_name, mm_name,
};
use stasis_fuzz::{SAMPLE_PID, frame, sample};

fn base() -> &'static Image {
    static BASE: OnceLock<Image> = OnceLock::new();
    BASE.get_or_init(sample)
}

/// The payload decoded bare, and framed with a correct header: the same answer either way.
fn both<T: PartialEq + std::fmt::Debug + DeserializeOwned>(kind: RecordKind, name: &str, data: &[u8]) -> Option<T> {
    let bare: Result<T, ImageError> = image::decode_payload(name, data);
    let framed: Result<T, ImageError> = image::decode(kind, name, &frame(kind, data));
    match (&bare, &framed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => panic!("framing changed the outcome: {bare:?} vs {framed:?}"),
    }
    // The same bytes as a whole file: a header to parse, mostly a bad one.
    let _ = image::decode::<T>(kind, name, data);
    bare.ok()
}

fuzz_target!(|data: &[u8]| {
    let inventory: Option<Inventory> = both(RecordKind::Inventory, INVENTORY, data);
    let core: Option<Core> = both(RecordKind::Core, &core_name(SAMPLE_PID), data);
    let mm: Option<Mm> = both(RecordKind::Mm, &mm_name(SAMPLE_PID), data);
    let fds: Option<Fds> = both(RecordKind::Fds, &fds_name(SAMPLE_PID), data);
    let _ = image::verify_pages(data, &base().inventory.pages);
    let _ = image::verify_pages(
        data,
        &PagesInfo {
            count: data.len() as u64 / 4096,
            checksum: image::checksum(data),
        },
    );

    // Each decoded record in an otherwise valid image, so the validator gets past the records
    // it does not look at; then everything decoded at once.
    let mut all = base().clone();
    if let Some(inv) = inventory {
        let mut img = base().clone();
        if let Some(p) = inv.processes.first() {
            img.processes[0].core.pid = p.pid;
            img.processes[0].core.threads[0].tid = p.pid;
        }
        img.inventory = inv.clone();
        let _ = image::validate(&img);
        all.inventory = inv;
    }
    if let Some(core) = core {
        let mut img = base().clone();
        img.inventory.root_pid = core.pid;
        img.inventory.processes[0].pid = core.pid;
        img.processes[0].core = core.clone();
        let _ = image::validate(&img);
        all.processes[0].core = core;
    }
    if let Some(mm) = mm {
        let mut img = base().clone();
        img.processes[0].mm = mm.clone();
        let _ = image::validate(&img);
        all.processes[0].mm = mm;
    }
    if let Some(fds) = fds {
        let mut img = base().clone();
        img.processes[0].fds = fds.clone();
        let _ = image::validate(&img);
        all.processes[0].fds = fds;
    }
    let _ = image::validate(&all);
});
