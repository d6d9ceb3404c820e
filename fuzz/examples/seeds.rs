//! Writes seed inputs for both targets: the sample image's records, so that the fuzzer starts
//! from valid CBOR with the right field names. `cargo run --example seeds` (from fuzz/).

use std::fs;
use std::path::Path;

use stasis::image::{self, RecordKind};
use stasis_fuzz::{LoadInput, pages_file, payload, sample};

fn main() {
    let img = sample();
    let p = &img.processes[0];
    let inventory = image::encode(RecordKind::Inventory, &img.inventory);
    let core = image::encode(RecordKind::Core, &p.core);
    let mm = image::encode(RecordKind::Mm, &p.mm);
    let fds = image::encode(RecordKind::Fds, &p.fds);

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let decode = root.join("decode_records");
    fs::create_dir_all(&decode).unwrap();
    for (name, bytes) in [("inventory", &inventory), ("core", &core), ("mm", &mm), ("fds", &fds)] {
        fs::write(decode.join(format!("{name}-payload")), payload(bytes)).unwrap();
        fs::write(decode.join(format!("{name}-framed")), bytes).unwrap();
    }

    let load = root.join("load_image");
    fs::create_dir_all(&load).unwrap();
    // The whole pages.img: its first byte is odd, so `LoadInput` takes it as is.
    let pages = pages_file();
    let input = LoadInput {
        inventory: payload(&inventory),
        core: payload(&core),
        mm: payload(&mm),
        fds: payload(&fds),
        pages: &pages,
    };
    fs::write(load.join("sample"), input.join()).unwrap();
    println!("seeds written under {}", root.display());
}
