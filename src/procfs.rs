//! Readers for the /proc files stasis needs: maps/smaps, stat, status, fdinfo, auxv.
//!
//! The parsers take the text so they can be tested on fixed input; the `read_*` functions
//! fetch it for a pid.

use std::fs;

use crate::error::{Error, Result};
use crate::sys::Pid;

/// One line of /proc/PID/maps, plus its VmFlags when read from smaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    pub start: u64,
    pub end: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub shared: bool,
    pub offset: u64,
    pub dev: (u32, u32),
    pub inode: u64,
    /// The path or the kernel's name (`[heap]`, `[stack]`, `[vdso]`); empty for plain anon.
    pub path: String,
    /// The two-letter VmFlags codes (smaps only).
    pub vm_flags: Vec<String>,
}

impl MapEntry {
    pub fn has_flag(&self, code: &str) -> bool {
        self.vm_flags.iter().any(|f| f == code)
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The kernel's vdso and its data pages ([vvar], [vvar_vclock]): moved, never recreated.
    pub fn is_vdso_or_vvar(&self) -> bool {
        self.path == "[vdso]" || self.path.starts_with("[vvar")
    }

    /// The same layout fields that /proc/PID/maps shows, for change detection.
    pub fn same_layout(&self, o: &MapEntry) -> bool {
        (
            self.start,
            self.end,
            self.read,
            self.write,
            self.exec,
            self.shared,
            self.offset,
            self.inode,
            &self.path,
        ) == (
            o.start, o.end, o.read, o.write, o.exec, o.shared, o.offset, o.inode, &o.path,
        )
    }
}

fn perr(pid: Pid, file: &str, reason: impl Into<String>) -> Error {
    Error::Proc {
        pid,
        file: file.to_string(),
        reason: reason.into(),
    }
}

fn read_text(pid: Pid, file: &str) -> Result<String> {
    let path = format!("/proc/{pid}/{file}");
    fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Target {
                pid,
                reason: "no such process".into(),
            }
        } else {
            perr(pid, file, e.to_string())
        }
    })
}

fn parse_map_line(line: &str) -> Option<MapEntry> {
    let mut rest = line;
    let mut next = || {
        let t = rest.trim_start_matches(' ');
        let end = t.find(' ').unwrap_or(t.len());
        let (tok, r) = t.split_at(end);
        rest = r;
        tok
    };
    let range = next();
    let perms = next().as_bytes();
    let offset = next();
    let dev = next();
    let inode = next();
    let path = rest.trim_start_matches(' ').to_string();
    let (s, e) = range.split_once('-')?;
    let (maj, min) = dev.split_once(':')?;
    if perms.len() != 4 {
        return None;
    }
    Some(MapEntry {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        read: perms[0] == b'r',
        write: perms[1] == b'w',
        exec: perms[2] == b'x',
        shared: perms[3] == b's',
        offset: u64::from_str_radix(offset, 16).ok()?,
        dev: (u32::from_str_radix(maj, 16).ok()?, u32::from_str_radix(min, 16).ok()?),
        inode: inode.parse().ok()?,
        path,
        vm_flags: Vec::new(),
    })
}

/// Parses /proc/PID/maps or /proc/PID/smaps text.
pub fn parse_maps(text: &str) -> Option<Vec<MapEntry>> {
    let mut out: Vec<MapEntry> = Vec::new();
    for line in text.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            out.last_mut()?.vm_flags = flags.split_whitespace().map(str::to_string).collect();
            continue;
        }
        // smaps detail lines are "Key:   value"; mapping lines start with a hex range.
        let first = line.split(' ').next().unwrap_or("");
        if first.contains('-') && first.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            out.push(parse_map_line(line)?);
        } else if !line.contains(':') {
            return None;
        }
    }
    Some(out)
}

pub fn read_maps(pid: Pid) -> Result<Vec<MapEntry>> {
    parse_maps(&read_text(pid, "maps")?).ok_or_else(|| perr(pid, "maps", "unparsable line"))
}

pub fn read_smaps(pid: Pid) -> Result<Vec<MapEntry>> {
    parse_maps(&read_text(pid, "smaps")?).ok_or_else(|| perr(pid, "smaps", "unparsable line"))
}

