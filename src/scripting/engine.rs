//! One Lua 5.1 state per worker thread, created on the thread's first
//! script: no interpreter lock is shared between workers.
//!
//! The state's sandbox comes from `init.lua` (the `redis` API, protected
//! globals, the error handler). Scripts are compiled lazily from the shared
//! cache and dropped when its generation changes (`SCRIPT FLUSH`); function
//! libraries are (re)loaded from the shared registry when theirs changes.
//!
//! While a script runs, the worker's [`Host`] (the executor side, which owns
//! the shard locks) is reachable by `redis.call` through a thread-local
//! pointer, set and cleared around the call: the Lua state never outlives a
//! command's locks, and Lua never sees a lock.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, RegistryKey, StdLib, Table, Value, VmState};

use super::cache::{self, FunctionMeta, Running};
use super::{convert, functions, ScriptFlags};
use crate::protocol::Replies;

/// Reported as `redis.REDIS_VERSION` (the version INFO claims).
const VERSION: &str = "7.0.0";
const VERSION_NUM: i64 = 0x0007_0000;
/// Instructions between two checks of the clock and the kill flag (Redis's count).
const HOOK_EVERY: u32 = 100_000;
/// Longest a library's top-level code may run in FUNCTION LOAD (Redis's 500 ms).
const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

/// The executor side of `redis.call`: runs one command under the script's locks.
pub trait Host {
    /// Runs `args` and returns its RESP reply (RESP3 when `resp3`), or an
    /// error message with its code (`ERR ...`, `WRONGTYPE ...`).
    fn call(&mut self, args: &[Vec<u8>], resp3: bool) -> Result<Vec<u8>, String>;
}

/// The state of the script running on this thread.
struct RunInfo {
    entry: Arc<Running>,
    started: Instant,
    threshold: Option<Duration>,
    resp3: bool,
    killed: bool,
    /// rand48 state (`math.random`), reset for every run as Redis does.
    rand: u64,
    /// Deadline of a FUNCTION LOAD's top-level code.
    load_deadline: Option<Instant>,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
    static HOST: Cell<Option<*mut (dyn Host + 'static)>> = const { Cell::new(None) };
    static RUN: RefCell<Option<RunInfo>> = const { RefCell::new(None) };
    /// The error `redis.call` raised last (the handler turns it into a table).
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Functions registered by the library being loaded.
    static LOADING: RefCell<Option<Vec<(FunctionMeta, Function)>>> = const { RefCell::new(None) };
}

struct Compiled {
    func: RegistryKey,
    flags: ScriptFlags,
}

/// A worker's Lua state and what it compiled.
pub struct Engine {
    lua: Lua,
    run_eval: Function,
    run_function: Function,
    run_load: Function,
    set_keys_argv: Function,
    env: Table,
    script_generation: u64,
    scripts: HashMap<String, Compiled>,
    function_generation: u64,
    functions: HashMap<String, (Function, ScriptFlags)>,
    reported_memory: usize,
}

/// What to run.
pub enum Target<'a> {
    /// An EVAL script by SHA1 (lowercase); `body` when the command carried it.
    Eval { sha: &'a str, body: Option<&'a [u8]> },
    /// A function by name.
    Function { name: &'a str },
}

/// Runs `f` with this thread's engine (created on first use).
pub fn with_engine<T>(f: impl FnOnce(&mut Engine) -> Result<T, String>) -> Result<T, String> {
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Engine::new().map_err(|e| format!("ERR cannot create the Lua state: {e}"))?);
        }
        let engine = slot.as_mut().ok_or_else(|| "ERR no Lua state".to_string())?;
        f(engine)
    })
}

fn lrand48(state: &mut u64) -> u64 {
    *state = (state.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & ((1 << 48) - 1);
    *state >> 17
}

fn srand48(seed: i64) -> u64 {
    (((seed as u64) & 0xFFFF_FFFF) << 16) | 0x330E
}

/// Formats a Lua number as Redis does for command arguments (`%.17g`).
pub fn format_number(n: f64) -> Vec<u8> {
    let mut buf = [0u8; 64];
    // SAFETY: the buffer is 64 bytes and snprintf writes at most that, NUL included.
    let len = unsafe {
        libc::snprintf(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            c"%.17g".as_ptr(),
            n,
        )
    };
    buf[..(len.max(0) as usize).min(63)].to_vec()
}

fn err_table(lua: &Lua, msg: &str) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("err", msg)?;
    Ok(Value::Table(t))
}

