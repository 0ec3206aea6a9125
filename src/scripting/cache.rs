//! What every worker shares: script bodies by SHA1, function libraries,
//! SHAs that must start with every shard held, and the running scripts.
//!
//! Workers compile lazily from here (see `engine`): a `SCRIPT LOAD` on one
//! worker is at once visible to `EVALSHA` on any, and `SCRIPT FLUSH` or a
//! library change bumps a generation counter that makes each worker drop
//! what it compiled before its next script. Nothing here holds a shard lock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use super::ScriptFlags;

/// The script cache: SHA1 (lowercase hex) → body.
#[derive(Default)]
struct Scripts {
    bodies: HashMap<String, Arc<[u8]>>,
    bytes: usize,
}

fn scripts() -> &'static RwLock<Scripts> {
    static S: OnceLock<RwLock<Scripts>> = OnceLock::new();
    S.get_or_init(Default::default)
}

static SCRIPT_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Bumped by `SCRIPT FLUSH`: workers drop their compiled scripts.
pub fn script_generation() -> u64 {
    SCRIPT_GENERATION.load(Ordering::Acquire)
}

/// Caches `body` under its SHA1 (EVAL and SCRIPT LOAD); returns the SHA1.
pub fn add_script(body: &[u8]) -> String {
    let sha = super::sha1hex(body);
    add_script_with_sha(&sha, body);
    sha
}

/// Caches `body` under a SHA1 the caller already computed.
pub fn add_script_with_sha(sha: &str, body: &[u8]) {
    if scripts().read().bodies.contains_key(sha) {
        return;
    }
    let mut s = scripts().write();
    if !s.bodies.contains_key(sha) {
        s.bytes += body.len() + sha.len();
        s.bodies.insert(sha.to_owned(), body.into());
    }
}

/// The body cached under `sha` (lowercase).
pub fn script(sha: &str) -> Option<Arc<[u8]>> {
    scripts().read().bodies.get(sha).cloned()
}

/// True if `sha` is cached (SCRIPT EXISTS).
pub fn has_script(sha: &str) -> bool {
    scripts().read().bodies.contains_key(sha)
}

/// SCRIPT FLUSH: forgets every script and the escalation memory.
pub fn flush_scripts() {
    let mut s = scripts().write();
    s.bodies.clear();
    s.bytes = 0;
    escalated().lock().clear();
    SCRIPT_GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// (number of cached scripts, bytes of their bodies) for INFO.
pub fn script_stats() -> (usize, usize) {
    let s = scripts().read();
    (s.bodies.len(), s.bytes)
}

fn escalated() -> &'static Mutex<HashSet<String>> {
    static E: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    E.get_or_init(Default::default)
}

/// Remembers that the script `name` (SHA1 or function name) touched keys
/// it did not declare after it had written: its later runs start with every
/// shard held instead of failing again.
pub fn remember_escalation(name: &str) {
    escalated().lock().insert(name.to_owned());
}

/// True if runs of `name` must start with every shard held.
pub fn needs_every_shard(name: &str) -> bool {
    let e = escalated().lock();
    !e.is_empty() && e.contains(name)
}

/// One function of a library.
#[derive(Clone, Debug)]
pub struct FunctionMeta {
    pub name: String,
    pub description: Option<String>,
    pub flags: ScriptFlags,
}

/// A loaded library: its code and what it registered.
#[derive(Clone, Debug)]
pub struct Library {
    pub name: String,
    pub code: Arc<[u8]>,
    pub functions: Vec<FunctionMeta>,
}

/// Every library by name, and which library each function belongs to.
#[derive(Clone, Default)]
pub struct Libraries {
    pub libs: BTreeMap<String, Library>,
    pub functions: HashMap<String, String>,
}

fn libraries() -> &'static RwLock<Arc<Libraries>> {
    static L: OnceLock<RwLock<Arc<Libraries>>> = OnceLock::new();
    L.get_or_init(Default::default)
}

static FUNCTION_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Bumped by every library change: workers reload their functions.
pub fn function_generation() -> u64 {
    FUNCTION_GENERATION.load(Ordering::Acquire)
}

/// The current libraries (a cheap snapshot).
pub fn libraries_snapshot() -> Arc<Libraries> {
    Arc::clone(&libraries().read())
}

/// Replaces the library set with the result of `change` (which may refuse).
pub fn change_libraries<T>(change: impl FnOnce(&mut Libraries) -> Result<T, String>) -> Result<T, String> {
    let mut guard = libraries().write();
    let mut next = (**guard).clone();
    let out = change(&mut next)?;
    *guard = Arc::new(next);
    FUNCTION_GENERATION.fetch_add(1, Ordering::AcqRel);
    Ok(out)
}

impl Libraries {
    /// Adds `lib`, refusing a name clash unless `replace`.
    pub fn add(&mut self, lib: Library, replace: bool) -> Result<(), String> {
        if self.libs.contains_key(&lib.name) && !replace {
            return Err(format!("ERR Library '{}' already exists", lib.name));
        }
        for f in &lib.functions {
            if let Some(owner) = self.functions.get(&f.name) {
                if *owner != lib.name {
                    return Err(format!("ERR Function {} already exists", f.name));
                }
            }
        }
        self.remove(&lib.name);
        for f in &lib.functions {
            self.functions.insert(f.name.clone(), lib.name.clone());
        }
        self.libs.insert(lib.name.clone(), lib);
        Ok(())
    }

