//! End-to-end tests (need root: they trace, dump and restore real processes). Each starts a
//! workload, dumps it, kills it, restores it, compares layout, memory and size, then lets
//! the workload check itself byte by byte.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// What an end-to-end test compares between the original and the restored process.
#[derive(Clone, Copy, PartialEq)]
enum Compare {
    /// Layout, size, and every populated page: for workloads idle in a syscall that writes
    /// nothing to user memory when interrupted.
    Everything,
    /// Layout and size only: the workload runs on (it checks its memory itself), or the
    /// kernel writes to it when the dump interrupts its syscall (nanosleep's remaining time).
    LayoutAndSize,
    Nothing,
}

/// Start, (snapshot), dump, reap, restore, (compare), SIGTERM; returns the verdict.
fn roundtrip(name: &str, args: &[&str], compare: Compare) -> String {
    let s = Scratch::new(name);
    let bin = workload(name);
    let p = start(&s, &bin, args);
    std::thread::sleep(Duration::from_millis(150));
    let pid = p.pid;
    let snap = (compare != Compare::Nothing).then(|| snapshot(pid));
    dump(&p, &s, &[]);
    p.reap();
    let (r, q) = restore(&s, pid, &bin, &[]);
    match (compare, snap) {
        (Compare::Everything, Some(snap)) => assert_same(&snap, q.pid, rseq_area(&s.image())),
        (Compare::LayoutAndSize, Some(snap)) => assert_same_layout_and_size(&snap, q.pid),
        _ => {}
    }
    finish(&s, r, q)
}

#[test]
fn root_memory_layout_and_contents() {
    assert_eq!(roundtrip("mem", &[], Compare::Everything), "PASS");
}

#[test]
fn root_registers_fpu_avx() {
    assert_eq!(roundtrip("regs", &[], Compare::Nothing), "PASS");
}

#[test]
fn root_signal_state() {
    assert_eq!(roundtrip("signals", &[], Compare::Everything), "PASS");
}

#[test]
fn root_files_and_process_state() {
    assert_eq!(roundtrip("files", &[], Compare::Everything), "PASS");
}

#[test]
fn root_interrupted_syscalls_restart() {
    for mode in ["pause", "sigsuspend", "clock_abs"] {
        assert_eq!(
            roundtrip("restart", &[mode], Compare::Everything),
            "PASS",
            "mode {mode}"
        );
    }
    for mode in ["nanosleep", "sleep", "poll", "select"] {
        assert_eq!(
            roundtrip("restart", &[mode], Compare::LayoutAndSize),
            "PASS",
            "mode {mode}"
        );
    }
}

#[test]
fn root_timed_sleep_keeps_its_length() {
    let s = Scratch::new("timed");
    let bin = workload("restart");
    let p = start(&s, &bin, &["timed"]);
    let pid = p.pid;
    std::thread::sleep(Duration::from_millis(500));
    dump(&p, &s, &[]);
    p.reap();
    let (r, q) = restore(&s, pid, &bin, &[]);
    wait_for_line(&s.out(), "slept", Duration::from_secs(10));
    assert_eq!(finish(&s, r, q), "PASS");
}

