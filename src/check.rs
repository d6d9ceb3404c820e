//! `stasis check`: each kernel feature stasis relies on, and whether this machine has it.

use std::fs::File;
use std::os::fd::AsFd;

use serde::Serialize;

use crate::sys::{self, ScanQuery};

#[derive(Debug, Serialize)]
pub struct Feature {
    pub name: &'static str,
    pub needed_for: &'static str,
    pub present: bool,
    pub detail: String,
}

fn feature(name: &'static str, needed_for: &'static str, r: Result<String, String>) -> Feature {
    let (present, detail) = match r {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    Feature {
        name,
        needed_for,
        present,
        detail,
    }
}

/// Probes every feature without changing anything.
pub fn check() -> Vec<Feature> {
    let me = sys::getpid();
    let caps = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("CapEff:"))
                .map(|l| l[7..].trim().to_string())
        })
        .and_then(|c| u64::from_str_radix(&c, 16).ok())
        .unwrap_or(0);
    let cap = |bit: u32| caps & (1u64 << bit) != 0;
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_SYS_PTRACE: u32 = 19;
    const CAP_SYS_RESOURCE: u32 = 24;
    const CAP_CHECKPOINT_RESTORE: u32 = 40;
    let yes_no = |b: bool, y: &str, n: &str| if b { Ok(y.to_string()) } else { Err(n.to_string()) };
    vec![
        feature("kernel", "everything", Ok(sys::kernel_release())),
        feature(
            "ptrace",
            "dump and restore (seize, interrupt, syscall injection)",
            yes_no(cap(CAP_SYS_PTRACE), "CAP_SYS_PTRACE held", "CAP_SYS_PTRACE missing"),
        ),
        feature(
            "clone3 set_tid",
            "restore with the same pid",
            yes_no(
                cap(CAP_SYS_ADMIN) || cap(CAP_CHECKPOINT_RESTORE),
                "CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE held",
                "needs CAP_CHECKPOINT_RESTORE",
            ),
        ),
        feature(
            "PR_SET_MM_MAP",
            "restore mm bounds, auxv and exe link",
            match sys::prctl(
                libc::PR_SET_MM,
                libc::PR_SET_MM_MAP_SIZE as u64,
                &mut 0u32 as *mut u32 as u64,
                0,
                0,
            ) {
                Ok(_) if cap(CAP_SYS_RESOURCE) || cap(CAP_CHECKPOINT_RESTORE) => Ok("supported".into()),
                Ok(_) => Err("supported, but CAP_SYS_RESOURCE is missing".into()),
                Err(e) => Err(e.to_string()),
            },
        ),
        feature(
            "PAGEMAP_SCAN",
            "finding populated pages without faulting them in",
            File::open("/proc/self/pagemap")
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    let q = ScanQuery {
                        required: 0,
                        excluded: 0,
                        anyof: sys::PAGE_IS_PRESENT,
                    };
                    let here = &caps as *const u64 as u64 & !4095;
                    sys::pagemap_scan(f.as_fd(), here, here + 4096, &q)
                        .map(|_| "supported".into())
                        .map_err(|e| e.to_string())
                }),
        ),
        feature(
            "process_vm_readv/writev",
            "reading the target's pages and writing the restored ones",
            sys::process_vm_read(me, &mut [0u8; 8], &[(&caps as *const u64 as u64, 8)])
                .map(|_| "supported".into())
                .map_err(|e| e.to_string()),
        ),
        feature(
            "PTRACE_GET_RSEQ_CONFIGURATION",
            "re-registering rseq areas (Linux 5.13+)",
            yes_no(
                kernel_at_least(&sys::kernel_release(), (5, 13)),
                "kernel is 5.13 or later",
                "kernel older than 5.13",
            ),
        ),
        feature(
            "/proc/PID/map_files",
            "reading shared memory objects",
            std::fs::read_dir("/proc/self/map_files")
                .map(|_| "readable".into())
                .map_err(|e| e.to_string()),
        ),
        feature(
            "memfd_create",
            "restoring memfd mappings",
            sys::memfd_create("stasis-check")
                .map(|_| "supported".into())
                .map_err(|e| e.to_string()),
        ),
        feature(
            "userfaultfd write-protect",
            "incremental dumps (planned)",
            sys::probe_uffd_wp(),
        ),
        feature(
            "soft-dirty",
            "incremental dumps the CRIU way",
            yes_no(
                std::fs::read_to_string("/proc/self/smaps")
                    .map(|s| s.contains(" sd"))
                    .unwrap_or(false),
                "present",
                "absent (stasis plans userfaultfd write-protect + PAGEMAP_SCAN instead)",
            ),
        ),
    ]
}

/// Whether a release string like "6.18.44-foo" is at least `want` (major, minor).
fn kernel_at_least(release: &str, want: (u32, u32)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= want
}

pub fn render_text(features: &[Feature]) -> String {
    let mut s = String::new();
    for f in features {
        s.push_str(&format!(
            "{:<32} {:<4} {:<40} ({})\n",
            f.name,
            if f.present { "yes" } else { "NO" },
            f.detail,
            f.needed_for
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernel_versions_compare() {
        assert!(super::kernel_at_least("6.18.44-fc-v769", (5, 13)));
        assert!(super::kernel_at_least("5.13.0", (5, 13)));
        assert!(!super::kernel_at_least("5.4.0-generic", (5, 13)));
    }
}