/// `redis.call`/`redis.pcall`'s primitive: (reply, failed).
fn lua_call(lua: &Lua, args: MultiValue) -> mlua::Result<(Value, bool)> {
    if args.is_empty() {
        return Ok((
            err_table(
                lua,
                "ERR Please specify at least one argument for this redis lib call",
            )?,
            true,
        ));
    }
    let mut argv = Vec::with_capacity(args.len());
    for v in args.iter() {
        match v {
            Value::String(s) => argv.push(s.as_bytes().to_vec()),
            Value::Integer(n) => argv.push(n.to_string().into_bytes()),
            Value::Number(n) => argv.push(format_number(*n)),
            _ => {
                return Ok((
                    err_table(
                        lua,
                        "ERR Lua redis lib command arguments must be strings or integers",
                    )?,
                    true,
                ))
            }
        }
    }
    let (resp3, killed) = RUN.with(|r| {
        r.borrow()
            .as_ref()
            .map_or((false, false), |r| (r.resp3, r.killed))
    });
    if killed {
        return Ok((
            err_table(lua, "ERR Script killed by user with SCRIPT KILL...")?,
            true,
        ));
    }
    let Some(host) = HOST.with(Cell::get) else {
        return Ok((
            err_table(
                lua,
                "ERR redis.call/pcall can only be called inside a script invocation",
            )?,
            true,
        ));
    };
    // SAFETY: `run` set this pointer from a `&mut dyn Host` that outlives the
    // Lua call and clears it before returning; the Lua state is single-threaded
    // and `redis.call` is not re-entrant (scripts cannot run EVAL), so this is
    // the only live reference.
    let host = unsafe { &mut *host };
    match host.call(&argv, resp3) {
        Ok(reply) => {
            let value = convert::reply_to_lua(lua, &reply)?;
            let failed =
                matches!(&value, Value::Table(t) if t.raw_get::<Value>("err").is_ok_and(|v| !v.is_nil()));
            Ok((value, failed))
        }
        Err(msg) => Ok((err_table(lua, &msg)?, true)),
    }
}

fn lua_register(lua: &Lua, args: MultiValue) -> mlua::Result<Option<String>> {
    let loading = LOADING.with(|l| l.borrow().is_some());
    if !loading {
        return Ok(Some(
            "ERR redis.register_function can only be called on FUNCTION LOAD command".into(),
        ));
    }
    let parsed = functions::parse_registration(lua, args);
    match parsed {
        Ok((meta, func)) => {
            let dup = LOADING.with(|l| {
                let mut l = l.borrow_mut();
                let list = l.get_or_insert_with(Vec::new);
                if list.iter().any(|(m, _)| m.name == meta.name) {
                    true
                } else {
                    list.push((meta, func));
                    false
                }
            });
            Ok(dup.then(|| "ERR Function already exists in the library".to_string()))
        }
        Err(e) => Ok(Some(e)),
    }
}

