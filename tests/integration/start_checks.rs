//! Start-up bounds: `workers` and `maxclients` the system cannot give are
//! refused at start with one clear line and a non-zero exit (never a panic,
//! an abort or a signal), and a low open-files limit lowers `maxclients`
//! with a warning while the server still serves (and `CONFIG SET
//! maxclients` above what it allows is refused, as Redis does). Limits are set on the
//! child only, in a `pre_exec`; the decision rules themselves are unit tests
//! in `src/server/bounds.rs` and `src/server/fd_limit.rs`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// The user the thread-limit tests run the server as: `RLIMIT_NPROC` does
/// not apply to root, and counts every process of the user.
const NOBODY: libc::uid_t = 65534;

/// The tests running servers as uid 65534 share its process count: one at a time.
static AS_NOBODY: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A resource limit to set (soft = hard) in the child before it runs.
#[derive(Clone, Copy)]
struct Rlimit {
    resource: libc::__rlimit_resource_t,
    value: u64,
}

/// Sets `limits` (and, with `as_nobody`, drops to uid/gid 65534) in `command`'s child.
fn limit(command: &mut Command, limits: &[Rlimit], as_nobody: bool) {
    let limits = limits.to_vec();
    // SAFETY: only async-signal-safe system calls run in the child; no allocation.
    unsafe {
        command.pre_exec(move || {
            if as_nobody
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(NOBODY) != 0
                    || libc::setuid(NOBODY) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            for l in &limits {
                let rl = libc::rlimit {
                    rlim_cur: l.value as libc::rlim_t,
                    rlim_max: l.value as libc::rlim_t,
                };
                if libc::setrlimit(l.resource, &rl) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// How a server that was expected not to start ended.
struct Refused {
    status: ExitStatus,
    stderr: String,
}

/// Runs the server with `args` under `limits` until it exits (bounded: a
/// server still running after 60 s fails the test). None when the child
/// could not be started at all (e.g. uid 65534 may not run the binary here).
fn run_until_exit(
    args: &[&str],
    limits: &[Rlimit],
    as_nobody: bool,
    env: &[(&str, &str)],
) -> Option<Refused> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(KVSERVER);
    command
        .args(["--bind", "127.0.0.1", "--port", "0", "--no-wal", "--dir"])
        .arg(dir.path())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    limit(&mut command, limits, as_nobody);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("SKIPPED: cannot start kvserver with these limits: {e}");
            return None;
        }
    };
    let mut stderr_pipe = child.stderr.take().expect("stderr pipe");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kvserver {args:?} was expected to refuse to start but ran for 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Some(Refused {
        status,
        stderr: reader.join().expect("stderr reader"),
    })
}

/// Asserts a clean refusal: exit status 1 (not a signal), `expected` on
/// stderr, no panic, and the server never announced it was ready.
fn assert_refused(refused: &Refused, expected: &str) {
    assert_eq!(
        refused.status.code(),
        Some(1),
        "expected exit status 1, got {:?}; stderr:\n{}",
        refused.status,
        refused.stderr
    );
    assert!(
        refused.stderr.contains(expected),
        "stderr lacks {expected:?}:\n{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("panicked"), "{}", refused.stderr);
    assert!(!refused.stderr.contains("ready to accept"), "{}", refused.stderr);
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Threads the user 65534 runs now (RLIMIT_NPROC counts them too).
fn nobody_threads() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| -> Option<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        if field("Uid:") == Some(u64::from(NOBODY)) {
            total += field("Threads:").unwrap_or(1);
        }
    }
    total
}

#[test]
fn an_open_files_limit_too_low_for_the_workers_is_a_clear_error_at_start() {
    let nofile = Rlimit {
        resource: libc::RLIMIT_NOFILE,
        value: 64,
    };
    let refused = run_until_exit(&["--workers", "100"], &[nofile], false, &[]).expect("started");
    assert_refused(
        &refused,
        "workers = 100 needs 233 open files (32 reserved, 2 per worker, 1 client) \
         but RLIMIT_NOFILE (ulimit -n) is 64; lower workers or raise the limit",
    );
}

#[test]
fn an_address_space_limit_too_low_for_the_worker_stacks_is_a_clear_error_at_start() {
    let address_space = Rlimit {
        resource: libc::RLIMIT_AS,
        value: 256 << 20,
    };
    let refused = run_until_exit(&["--workers", "500"], &[address_space], false, &[]).expect("started");
    assert_refused(&refused, "of address space but RLIMIT_AS (ulimit -v) is 256 MiB");
    assert!(
        refused.stderr.contains("workers = 500 needs ~"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_low_open_files_limit_lowers_maxclients_with_a_warning_and_the_server_still_serves() {
    let nofile = Rlimit {
        resource: libc::RLIMIT_NOFILE,
        value: 200,
    };
    let server = Server::with_command(&["--workers", "2", "--maxclients", "10000"], |command| {
        limit(command, &[nofile], false)
    });
    // 200 - 32 reserved - 2 per worker × 2 workers.
    let mut c = server.raw();
    assert_eq!(
        show(&c.cmd(&["CONFIG", "GET", "maxclients"])),
        "*2\r\n$10\r\nmaxclients\r\n$3\r\n164\r\n"
    );
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "clients"])).into_owned();
    assert!(info.contains("maxclients:164\r\n"), "{info}");
    assert_eq!(show(&c.cmd(&["SET", "k", "v"])), "+OK\r\n");
    assert_eq!(show(&c.cmd(&["GET", "k"])), "$1\r\nv\r\n");
    let stderr = server.stderr_text();
    assert!(
        stderr.contains("so maxclients is lowered from 10000 to 164"),
        "no warning about the lowered maxclients:\n{stderr}"
    );
}

#[test]
fn a_process_limit_below_the_worker_count_is_refused_before_any_worker_starts() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to run the server as uid 65534 (RLIMIT_NPROC does not bind root)");
        return;
    }
    let _one_at_a_time = AS_NOBODY.lock().unwrap_or_else(|e| e.into_inner());
    let nproc = Rlimit {
        resource: libc::RLIMIT_NPROC,
        value: nobody_threads() + 16,
    };
    let Some(refused) = run_until_exit(&["--workers", "1000"], &[nproc], true, &[]) else {
        return;
    };
    assert_refused(
        &refused,
        &format!(
            "needs {} threads but RLIMIT_NPROC (ulimit -u) is {}; lower workers or raise the limit",
            1000 + 6 + std::thread::available_parallelism().map_or(1, |n| n.get()),
            nproc.value
        ),
    );
}

