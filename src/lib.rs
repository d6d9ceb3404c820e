//! stasis: checkpoint and restore of running Linux processes, in user space.
//!
//! [`dump::dump`] freezes a process and writes an image directory; [`restore::restore`] brings
//! it back with the same pid. The pipeline modules call one module per kind of process state
//! (memory, cpu, signals, files, task), each with its dump and restore side together, over a
//! thin kernel layer ([`sys`], [`remote`]) where nearly all `unsafe` lives. [`image`] is the
//! on-disk format alone.

pub mod check;
pub mod cpu;
pub mod demo;
pub mod dump;
pub mod error;
pub mod failpoint;
pub mod files;
pub mod image;
pub mod inspect;
pub mod memory;
pub mod pagestore;
pub mod procfs;
pub mod remote;
pub mod restore;
pub mod signals;
pub mod sys;
pub mod task;

pub use error::{Error, Result};