impl Engine {
    fn new() -> mlua::Result<Engine> {
        // SAFETY: the debug library is loaded only so that init.lua can keep
        // `debug.getinfo` for its error handler; it removes `debug` from the
        // globals before any script runs.
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                LuaOptions::new(),
            )
        };
        super::register_libs(&lua)?;
        let p = lua.create_table()?;
        p.set(
            "call",
            lua.create_function(|lua, args: MultiValue| {
                let (value, failed) = lua_call(lua, args)?;
                if failed {
                    let msg = match &value {
                        Value::Table(t) => t
                            .raw_get::<String>("err")
                            .unwrap_or_else(|_| "ERR unknown error".into()),
                        _ => "ERR unknown error".into(),
                    };
                    LAST_ERROR.with(|e| *e.borrow_mut() = Some(msg.clone()));
                    return Err(mlua::Error::RuntimeError(msg));
                }
                Ok(value)
            })?,
        )?;
        p.set(
            "pcall",
            lua.create_function(|lua, args: MultiValue| Ok(lua_call(lua, args)?.0))?,
        )?;
        p.set(
            "take_error",
            lua.create_function(|_, ()| Ok(LAST_ERROR.with(|e| e.borrow_mut().take())))?,
        )?;
        p.set(
            "sha1hex",
            lua.create_function(|_, v: Value| {
                let bytes = match &v {
                    Value::String(s) => s.as_bytes().to_vec(),
                    Value::Integer(n) => n.to_string().into_bytes(),
                    Value::Number(n) => format_number(*n),
                    _ => Vec::new(),
                };
                Ok(super::sha1hex(&bytes))
            })?,
        )?;
        p.set(
            "log",
            lua.create_function(|_, (level, msg): (i64, String)| {
                match level {
                    0 => tracing::debug!(target: "kvserver::script", "{msg}"),
                    1 => tracing::info!(target: "kvserver::script", "{msg}"),
                    2 => tracing::info!(target: "kvserver::script", "{msg}"),
                    _ => tracing::warn!(target: "kvserver::script", "{msg}"),
                }
                Ok(())
            })?,
        )?;
        p.set(
            "setresp",
            lua.create_function(|_, resp3: bool| {
                RUN.with(|r| {
                    if let Some(r) = r.borrow_mut().as_mut() {
                        r.resp3 = resp3;
                    }
                });
                Ok(())
            })?,
        )?;
        p.set(
            "rand",
            lua.create_function(|_, ()| {
                Ok(RUN.with(|r| {
                    let mut r = r.borrow_mut();
                    match r.as_mut() {
                        Some(r) => lrand48(&mut r.rand),
                        None => {
                            let mut s = srand48(0);
                            lrand48(&mut s)
                        }
                    }
                }) as f64)
            })?,
        )?;
        p.set(
            "srand",
            lua.create_function(|_, seed: f64| {
                RUN.with(|r| {
                    if let Some(r) = r.borrow_mut().as_mut() {
                        r.rand = srand48(seed as i64);
                    }
                });
                Ok(())
            })?,
        )?;
        p.set(
            "known_command",
            lua.create_function(|_, name: Value| {
                Ok(match name {
                    Value::String(s) => crate::command::lookup(&s.as_bytes()).is_some(),
                    _ => false,
                })
            })?,
        )?;
        p.set("register", lua.create_function(lua_register)?)?;
        p.set("version", VERSION)?;
        p.set("version_num", VERSION_NUM)?;
        let init: (Table, Function, Function, Function, Function) =
            lua.load(include_str!("init.lua")).set_name("=kv_init").call(p)?;
        let (env, run_eval, run_function, run_load, set_keys_argv) = init;
        lua.set_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), |_, _| {
            hook()
        })?;
        Ok(Engine {
            lua,
            run_eval,
            run_function,
            run_load,
            set_keys_argv,
            env,
            script_generation: cache::script_generation(),
            scripts: HashMap::new(),
            function_generation: u64::MAX,
            functions: HashMap::new(),
            reported_memory: 0,
        })
    }

    /// The flags of an EVAL script, compiling it on this worker if needed
    /// (`NOSCRIPT` when only a SHA1 was given and no worker cached it).
    pub fn prepare_eval(&mut self, sha: &str, body: Option<&[u8]>) -> Result<ScriptFlags, String> {
        let generation = cache::script_generation();
        if generation != self.script_generation {
            self.scripts.clear();
            self.script_generation = generation;
            self.lua.gc_collect().ok();
        }
        if let Some(c) = self.scripts.get(sha) {
            return Ok(c.flags);
        }
        let body = match body {
            Some(b) => std::borrow::Cow::Borrowed(b),
            None => match cache::script(sha) {
                Some(b) => std::borrow::Cow::Owned(b.to_vec()),
                None => return Err("NOSCRIPT No matching script. Please use EVAL.".into()),
            },
        };
        let (flags, code) = super::parse_shebang(&body)?;
        let func = self
            .lua
            .load(&*code)
            .set_name("@user_script")
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                format!(
                    "ERR Error compiling script (new function): {}",
                    compile_message(&e)
                )
            })?;
        let key = self
            .lua
            .create_registry_value(func)
            .map_err(|e| format!("ERR {e}"))?;
        self.scripts.insert(sha.to_owned(), Compiled { func: key, flags });
        Ok(flags)
    }

    /// Compiles `body` without keeping it (SCRIPT LOAD checks the syntax).
    pub fn check_compiles(&mut self, body: &[u8]) -> Result<(), String> {
        let (_, code) = super::parse_shebang(body)?;
        self.lua
            .load(&*code)
            .set_name("@user_script")
            .into_function()
            .map(drop)
            .map_err(|e| {
                format!(
                    "ERR Error compiling script (new function): {}",
                    compile_message(&e)
                )
            })
    }

    /// Brings this worker's functions up to the shared registry.
    fn sync_functions(&mut self) {
        let generation = cache::function_generation();
        if generation == self.function_generation {
            return;
        }
        self.functions.clear();
        let libs = cache::libraries_snapshot();
        for lib in libs.libs.values() {
            match self.load_library(&lib.code) {
                Ok((_, fns)) => {
                    for (meta, func) in fns {
                        self.functions.insert(meta.name.clone(), (func, meta.flags));
                    }
                }
                Err(e) => tracing::warn!(library = %lib.name, "cannot load library on this worker: {e}"),
            }
        }
        self.function_generation = generation;
    }

    /// The flags of function `name` (after syncing the libraries).
    pub fn function_flags(&mut self, name: &str) -> Result<ScriptFlags, String> {
        self.sync_functions();
        self.functions
            .get(name)
            .map(|(_, flags)| *flags)
            .ok_or_else(|| "ERR Function not found".to_string())
    }

    /// Runs a library's code in the load environment and returns its name
    /// and the functions it registered (FUNCTION LOAD validation and worker sync).
    pub fn load_library(&mut self, code: &[u8]) -> Result<(String, Vec<(FunctionMeta, Function)>), String> {
        let (name, body) = functions::parse_header(code)?;
        let chunk = self
            .lua
            .load(&*body)
            .set_name("@user_function")
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| format!("ERR Error compiling function: {}", compile_message(&e)))?;
        LOADING.with(|l| *l.borrow_mut() = Some(Vec::new()));
        RUN.with(|r| {
            *r.borrow_mut() = Some(RunInfo {
                entry: Arc::new(functions::loading_entry()),
                started: Instant::now(),
                threshold: None,
                resp3: false,
                killed: false,
                rand: srand48(0),
                load_deadline: Some(Instant::now() + LOAD_TIMEOUT),
            })
        });
        let result: mlua::Result<(bool, Value)> = self.run_load.call(chunk);
        RUN.with(|r| *r.borrow_mut() = None);
        let registered = LOADING.with(|l| l.borrow_mut().take()).unwrap_or_default();
        match result {
            Ok((true, _)) => {}
            Ok((false, err)) => {
                let msg = error_text(&err);
                return Err(format!("ERR Error registering functions: {msg}"));
            }
            Err(e) => return Err(format!("ERR Error registering functions: {e}")),
        }
        if registered.is_empty() {
            return Err("ERR No functions registered".into());
        }
        Ok((name, registered))
    }

    /// Runs `target` with `keys` and `args`, `redis.call` going to `host`,
    /// and writes the script's reply (or error) to `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        target: &Target<'_>,
        keys: &[&[u8]],
        args: &[&[u8]],
        host: &mut dyn Host,
        out: &mut Replies,
        entry: &Arc<Running>,
        threshold: Option<Duration>,
    ) {
        let (func, name, is_eval) = match target {
            Target::Eval { sha, .. } => match self.scripts.get(*sha) {
                Some(c) => match self.lua.registry_value::<Function>(&c.func) {
                    Ok(f) => (f, *sha, true),
                    Err(e) => return out.error(&format!("ERR {e}")),
                },
                None => return out.error("NOSCRIPT No matching script. Please use EVAL."),
            },
            Target::Function { name } => match self.functions.get(*name) {
                Some((f, _)) => (f.clone(), *name, false),
                None => return out.error("ERR Function not found"),
            },
        };
        let make = |lua: &Lua, items: &[&[u8]]| -> mlua::Result<Table> {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, lua.create_string(item)?)?;
            }
            Ok(t)
        };
        let (keys_t, args_t) = match (make(&self.lua, keys), make(&self.lua, args)) {
            (Ok(k), Ok(a)) => (k, a),
            (Err(e), _) | (_, Err(e)) => return out.error(&format!("ERR {e}")),
        };
        RUN.with(|r| {
            *r.borrow_mut() = Some(RunInfo {
                entry: Arc::clone(entry),
                started: Instant::now(),
                threshold,
                resp3: false,
                killed: false,
                rand: srand48(0),
                load_deadline: None,
            })
        });
        // SAFETY: erases the borrow's lifetime for the thread-local; the
        // pointer is cleared below, before `host` can go out of scope.
        let host_ptr: *mut (dyn Host + '_) = host;
        let host_ptr: *mut (dyn Host + 'static) = unsafe { std::mem::transmute(host_ptr) };
        HOST.with(|h| h.set(Some(host_ptr)));
        let result: mlua::Result<(bool, Value)> = if is_eval {
            match self.set_keys_argv.call::<()>((keys_t, args_t)) {
                Ok(()) => self.run_eval.call(func),
                Err(e) => Err(e),
            }
        } else {
            self.run_function.call((func, keys_t, args_t))
        };
        HOST.with(|h| h.set(None));
        let resp3 = RUN.with(|r| r.borrow_mut().take()).is_some_and(|r| r.resp3);
        match result {
            Ok((true, value)) => convert::lua_to_reply(&value, out, resp3),
            Ok((false, err)) => out.error(&script_error(&err, name)),
            Err(e) => out.error(&format!("ERR Error running script {name}, {e}")),
        }
        self.report_memory();
    }

    fn report_memory(&mut self) {
        let now = self.lua.used_memory();
        if now != self.reported_memory {
            if now > self.reported_memory {
                cache::LUA_MEMORY.fetch_add(now - self.reported_memory, Ordering::Relaxed);
            } else {
                cache::LUA_MEMORY.fetch_sub(self.reported_memory - now, Ordering::Relaxed);
            }
            self.reported_memory = now;
        }
    }
}

