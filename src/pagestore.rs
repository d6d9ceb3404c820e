//! pages.img: the target's pages are read with process_vm_readv (or pread of /proc/PID/mem
//! for what it cannot read) into one small buffer that stays in the CPU cache, checked for
//! zeros, hashed, and written out with pwrite. Pages of zeros are recorded as such and
//! squeezed out, so the file holds only pages with content.
//!
//! Reading and writing overlap: a writer thread writes one buffer while the caller fills the
//! next (the write, which allocates the file's pages, is the slow half).
//!
//! Measured here (1 GiB on tmpfs): mapping the file and reading straight into it saves a
//! copy but costs more than it saves, in page faults to populate the mapping and in tearing
//! it down; cache-hot bounce buffers are faster.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use xxhash_rust::xxh3::Xxh3;

use crate::error::{Context, Error, Result};
use crate::image::{self, PAGE_SIZE, PAGES_HEADER_LEN, PageRun, PageSource, PagesInfo};
use crate::sys::{self, Pid};

const PS: usize = PAGE_SIZE as usize;
/// Bytes per process_vm_readv call: big enough to amortise the call, small enough that the
/// zero scan and checksum run on cache-warm data.
const BATCH: usize = 4 << 20;
const MAX_IOV: usize = 1024;

/// Builds the runs of one mapping or object, merging neighbours.
#[derive(Default)]
pub struct RunBuilder {
    runs: Vec<PageRun>,
}

impl RunBuilder {
    pub fn push(&mut self, page: u64, source: PageSource) {
        if let Some(last) = self.runs.last_mut() {
            let follows = last.first + last.count == page;
            let same = match (last.source, source) {
                (PageSource::Zero, PageSource::Zero) => true,
                (PageSource::Data { at: a }, PageSource::Data { at: b }) => a + last.count == b,
                _ => false,
            };
            if follows && same {
                last.count += 1;
                return;
            }
        }
        self.runs.push(PageRun {
            first: page,
            count: 1,
            source,
        });
    }

    pub fn finish(self) -> Vec<PageRun> {
        self.runs
    }
}

fn is_zero(page: &[u8]) -> bool {
    // The inner fold vectorises; the outer test stops at the first non-zero 64 bytes.
    page.chunks_exact(64).all(|c| c.iter().fold(0u8, |a, &b| a | b) == 0)
}

