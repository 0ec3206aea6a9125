//! Start-up check that the system can give the configured `workers`:
//! threads, memory maps and address space, read before any thread is
//! spawned, the data directory locked or the port bound.
//!
//! Why: a thread the kernel cannot give fails late and badly. With too few
//! memory maps left (`vm.max_map_count`), glibc still creates the thread,
//! and Rust's runtime then aborts the whole process inside it while setting
//! up the signal stack's guard page (`failed to set up alternative stack
//! guard page`) — seconds after start, with no error a user can act on. So
//! each limit is compared with what the workers need, and a shortfall is one
//! clear line naming the setting, the need, the limit and where it comes
//! from. The descriptors are checked by [`super::fd_limit`].
//!
//! A limit that cannot be read (no `/proc`, no cgroup) is skipped with a
//! debug line, never an error: the check only refuses what it knows cannot
//! work. It is a necessary condition, not a guarantee: `RLIMIT_NPROC`
//! counts every process of the user, which this check does not scan; a
//! spawn that still fails is reported by the worker pool as a clean error.

use std::path::Path;

/// Threads besides the workers: main (accept), `kv-signals`, `kv-expire`,
/// `kv-loader`, `wal-flusher` and `wal-compact`. The `kv-replay-*` threads
/// (one per core, while loading) are added by [`Demand::for_workers`].
pub const HELPER_THREADS: u64 = 6;

/// Memory maps each thread adds: its stack, the stack's guard page, and
/// the signal stack Rust's runtime installs with its own guard page.
/// Measured: 54 maps with 1 worker, 478 with 101, 4 078 with 1 001
/// (`wc -l /proc/PID/maps`, `docs/operations.md`).
pub const MAPS_PER_THREAD: u64 = 4;

/// Maps kept for everything that is not a thread stack: the binary and its
/// libraries (about 50), malloc arenas, and allocations big enough for
/// their own mapping (each value above 128 KiB is one).
pub const RESERVED_MAPS: u64 = 1024;

/// Address space per thread beyond its stack: guard pages and the signal
/// stack (tens of KiB; rounded up).
const THREAD_OVERHEAD_BYTES: u64 = 256 * 1024;

/// Test hook: when this variable is set, the checks are skipped (with a
/// warning), so a test can reach a failing thread spawn. Unset in production.
pub const SKIP_ENV: &str = "KVSERVER_TEST_SKIP_BOUNDS";

/// What the process needs from the system for its threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Demand {
    pub threads: u64,
    pub maps: u64,
    pub address_space: u64,
}

impl Demand {
    /// The need of `workers` workers with stacks of `stack_bytes`, plus the
    /// helper threads and `replay_threads` WAL replay threads.
    pub fn for_workers(workers: u64, replay_threads: u64, stack_bytes: u64) -> Demand {
        let threads = workers + HELPER_THREADS + replay_threads;
        Demand {
            threads,
            maps: threads * MAPS_PER_THREAD + RESERVED_MAPS,
            // Helper threads get Rust's default stack (2 MiB), like the workers.
            address_space: threads * (stack_bytes + THREAD_OVERHEAD_BYTES),
        }
    }

    fn of(&self, resource: Resource) -> u64 {
        match resource {
            Resource::Threads => self.threads,
            Resource::MemoryMaps => self.maps,
            Resource::AddressSpace => self.address_space,
        }
    }
}

/// A kind of thing a thread consumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Threads,
    MemoryMaps,
    AddressSpace,
}

/// One limit the system imposes, as read at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    pub resource: Resource,
    /// Where it comes from, as an operator would raise it (`vm.max_map_count`).
    pub source: &'static str,
    pub limit: u64,
    /// Already used when the check runs (counted against the limit).
    pub in_use: u64,
}

impl Limit {
    fn available(&self) -> u64 {
        self.limit.saturating_sub(self.in_use)
    }
}

/// The first limit `demand` does not fit in, if any.
pub fn first_unmet<'a>(demand: &Demand, limits: &'a [Limit]) -> Option<&'a Limit> {
    limits
        .iter()
        .find(|limit| demand.of(limit.resource) > limit.available())
}

/// The one-line error for `workers` (as configured; 0 = one per core,
/// `threads` of them) not fitting in `limit`.
pub fn describe(workers: usize, started: usize, demand: &Demand, limit: &Limit) -> String {
    let setting = if workers == 0 {
        format!("workers = 0 (one per core: {started})")
    } else {
        format!("workers = {workers}")
    };
    let (need, have, in_use) = match limit.resource {
        Resource::Threads => (
            format!("{} threads", demand.threads),
            limit.limit.to_string(),
            limit.in_use.to_string(),
        ),
        Resource::MemoryMaps => (
            format!("~{} memory maps", demand.maps),
            limit.limit.to_string(),
            limit.in_use.to_string(),
        ),
        Resource::AddressSpace => (
            format!("~{} MiB of address space", demand.address_space >> 20),
            format!("{} MiB", limit.limit >> 20),
            format!("{} MiB", limit.in_use >> 20),
        ),
    };
    let used = if limit.in_use > 0 {
        format!(" ({in_use} already in use)")
    } else {
        String::new()
    };
    format!(
        "{setting} needs {need} but {} is {have}{used}; lower workers or raise the limit",
        limit.source
    )
}