    /// Removes library `name`; false if absent.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.libs.remove(name) {
            Some(lib) => {
                for f in &lib.functions {
                    self.functions.remove(&f.name);
                }
                true
            }
            None => false,
        }
    }

    /// The function `name` and its library.
    pub fn function(&self, name: &str) -> Option<(&Library, &FunctionMeta)> {
        let lib = self.libs.get(self.functions.get(name)?)?;
        Some((lib, lib.functions.iter().find(|f| f.name == name)?))
    }
}

/// A script that is running: registered when it starts, so `SCRIPT KILL`
/// can find it and other clients can tell whether it holds their shard.
pub struct Running {
    /// SHA1 of an EVAL script, or a function's name.
    pub name: String,
    /// EVAL-family (true) or FCALL-family (false).
    pub is_eval: bool,
    /// The command that runs it (FUNCTION STATS).
    pub command: Vec<Vec<u8>>,
    pub started: Instant,
    /// Past `busy-reply-threshold`: others touching its shards get -BUSY.
    pub busy: AtomicBool,
    /// Set by SCRIPT/FUNCTION KILL; the hook stops the script.
    pub kill: AtomicBool,
    /// The script wrote: it can no longer be killed.
    pub wrote: AtomicBool,
    /// The physical store whose shards it holds.
    pub physical: AtomicUsize,
    /// The shards it holds there (bit mask).
    pub shards: AtomicU64,
    /// It holds every shard of every database.
    pub every: AtomicBool,
}

impl Running {
    /// True if it holds shard `shard` of physical store `physical`
    /// (or of every store).
    pub fn holds(&self, physical: usize, mask: u64) -> bool {
        self.every.load(Ordering::Relaxed)
            || (self.physical.load(Ordering::Relaxed) == physical
                && self.shards.load(Ordering::Relaxed) & mask != 0)
    }
}

fn running() -> &'static Mutex<Vec<Arc<Running>>> {
    static R: OnceLock<Mutex<Vec<Arc<Running>>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Scripts running now (any worker): one relaxed load on the hot path.
static RUNNING_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Scripts past the busy threshold.
static BUSY_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Registers a starting script; unregistered when the guard drops.
pub fn start_running(entry: Running) -> RunningGuard {
    let entry = Arc::new(entry);
    running().lock().push(Arc::clone(&entry));
    RUNNING_COUNT.fetch_add(1, Ordering::AcqRel);
    RunningGuard { entry }
}

/// Keeps a script registered while it runs.
pub struct RunningGuard {
    pub entry: Arc<Running>,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        running().lock().retain(|r| !Arc::ptr_eq(r, &self.entry));
        if self.entry.busy.load(Ordering::Relaxed) {
            BUSY_COUNT.fetch_sub(1, Ordering::AcqRel);
        }
        RUNNING_COUNT.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Marks a running script busy (the hook, once past the threshold).
pub fn mark_busy(entry: &Running) {
    if !entry.busy.swap(true, Ordering::AcqRel) {
        BUSY_COUNT.fetch_add(1, Ordering::AcqRel);
    }
}

/// True if any script runs right now.
#[inline]
pub fn any_running() -> bool {
    RUNNING_COUNT.load(Ordering::Relaxed) != 0
}

/// True if any script is past the busy threshold.
#[inline]
pub fn any_busy() -> bool {
    BUSY_COUNT.load(Ordering::Relaxed) != 0
}

/// True if a busy script holds a shard of `mask` in `physical` (or
/// `mask == u64::MAX` with any busy script).
pub fn busy_holds(physical: usize, mask: u64) -> bool {
    if !any_busy() {
        return false;
    }
    running()
        .lock()
        .iter()
        .any(|r| r.busy.load(Ordering::Relaxed) && (mask == u64::MAX || r.holds(physical, mask)))
}

/// The error other clients get while a busy script holds their shards.
pub const BUSY_ERROR: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

/// What a kill request found.
pub enum KillOutcome {
    Killed,
    NotBusy,
    Unkillable,
    /// A script of the other family runs (EVAL vs FCALL).
    WrongKind,
}

/// SCRIPT KILL (`eval = true`) or FUNCTION KILL: flags the busy script.
pub fn kill(eval: bool) -> KillOutcome {
    let list = running().lock();
    let busy: Vec<_> = list.iter().filter(|r| r.busy.load(Ordering::Relaxed)).collect();
    let Some(target) = busy.iter().find(|r| r.is_eval == eval) else {
        return if busy.is_empty() {
            KillOutcome::NotBusy
        } else {
            KillOutcome::WrongKind
        };
    };
    if target.wrote.load(Ordering::Relaxed) {
        return KillOutcome::Unkillable;
    }
    target.kill.store(true, Ordering::Relaxed);
    KillOutcome::Killed
}

/// The longest-running busy script, for FUNCTION STATS: (name, command, ms).
pub fn running_script() -> Option<(String, Vec<Vec<u8>>, u128)> {
    let list = running().lock();
    list.iter()
        .filter(|r| !r.is_eval)
        .max_by_key(|r| r.started.elapsed())
        .map(|r| (r.name.clone(), r.command.clone(), r.started.elapsed().as_millis()))
}

/// Bytes of Lua memory over every worker's state (INFO used_memory_lua).
pub static LUA_MEMORY: AtomicUsize = AtomicUsize::new(0);
