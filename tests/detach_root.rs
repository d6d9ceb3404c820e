//! `stasis restore -d` (needs root). In its own test binary: it makes the test process a
//! child subreaper, so the detached process is reparented to it and can be reaped here.

mod common;

use std::time::Duration;

use common::*;
use stasis::sys;

#[test]
fn root_restore_detached_keeps_running_after_stasis_exits() {
    sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0).unwrap();
    let s = Scratch::new("detach");
    let bin = workload("counter");
    let p = start(&s, &bin, &[]);
    let pid = p.pid;
    wait_for_line(&s.out(), "tick 2", Duration::from_secs(10));
    dump(&p, &s, &[]);
    p.reap();
    let o = stasis(&["restore", "-D", s.image().to_str().unwrap(), "-d"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), pid.to_string());
    // stasis is gone; the process runs on, ours now.
    let n = ticks(&s);
    wait_for_line(&s.out(), &format!("tick {}", n + 3), Duration::from_secs(10));
    let status = read(std::path::Path::new(&format!("/proc/{pid}/status")));
    assert!(status.contains(&format!("PPid:\t{}", std::process::id())), "{status}");
    sys::kill(pid, libc::SIGTERM).unwrap();
    loop {
        match sys::waitpid(pid, 0).unwrap() {
            Some(sys::WaitStatus::Exited(code)) => {
                assert_eq!(code, 0);
                break;
            }
            Some(sys::WaitStatus::Signaled(sig)) => panic!("killed by {sig}"),
            _ => {}
        }
    }
    assert_eq!(read(&s.out()).lines().last(), Some("PASS"));
}
