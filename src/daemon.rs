//! Operating-system safety of the daemon: the data-directory lock, signals
//! and protected mode. Socket-driver independent: the server calls these at
//! startup and once per accepted connection.
//!
//! * **Data-directory lock.** Two servers appending to one WAL interleave
//!   their frames and corrupt it. Like LevelDB and RocksDB (`LOCK` files), the
//!   server takes an exclusive `flock` on `dir/kvserver.lock` before it reads
//!   the log, and writes its pid there so the second instance can name the
//!   first. The kernel drops the lock when the process dies, even by SIGKILL,
//!   so a stale file never blocks a restart.
//! * **Signals.** SIGINT/SIGTERM request an orderly shutdown (final WAL
//!   flush). SIGHUP — a closed terminal, `nohup` forgotten, `systemctl
//!   reload` — never stops the server: it reopens the log file (for
//!   logrotate) or, logging to stderr, is logged and otherwise ignored.
//! * **Protected mode**, as Redis: with no password, a client connecting from
//!   a non-loopback address is told why it is refused (`-DENIED ...`) and
//!   closed.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::config::Config;
use crate::state::ServerState;

/// Name of the lock file inside the data directory.
pub const LOCK_FILE_NAME: &str = "kvserver.lock";

/// Redis's protected-mode explanation, adapted to kvserver's settings.
pub const DENIED_REPLY: &[u8] = b"-DENIED kvserver is running in protected mode because protected mode is enabled and no password is set. In this mode connections are only accepted from the loopback interface. If you want to connect from other computers, do one of the following and restart the server: 1) set a password with requirepass in kvserver.toml (or --requirepass); 2) disable protected mode with protected-mode = false in kvserver.toml (or --protected-mode no), but MAKE SURE the server is not reachable from the internet if you do so; 3) bind to 127.0.0.1 and reach the server through an SSH tunnel. NOTE: you only need to do one of the above.\r\n";

/// The held lock on a data directory; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates `dir` if needed and takes the exclusive lock, or fails at once
    /// naming the directory and the pid of the holder.
    pub fn acquire(dir: &Path) -> anyhow::Result<DataDirLock> {
        crate::wal::create_dir_durably(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        let path = dir.join(LOCK_FILE_NAME);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        // SAFETY: flock on a descriptor we own; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim().parse::<u32>() {
                    Ok(pid) => format!("another kvserver (pid {pid})"),
                    Err(_) => "another kvserver".to_string(),
                };
                bail!(
                    "the data directory {} is in use by {holder}: its lock file {} is held. \
                     Two servers on one directory would corrupt the WAL; stop the other one or use another --dir",
                    dir.display(),
                    path.display()
                );
            }
            return Err(err).with_context(|| format!("cannot lock {}", path.display()));
        }
        // Ours now: record our pid for the next one to report.
        let pid = std::process::id();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{pid}"))
            .with_context(|| format!("cannot write the lock file {}", path.display()))?;
        Ok(DataDirLock { _file: file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the data-directory lock when the server uses the directory (`wal = true`).
pub fn lock_data_dir(config: &Config) -> anyhow::Result<Option<DataDirLock>> {
    if !config.wal {
        return Ok(None);
    }
    DataDirLock::acquire(&config.dir).map(Some)
}

/// True if `ip` is a loopback address (IPv4-mapped IPv6 included).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// The protected-mode decision, as Redis makes it: refuse a client when
/// protected mode is on, no password is set (the live setting: `CONFIG SET
/// requirepass` changes it), and the client is not on the loopback interface.
pub fn protected_mode_refuses(config: &Config, password_set: bool, peer: IpAddr) -> bool {
    config.protected_mode && !password_set && !is_loopback(peer)
}

/// Startup warnings about who can reach the server.
pub fn warn_about_exposure(config: &Config, addr: SocketAddr) {
    if is_loopback(addr.ip()) || config.requirepass.is_some() {
        return;
    }
    if config.protected_mode {
        tracing::warn!(
            "protected mode is on: listening on {addr} without a password, so only loopback clients are served \
             and others get -DENIED. Set requirepass, or protected-mode = false on a trusted network"
        );
    } else {
        tracing::warn!(
            "listening on {addr} with no password and protected mode off: anyone who can reach this address \
             can read, change and delete every key"
        );
    }
}

/// The signals the server handles, registered as early as possible so that a
/// SIGHUP during a long WAL replay does not kill the process.
pub struct SignalHandlers(signal_hook::iterator::Signals);

impl SignalHandlers {
    /// Installs handlers for SIGINT, SIGTERM and SIGHUP (replacing their default action).
    pub fn install() -> anyhow::Result<SignalHandlers> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            .context("cannot install signal handlers")?;
        Ok(SignalHandlers(signals))
    }

    /// Starts `kv-signals`: SIGINT/SIGTERM request shutdown; SIGHUP reopens the log file.
    pub fn spawn(mut self, state: Arc<ServerState>) -> anyhow::Result<()> {
        use signal_hook::consts::SIGHUP;
        std::thread::Builder::new()
            .name("kv-signals".into())
            .spawn(move || {
                for signal in self.0.forever() {
                    if signal == SIGHUP {
                        match crate::logging::reopen() {
                            Ok(true) => tracing::info!("SIGHUP: log file reopened"),
                            Ok(false) => tracing::info!("SIGHUP received: ignored (logging to stderr)"),
                            Err(e) => tracing::error!("SIGHUP: cannot reopen the log file: {e}"),
                        }
                        continue;
                    }
                    tracing::info!(signal, "received signal");
                    state.shutdown.request();
                }
            })
            .context("cannot start the signal thread")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_mode_refuses_only_remote_clients_of_a_passwordless_server() {
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let config = Config::default();
        assert!(protected_mode_refuses(&config, false, remote));
        assert!(!protected_mode_refuses(&config, false, local));
        assert!(!protected_mode_refuses(&config, false, mapped));
        assert!(!protected_mode_refuses(&config, false, "::1".parse().unwrap()));
        assert!(!protected_mode_refuses(&config, true, remote));
        let unprotected = Config {
            protected_mode: false,
            ..Config::default()
        };
        assert!(!protected_mode_refuses(&unprotected, false, remote));
    }

    #[test]
    fn a_second_lock_on_a_data_directory_fails_naming_the_directory_and_the_holder() {
        let dir = std::env::temp_dir().join(format!("kvserver-lock-test-{}", std::process::id()));
        let first = DataDirLock::acquire(&dir).unwrap();
        // flock locks belong to the open file description: a second open conflicts, even in-process.
        let err = DataDirLock::acquire(&dir).unwrap_err().to_string();
        assert!(err.contains(&dir.display().to_string()), "{err}");
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        drop(first);
        DataDirLock::acquire(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
