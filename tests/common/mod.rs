//! Test harness for end-to-end tests: builds the C workloads, starts them, runs the stasis
//! binary on them, and compares what came back. Every process started here is killed and
//! reaped when its handle drops, even when the test fails.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use stasis::sys;

pub fn stasis_bin() -> &'static str {
    env!("CARGO_BIN_EXE_stasis")
}

pub fn workloads_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads")
}

/// Compiles tests/workloads/NAME.c once per test binary.
pub fn workload(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("workloads");
    fs::create_dir_all(&out_dir).unwrap();
    let src = workloads_src().join(format!("{name}.c"));
    let out = out_dir.join(format!("{name}-{}", std::process::id()));
    let st = Command::new("gcc")
        .args(["-O1", "-g", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("gcc runs");
    assert!(st.success(), "compiling {}", src.display());
    built.insert(name.to_string(), out.clone());
    out
}

/// A scratch directory for one test, removed when dropped.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        // Images go to tmpfs: fast, like the users who care about speed.
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "stasis-test-{test}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("work")).unwrap();
        Scratch { dir }
    }
    pub fn image(&self) -> PathBuf {
        self.dir.join("image")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn out(&self) -> PathBuf {
        self.dir.join("out")
    }
    pub fn err(&self) -> PathBuf {
        self.dir.join("err")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A process under test; killed (and reaped, if it is our child) on drop.
pub struct Proc {
    pub pid: i32,
    child: Option<Child>,
}

impl Proc {
    pub fn adopt(pid: i32) -> Proc {
        Proc { pid, child: None }
    }

    pub fn from_child(child: Child) -> Proc {
        Proc {
            pid: child.id() as i32,
            child: Some(child),
        }
    }

    /// Reaps our child after it ended (killed by a dump, or told to stop); from then on its
    /// pid may be someone else's, so the handle is gone.
    pub fn reap(mut self) -> Option<std::process::ExitStatus> {
        let st = self.child.take().map(|mut c| {
            // A hung workload fails the test instead of hanging the suite.
            let start = Instant::now();
            loop {
                if let Some(st) = c.try_wait().unwrap() {
                    return st;
                }
                if start.elapsed() > Duration::from_secs(60) {
                    let _ = c.kill();
                    let _ = c.wait();
                    panic!("process {} did not end within 60 s", self.pid);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        self.pid = 0;
        st
    }

    pub fn alive(&self) -> bool {
        match fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
            Err(_) => false,
        }
    }

    pub fn term(&self) {
        let _ = sys::kill(self.pid, libc::SIGTERM);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.pid == 0 {
            return;
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        } else if self.alive() {
            let _ = sys::kill(self.pid, libc::SIGKILL);
        }
    }
}

/// Starts `program args` with stdout/stderr to the scratch's out/err files, stdin /dev/null,
/// no inherited fds, and waits for its `ready` line.
pub fn start(s: &Scratch, program: &Path, args: &[&str]) -> Proc {
    let mut cmd = Command::new(program);
    cmd.arg(s.work()).args(args);
    start_cmd(s, cmd)
}

pub fn start_cmd(s: &Scratch, mut cmd: Command) -> Proc {
    cmd.stdin(Stdio::null())
        .stdout(File::create(s.out()).unwrap())
        .stderr(File::create(s.err()).unwrap());
    sys::close_inherited_fds(&mut cmd);
    let child = cmd.spawn().expect("workload starts");
    let p = Proc {
        pid: child.id() as i32,
        child: Some(child),
    };
    wait_for_line(&s.out(), "ready", Duration::from_secs(20));
    p
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Waits until the file holds a line starting with `prefix`; panics with its contents if not.
pub fn wait_for_line(path: &Path, prefix: &str, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = read(path);
        if let Some(l) = text.lines().find(|l| l.starts_with(prefix)) {
            return l.to_string();
        }
        if start.elapsed() > timeout {
            panic!(
                "no line starting with {prefix:?} in {} after {timeout:?}:\n{text}",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn stasis(args: &[&str]) -> Output {
    stasis_with_failpoint(args, None)
}

/// `stasis ARGS` to completion, with `STASIS_FAILPOINT=SPEC` if given.
pub fn stasis_with_failpoint(args: &[&str], failpoint: Option<&str>) -> Output {
    let mut cmd = Command::new(stasis_bin());
    cmd.args(args).stdin(Stdio::null());
    if let Some(spec) = failpoint {
        cmd.env("STASIS_FAILPOINT", spec);
    }
    sys::close_inherited_fds(&mut cmd);
    cmd.output().expect("stasis runs")
}

/// Starts `stasis ARGS` with `STASIS_FAILPOINT=SPEC` (a pause or delay), its stderr in the
/// scratch's stasis.err, and returns once it says it reached the point.
pub fn stasis_at_failpoint(s: &Scratch, args: &[&str], spec: &str) -> Child {
    let err = s.dir.join("stasis.err");
    let mut cmd = Command::new(stasis_bin());
    cmd.args(args)
        .env("STASIS_FAILPOINT", spec)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&err).unwrap());
    sys::close_inherited_fds(&mut cmd);
    let child = cmd.spawn().expect("stasis starts");
    wait_for_line(&err, "stasis: failpoint", Duration::from_secs(20));
    child
}

/// How many `tick N` lines the counter workload has written.
pub fn ticks(s: &Scratch) -> usize {
    read(&s.out()).lines().filter(|l| l.starts_with("tick ")).count()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `stasis dump -t PID -D IMAGE extra...`, asserting success.
pub fn dump(p: &Proc, s: &Scratch, extra: &[&str]) {
    let pid = p.pid.to_string();
    let img = s.image();
    let mut args = vec!["dump", "-t", &pid, "-D", img.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = stasis(&args);
    assert!(o.status.success(), "dump failed: {}", stderr(&o));
}

/// `stasis restore -D IMAGE` in the background (it waits for the process); returns the
/// stasis child and a handle on the restored pid once it runs untraced.
pub fn restore(s: &Scratch, pid: i32, exe: &Path, extra: &[&str]) -> (Child, Proc) {
    let mut cmd = Command::new(stasis_bin());
    cmd.args(["restore", "-D", s.image().to_str().unwrap()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    sys::close_inherited_fds(&mut cmd);
    let mut child = cmd.spawn().expect("stasis restore starts");
    wait_restored(&mut child, pid, exe);
    (child, Proc::adopt(pid))
}

/// Waits until `pid` runs the restored program untraced (stasis let it go).
pub fn wait_restored(stasis_restore: &mut Child, pid: i32, exe: &Path) {
    let start = Instant::now();
    let exe = fs::canonicalize(exe).unwrap();
    loop {
        if let Ok(Some(st)) = stasis_restore.try_wait() {
            let mut e = String::new();
            use std::io::Read;
            if let Some(mut err) = stasis_restore.stderr.take() {
                let _ = err.read_to_string(&mut e);
            }
            panic!("stasis restore ended early ({st}): {e}");
        }
        let status = read(Path::new(&format!("/proc/{pid}/status")));
        let untraced = status.lines().any(|l| l == "TracerPid:\t0");
        let same_exe = fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p == exe)
            .unwrap_or(false);
        if untraced && same_exe {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "restore did not finish");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGTERMs the restored process, waits for stasis restore to exit with its status, and
/// returns the workload's verdict line.
pub fn finish(s: &Scratch, mut stasis_restore: Child, mut p: Proc) -> String {
    p.term();
    let start = Instant::now();
    let out = loop {
        if let Some(st) = stasis_restore.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = sys::kill(p.pid, libc::SIGKILL);
            let _ = stasis_restore.wait();
            panic!("restored process {} did not end within 60 s of SIGTERM", p.pid);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    p.pid = 0;
    let verdict = read(&s.out())
        .lines()
        .rev()
        .find(|l| l.starts_with("PASS") || l.starts_with("FAIL"))
        .map(str::to_string);
    let verdict = verdict.unwrap_or_else(|| format!("no verdict; out:\n{}\nerr:\n{}", read(&s.out()), read(&s.err())));
    assert!(
        out.success(),
        "restored process exited with {out}: {verdict}\nstderr of workload: {}",
        read(&s.err())
    );
    verdict
}

/// /proc/PID/maps with neighbours the kernel may or may not merge joined, [vsyscall]
/// dropped, and inode/device left out (shared memory objects are new inodes).
pub fn normalized_maps(pid: i32) -> Vec<(u64, u64, String, u64, String)> {
    let maps = stasis::procfs::read_maps(pid).unwrap();
    let mut out: Vec<(u64, u64, String, u64, String)> = Vec::new();
    for m in maps.into_iter().filter(|m| m.path != "[vsyscall]") {
        let perms = format!(
            "{}{}{}{}",
            if m.read { 'r' } else { '-' },
            if m.write { 'w' } else { '-' },
            if m.exec { 'x' } else { '-' },
            if m.shared { 's' } else { 'p' }
        );
        let file_backed = m.path.starts_with('/');
        let offset = if file_backed { m.offset } else { 0 };
        if let Some(last) = out.last_mut() {
            let contiguous_offset = !file_backed || last.3 + (last.1 - last.0) == offset;
            if last.1 == m.start && last.2 == perms && last.4 == m.path && contiguous_offset {
                last.1 = m.end;
                continue;
            }
        }
        out.push((m.start, m.end, perms, offset, m.path));
    }
    out
}

/// Populated pages of every readable mapping but [vvar*] (kernel time data), as
/// (range, hash). Reads only pages already present, so it changes nothing.
pub fn present_ranges(pid: i32) -> Vec<(u64, u64)> {
    let maps = stasis::procfs::read_maps(pid).unwrap();
    let pagemap = File::open(format!("/proc/{pid}/pagemap")).unwrap();
    let q = sys::ScanQuery {
        required: 0,
        excluded: 0,
        anyof: sys::PAGE_IS_PRESENT,
    };
    let mut out = Vec::new();
    for m in maps
        .iter()
        .filter(|m| m.read && !m.path.starts_with("[vvar") && m.path != "[vsyscall]")
    {
        out.extend(sys::pagemap_scan(pagemap.as_fd(), m.start, m.end, &q).unwrap());
    }
    out
}

/// Hashes of `ranges`, with the bytes of `mask` (the rseq area, which the kernel rewrites
/// with the current cpu on every return to user space) left out.
pub fn hash_ranges(pid: i32, ranges: &[(u64, u64)], mask: Option<(u64, u64)>) -> Vec<((u64, u64), u64)> {
    ranges
        .iter()
        .map(|&(s, e)| {
            let mut buf = vec![0u8; (e - s) as usize];
            let n = sys::process_vm_read(pid, &mut buf, &[(s, (e - s) as usize)]).unwrap();
            assert_eq!(n, buf.len());
            if let Some((ms, me)) = mask {
                for a in ms.max(s)..me.min(e) {
                    buf[(a - s) as usize] = 0;
                }
            }
            ((s, e), stasis::image::checksum(&buf))
        })
        .collect()
}

/// The rseq area of a live process (the test stops it for a moment to ask).
pub fn live_rseq_area(pid: i32) -> Option<(u64, u64)> {
    let t = stasis::remote::Tracee::seize(pid).unwrap();
    let r = sys::ptrace_get_rseq(pid).unwrap();
    t.detach(0).unwrap();
    (r.rseq_abi_pointer != 0).then_some((r.rseq_abi_pointer, r.rseq_abi_pointer + r.rseq_abi_size as u64))
}

/// The rseq area of the image's main thread, if it has one.
pub fn rseq_area(image: &Path) -> Option<(u64, u64)> {
    let img = stasis::image::Image::load(image).unwrap();
    let r = img.processes[0].core.threads[0].rseq?;
    Some((r.ptr, r.ptr + r.size as u64))
}

pub fn rss_kib(pid: i32) -> u64 {
    let text = read(Path::new(&format!("/proc/{pid}/smaps_rollup")));
    text.lines()
        .find_map(|l| l.strip_prefix("Rss:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("Rss in smaps_rollup")
}

/// The state an end-to-end test compares before the dump and after the restore.
pub struct Snapshot {
    pub mm: MmIdentity,
    pub maps: Vec<(u64, u64, String, u64, String)>,
    pub ranges: Vec<(u64, u64)>,
    pub bytes: Vec<Vec<u8>>,
    pub rss_kib: u64,
}

/// Layout, RSS and the bytes of every populated page (hashed after the dump, when the rseq
/// area is known).
pub fn snapshot(pid: i32) -> Snapshot {
    let rss = rss_kib(pid);
    let ranges = present_ranges(pid);
    let bytes = ranges
        .iter()
        .map(|&(s, e)| {
            let mut buf = vec![0u8; (e - s) as usize];
            sys::process_vm_read(pid, &mut buf, &[(s, (e - s) as usize)]).unwrap();
            buf
        })
        .collect();
    Snapshot {
        mm: mm_identity(pid),
        maps: normalized_maps(pid),
        ranges,
        bytes,
        rss_kib: rss,
    }
}

/// What the kernel keeps about an address space besides its mappings: /proc/PID/exe, the
/// auxiliary vector, the command line and environment it shows, and the mm bounds in stat.
#[derive(Debug, PartialEq)]
pub struct MmIdentity {
    pub exe: PathBuf,
    pub auxv: Vec<u8>,
    pub cmdline: Vec<u8>,
    pub environ: Vec<u8>,
    pub bounds: Vec<String>,
}

pub fn mm_identity(pid: i32) -> MmIdentity {
    let stat = read(Path::new(&format!("/proc/{pid}/stat")));
    let fields: Vec<String> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    // stat fields 26-28 (code, stack) and 45-51 (data, brk, args, env); fields[0] is field 3.
    let bounds = [26, 27, 28, 45, 46, 47, 48, 49, 50, 51]
        .iter()
        .map(|&f| fields[f - 3].clone())
        .collect();
    MmIdentity {
        exe: fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        auxv: fs::read(format!("/proc/{pid}/auxv")).unwrap(),
        cmdline: fs::read(format!("/proc/{pid}/cmdline")).unwrap(),
        environ: fs::read(format!("/proc/{pid}/environ")).unwrap(),
        bounds,
    }
}

/// The restored process is laid out the same, has the same mm fields and is not bigger.
pub fn assert_same_layout_and_size(before: &Snapshot, pid: i32) {
    assert_eq!(mm_identity(pid), before.mm, "mm fields differ after restore");
    let rss = rss_kib(pid);
    assert!(
        rss <= before.rss_kib,
        "restored process is bigger: RSS {rss} KiB, was {} KiB",
        before.rss_kib
    );
    let maps = normalized_maps(pid);
    assert_eq!(maps, before.maps, "layout differs after restore");
}

/// Compares a restored process with its snapshot: same layout, every page that was
/// populated holds the same bytes, and it is not bigger.
pub fn assert_same(before: &Snapshot, pid: i32, mask: Option<(u64, u64)>) {
    assert_same_layout_and_size(before, pid);
    let after = hash_ranges(pid, &before.ranges, mask);
    for ((range, buf), (_, a)) in before.ranges.iter().zip(&before.bytes).zip(&after) {
        let mut buf = buf.clone();
        if let Some((ms, me)) = mask {
            for x in ms.max(range.0)..me.min(range.1) {
                buf[(x - range.0) as usize] = 0;
            }
        }
        assert_eq!(
            stasis::image::checksum(&buf),
            *a,
            "memory at {:x}-{:x} differs after restore",
            range.0,
            range.1
        );
    }
}