/// The count hook: marks the script busy past the threshold, stops it once
/// killed (and keeps stopping it, so `pcall` cannot swallow the kill).
fn hook() -> mlua::Result<VmState> {
    RUN.with(|r| {
        let mut r = r.borrow_mut();
        let Some(run) = r.as_mut() else {
            return Ok(VmState::Continue);
        };
        if let Some(deadline) = run.load_deadline {
            if Instant::now() > deadline {
                return Err(mlua::Error::RuntimeError("FUNCTION LOAD timeout".into()));
            }
            return Ok(VmState::Continue);
        }
        if !run.killed && run.entry.kill.load(Ordering::Relaxed) {
            run.killed = true;
            tracing::warn!("Lua script killed by user with SCRIPT KILL.");
        }
        if run.killed {
            return Err(mlua::Error::RuntimeError("Script killed by user with SCRIPT KILL...".into()));
        }
        if let Some(threshold) = run.threshold {
            if !run.entry.busy.load(Ordering::Relaxed) && run.started.elapsed() >= threshold {
                tracing::warn!(
                    script = %run.entry.name,
                    "a script is still running after busy-reply-threshold: other clients of its shards get -BUSY"
                );
                cache::mark_busy(&run.entry);
            }
        }
        Ok(VmState::Continue)
    })
}

