//! The on-disk image format: framing, encoding, decoding and validation. Pure: no syscalls
//! beyond reading and writing the image's own files.
//!
//! An image is a directory:
//! - `inventory.img`   what the image holds (written last; its presence marks a complete image)
//! - `core-PID.img`    task state of one process
//! - `mm-PID.img`      its mappings and which stored pages belong where
//! - `fds-PID.img`     its file descriptors
//! - `pages.img`       page contents: a 4 KiB header, then raw pages, page aligned
//!
//! Every metadata file is a 32-byte header (magic, version, kind, length, xxh3 checksum)
//! followed by a CBOR payload. See docs/image-format.md.

mod records;
mod validate;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use xxhash_rust::xxh3::Xxh3;

pub use records::*;
pub use validate::validate;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{file}: {err}")]
    Io { file: String, err: std::io::Error },
    #[error("{file}: {reason}")]
    Corrupt { file: String, reason: String },
    #[error("{file}: format version {found} is not supported (this stasis reads version {FORMAT_VERSION})")]
    Version { file: String, found: u32 },
    #[error("{0}")]
    Invalid(String),
}

fn corrupt(file: &str, reason: impl Into<String>) -> ImageError {
    ImageError::Corrupt {
        file: file.to_string(),
        reason: reason.into(),
    }
}

/// What a file holds, as written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum RecordKind {
    Inventory = 1,
    Core = 2,
    Mm = 3,
    Fds = 4,
    Pages = 5,
}

pub const MAGIC: &[u8; 8] = b"STASISIM";
pub const HEADER_LEN: usize = 32;
/// pages.img keeps its data page aligned: the header takes a whole page.
pub const PAGES_HEADER_LEN: u64 = PAGE_SIZE;
/// Metadata files larger than this are refused before they are read.
pub const MAX_META_LEN: u64 = 256 << 20;

pub const INVENTORY: &str = "inventory.img";
pub const PAGES: &str = "pages.img";

pub fn core_name(pid: i32) -> String {
    format!("core-{pid}.img")
}
pub fn mm_name(pid: i32) -> String {
    format!("mm-{pid}.img")
}
pub fn fds_name(pid: i32) -> String {
    format!("fds-{pid}.img")
}

fn header(kind: RecordKind, len: u64, checksum: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(kind as u32).to_le_bytes());
    h[16..24].copy_from_slice(&len.to_le_bytes());
    h[24..32].copy_from_slice(&checksum.to_le_bytes());
    h
}

/// Checks a header; returns (payload length, checksum).
fn parse_header(file: &str, kind: RecordKind, bytes: &[u8]) -> Result<(u64, u64), ImageError> {
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(
            file,
            format!("truncated header ({} of {HEADER_LEN} bytes)", bytes.len()),
        ));
    }
    if &bytes[..8] != MAGIC {
        return Err(corrupt(file, "not a stasis image file (bad magic)"));
    }
    let word = |r: std::ops::Range<usize>| u32::from_le_bytes(bytes[r].try_into().expect("4 bytes"));
    let dword = |r: std::ops::Range<usize>| u64::from_le_bytes(bytes[r].try_into().expect("8 bytes"));
    let version = word(8..12);
    if version != FORMAT_VERSION {
        return Err(ImageError::Version {
            file: file.to_string(),
            found: version,
        });
    }
    let k = word(12..16);
    if k != kind as u32 {
        return Err(corrupt(
            file,
            format!("holds record kind {k}, expected {}", kind as u32),
        ));
    }
    Ok((dword(16..24), dword(24..32)))
}

pub fn checksum(data: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(data)
}

/// Header + CBOR payload of one record.
pub fn encode<T: Serialize>(kind: RecordKind, value: &T) -> Vec<u8> {
    let mut payload = Vec::new();
    ciborium::into_writer(value, &mut payload).expect("CBOR encoding into a Vec cannot fail");
    let mut out = header(kind, payload.len() as u64, checksum(&payload)).to_vec();
    out.extend_from_slice(&payload);
    out
}

/// Checks framing and checksum, then decodes the payload. `file` names the file in errors.
pub fn decode<T: DeserializeOwned>(kind: RecordKind, file: &str, bytes: &[u8]) -> Result<T, ImageError> {
    let (len, sum) = parse_header(file, kind, bytes)?;
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != len {
        return Err(corrupt(
            file,
            format!(
                "payload is {} bytes, header says {len} (truncated or padded)",
                payload.len()
            ),
        ));
    }
    if checksum(payload) != sum {
        return Err(corrupt(file, "checksum mismatch"));
    }
    decode_payload(file, payload)
}

