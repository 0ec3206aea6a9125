//! Fitting `maxclients` to the open-files limit, as Redis does at start:
//! raise `RLIMIT_NOFILE` toward what `maxclients` and the workers need, and
//! if the system caps it lower, lower `maxclients` with a clear warning
//! instead of failing on `accept` (EMFILE) under load. A limit too low for
//! the workers and a single client is a start-up error (Redis exits too).

/// Descriptors kept for everything that is neither a client nor a worker:
/// the listener, the WAL and its directory, the lock file, log files,
/// signal handling (Redis keeps 32).
pub const RESERVED_FDS: u64 = 32;

/// Descriptors each worker holds for its whole life: its epoll instance and
/// the eventfd of its waker. Measured: 10 open with 1 worker, 210 with 101,
/// 2 010 with 1 001 (`ls /proc/PID/fd | wc -l`).
pub const FDS_PER_WORKER: u64 = 2;

/// The `maxclients` an open-files limit of `open_files` leaves room for
/// beside `workers` workers: `maxclients` itself when it fits, less when
/// not, or an error when not even one client fits.
pub fn clients_within(
    maxclients: usize,
    workers_setting: usize,
    workers: usize,
    open_files: u64,
) -> Result<usize, String> {
    let fixed = RESERVED_FDS + FDS_PER_WORKER * workers as u64;
    match open_files.checked_sub(fixed) {
        Some(room) if room >= maxclients as u64 => Ok(maxclients),
        Some(room) if room >= 1 => Ok(room as usize),
        _ => {
            let setting = if workers_setting == 0 {
                format!("workers = 0 (one per core: {workers})")
            } else {
                format!("workers = {workers}")
            };
            Err(format!(
                "{setting} needs {} open files ({RESERVED_FDS} reserved, {FDS_PER_WORKER} per worker, \
                 1 client) but RLIMIT_NOFILE (ulimit -n) is {open_files}; lower workers or raise the limit",
                fixed + 1
            ))
        }
    }
}

/// The open-files limit after [`raise_for`]: the soft limit now in force
/// and the hard limit it may not pass.
struct OpenFiles {
    granted: u64,
    hard: u64,
}

/// Raises the soft open-files limit toward what `maxclients` clients and
/// `workers` workers need (never past the hard limit). None when the limit
/// cannot be read.
fn raise_for(maxclients: usize, workers: usize) -> Option<OpenFiles> {
    let wanted = maxclients as u64 + RESERVED_FDS + FDS_PER_WORKER * workers as u64;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur >= wanted {
        return Some(OpenFiles {
            granted: limit.rlim_cur,
            hard: limit.rlim_max,
        });
    }
    let target = if limit.rlim_max == libc::RLIM_INFINITY {
        wanted
    } else {
        wanted.min(limit.rlim_max)
    };
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads the struct we pass.
    let granted = if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        tracing::info!(open_files = target, "raised the open-files limit for maxclients");
        target
    } else {
        limit.rlim_cur
    };
    Some(OpenFiles {
        granted,
        hard: limit.rlim_max,
    })
}

/// Returns the `maxclients` the process can honour beside `workers`
/// workers, raising the soft open-files limit as far as needed (and
/// allowed); an error when the limit leaves no room for a single client.
pub fn fit_maxclients(maxclients: usize, workers_setting: usize, workers: usize) -> anyhow::Result<usize> {
    let Some(open) = raise_for(maxclients, workers) else {
        tracing::warn!("cannot read the open-files limit; keeping maxclients = {maxclients}");
        return Ok(maxclients);
    };
    let fitted =
        clients_within(maxclients, workers_setting, workers, open.granted).map_err(anyhow::Error::msg)?;
    if fitted < maxclients {
        tracing::warn!(
            "the open-files limit is {} (hard limit {}), so maxclients is lowered from \
             {maxclients} to {fitted} ({RESERVED_FDS} reserved, {FDS_PER_WORKER} per worker); \
             raise it with `ulimit -n` or LimitNOFILE= in the systemd unit",
            open.granted,
            open.hard
        );
    }
    Ok(fitted)
}

/// For `CONFIG SET maxclients` while running (Redis's `updateMaxclients`):
/// raises the open-files limit for `maxclients`, or returns the most
/// clients the limit allows beside `workers` workers when it cannot.
pub fn fit_at_run_time(maxclients: usize, workers: usize) -> Result<(), usize> {
    let Some(open) = raise_for(maxclients, workers) else {
        return Ok(());
    };
    match clients_within(maxclients, workers, workers, open.granted) {
        Ok(fitted) if fitted >= maxclients => Ok(()),
        Ok(fitted) => Err(fitted),
        Err(_) => Err(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxclients_is_kept_when_the_limit_has_room_for_it_and_the_workers() {
        assert_eq!(clients_within(10_000, 4, 4, 10_040), Ok(10_000));
    }

    #[test]
    fn maxclients_is_lowered_to_what_is_left_after_the_reserve_and_the_workers() {
        // 1024 - 32 reserved - 2 × 4 workers.
        assert_eq!(clients_within(10_000, 4, 4, 1024), Ok(984));
    }

    #[test]
    fn a_limit_without_room_for_one_client_beside_the_workers_is_an_error() {
        assert_eq!(
            clients_within(10_000, 100, 100, 64),
            Err(
                "workers = 100 needs 233 open files (32 reserved, 2 per worker, 1 client) \
                 but RLIMIT_NOFILE (ulimit -n) is 64; lower workers or raise the limit"
                    .to_string()
            )
        );
        assert!(clients_within(10, 0, 2, 36).is_err());
        assert_eq!(clients_within(10, 0, 2, 37), Ok(1));
    }
}