/// The fields of /proc/PID/stat stasis uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    /// R, S, D, T (stopped by a signal), t (tracing stop), Z ...
    pub state: char,
    pub ppid: Pid,
    pub pgrp: Pid,
    pub session: Pid,
    pub start_code: u64,
    pub end_code: u64,
    pub start_stack: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

pub fn parse_stat(text: &str) -> Option<Stat> {
    // comm may hold spaces and parentheses: it ends at the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let f: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // f[0] is field 3 (state); field N is f[N - 3].
    let n = |i: usize| -> Option<u64> { f.get(i - 3)?.parse().ok() };
    let p = |i: usize| -> Option<Pid> { f.get(i - 3)?.parse().ok() };
    Some(Stat {
        comm,
        state: f.first()?.chars().next()?,
        ppid: p(4)?,
        pgrp: p(5)?,
        session: p(6)?,
        start_code: n(26)?,
        end_code: n(27)?,
        start_stack: n(28)?,
        start_data: n(45)?,
        end_data: n(46)?,
        start_brk: n(47)?,
        arg_start: n(48)?,
        arg_end: n(49)?,
        env_start: n(50)?,
        env_end: n(51)?,
    })
}

pub fn read_stat(pid: Pid) -> Result<Stat> {
    parse_stat(&read_text(pid, "stat")?).ok_or_else(|| perr(pid, "stat", "unparsable"))
}

/// The fields of /proc/PID/status stasis uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub umask: u32,
    pub uid: [u32; 4],
    pub gid: [u32; 4],
    pub groups: Vec<u32>,
    pub threads: u64,
    pub tracer_pid: Pid,
    pub seccomp: u32,
    pub no_new_privs: bool,
    pub caps: crate::image::Caps,
}

pub fn parse_status(text: &str) -> Option<Status> {
    let mut st = Status::default();
    let ids = |v: &str| -> Option<[u32; 4]> {
        let x: Vec<u32> = v.split_whitespace().map(|s| s.parse().ok()).collect::<Option<_>>()?;
        x.try_into().ok()
    };
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        let v = v.trim();
        match k {
            "Umask" => st.umask = u32::from_str_radix(v, 8).ok()?,
            "Uid" => st.uid = ids(v)?,
            "Gid" => st.gid = ids(v)?,
            "Groups" => st.groups = v.split_whitespace().map(|s| s.parse().ok()).collect::<Option<_>>()?,
            "Threads" => st.threads = v.parse().ok()?,
            "TracerPid" => st.tracer_pid = v.parse().ok()?,
            "Seccomp" => st.seccomp = v.parse().ok()?,
            "NoNewPrivs" => st.no_new_privs = v == "1",
            "CapInh" => st.caps.inheritable = u64::from_str_radix(v, 16).ok()?,
            "CapPrm" => st.caps.permitted = u64::from_str_radix(v, 16).ok()?,
            "CapEff" => st.caps.effective = u64::from_str_radix(v, 16).ok()?,
            "CapBnd" => st.caps.bounding = u64::from_str_radix(v, 16).ok()?,
            "CapAmb" => st.caps.ambient = u64::from_str_radix(v, 16).ok()?,
            _ => {}
        }
    }
    Some(st)
}

pub fn read_status(pid: Pid) -> Result<Status> {
    parse_status(&read_text(pid, "status")?).ok_or_else(|| perr(pid, "status", "unparsable"))
}

/// /proc/PID/limits: (soft, hard) per resource, in resource-number order (RLIMIT_CPU
/// first), unlimited as u64::MAX. Unlike prlimit, readable for any process root may trace.
pub fn parse_limits(text: &str) -> Option<Vec<(u64, u64)>> {
    let value = |v: &str| -> Option<u64> {
        if v == "unlimited" {
            Some(u64::MAX)
        } else {
            v.parse().ok()
        }
    };
    text.lines()
        .skip(1)
        .map(|l| {
            // "Max cpu time              unlimited            unlimited            seconds"
            let fields: Vec<&str> = l.get(26..)?.split_whitespace().collect();
            Some((value(fields.first()?)?, value(fields.get(1)?)?))
        })
        .collect()
}

pub fn read_limits(pid: Pid) -> Result<Vec<(u64, u64)>> {
    parse_limits(&read_text(pid, "limits")?).ok_or_else(|| perr(pid, "limits", "unparsable"))
}