/// The text of a Lua error value (an `{err=...}` table or anything else).
fn error_text(err: &Value) -> String {
    match err {
        Value::Table(t) => match t.raw_get::<Value>("err") {
            Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
            _ => "ERR unknown error".into(),
        },
        Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
        other => format!("{other:?}"),
    }
}

/// Redis's message for a failed script: `<err> script: <name>, on <source>:<line>.`
fn script_error(err: &Value, name: &str) -> String {
    let mut msg = error_text(err);
    if let Value::Table(t) = err {
        let source = t.raw_get::<Option<String>>("source").ok().flatten();
        let line = t.raw_get::<Option<i64>>("line").ok().flatten();
        if let (Some(source), Some(line)) = (source, line) {
            msg = format!("{msg} script: {name}, on {source}:{line}.");
        }
    }
    msg.trim_start_matches('-').to_string()
}

/// The message of a syntax error, without mlua's decoration.
fn compile_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_arguments_as_redis_formats_them() {
        assert_eq!(format_number(3.0), b"3");
        assert_eq!(format_number(-7.0), b"-7");
        assert_eq!(format_number(3.5), b"3.5");
        assert_eq!(format_number(0.1), b"0.10000000000000001");
        assert_eq!(format_number(1e20), b"1e+20");
    }

    #[test]
    fn rand48_matches_the_c_library_sequence() {
        // lrand48() after srand48(0), as glibc and Redis's rand.c give it.
        let mut state = srand48(0);
        assert_eq!(lrand48(&mut state), 366_850_414);
        assert_eq!(lrand48(&mut state), 1_610_402_240);
    }
}
