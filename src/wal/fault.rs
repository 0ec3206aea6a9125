//! Test hooks: crash points for the compaction swap, and (in unit-test builds only) injected
//! write/fsync failures.
//!
//! `KVSERVER_CRASH_AT=compact-before-rename|compact-before-dirsync|compact-after-rename` makes the
//! process `abort()` at that step of a compaction, so integration tests can prove a crash at each
//! step leaves a log that recovers. It is a TEST HOOK: harmless when unset (one env lookup per
//! compaction), never to be set in production. This file must never change behaviour when the
//! variable is unset, and the injected failures must never exist outside `cfg(test)`.

use std::io;

/// Environment variable naming the compaction step to crash at (test hook).
pub const CRASH_AT_ENV: &str = "KVSERVER_CRASH_AT";

/// A point in the compaction where a crash can be simulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CrashPoint {
    /// Temp file complete and fsynced, not yet renamed over the log.
    BeforeRename,
    /// Renamed, directory not yet fsynced.
    BeforeDirsync,
    /// Renamed and directory fsynced, writer not yet switched to the new file.
    AfterRename,
}

impl CrashPoint {
    fn name(self) -> &'static str {
        match self {
            CrashPoint::BeforeRename => "compact-before-rename",
            CrashPoint::BeforeDirsync => "compact-before-dirsync",
            CrashPoint::AfterRename => "compact-after-rename",
        }
    }
}

/// The crash point requested by the environment, read once per compaction.
pub(crate) fn crash_point_from_env() -> Option<String> {
    std::env::var(CRASH_AT_ENV).ok()
}

/// Aborts the process if `wanted` names `point`.
pub(crate) fn maybe_crash(wanted: &Option<String>, point: CrashPoint) {
    if wanted.as_deref() == Some(point.name()) {
        eprintln!("{CRASH_AT_ENV}={}: aborting (test hook)", point.name());
        std::process::abort();
    }
}

/// Injected I/O failures; a zero-sized no-op outside unit tests.
#[derive(Default, Debug)]
pub(crate) struct Faults {
    #[cfg(test)]
    pub fail_writes: std::sync::atomic::AtomicU32,
    #[cfg(test)]
    pub fail_syncs: std::sync::atomic::AtomicU32,
}

impl Faults {
    /// Called before a log write of `len` bytes: `Some(n)` = write only `n` bytes then fail
    /// with ENOSPC (a partial write), to exercise the truncate-back path.
    #[inline]
    pub(crate) fn write_fault(&self, _len: usize) -> Option<usize> {
        #[cfg(test)]
        {
            use std::sync::atomic::Ordering;
            if self
                .fail_writes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Some(_len / 2);
            }
        }
        None
    }

    /// Called before an fsync of the log.
    #[inline]
    pub(crate) fn sync_fault(&self) -> io::Result<()> {
        #[cfg(test)]
        {
            use std::sync::atomic::Ordering;
            if self
                .fail_syncs
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
        }
        Ok(())
    }
}

/// The error an injected write failure reports.
pub(crate) fn enospc() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}
