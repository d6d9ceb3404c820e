//! The library's error type: every failure names what it was doing and what was wrong.

use std::io;

use crate::image::ImageError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or file operation of stasis itself failed.
    #[error("{what}: {err}")]
    Sys { what: String, err: io::Error },
    /// A syscall injected into the target failed.
    #[error("process {pid}: {call} failed: {err}")]
    Remote { pid: i32, call: String, err: io::Error },
    /// The target holds state stasis cannot checkpoint; nothing was changed.
    #[error("cannot dump process {pid}: {reason}")]
    Unsupported { pid: i32, reason: String },
    /// The target is not (or no longer) there.
    #[error("process {pid}: {reason}")]
    Target { pid: i32, reason: String },
    /// /proc said something stasis cannot parse.
    #[error("/proc/{pid}/{file}: {reason}")]
    Proc { pid: i32, file: String, reason: String },
    /// The image is damaged, inconsistent or from an incompatible version. (Not marked as
    /// the source: the message already holds it, and error chains would print it twice.)
    #[error("bad image: {0}")]
    Image(ImageError),
    /// The image is fine but cannot be restored here and now.
    #[error("cannot restore: {0}")]
    Restore(String),
}

impl From<ImageError> for Error {
    fn from(e: ImageError) -> Error {
        Error::Image(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds a description of the operation to an `io::Error`.
pub trait Context<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|err| Error::Sys {
            what: what().into(),
            err,
        })
    }
}
