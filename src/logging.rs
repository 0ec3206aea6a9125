//! Log output: stderr (coloured only when it is a terminal) or a plain-text
//! file (`logfile`), reopened on SIGHUP so logrotate can move it away.
//!
//! ANSI colour codes in a file or a journal are noise (`\x1b[32m INFO`), so
//! colours are decided by `isatty(stderr)`, never by default.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;
use parking_lot::{Mutex, MutexGuard};
use tracing_subscriber::fmt::MakeWriter;

use crate::config::Config;

/// The log file, when logging to one: shared by the subscriber and SIGHUP.
static LOG_FILE: OnceLock<LogFile> = OnceLock::new();

/// An append-mode log file that can be reopened at the same path.
struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// One event's writer: holds the file lock for the event's single write.
pub struct LogFileWriter(MutexGuard<'static, File>);

impl Write for LogFileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The subscriber's handle on [`LOG_FILE`].
#[derive(Clone, Copy)]
struct LogFileMaker(&'static LogFile);

impl<'a> MakeWriter<'a> for LogFileMaker {
    type Writer = LogFileWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogFileWriter(self.0.file.lock())
    }
}

/// Installs the global subscriber: `loglevel` (RUST_LOG wins if set), to
/// `logfile` in plain text or to stderr with colours only on a terminal. The
/// filter sits behind a reload handle so `CONFIG SET loglevel` can change it live.
pub fn init(config: &Config) -> anyhow::Result<()> {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{reload, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.loglevel));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    match &config.logfile {
        Some(path) => {
            let file =
                open_append(path).with_context(|| format!("cannot open the log file {}", path.display()))?;
            let log = LOG_FILE.get_or_init(|| LogFile {
                path: path.clone(),
                file: Mutex::new(file),
            });
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(LogFileMaker(log)),
                )
                .init();
        }
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(io::stderr().is_terminal())
                    .with_writer(io::stderr),
            )
            .init(),
    }
    crate::runtime::install_log_reloader(Box::new(move |level| {
        handle.reload(EnvFilter::new(level)).map_err(|e| e.to_string())
    }));
    Ok(())
}

/// Reopens the log file at its path (SIGHUP). Ok(false) when logging to stderr.
pub fn reopen() -> io::Result<bool> {
    let Some(log) = LOG_FILE.get() else {
        return Ok(false);
    };
    let fresh = open_append(&log.path)?;
    *log.file.lock() = fresh;
    Ok(true)
}