#[test]
fn root_python_counts_on() {
    let s = Scratch::new("python");
    let script = workloads_src().join("counter.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script).arg(s.work());
    let p = start_cmd(&s, cmd);
    let pid = p.pid;
    wait_for_line(&s.out(), "count 5", Duration::from_secs(10));
    let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    // It runs on between the snapshot and the dump: compare the layout only.
    let maps = normalized_maps(pid);
    let mm = mm_identity(pid);
    dump(&p, &s, &[]);
    p.reap();
    let before = read(&s.out()).lines().filter(|l| l.starts_with("count ")).count();
    let (r, q) = restore(&s, pid, &exe, &[]);
    assert_eq!(normalized_maps(q.pid), maps);
    assert_eq!(mm_identity(q.pid), mm);
    // It must count on from where it was, not start over.
    wait_for_line(&s.out(), &format!("count {}", before + 3), Duration::from_secs(10));
    let verdict = finish(&s, r, q);
    assert!(verdict.starts_with("PASS"), "{verdict}");
    let counts: Vec<u64> = read(&s.out())
        .lines()
        .filter_map(|l| l.strip_prefix("count ")?.parse().ok())
        .collect();
    assert_eq!(
        counts,
        (1..=counts.len() as u64).collect::<Vec<_>>(),
        "counts went on by one"
    );
}

#[test]
fn root_leave_running_is_undisturbed() {
    let s = Scratch::new("leave");
    let bin = workload("counter");
    let p = start(&s, &bin, &[]);
    wait_for_line(&s.out(), "tick 3", Duration::from_secs(10));
    dump(&p, &s, &["--leave-running"]);
    assert!(p.alive());
    let at_dump = ticks(&s);
    wait_for_line(&s.out(), &format!("tick {}", at_dump + 5), Duration::from_secs(10));
    p.term();
    let st = p.reap().unwrap();
    assert!(st.success(), "original after --leave-running: {st}");
    let out = read(&s.out());
    assert_eq!(out.lines().last(), Some("PASS"));
    let n: Vec<u64> = out
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect();
    assert_eq!(n, (1..=n.len() as u64).collect::<Vec<_>>(), "ticks went on one by one");
    // And the image it left restores too.
    let pid = stasis::image::Image::load(&s.image()).unwrap().inventory.root_pid;
    let (r, q) = restore(&s, pid, &bin, &[]);
    assert_eq!(finish(&s, r, q), "PASS");
}

fn assert_untouched(pid: i32) {
    let status = read(Path::new(&format!("/proc/{pid}/status")));
    assert!(status.lines().any(|l| l == "TracerPid:\t0"), "still traced:\n{status}");
    let state = status.lines().find(|l| l.starts_with("State:")).unwrap_or("");
    assert!(!state.contains("stopped") && !state.contains("tracing"), "{state}");
}

#[test]
fn root_refuses_aio_and_leaves_target_running() {
    let s = Scratch::new("aio");
    let bin = workload("refuse_aio");
    let p = start(&s, &bin, &[]);
    let before = normalized_maps(p.pid);
    let pid = p.pid.to_string();
    let o = stasis(&["dump", "-t", &pid, "-D", s.image().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("asynchronous I/O") && e.contains("[aio]"), "{e}");
    assert_eq!(e.lines().count(), 1, "one clear line: {e}");
    assert!(!s.image().join("inventory.img").exists());
    assert_untouched(p.pid);
    assert_eq!(normalized_maps(p.pid), before);
    p.term();
    assert!(p.reap().unwrap().success());
    assert_eq!(read(&s.out()).lines().last(), Some("PASS"));
}

#[test]
fn root_refuses_pipes_and_threads() {
    let s = Scratch::new("pipe");
    let bin = workload("counter");
    let mut cmd = Command::new(&bin);
    cmd.arg(s.work()).stdin(Stdio::piped());
    let p = start_cmd_keep_stdin(&s, cmd);
    let pid = p.pid.to_string();
    let o = stasis(&["dump", "-t", &pid, "-D", s.image().to_str().unwrap()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("fd 0") && e.contains("pipe"), "{e}");
    assert_untouched(p.pid);
    p.term();
    assert!(p.reap().unwrap().success());

    let s = Scratch::new("threads");
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "import os,threading,time\nthreading.Thread(target=time.sleep,args=(60,),daemon=True).start()\nprint('ready',os.getpid(),flush=True)\ntime.sleep(60)",
    ]);
    let p = start_cmd(&s, cmd);
    let pid = p.pid.to_string();
    let o = stasis(&["dump", "-t", &pid, "-D", s.image().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("2 threads"), "{}", stderr(&o));
    assert_untouched(p.pid);
}

fn start_cmd_keep_stdin(s: &Scratch, cmd: Command) -> Proc {
    // start_cmd sets stdin to /dev/null; here the pipe is the point.
    let mut cmd = cmd;
    cmd.stdout(fs::File::create(s.out()).unwrap())
        .stderr(fs::File::create(s.err()).unwrap());
    stasis::sys::close_inherited_fds(&mut cmd);
    let child = cmd.spawn().unwrap();
    let p = Proc::from_child(child);
    wait_for_line(&s.out(), "ready", Duration::from_secs(10));
    p
}

/// stasis killed at any point after the task was stopped: the task goes on as before.
#[test]
fn root_dump_killed_midway_leaves_target_fine() {
    for point in ["dump:seized", "dump:pages-copied", "dump:before-write"] {
        let s = Scratch::new("killed");
        let bin = workload("counter");
        let p = start(&s, &bin, &[]);
        let pid = p.pid.to_string();
        let img = s.image();
        let args = ["dump", "-t", &pid, "-D", img.to_str().unwrap()];
        let mut d = stasis_at_failpoint(&s, &args, &format!("{point}=pause"));
        d.kill().unwrap();
        d.wait().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_untouched(p.pid);
        let n = ticks(&s);
        wait_for_line(&s.out(), &format!("tick {}", n + 2), Duration::from_secs(10));
        p.term();
        assert!(p.reap().unwrap().success(), "{point}");
        assert_eq!(read(&s.out()).lines().last(), Some("PASS"), "{point}");
    }
}

/// A dump that fails at any step leaves the target as it was, and the image directory as it
/// was: without an image, or with the previous one intact.
#[test]
fn root_failed_dump_leaves_target_and_directory() {
    for (point, earlier_image) in [
        ("dump:seized", false),
        ("dump:injecting", false),
        ("dump:pages-copied", true),
        ("dump:before-write", true),
    ] {
        let s = Scratch::new("faildump");
        let bin = workload("mem");
        let p = start(&s, &bin, &[]);
        if earlier_image {
            dump(&p, &s, &["--leave-running"]);
        }
        let files = |dir: &Path| -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        };
        let before_files = files(&s.image());
        let before = snapshot(p.pid);
        let pid = p.pid.to_string();
        let o = stasis_with_failpoint(
            &["dump", "-t", &pid, "-D", s.image().to_str().unwrap()],
            Some(&format!("{point}=error")),
        );
        assert_eq!(o.status.code(), Some(1), "{point}");
        assert!(stderr(&o).contains(point), "{point}: {}", stderr(&o));
        assert_eq!(files(&s.image()), before_files, "{point}: the directory changed");
        if earlier_image {
            stasis::image::Image::load(&s.image()).expect("the earlier image is intact");
        }
        assert_untouched(p.pid);
        assert_same(&before, p.pid, live_rseq_area(p.pid));
        p.term();
        assert!(p.reap().unwrap().success(), "{point}");
        assert_eq!(read(&s.out()).lines().last(), Some("PASS"), "{point}");
    }
}

#[test]
fn root_failed_restore_leaves_no_process() {
    let s = Scratch::new("failrestore");
    let bin = workload("counter");
    let p = start(&s, &bin, &[]);
    let pid = p.pid;
    dump(&p, &s, &[]);
    p.reap();
    for point in ["restore:stopped", "restore:built"] {
        let o = stasis_with_failpoint(
            &["restore", "-D", s.image().to_str().unwrap()],
            Some(&format!("{point}=error")),
        );
        assert_eq!(o.status.code(), Some(1), "{point}");
        assert!(stderr(&o).contains(point), "{}", stderr(&o));
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{point}: process {pid} left behind"
        );
    }
    let (r, q) = restore(&s, pid, &bin, &[]);
    assert_eq!(finish(&s, r, q), "PASS");
}

