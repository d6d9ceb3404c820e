//! Shared by the fuzz targets and the seed generator: a valid sample image, raw framing, and
//! the input layout of `load_image`.

use stasis::image::{self, HEADER_LEN, PAGE_SIZE, PagesInfo, RecordKind};

// The sample image is the one tests/image_format.rs checks: one copy for both.
#[path = "../../tests/common/sample_image.rs"]
mod sample_image;

pub use sample_image::{PID as SAMPLE_PID, pages_file, sample};

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
    use stasis::image::Inventory;

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
        // The whole pages.img: its first byte (of the magic) is odd, so it is taken as is.
        let pages = pages_file();
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
        let (file, _) = input.pages_file();
        assert_eq!(file, pages);
        image::verify_pages(&file, &img.inventory.pages).unwrap();
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