#[test]
fn a_worker_thread_that_cannot_be_spawned_ends_the_start_cleanly_instead_of_aborting() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to run the server as uid 65534 (RLIMIT_NPROC does not bind root)");
        return;
    }
    let _one_at_a_time = AS_NOBODY.lock().unwrap_or_else(|e| e.into_inner());
    // Room for the main, signal and expiry threads and a few workers, not 1000.
    let nproc = Rlimit {
        resource: libc::RLIMIT_NPROC,
        value: nobody_threads() + 16,
    };
    // The start-up check would refuse first; skip it to reach the spawn.
    let skip = [("KVSERVER_TEST_SKIP_BOUNDS", "1")];
    let Some(refused) = run_until_exit(&["--workers", "1000"], &[nproc], true, &skip) else {
        return;
    };
    assert_refused(&refused, "cannot start 1000 worker threads");
    assert!(
        refused.stderr.contains("cannot start worker thread "),
        "{}",
        refused.stderr
    );
}

#[test]
fn config_set_maxclients_beyond_the_open_files_limit_is_refused_with_the_most_it_allows() {
    let nofile = Rlimit {
        resource: libc::RLIMIT_NOFILE,
        value: 200,
    };
    let server = Server::with_command(&["--workers", "2", "--maxclients", "100"], |command| {
        limit(command, &[nofile], false)
    });
    let mut c = server.raw();
    assert_eq!(
        show(&c.cmd(&["CONFIG", "SET", "maxclients", "1000"])),
        "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - The operating system \
         is not able to handle the specified number of clients, try with 164\r\n"
    );
    assert_eq!(
        show(&c.cmd(&["CONFIG", "GET", "maxclients"])),
        "*2\r\n$10\r\nmaxclients\r\n$3\r\n100\r\n"
    );
    assert_eq!(show(&c.cmd(&["CONFIG", "SET", "maxclients", "164"])), "+OK\r\n");
    assert_eq!(show(&c.cmd(&["CONFIG", "SET", "maxclients", "5"])), "+OK\r\n");
}