/// Refuses `workers` the system cannot give; reads the limits now.
pub fn check(workers: usize, started: usize, stack_bytes: usize) -> anyhow::Result<()> {
    if std::env::var_os(SKIP_ENV).is_some() {
        tracing::warn!("{SKIP_ENV} is set: thread limits are not checked");
        return Ok(());
    }
    let replay = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let demand = Demand::for_workers(started as u64, replay, stack_bytes as u64);
    let limits = read_limits();
    tracing::debug!(?demand, ?limits, "start-up limits");
    match first_unmet(&demand, &limits) {
        Some(limit) => anyhow::bail!("{}", describe(workers, started, &demand, limit)),
        None => Ok(()),
    }
}

/// Every limit that could be read.
pub fn read_limits() -> Vec<Limit> {
    let mut limits = Vec::new();
    let running = system_threads();
    let mut push = |limit: Option<Limit>, what: &str| match limit {
        Some(limit) => limits.push(limit),
        None => tracing::debug!("start-up check skipped: {what} not readable or not limited"),
    };
    push(nproc_limit(), "RLIMIT_NPROC");
    push(
        sysctl("/proc/sys/kernel/threads-max").and_then(|limit| {
            Some(Limit {
                resource: Resource::Threads,
                source: "kernel.threads-max",
                limit,
                in_use: running?,
            })
        }),
        "kernel.threads-max",
    );
    push(
        sysctl("/proc/sys/kernel/pid_max").and_then(|limit| {
            Some(Limit {
                resource: Resource::Threads,
                source: "kernel.pid_max",
                limit,
                in_use: running?,
            })
        }),
        "kernel.pid_max",
    );
    push(cgroup_pids_limit(), "the cgroup's pids.max");
    push(
        sysctl("/proc/sys/vm/max_map_count").and_then(|limit| {
            let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
            Some(Limit {
                resource: Resource::MemoryMaps,
                source: "vm.max_map_count",
                limit,
                in_use: maps.lines().count() as u64,
            })
        }),
        "vm.max_map_count",
    );
    push(address_space_limit(), "RLIMIT_AS");
    limits
}

/// A single number from a /proc or /sys file.
fn sysctl(path: impl AsRef<Path>) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Threads running on the whole system (`/proc/loadavg`'s "running/total").
fn system_threads() -> Option<u64> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    loadavg.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok()
}

/// A soft resource limit, None when unlimited or unreadable.
fn rlimit(resource: libc::__rlimit_resource_t) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(resource, &mut limit) } != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some(limit.rlim_cur)
}

/// `RLIMIT_NPROC`, unless the kernel exempts this process from it (root,
/// `CAP_SYS_ADMIN` or `CAP_SYS_RESOURCE`). Only this process's threads are
/// counted against it, not the user's other processes.
fn nproc_limit() -> Option<Limit> {
    let limit = rlimit(libc::RLIMIT_NPROC)?;
    if exempt_from_nproc() {
        tracing::debug!("RLIMIT_NPROC is {limit} but does not apply to a privileged process");
        return None;
    }
    Some(Limit {
        resource: Resource::Threads,
        source: "RLIMIT_NPROC (ulimit -u)",
        limit,
        in_use: 0,
    })
}

fn exempt_from_nproc() -> bool {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        return true;
    }
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_SYS_RESOURCE: u32 = 24;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN | 1 << CAP_SYS_RESOURCE) != 0)
}

/// `RLIMIT_AS` against the address space already mapped (`VmSize`).
fn address_space_limit() -> Option<Limit> {
    let limit = rlimit(libc::RLIMIT_AS)?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(Limit {
        resource: Resource::AddressSpace,
        source: "RLIMIT_AS (ulimit -v)",
        limit,
        in_use: kib * 1024,
    })
}

/// The pids controller of this process's cgroup (v2, or v1's `pids`
/// hierarchy): `pids.max` against `pids.current`. None when unlimited.
fn cgroup_pids_limit() -> Option<Limit> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let dir = cgroup_pids_dir(&cgroups)?;
    let limit = sysctl(dir.join("pids.max"))?; // "max" does not parse: unlimited
    Some(Limit {
        resource: Resource::Threads,
        source: "the cgroup's pids.max",
        limit,
        in_use: sysctl(dir.join("pids.current")).unwrap_or(0),
    })
}

