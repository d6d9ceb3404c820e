//! Benchmark (not a test): dump and restore of a process holding SIZE MiB (default 1024) of
//! populated incompressible private memory, images on /dev/shm, against plain copies of the
//! same bytes on /dev/shm in the same run. Machines here are shared and noisy: the figures
//! that mean something are the same-run ratios, reported as medians.
//!
//! `cargo bench --bench dump_restore [-- SIZE_MIB RUNS]` (as root).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stasis::dump::{DumpOptions, dump};
use stasis::restore::{RestoreOptions, restore};
use stasis::sys;

fn build_workload(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads/big.c");
    let out = dir.join("big");
    let st = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("gcc");
    assert!(st.success());
    out
}

fn wait_ready(log: &Path) {
    let t = Instant::now();
    while !fs::read_to_string(log).unwrap_or_default().contains("ready") {
        assert!(t.elapsed() < Duration::from_secs(60), "workload never got ready");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Memory ranges of the workload's big mapping (the one of `size` bytes).
fn big_range(pid: i32, size: u64) -> (u64, u64) {
    let maps = stasis::procfs::read_maps(pid).unwrap();
    let m = maps
        .iter()
        .find(|m| m.len() >= size && m.path.is_empty())
        .expect("the big mapping");
    (m.start, m.end)
}

/// The plain copy, two copies of the bytes: read the process's memory (/proc/PID/mem) into
/// a buffer and write it to a new file on /dev/shm.
fn plain_copy_from_process(pid: i32, range: (u64, u64), to: &Path) -> Duration {
    let t = Instant::now();
    let mem = File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut out = File::create(to).unwrap();
    let mut buf = vec![0u8; 4 << 20];
    let mut at = range.0;
    while at < range.1 {
        let n = ((range.1 - at) as usize).min(buf.len());
        mem.read_exact_at(&mut buf[..n], at).unwrap();
        out.write_all(&buf[..n]).unwrap();
        at += n as u64;
    }
    t.elapsed()
}

/// `cp` of a file on /dev/shm: read and write, two copies.
fn plain_file_copy(from: &Path, to: &Path) -> Duration {
    let t = Instant::now();
    let mut src = File::open(from).unwrap();
    let mut out = File::create(to).unwrap();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = src.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).unwrap();
    }
    t.elapsed()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let size_mib: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let root = PathBuf::from(format!("/dev/shm/stasis-bench-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    let big = build_workload(&root);
    let size = size_mib << 20;
    let (mut copy_proc, mut copy_file, mut dumps, mut restores, mut downtime) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    println!("stasis bench: {size_mib} MiB of incompressible private memory, images on /dev/shm, {runs} runs");
    for run in 0..runs {
        let dir = root.join(format!("run{run}"));
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("out");
        let mut cmd = Command::new(&big);
        cmd.arg(&dir)
            .arg(size_mib.to_string())
            .stdin(Stdio::null())
            .stdout(File::create(&log).unwrap())
            .stderr(Stdio::null());
        sys::close_inherited_fds(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let pid = child.id() as i32;
        wait_ready(&log);
        let range = big_range(pid, size);

        let plain = dir.join("plain.bin");
        let c1 = plain_copy_from_process(pid, range, &plain);
        let c2 = plain_file_copy(&plain, &dir.join("plain2.bin"));
        let _ = fs::remove_file(dir.join("plain2.bin"));
        let _ = fs::remove_file(&plain);

        // Downtime of a dump that lets the process go on: the time it is stopped.
        let img_lr = dir.join("image-lr");
        let t = Instant::now();
        dump(&DumpOptions {
            pid,
            dir: img_lr.clone(),
            leave_running: true,
            shell_job: false,
        })
        .unwrap();
        let lr = t.elapsed();
        let _ = fs::remove_dir_all(&img_lr);

        let img = dir.join("image");
        let t = Instant::now();
        dump(&DumpOptions {
            pid,
            dir: img.clone(),
            leave_running: false,
            shell_job: false,
        })
        .unwrap();
        let d = t.elapsed();
        // The dump, as tracer, may already have collected its exit.
        let _ = child.wait();

        let t = Instant::now();
        let restored = restore(&RestoreOptions {
            dir: img.clone(),
            shell_job: false,
        })
        .unwrap();
        let r = t.elapsed();
        sys::kill(restored.pid, libc::SIGTERM).unwrap();
        let status = restored.wait().unwrap();
        let verdict = fs::read_to_string(&log).unwrap_or_default();
        assert!(
            status == 0 && verdict.contains("PASS"),
            "restored workload failed: {verdict}"
        );
        let image_bytes: u64 = fs::read_dir(&img)
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum();
        println!(
            "run {run}: copy from process {:.0} ms, file copy {:.0} ms, dump {:.0} ms, restore {:.0} ms, \
             leave-running dump {:.0} ms; image {:.1} MiB",
            c1.as_secs_f64() * 1e3,
            c2.as_secs_f64() * 1e3,
            d.as_secs_f64() * 1e3,
            r.as_secs_f64() * 1e3,
            lr.as_secs_f64() * 1e3,
            image_bytes as f64 / (1 << 20) as f64
        );
        copy_proc.push(c1.as_secs_f64());
        copy_file.push(c2.as_secs_f64());
        dumps.push(d.as_secs_f64());
        restores.push(r.as_secs_f64());
        downtime.push(lr.as_secs_f64());
        let _ = fs::remove_dir_all(&dir);
    }
    let _ = fs::remove_dir_all(&root);
    // Per-run ratios: each compares figures taken seconds apart on the same machine.
    let ratio = |a: &[f64], b: &[f64]| {
        let mut v: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
        median(&mut v)
    };
    let per_run = [
        ratio(&dumps, &copy_proc),
        ratio(&restores, &copy_proc),
        ratio(&dumps, &copy_file),
        ratio(&restores, &copy_file),
    ];
    let (c1, c2, d, r, lr) = (
        median(&mut copy_proc),
        median(&mut copy_file),
        median(&mut dumps),
        median(&mut restores),
        median(&mut downtime),
    );
    let gib = size_mib as f64 / 1024.0;
    println!("\nmedians over {runs} runs ({size_mib} MiB):");
    println!(
        "  plain copy from the process to /dev/shm: {:7.0} ms ({:.2} GiB/s)",
        c1 * 1e3,
        gib / c1
    );
    println!(
        "  plain file copy on /dev/shm:             {:7.0} ms ({:.2} GiB/s)",
        c2 * 1e3,
        gib / c2
    );
    println!(
        "  stasis dump:                             {:7.0} ms ({:.2} GiB/s)  ratio to process copy {:.2}, to file copy {:.2}",
        d * 1e3,
        gib / d,
        d / c1,
        d / c2
    );
    println!(
        "  stasis restore:                          {:7.0} ms ({:.2} GiB/s)  ratio to process copy {:.2}, to file copy {:.2}",
        r * 1e3,
        gib / r,
        r / c1,
        r / c2
    );
    println!(
        "  dump --leave-running (downtime):         {:7.0} ms  ratio to process copy {:.2}",
        lr * 1e3,
        lr / c1
    );
    println!(
        "median of per-run ratios: dump/process copy {:.2}, restore/process copy {:.2}, \
         dump/file copy {:.2}, restore/file copy {:.2}",
        per_run[0], per_run[1], per_run[2], per_run[3]
    );
}
