//! `kvserver`: the daemon binary. CLI → Config → logging → server::run.
//! Also hosts `kvserver check-wal PATH [--repair]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kvserver::config::{Config, Overrides};

/// Every allocation is counted, so `used_memory` and `maxmemory` see real
/// bytes (see `kvserver::memory` for why this and not jemalloc).
#[global_allocator]
static ALLOCATOR: kvserver::memory::CountingAllocator = kvserver::memory::CountingAllocator;

#[derive(Parser)]
#[command(
    name = "kvserver",
    version,
    about = "A multi-threaded, Redis-compatible key-value server with a write-ahead log",
    // A flag given twice keeps the last value, so wrappers can append overrides.
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    overrides: Overrides,
}

#[derive(Subcommand)]
enum Command {
    /// Verify a WAL file: record counts by kind, first bad offset. Exit 0 only for a clean log.
    CheckWal {
        /// Path to the WAL file (e.g. ./data/kvserver.wal)
        path: PathBuf,
        /// Truncate the file at the first bad record
        #[arg(long)]
        repair: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::CheckWal { path, repair }) = cli.command {
        return match kvserver::wal::check(&path, repair) {
            Ok(report) => {
                println!("{report}");
                if report.is_clean() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("check-wal: {e}");
                ExitCode::from(2)
            }
        };
    }
    let config = match Config::load(&cli.overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("kvserver: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = kvserver::logging::init(&config) {
        eprintln!("kvserver: {e:#}");
        return ExitCode::from(2);
    }
    // A file-size limit (RLIMIT_FSIZE) must surface as EFBIG on the WAL write,
    // which the WAL reports as MISCONF and retries, not kill the process.
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    match kvserver::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("kvserver: {e:#}");
            ExitCode::FAILURE
        }
    }
}
