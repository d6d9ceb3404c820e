//! Failure injection for tests: `STASIS_FAILPOINT=NAME=error` makes the named point fail,
//! `NAME=pause` makes stasis announce it on stderr and wait there (for a test to kill it),
//! `NAME=delay` announces it and goes on after a second (for a test to act meanwhile).
//! Unset, a point costs one environment lookup.

use crate::error::{Error, Result};

pub fn hit(name: &str) -> Result<()> {
    let Ok(spec) = std::env::var("STASIS_FAILPOINT") else {
        return Ok(());
    };
    for item in spec.split(',') {
        match item.split_once('=') {
            Some((n, "error")) if n == name => {
                return Err(Error::Restore(format!("failpoint {name} triggered")));
            }
            Some((n, "pause")) if n == name => {
                eprintln!("stasis: failpoint {name} reached");
                std::thread::sleep(std::time::Duration::from_secs(60));
            }
            Some((n, "delay")) if n == name => {
                eprintln!("stasis: failpoint {name} reached");
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            _ => {}
        }
    }
    Ok(())
}
