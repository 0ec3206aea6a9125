//! Fitting `maxclients` to the open-files limit, as Redis does at start:
//! raise `RLIMIT_NOFILE` toward what `maxclients` needs, and if the system
//! caps it lower, lower `maxclients` with a clear warning instead of failing
//! on `accept` (EMFILE) under load.

/// Descriptors kept for everything that is not a client: the listener, the
/// WAL and its directory, pollers and wakers, log files (Redis keeps 32).
pub const RESERVED_FDS: u64 = 32;

/// Returns the `maxclients` the process can honour, raising the soft
/// open-files limit as far as needed (and allowed).
pub fn fit_maxclients(maxclients: usize) -> usize {
    let wanted = maxclients as u64 + RESERVED_FDS;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!("cannot read the open-files limit; keeping maxclients = {maxclients}");
        return maxclients;
    }
    if limit.rlim_cur >= wanted {
        return maxclients;
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
        target
    } else {
        limit.rlim_cur
    };
    if granted >= wanted {
        tracing::info!(open_files = granted, "raised the open-files limit for maxclients");
        return maxclients;
    }
    let fitted = granted.saturating_sub(RESERVED_FDS).max(1) as usize;
    tracing::warn!(
        "the open-files limit is {granted} (hard limit {}), so maxclients is lowered from \
         {maxclients} to {fitted}; raise it with `ulimit -n` or LimitNOFILE= in the systemd unit",
        limit.rlim_max
    );
    fitted
}