/// Where the pids controller files of the cgroup described by
/// `/proc/self/cgroup` (`cgroups`) live.
fn cgroup_pids_dir(cgroups: &str) -> Option<std::path::PathBuf> {
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let path = path.trim_start_matches('/');
        let dir = if controllers.is_empty() {
            Path::new("/sys/fs/cgroup").join(path)
        } else if controllers.split(',').any(|c| c == "pids") {
            Path::new("/sys/fs/cgroup/pids").join(path)
        } else {
            continue;
        };
        if dir.join("pids.max").exists() {
            return Some(dir);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const STACK: u64 = 2 << 20;

    fn limit(resource: Resource, source: &'static str, limit: u64, in_use: u64) -> Limit {
        Limit {
            resource,
            source,
            limit,
            in_use,
        }
    }

    #[test]
    fn twenty_thousand_workers_do_not_fit_in_the_default_max_map_count() {
        let demand = Demand::for_workers(20_000, 2, STACK);
        let limits = [limit(Resource::MemoryMaps, "vm.max_map_count", 65_530, 54)];
        let unmet = first_unmet(&demand, &limits).expect("refused");
        assert_eq!(
            describe(20_000, 20_000, &demand, unmet),
            "workers = 20000 needs ~81056 memory maps but vm.max_map_count is 65530 \
             (54 already in use); lower workers or raise the limit"
        );
    }

    #[test]
    fn the_largest_allowed_worker_count_fits_the_default_limits_of_this_kind_of_machine() {
        let demand = Demand::for_workers(crate::config::MAX_WORKERS as u64, 2, STACK);
        let limits = [
            limit(Resource::MemoryMaps, "vm.max_map_count", 65_530, 60),
            limit(Resource::Threads, "kernel.threads-max", 192_729, 500),
            limit(Resource::Threads, "kernel.pid_max", 32_768, 500),
        ];
        assert_eq!(first_unmet(&demand, &limits), None);
    }

    #[test]
    fn a_small_process_limit_refuses_more_workers_than_it_allows() {
        let demand = Demand::for_workers(64, 2, STACK);
        let limits = [
            limit(Resource::MemoryMaps, "vm.max_map_count", 65_530, 60),
            limit(Resource::Threads, "RLIMIT_NPROC (ulimit -u)", 16, 0),
        ];
        let unmet = first_unmet(&demand, &limits).expect("refused");
        assert_eq!(
            describe(64, 64, &demand, unmet),
            "workers = 64 needs 72 threads but RLIMIT_NPROC (ulimit -u) is 16; \
             lower workers or raise the limit"
        );
    }

    #[test]
    fn threads_already_running_count_against_a_shared_limit() {
        let demand = Demand::for_workers(100, 2, STACK);
        let cgroup = |in_use| [limit(Resource::Threads, "the cgroup's pids.max", 200, in_use)];
        assert_eq!(first_unmet(&demand, &cgroup(50)), None);
        let crowded = cgroup(150);
        assert_eq!(first_unmet(&demand, &crowded), Some(&crowded[0]));
        // A count above the limit (it changed under us) refuses, never underflows.
        assert!(first_unmet(&demand, &cgroup(500)).is_some());
    }

    #[test]
    fn a_per_core_worker_count_is_named_as_configured_and_as_started() {
        let demand = Demand::for_workers(2, 2, STACK);
        let tiny = limit(
            Resource::AddressSpace,
            "RLIMIT_AS (ulimit -v)",
            48 << 20,
            40 << 20,
        );
        assert_eq!(first_unmet(&demand, std::slice::from_ref(&tiny)), Some(&tiny));
        assert_eq!(
            describe(0, 2, &demand, &tiny),
            "workers = 0 (one per core: 2) needs ~22 MiB of address space but \
             RLIMIT_AS (ulimit -v) is 48 MiB (40 MiB already in use); lower workers or raise the limit"
        );
    }

    #[test]
    fn the_pids_controller_is_found_in_cgroup_v2_and_v1_lines() {
        // Only paths that exist are returned; the parsing is what is tested here.
        assert_eq!(cgroup_pids_dir("0::/definitely/not/here\n"), None);
        assert_eq!(cgroup_pids_dir("4:memory:/x\n"), None);
        assert_eq!(cgroup_pids_dir("garbage"), None);
    }

    #[test]
    fn the_limits_of_this_machine_can_be_read_without_failing() {
        // Whatever this machine has, reading never panics and the numbers are sane.
        for limit in read_limits() {
            assert!(limit.limit > 0, "{limit:?}");
        }
    }
}