/// /proc/PID/auxv as (type, value) words, ending with AT_NULL.
pub fn read_auxv(pid: Pid) -> Result<Vec<u64>> {
    let bytes = fs::read(format!("/proc/{pid}/auxv")).map_err(|e| perr(pid, "auxv", e.to_string()))?;
    let words: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().expect("chunk of 8")))
        .collect();
    // Keep up to and including the AT_NULL pair.
    let mut out = Vec::new();
    for pair in words.chunks_exact(2) {
        out.extend_from_slice(pair);
        if pair[0] == 0 {
            break;
        }
    }
    Ok(out)
}

/// /proc/PID/fdinfo/FD: the position and the open flags (octal in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdInfo {
    pub pos: u64,
    pub flags: u32,
}

pub fn parse_fdinfo(text: &str) -> Option<FdInfo> {
    let mut pos = None;
    let mut flags = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("pos:") {
            pos = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("flags:") {
            flags = u32::from_str_radix(v.trim(), 8).ok();
        }
    }
    Some(FdInfo {
        pos: pos?,
        flags: flags?,
    })
}

pub fn read_fdinfo(pid: Pid, fd: i32) -> Result<FdInfo> {
    let file = format!("fdinfo/{fd}");
    parse_fdinfo(&read_text(pid, &file)?).ok_or_else(|| perr(pid, &file, "unparsable"))
}

/// The open fd numbers of a process, sorted.
pub fn list_fds(pid: Pid) -> Result<Vec<i32>> {
    let dir = fs::read_dir(format!("/proc/{pid}/fd")).map_err(|e| perr(pid, "fd", e.to_string()))?;
    let mut fds: Vec<i32> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    fds.sort_unstable();
    Ok(fds)
}

pub fn readlink(pid: Pid, file: &str) -> Result<String> {
    let p = fs::read_link(format!("/proc/{pid}/{file}")).map_err(|e| perr(pid, file, e.to_string()))?;
    p.into_os_string()
        .into_string()
        .map_err(|_| perr(pid, file, "path is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_maps_and_smaps() {
        let text = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 fe:00 1234                       /usr/bin/my prog
Size:                  8 kB
VmFlags: rd mr mw me
7ffd1000-7ffd3000 rw-p 00000000 00:00 0                          [stack]
VmFlags: rd wr mr mw me gd ac
7f00-8000 rw-s 00001000 00:01 99 /dev/zero (deleted)
";
        let m = parse_maps(text).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].path, "/usr/bin/my prog");
        assert_eq!(m[0].dev, (0xfe, 0));
        assert!(m[1].has_flag("gd") && m[1].write && !m[1].shared);
        assert!(m[2].shared && m[2].offset == 0x1000 && m[2].inode == 99);
        assert!(parse_maps("garbage line\n").is_none());
    }

    #[test]
    fn parses_stat_with_odd_comm() {
        let mut fields = vec!["S".to_string()];
        for i in 4..=52 {
            fields.push(i.to_string());
        }
        let text = format!("42 (a) b (c) {}\n", fields.join(" "));
        let s = parse_stat(&text).unwrap();
        assert_eq!(s.comm, "a) b (c");
        assert_eq!((s.ppid, s.pgrp, s.session), (4, 5, 6));
        assert_eq!((s.start_code, s.env_end), (26, 51));
    }

    #[test]
    fn parses_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max file size             1024                 2048                 bytes     \n";
        assert_eq!(parse_limits(text).unwrap(), vec![(u64::MAX, u64::MAX), (1024, 2048)]);
    }

    #[test]
    fn parses_status_and_fdinfo() {
        let st = parse_status(
            "Umask:\t0027\nUid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nGroups:\t10 11 \nThreads:\t1\nTracerPid:\t0\n",
        )
        .unwrap();
        assert_eq!(st.umask, 0o27);
        assert_eq!(st.uid, [1, 2, 3, 4]);
        assert_eq!(st.groups, vec![10, 11]);
        let fi = parse_fdinfo("pos:\t1234\nflags:\t02100001\nmnt_id:\t20\n").unwrap();
        assert_eq!(
            fi,
            FdInfo {
                pos: 1234,
                flags: 0o2100001
            }
        );
    }
}
