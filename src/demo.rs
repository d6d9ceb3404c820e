//! `stasis demo`: start a sample workload that counts and holds memory, dump it, kill it,
//! restore it, and show it counting on from where it was.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::dump::{self, DumpOptions};
use crate::error::{Context, Error, Result};
use crate::inspect;
use crate::restore::{self, RestoreOptions};
use crate::sys;

const HELD_MIB: usize = 64;

fn pattern(i: usize) -> u64 {
    (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5354_4153_4953
}

/// The sample workload (`stasis demo-workload`): holds 64 MiB of patterned memory, prints
/// `count N` every 100 ms, and on SIGTERM checks every word and prints PASS or FAIL.
pub fn workload() -> i32 {
    // Whatever the caller leaked to us (pipes of a test harness, say) is not ours to keep.
    let _ = sys::close_range(3, u32::MAX);
    let term = sys::sigterm_flag();
    let mem: Vec<u64> = (0..(HELD_MIB << 20) / 8).map(pattern).collect();
    println!("ready {}", std::process::id());
    let mut count = 0u64;
    while !term.load(std::sync::atomic::Ordering::Relaxed) {
        count += 1;
        println!("count {count}");
        std::thread::sleep(Duration::from_millis(100));
    }
    match mem.iter().enumerate().find(|&(i, &w)| w != pattern(i)) {
        None => {
            println!("PASS: {HELD_MIB} MiB intact after {count} counts");
            0
        }
        Some((i, w)) => {
            println!("FAIL: word {i} is {w:#x}, expected {:#x}", pattern(i));
            1
        }
    }
}

fn last_count(log: &Path) -> Option<u64> {
    let text = fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|l| l.strip_prefix("count ")?.parse().ok())
}

fn wait_for(log: &Path, what: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if fs::read_to_string(log).map(|t| t.contains(what)).unwrap_or(false) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Error::Restore(format!("the workload did not print {what:?} in time")))
}

/// Runs the demo, narrating to `out`. Returns the process exit code.
pub fn run(out: &mut impl Write) -> Result<i32> {
    let base = if Path::new("/dev/shm").is_dir() {
        Path::new("/dev/shm")
    } else {
        Path::new("/tmp")
    };
    let dir = base.join(format!("stasis-demo-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
    let result = run_in(&dir, out);
    let _ = fs::remove_dir_all(&dir);
    result
}

fn run_in(dir: &Path, out: &mut impl Write) -> Result<i32> {
    let log = dir.join("workload.log");
    let image = dir.join("image");
    let logf = fs::File::create(&log).ctx(|| "creating the workload log")?;
    let exe = std::env::current_exe().ctx(|| "finding the stasis binary")?;
    let mut child = Command::new(exe)
        .arg("demo-workload")
        .stdin(Stdio::null())
        .stdout(logf.try_clone().ctx(|| "log")?)
        .stderr(logf)
        .spawn()
        .ctx(|| "starting the workload")?;
    let pid = child.id() as i32;
    let say = |out: &mut dyn Write, s: String| {
        let _ = writeln!(out, "{s}");
    };
    if let Err(e) = wait_for(&log, "ready", Duration::from_secs(10)) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    say(
        out,
        format!("started workload {pid}: it holds {HELD_MIB} MiB and counts every 100 ms"),
    );
    std::thread::sleep(Duration::from_millis(800));
    let t0 = Instant::now();
    let dumped = dump::dump(&DumpOptions {
        pid,
        dir: image.clone(),
        leave_running: false,
        shell_job: false,
    });
    let dump_time = t0.elapsed();
    if dumped.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
    let summary = dumped?;
    let before = last_count(&log).unwrap_or(0);
    say(
        out,
        format!(
            "dumped and killed it in {:.0} ms at count {before}: {} mappings, {} pages stored, {} zero pages recorded",
            dump_time.as_secs_f64() * 1e3,
            summary.mappings,
            summary.pages_stored,
            summary.zero_pages
        ),
    );
    let report = inspect::inspect(&image)?;
    say(
        out,
        format!(
            "image: {} bytes of pages in {}",
            report.totals.bytes_stored,
            image.display()
        ),
    );
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let restored = restore::restore(&RestoreOptions {
        dir: image,
        shell_job: false,
    })?;
    say(
        out,
        format!(
            "restored it as pid {} in {:.0} ms",
            restored.pid,
            t0.elapsed().as_secs_f64() * 1e3
        ),
    );
    std::thread::sleep(Duration::from_millis(800));
    let after = last_count(&log).unwrap_or(0);
    say(out, format!("it counts on: {before} -> {after}"));
    sys::kill(restored.pid, libc::SIGTERM).ctx(|| "stopping the workload")?;
    let status = restored.wait()?;
    let text = fs::read_to_string(&log).unwrap_or_default();
    let verdict = text.lines().last().unwrap_or("").to_string();
    let next_ok = text.contains(&format!("count {}\n", before + 1));
    say(out, format!("stopped it: exit status {status}, it says: {verdict}"));
    let ok = status == 0 && verdict.starts_with("PASS") && after > before && next_ok && restored.pid == pid;
    say(
        out,
        if ok {
            "demo OK".to_string()
        } else {
            "demo FAILED".to_string()
        },
    );
    Ok(if ok { 0 } else { 1 })
}