/// Decodes a CBOR payload whose framing was already checked (also the fuzz entry point).
pub fn decode_payload<T: DeserializeOwned>(file: &str, payload: &[u8]) -> Result<T, ImageError> {
    ciborium::from_reader(payload).map_err(|e| corrupt(file, format!("malformed record: {e}")))
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let io = |err| ImageError::Io {
        file: path.display().to_string(),
        err,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_data().map_err(io)
}

fn read_meta<T: DeserializeOwned>(dir: &Path, name: &str, kind: RecordKind) -> Result<T, ImageError> {
    let path = dir.join(name);
    let io = |err| ImageError::Io {
        file: name.to_string(),
        err,
    };
    let f = fs::File::open(&path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    if len > MAX_META_LEN {
        return Err(corrupt(name, format!("{len} bytes is too large for a metadata file")));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(MAX_META_LEN).read_to_end(&mut bytes).map_err(io)?;
    decode(kind, name, &bytes)
}

/// The header page of pages.img.
pub fn pages_header(count: u64, sum: u64) -> Vec<u8> {
    let mut h = header(RecordKind::Pages, count * PAGE_SIZE, sum).to_vec();
    h.resize(PAGES_HEADER_LEN as usize, 0);
    h
}

/// Checks pages.img against the inventory: header, exact length, checksum of every byte.
/// `data` is the whole file.
pub fn verify_pages(data: &[u8], info: &PagesInfo) -> Result<(), ImageError> {
    let (len, sum) = parse_header(PAGES, RecordKind::Pages, data)?;
    let expect = info
        .count
        .checked_mul(PAGE_SIZE)
        .ok_or_else(|| corrupt(INVENTORY, "page count overflows"))?;
    if len != expect || sum != info.checksum {
        return Err(corrupt(PAGES, "header does not match the inventory"));
    }
    if (data.len() as u64) < PAGES_HEADER_LEN || data.len() as u64 - PAGES_HEADER_LEN != len {
        return Err(corrupt(
            PAGES,
            format!("is {} bytes, expected {}", data.len(), PAGES_HEADER_LEN + len),
        ));
    }
    if data[HEADER_LEN..PAGES_HEADER_LEN as usize].iter().any(|&b| b != 0) {
        return Err(corrupt(PAGES, "header padding is not zero"));
    }
    let mut h = Xxh3::new();
    h.update(&data[PAGES_HEADER_LEN as usize..]);
    if h.digest() != sum {
        return Err(corrupt(PAGES, "checksum mismatch"));
    }
    Ok(())
}

/// One process of an image.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessImage {
    pub core: Core,
    pub mm: Mm,
    pub fds: Fds,
}

/// The metadata of a whole image, decoded and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub inventory: Inventory,
    pub processes: Vec<ProcessImage>,
}

impl Image {
    /// Reads and validates every metadata file of `dir` (not pages.img: see [`verify_pages`]).
    pub fn load(dir: &Path) -> Result<Image, ImageError> {
        if !dir.join(INVENTORY).exists() {
            return Err(ImageError::Invalid(format!(
                "{}: no {INVENTORY}: not an image, or an incomplete one",
                dir.display()
            )));
        }
        let inventory: Inventory = read_meta(dir, INVENTORY, RecordKind::Inventory)?;
        if inventory.processes.len() > validate::MAX_PROCESSES {
            return Err(ImageError::Invalid(format!(
                "{} processes is too many",
                inventory.processes.len()
            )));
        }
        let mut processes = Vec::new();
        for p in &inventory.processes {
            processes.push(ProcessImage {
                core: read_meta(dir, &core_name(p.pid), RecordKind::Core)?,
                mm: read_meta(dir, &mm_name(p.pid), RecordKind::Mm)?,
                fds: read_meta(dir, &fds_name(p.pid), RecordKind::Fds)?,
            });
        }
        let img = Image { inventory, processes };
        validate(&img)?;
        Ok(img)
    }

    /// Writes every metadata file, the inventory last.
    pub fn write(&self, dir: &Path) -> Result<(), ImageError> {
        for p in &self.processes {
            let pid = p.core.pid;
            write_private(&dir.join(core_name(pid)), &encode(RecordKind::Core, &p.core))?;
            write_private(&dir.join(mm_name(pid)), &encode(RecordKind::Mm, &p.mm))?;
            write_private(&dir.join(fds_name(pid)), &encode(RecordKind::Fds, &p.fds))?;
        }
        write_private(&dir.join(INVENTORY), &encode(RecordKind::Inventory, &self.inventory))
    }

    /// Names of every file the image consists of.
    pub fn file_names(&self) -> Vec<String> {
        let mut v = vec![INVENTORY.to_string(), PAGES.to_string()];
        for p in &self.inventory.processes {
            v.extend([core_name(p.pid), mm_name(p.pid), fds_name(p.pid)]);
        }
        v
    }
}