#[test]
fn root_corrupt_or_unusable_images_are_refused() {
    let s = Scratch::new("corrupt");
    let bin = workload("counter");
    let p = start(&s, &bin, &[]);
    let pid = p.pid;
    dump(&p, &s, &["--leave-running"]);
    let img = s.image();
    let restore_err = |what: &str| {
        let o = stasis(&["restore", "-D", img.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{what}");
        let e = stderr(&o);
        assert!(!e.contains("panicked"), "{what}: {e}");
        e
    };
    // The pid is still taken by the original.
    assert!(restore_err("pid in use").contains(&format!("pid {pid} is in use")));
    p.term();
    p.reap();

    let pages = img.join("pages.img");
    let good = fs::read(&pages).unwrap();
    let mut bad = good.clone();
    let mid = 4096 + (bad.len() - 4096) / 2;
    bad[mid] ^= 0x10;
    fs::write(&pages, &bad).unwrap();
    let e = restore_err("flipped page bit");
    assert!(e.contains("pages.img") && e.contains("checksum"), "{e}");
    fs::write(&pages, &good).unwrap();

    let mm = img.join(format!("mm-{pid}.img"));
    let good_mm = fs::read(&mm).unwrap();
    fs::write(&mm, &good_mm[..good_mm.len() / 2]).unwrap();
    let e = restore_err("truncated mm");
    assert!(e.contains(&format!("mm-{pid}.img")), "{e}");
    fs::write(&mm, &good_mm).unwrap();

    fs::rename(img.join("inventory.img"), img.join("inv.bak")).unwrap();
    assert!(restore_err("no inventory").contains("incomplete"));
    fs::rename(img.join("inv.bak"), img.join("inventory.img")).unwrap();
    assert!(!Path::new(&format!("/proc/{pid}")).exists());

    // Intact again: it restores.
    let (r, q) = restore(&s, pid, &bin, &[]);
    assert_eq!(finish(&s, r, q), "PASS");
}

#[test]
fn root_second_dump_of_same_pid_is_refused() {
    let s = Scratch::new("twodumps");
    let bin = workload("counter");
    let p = start(&s, &bin, &[]);
    let pid = p.pid.to_string();
    let mut first = stasis_at_failpoint(
        &s,
        &["dump", "-t", &pid, "-D", s.image().to_str().unwrap()],
        "dump:seized=pause",
    );
    let second = s.dir.join("second");
    let o = stasis(&["dump", "-t", &p.pid.to_string(), "-D", second.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("another stasis dump"), "{}", stderr(&o));
    first.kill().unwrap();
    first.wait().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_untouched(p.pid);
    p.term();
    assert!(p.reap().unwrap().success());
}

#[test]
fn root_inspect_json_and_image_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new("inspect");
    let bin = workload("mem");
    let p = start(&s, &bin, &[]);
    let pid = p.pid;
    // A directory holding other files too: the image moves in file by file beside them.
    fs::create_dir_all(s.image()).unwrap();
    fs::write(s.image().join("notes.txt"), "mine").unwrap();
    dump(&p, &s, &["--leave-running"]);
    assert_eq!(fs::read_to_string(s.image().join("notes.txt")).unwrap(), "mine");
    fs::remove_file(s.image().join("notes.txt")).unwrap();
    for e in fs::read_dir(s.image()).unwrap().flatten() {
        let mode = e.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{:?}", e.file_name());
    }
    // Dumped again (now exchanged whole), it is still a valid image and nothing is left over.
    dump(&p, &s, &["--leave-running"]);
    let leftovers: Vec<_> = fs::read_dir(&s.dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let o = stasis(&["inspect", s.image().to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let proc0 = &v["processes"][0];
    assert_eq!(proc0["pid"], pid);
    let kinds: Vec<&str> = proc0["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    for k in ["heap", "stack", "file", "vdso", "anon"] {
        assert!(kinds.contains(&k), "no {k} mapping in {kinds:?}");
    }
    assert!(kinds.iter().any(|k| k.starts_with("shmem")), "{kinds:?}");
    assert!(v["totals"]["pages_stored"].as_u64().unwrap() > 0);
    assert!(
        v["totals"]["zero_pages"].as_u64().unwrap() > 0,
        "mem.c zeroes pages it wrote"
    );
    assert!(!proc0["fds"].as_array().unwrap().is_empty());
    let text = stasis(&["inspect", s.image().to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("totals:"));
    p.term();
    p.reap();
}

#[test]
fn root_check_and_demo() {
    let o = stasis(&["check"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}");
    assert!(out.contains("PAGEMAP_SCAN") && out.contains("clone3"), "{out}");
    let o = stasis(&["demo"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    assert!(out.contains("demo OK"), "{out}");
}

#[test]
fn root_shell_job_terminal_fds() {
    let s = Scratch::new("shelljob");
    let bin = workload("counter");
    let (_master, slave) = stasis::sys::openpty().unwrap();
    let mut cmd = Command::new(&bin);
    cmd.arg(s.work())
        .stdin(slave.try_clone().unwrap())
        .stdout(fs::File::create(s.out()).unwrap())
        .stderr(slave.try_clone().unwrap());
    stasis::sys::close_inherited_fds(&mut cmd);
    let p = Proc::from_child(cmd.spawn().unwrap());
    wait_for_line(&s.out(), "ready", Duration::from_secs(10));
    let pid = p.pid;
    let tty = fs::read_link(format!("/proc/{pid}/fd/0")).unwrap();
    assert!(tty.to_string_lossy().starts_with("/dev/pts/"));

    let img = s.image();
    let o = stasis(&["dump", "-t", &pid.to_string(), "-D", img.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("fd 0") && e.contains("terminal") && e.contains("--shell-job"),
        "{e}"
    );
    assert_untouched(pid);

    dump(&p, &s, &["--shell-job"]);
    p.reap();
    let o = stasis(&["restore", "-D", img.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--shell-job"), "{}", stderr(&o));

    // The restorer's terminal takes the place of the old one.
    let mut cmd = Command::new(stasis_bin());
    cmd.args(["restore", "-D", img.to_str().unwrap(), "--shell-job"])
        .stdin(slave.try_clone().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    stasis::sys::close_inherited_fds(&mut cmd);
    let mut r = cmd.spawn().unwrap();
    wait_restored(&mut r, pid, &bin);
    let q = Proc::adopt(pid);
    assert_eq!(fs::read_link(format!("/proc/{pid}/fd/0")).unwrap(), tty);
    assert_eq!(fs::read_link(format!("/proc/{pid}/fd/2")).unwrap(), tty);
    assert_eq!(finish(&s, r, q), "PASS");
}

/// A read blocked on a terminal goes on reading, from the restorer's terminal.
#[test]
fn root_blocking_read_on_terminal_restarts() {
    use std::io::Write;
    let s = Scratch::new("ttyread");
    let bin = workload("restart");
    let (master, slave) = stasis::sys::openpty().unwrap();
    let mut master = fs::File::from(master);
    let mut cmd = Command::new(&bin);
    cmd.arg(s.work())
        .arg("read")
        .stdin(slave.try_clone().unwrap())
        .stdout(fs::File::create(s.out()).unwrap())
        .stderr(fs::File::create(s.err()).unwrap());
    stasis::sys::close_inherited_fds(&mut cmd);
    let p = Proc::from_child(cmd.spawn().unwrap());
    let pid = p.pid;
    wait_for_line(&s.out(), "ready", Duration::from_secs(10));
    master.write_all(b"one\n").unwrap();
    wait_for_line(&s.out(), "got one", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(50));
    dump(&p, &s, &["--shell-job"]);
    p.reap();
    let mut cmd = Command::new(stasis_bin());
    cmd.args(["restore", "-D", s.image().to_str().unwrap(), "--shell-job"])
        .stdin(slave.try_clone().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    stasis::sys::close_inherited_fds(&mut cmd);
    let mut r = cmd.spawn().unwrap();
    wait_restored(&mut r, pid, &bin);
    master.write_all(b"two\n").unwrap();
    wait_for_line(&s.out(), "got two", Duration::from_secs(10));
    assert_eq!(finish(&s, r, Proc::adopt(pid)), "PASS");
}

/// Another process shares the address space (and keeps changing it): it could change the
/// memory while it is copied, so the dump refuses before touching anything, naming it, and
/// the target goes on.
#[test]
fn root_shared_address_space_is_refused() {
    let s = Scratch::new("aspace");
    let bin = workload("aspace_change");
    let p = start(&s, &bin, &[]);
    let pid = p.pid.to_string();
    let o = stasis(&["dump", "-t", &pid, "-D", s.image().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("shares its address space"), "{}", stderr(&o));
    assert!(!s.image().join("inventory.img").exists());
    assert_untouched(p.pid);
    p.term();
    assert!(p.reap().unwrap().success());
    assert_eq!(read(&s.out()).lines().last(), Some("PASS"));
}

/// An fd above the restorer's own RLIMIT_NOFILE comes back, and so does the limit.
#[test]
fn root_high_fd_numbers() {
    let s = Scratch::new("highfd");
    let script = r#"
import os, resource, signal, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
path = os.path.join(sys.argv[1], "data")
with open(path, "w") as f:
    f.write("0123456789")
fd = os.open(path, os.O_RDONLY)
os.dup2(fd, 3000)
os.close(fd)
os.lseek(3000, 4, os.SEEK_SET)
signal.signal(signal.SIGTERM, lambda *a: None)
print("ready", os.getpid(), flush=True)
signal.pause()
ok = os.read(3000, 3) == b"456" and resource.getrlimit(resource.RLIMIT_NOFILE) == (4096, 4096)
print("PASS" if ok else "FAIL: fd 3000 or the limit changed", flush=True)
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]).arg(s.work());
    let p = start_cmd(&s, cmd);
    let pid = p.pid;
    let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    dump(&p, &s, &[]);
    p.reap();
    let (r, q) = restore(&s, pid, &exe, &[]);
    assert_eq!(finish(&s, r, q), "PASS");
}

/// Runs a python3 workload script through dump, kill, restore and SIGTERM.
fn python_roundtrip(name: &str, script: &str) -> String {
    let s = Scratch::new(name);
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]).arg(s.work());
    let p = start_cmd(&s, cmd);
    let pid = p.pid;
    let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    dump(&p, &s, &[]);
    p.reap();
    let (r, q) = restore(&s, pid, &exe, &[]);
    finish(&s, r, q)
}

/// ids, groups, capability sets, no_new_privs, parent-death signal and dumpable come back
/// (some of them are reset by the kernel whenever ids change: the order matters).
#[test]
fn root_credentials_and_security_state() {
    let script = r#"
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(24, 21, 0, 0, 0) == 0          # PR_CAPBSET_DROP CAP_SYS_ADMIN
assert libc.prctl(28, 1, 0, 0, 0) == 0           # PR_SET_SECUREBITS SECBIT_NOROOT
os.setgroups([4242, 4343])
os.setresgid(1234, 1235, 1236)
os.setresuid(1234, 1235, 1236)
assert libc.prctl(38, 1, 0, 0, 0) == 0           # PR_SET_NO_NEW_PRIVS
assert libc.prctl(1, 12, 0, 0, 0) == 0           # PR_SET_PDEATHSIG SIGUSR2
assert libc.prctl(4, 1, 0, 0, 0) == 0            # PR_SET_DUMPABLE
def state():
    keep = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")
    lines = open("/proc/self/status").read().splitlines()
    st = {l.split(":")[0]: l.split(":", 1)[1].strip() for l in lines if l.split(":")[0] in keep}
    pd = ctypes.c_int()
    libc.prctl(2, ctypes.byref(pd), 0, 0, 0)     # PR_GET_PDEATHSIG
    st["pdeathsig"] = pd.value
    st["dumpable"] = libc.prctl(3, 0, 0, 0, 0)   # PR_GET_DUMPABLE
    st["securebits"] = libc.prctl(27, 0, 0, 0, 0) # PR_GET_SECUREBITS
    return st
before = state()
signal.signal(signal.SIGTERM, lambda *a: None)
print("ready", os.getpid(), flush=True)
signal.pause()
after = state()
print("PASS" if after == before else f"FAIL: {before} -> {after}", flush=True)
"#;
    assert_eq!(python_roundtrip("creds", script), "PASS");
}

/// A chrooted process comes back in its root, and the files stasis opens for it are the
/// restorer's (not the jail's).
#[test]
fn root_chrooted_process() {
    let script = r#"
import os, signal, sys
jail = os.path.join(sys.argv[1], "jail")
os.mkdir(jail)
with open(os.path.join(jail, "marker"), "w") as f:
    f.write("jail")
os.chdir(jail)
os.chroot(jail)
signal.signal(signal.SIGTERM, lambda *a: None)
print("ready", os.getpid(), flush=True)
signal.pause()
ok = os.listdir("/") == ["marker"] and open("/marker").read() == "jail" and os.getcwd() == "/"
print("PASS" if ok else f"FAIL: root is {os.listdir('/')}, cwd {os.getcwd()}", flush=True)
"#;
    assert_eq!(python_roundtrip("chroot", script), "PASS");
}

/// What stasis cannot bring back is refused before the target is touched: seccomp, and
/// devices whose state lives in the open file (a pty master).
#[test]
fn root_refuses_seccomp_and_stateful_devices() {
    let cases = [
        (
            "seccomp",
            r#"
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
class F(ctypes.Structure): _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]
class P(ctypes.Structure): _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(F))]
allow = (F * 1)(F(0x06, 0, 0, 0x7fff0000))
assert libc.prctl(38, 1, 0, 0, 0) == 0
assert libc.prctl(22, 2, ctypes.byref(P(1, allow)), 0, 0) == 0
signal.signal(signal.SIGTERM, lambda *a: None)
print("ready", os.getpid(), flush=True)
signal.pause()
print("PASS", flush=True)
"#,
            "seccomp",
        ),
        (
            "ptmx",
            r#"
import os, signal
fd = os.open("/dev/ptmx", os.O_RDWR)
signal.signal(signal.SIGTERM, lambda *a: None)
print("ready", os.getpid(), flush=True)
signal.pause()
print("PASS", flush=True)
"#,
            "device keeps state",
        ),
    ];
    for (name, script, expect) in cases {
        let s = Scratch::new(name);
        let mut cmd = Command::new("python3");
        cmd.args(["-c", script]).arg(s.work());
        let p = start_cmd(&s, cmd);
        let o = stasis(&["dump", "-t", &p.pid.to_string(), "-D", s.image().to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        assert!(stderr(&o).contains(expect), "{name}: {}", stderr(&o));
        assert_untouched(p.pid);
        p.term();
        assert!(p.reap().unwrap().success(), "{name}");
        assert_eq!(read(&s.out()).lines().last(), Some("PASS"), "{name}");
    }
}

fn state_of(pid: i32) -> char {
    let stat = read(Path::new(&format!("/proc/{pid}/stat")));
    stat.rsplit(')')
        .next()
        .unwrap_or("")
        .trim_start()
        .chars()
        .next()
        .unwrap_or('?')
}

fn wait_state(pid: i32, want: char) {
    let start = std::time::Instant::now();
    while state_of(pid) != want {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "process {pid} never reached state {want}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A process stopped by job control (SIGSTOP) is dumped stopped and comes back stopped;
/// SIGCONT then lets it go on.
#[test]
fn root_stopped_process_stays_stopped() {
    let s = Scratch::new("stopped");
    let bin = workload("counter");
    let p = start(&s, &bin, &[]);
    let pid = p.pid;
    wait_for_line(&s.out(), "tick 2", Duration::from_secs(10));
    stasis::sys::kill(pid, libc::SIGSTOP).unwrap();
    wait_state(pid, 'T');
    dump(&p, &s, &[]);
    p.reap();
    let (r, q) = restore(&s, pid, &bin, &[]);
    wait_state(pid, 'T');
    let n = ticks(&s);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ticks(&s), n, "it ran while it should be stopped");
    stasis::sys::kill(pid, libc::SIGCONT).unwrap();
    wait_for_line(&s.out(), &format!("tick {}", n + 2), Duration::from_secs(10));
    assert_eq!(finish(&s, r, q), "PASS");
}

/// A SIGSTOP sent while stasis runs syscalls inside the task is held back, not lost: the dump
/// goes on, and the task is stopped once it is let go.
#[test]
fn root_sigstop_during_dump_is_kept() {
    let s = Scratch::new("stopduring");
    let bin = workload("counter");
    let p = start(&s, &bin, &[]);
    let pid = p.pid;
    let pid_arg = pid.to_string();
    let img = s.image();
    let args = ["dump", "-t", &pid_arg, "-D", img.to_str().unwrap(), "--leave-running"];
    let mut d = stasis_at_failpoint(&s, &args, "dump:injecting=delay");
    stasis::sys::kill(pid, libc::SIGSTOP).unwrap();
    assert!(d.wait().unwrap().success(), "{}", read(&s.dir.join("stasis.err")));
    wait_state(pid, 'T');
    let n = ticks(&s);
    stasis::sys::kill(pid, libc::SIGCONT).unwrap();
    wait_for_line(&s.out(), &format!("tick {}", n + 2), Duration::from_secs(10));
    p.term();
    assert!(p.reap().unwrap().success());
    assert_eq!(read(&s.out()).lines().last(), Some("PASS"));
}