/// Where the bytes of a batch come from.
pub enum Source<'a> {
    /// Another process's memory: process_vm_readv, falling back to /proc/PID/mem (which also
    /// reads PROT_NONE and exec-only pages).
    Process { pid: Pid, mem: &'a File, readable: bool },
    /// A file (a shared memory object), by offset.
    File(&'a File),
}

/// Buffers in flight between the reader (the caller) and the writer thread.
const BUFFERS: usize = 3;

pub struct PageStore {
    capacity: u64,
    count: u64,
    hasher: Xxh3,
    /// Empty buffers coming back from the writer.
    free: Receiver<Vec<u8>>,
    /// Full buffers to the writer: (buffer, bytes used, file offset).
    work: Option<SyncSender<(Vec<u8>, usize, u64)>>,
    writer: Option<JoinHandle<std::io::Result<File>>>,
}

impl PageStore {
    /// Creates pages.img with room for `capacity` pages.
    pub fn create(path: &Path, capacity: u64) -> Result<PageStore> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .ctx(|| format!("creating {}", path.display()))?;
        let (work_tx, work_rx) = sync_channel::<(Vec<u8>, usize, u64)>(BUFFERS);
        let (free_tx, free) = sync_channel::<Vec<u8>>(BUFFERS);
        for _ in 0..BUFFERS {
            free_tx.send(vec![0u8; BATCH]).expect("the receiver is alive");
        }
        let writer = std::thread::spawn(move || {
            let mut result = Ok(());
            for (buf, len, off) in work_rx {
                // After a failure keep handing buffers back, so the reader never waits forever.
                if result.is_ok() {
                    result = file.write_all_at(&buf[..len], off);
                }
                let _ = free_tx.send(buf);
            }
            result.map(|()| file)
        });
        Ok(PageStore {
            free,
            work: Some(work_tx),
            writer: Some(writer),
            capacity,
            count: 0,
            hasher: Xxh3::new(),
        })
    }

    /// Copies the pages of `ranges` (page-aligned `[start, end)` in ascending order, all
    /// within one mapping or object starting at `base`) and returns their runs, by page
    /// index from `base`.
    pub fn copy(&mut self, src: &Source<'_>, base: u64, ranges: &[(u64, u64)]) -> Result<Vec<PageRun>> {
        let mut runs = RunBuilder::default();
        let mut pieces: Vec<(u64, usize)> = Vec::new();
        let mut bytes = 0usize;
        for &(start, end) in ranges {
            let mut s = start;
            while s < end {
                let n = ((end - s) as usize).min(BATCH - bytes);
                pieces.push((s, n));
                bytes += n;
                s += n as u64;
                if bytes == BATCH || pieces.len() == MAX_IOV {
                    self.batch(src, base, &pieces, bytes, &mut runs)?;
                    pieces.clear();
                    bytes = 0;
                }
            }
        }
        if bytes > 0 {
            self.batch(src, base, &pieces, bytes, &mut runs)?;
        }
        Ok(runs.finish())
    }

    fn batch(
        &mut self,
        src: &Source<'_>,
        base: u64,
        pieces: &[(u64, usize)],
        bytes: usize,
        runs: &mut RunBuilder,
    ) -> Result<()> {
        let npages = (bytes / PS) as u64;
        if self.count + npages > self.capacity {
            return Err(Error::Target {
                pid: 0,
                reason: "memory grew while it was being dumped".into(),
            });
        }
        let mut full = self.free.recv().map_err(|_| writer_gone())?;
        let buf = &mut full[..bytes];
        fill(src, buf, pieces)?;
        // Squeeze out zero pages, recording them.
        let mut kept = 0usize;
        let mut i = 0usize;
        for &(addr, len) in pieces {
            for p in 0..len / PS {
                let page = (addr - base) / PAGE_SIZE + p as u64;
                let from = i * PS;
                if is_zero(&buf[from..from + PS]) {
                    runs.push(page, PageSource::Zero);
                } else {
                    if kept != from {
                        buf.copy_within(from..from + PS, kept);
                    }
                    runs.push(
                        page,
                        PageSource::Data {
                            at: self.count + (kept / PS) as u64,
                        },
                    );
                    kept += PS;
                }
                i += 1;
            }
        }
        self.hasher.update(&buf[..kept]);
        let off = PAGES_HEADER_LEN + self.count * PAGE_SIZE;
        self.count += (kept / PS) as u64;
        let work = self.work.as_ref().expect("open until finish");
        work.send((full, kept, off)).map_err(|_| writer_gone())?;
        Ok(())
    }

    /// Writes the header and syncs the file.
    pub fn finish(mut self) -> Result<PagesInfo> {
        let info = PagesInfo {
            count: self.count,
            checksum: self.hasher.digest(),
        };
        let file = self.join_writer()?;
        file.write_all_at(&image::pages_header(info.count, info.checksum), 0)
            .ctx(|| "writing the pages.img header")?;
        file.sync_data().ctx(|| "syncing pages.img")?;
        Ok(info)
    }

    fn join_writer(&mut self) -> Result<File> {
        drop(self.work.take());
        let writer = self.writer.take().expect("joined once");
        writer.join().map_err(|_| writer_gone())?.ctx(|| "writing pages.img")
    }
}

impl Drop for PageStore {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = self.join_writer();
        }
    }
}

fn writer_gone() -> Error {
    Error::Sys {
        what: "writing pages.img".into(),
        err: std::io::Error::other("the writer thread stopped"),
    }
}

fn fill(src: &Source<'_>, buf: &mut [u8], pieces: &[(u64, usize)]) -> Result<()> {
    match src {
        Source::Process { pid, mem, readable } => {
            let mut done = 0usize;
            if *readable {
                // A short read stops at the first page it could not read: finish with pread.
                done = sys::process_vm_read(*pid, buf, pieces).unwrap_or(0);
                done -= done % PS;
            }
            let mut pos = 0usize;
            for &(addr, len) in pieces {
                if pos + len <= done {
                    pos += len;
                    continue;
                }
                let skip = done.saturating_sub(pos);
                mem.read_exact_at(&mut buf[pos + skip..pos + len], addr + skip as u64)
                    .ctx(|| format!("process {pid}: reading memory at {:#x}", addr + skip as u64))?;
                pos += len;
            }
            Ok(())
        }
        Source::File(f) => {
            let mut pos = 0usize;
            for &(off, len) in pieces {
                f.read_exact_at(&mut buf[pos..pos + len], off)
                    .ctx(|| format!("reading shared memory at {off:#x}"))?;
                pos += len;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_only_when_contiguous() {
        let mut b = RunBuilder::default();
        b.push(0, PageSource::Data { at: 5 });
        b.push(1, PageSource::Data { at: 6 });
        b.push(2, PageSource::Zero);
        b.push(3, PageSource::Zero);
        b.push(5, PageSource::Zero);
        b.push(6, PageSource::Data { at: 9 });
        b.push(7, PageSource::Data { at: 11 });
        let r = b.finish();
        assert_eq!(r.len(), 5);
        assert_eq!(
            r[0],
            PageRun {
                first: 0,
                count: 2,
                source: PageSource::Data { at: 5 }
            }
        );
        assert_eq!(
            r[1],
            PageRun {
                first: 2,
                count: 2,
                source: PageSource::Zero
            }
        );
    }

    #[test]
    fn zero_detection() {
        let mut p = vec![0u8; PS];
        assert!(is_zero(&p));
        p[PS - 1] = 1;
        assert!(!is_zero(&p));
    }
}
