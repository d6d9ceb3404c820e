//! The stasis command line: parses, calls the library, reports errors in one line each.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "stasis", version, about = "Checkpoint and restore running Linux processes")]
struct Cli {
    /// More log detail (-v: info, -vv: debug, -vvv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Freeze a process, write its image to DIR, then kill it (or let it go on).
    Dump {
        /// The process to dump.
        #[arg(short = 't', long = "tree")]
        pid: i32,
        /// The image directory.
        #[arg(short = 'D', long = "images-dir")]
        dir: PathBuf,
        /// Let the process go on after the dump instead of killing it.
        #[arg(long)]
        leave_running: bool,
        /// Record terminal fds as "the restorer's terminal".
        #[arg(long)]
        shell_job: bool,
    },
    /// Bring a dumped process back with its pid.
    Restore {
        #[arg(short = 'D', long = "images-dir")]
        dir: PathBuf,
        /// Return once it runs and leave it running.
        #[arg(short, long)]
        detach: bool,
        /// Give terminal fds the restorer's terminal.
        #[arg(long)]
        shell_job: bool,
    },
    /// Show what an image holds.
    Inspect {
        dir: PathBuf,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Which kernel features stasis relies on, and whether this machine has them.
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Start a sample workload, dump it, kill it, restore it, and show it going on.
    Demo,
    /// The demo's sample workload (used by `stasis demo`).
    #[command(hide = true)]
    DemoWorkload,
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.cmd {
        Cmd::Dump {
            pid,
            dir,
            leave_running,
            shell_job,
        } => {
            let s = stasis::dump::dump(&stasis::dump::DumpOptions {
                pid,
                dir: dir.clone(),
                leave_running,
                shell_job,
            })?;
            eprintln!(
                "dumped process {} to {}: {} mappings, {} pages stored, {} zero pages",
                s.pid,
                dir.display(),
                s.mappings,
                s.pages_stored,
                s.zero_pages
            );
            Ok(0)
        }
        Cmd::Restore { dir, detach, shell_job } => {
            let r = stasis::restore::restore(&stasis::restore::RestoreOptions { dir, shell_job })?;
            if detach {
                println!("{}", r.pid);
                return Ok(0);
            }
            let code = r.wait()?;
            Ok(code.clamp(0, 255) as u8)
        }
        Cmd::Inspect { dir, json } => {
            let r = stasis::inspect::inspect(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r).context("encoding JSON")?);
            } else {
                print!("{}", stasis::inspect::render_text(&r));
            }
            Ok(0)
        }
        Cmd::Check { json } => {
            let f = stasis::check::check();
            if json {
                println!("{}", serde_json::to_string_pretty(&f).context("encoding JSON")?);
            } else {
                print!("{}", stasis::check::render_text(&f));
            }
            Ok(if f.iter().all(|f| f.present || f.name.contains("soft-dirty")) {
                0
            } else {
                1
            })
        }
        Cmd::Demo => Ok(stasis::demo::run(&mut std::io::stdout())? as u8),
        Cmd::DemoWorkload => Ok(stasis::demo::workload() as u8),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()))
        .without_time()
        .init();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("stasis: {e:#}");
            ExitCode::from(1)
        }
    }
}
