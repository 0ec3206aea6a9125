-- The sandbox of every worker's Lua state, run once at its creation with
-- the Rust primitives in P. Builds the `redis` API, the error handler, the
-- protected globals and the library-load environment (see engine.rs).
local P = ...
local dbg = debug
debug = nil
local error, type, tostring, select, setmetatable, rawset, rawget, xpcall, pairs =
      error, type, tostring, select, setmetatable, rawset, rawget, xpcall, pairs
local string_sub, string_find = string.sub, string.find
local R = _G

local function raise(msg) error({err = msg}) end

loadfile = nil
dofile = nil
print = nil
require = nil
module = nil
package = nil
os = nil
io = nil
newproxy = nil
collectgarbage = nil

local redis = {}
-- Both are Rust functions: a C function in tail position keeps the
-- script's frame, so errors name the script's line as in Redis.
redis.call = P.call
redis.pcall = P.pcall
redis.sha1hex = function(...)
  if select('#', ...) ~= 1 then raise('ERR wrong number of arguments') end
  return P.sha1hex(...)
end
redis.error_reply = function(...)
  local e = ...
  if select('#', ...) ~= 1 or type(e) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  if string_sub(e, 1, 1) == '-' then e = string_sub(e, 2) end
  if not string_find(e, ' ', 1, true) then e = 'ERR ' .. e end
  return {err = e}
end
redis.status_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return {ok = s}
end
local function log(...)
  local n = select('#', ...)
  if n < 2 then raise('ERR redis.log() requires two arguments or more.') end
  local level = ...
  if type(level) ~= 'number' then raise('ERR First argument must be a number (log level).') end
  if level < 0 or level > 3 then raise('ERR Invalid debug level.') end
  local parts = {}
  for i = 2, n do parts[#parts + 1] = tostring((select(i, ...))) end
  P.log(level, table.concat(parts, ' '))
end
redis.log = log
redis.LOG_DEBUG = 0
redis.LOG_VERBOSE = 1
redis.LOG_NOTICE = 2
redis.LOG_WARNING = 3
redis.setresp = function(...)
  if select('#', ...) ~= 1 then raise('ERR redis.setresp() requires one argument.') end
  local v = ...
  if v ~= 2 and v ~= 3 then raise('ERR RESP version must be 2 or 3.') end
  P.setresp(v == 3)
end
redis.REPL_NONE = 0
redis.REPL_AOF = 1
redis.REPL_SLAVE = 2
redis.REPL_REPLICA = 2
redis.REPL_ALL = 3
redis.set_repl = function(...)
  if select('#', ...) ~= 1 then raise('ERR redis.set_repl() requires two arguments.') end
  local v = ...
  if type(v) ~= 'number' or v < 0 or v > 3 then
    raise('ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.')
  end
end
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = function(...)
  if select('#', ...) < 1 then raise('ERR Please specify at least one argument for this redis lib call') end
  if not P.known_command((...)) then raise('ERR Invalid command passed to redis.acl_check_cmd()') end
  return true
end
redis.REDIS_VERSION = P.version
redis.REDIS_VERSION_NUM = P.version_num

local REDIS_LRAND48_MAX = 2147483647
math.random = function(...)
  local r = (P.rand() % REDIS_LRAND48_MAX) / REDIS_LRAND48_MAX
  local n = select('#', ...)
  if n == 0 then return r end
  local a, b = ...
  if n == 1 then
    a = math.floor(tonumber(a) or error("bad argument #1 to 'random' (number expected)"))
    if a < 1 then error("bad argument #1 to 'random' (interval is empty)") end
    return math.floor(r * a) + 1
  elseif n == 2 then
    a = math.floor(tonumber(a) or error("bad argument #1 to 'random' (number expected)"))
    b = math.floor(tonumber(b) or error("bad argument #2 to 'random' (number expected)"))
    if a > b then error("bad argument #2 to 'random' (interval is empty)") end
    return math.floor(r * (b - a + 1)) + a
  end
  error('wrong number of arguments')
end
math.randomseed = function(seed) P.srand(tonumber(seed) or 0) end

-- Errors: tables {err=..., source=..., line=...} naming the script's frame
-- (not this file's wrappers, not C functions).
local function handler(err)
  local level = 2
  local i = dbg.getinfo(level, 'nSl')
  while i and (i.what == 'C' or i.source == '=kv_init') do
    level = level + 1
    i = dbg.getinfo(level, 'nSl')
  end
  if type(err) == 'userdata' then
    local m = P.take_error()
    if m then err = {err = m} end
  end
  if type(err) ~= 'table' then
    local s = tostring(err)
    s = string.gsub(s, '^runtime error: ', '')
    err = {err = 'ERR ' .. s}
  end
  if i then
    err.source = i.source
    err.line = i.currentline
  end
  return err
end

-- Read-only tables: a proxy whose writes fail.
local protected = setmetatable({}, {__mode = 'k'})
local function readonly_error() error('Attempt to modify a readonly table', 2) end
local function protect(t)
  local proxy = setmetatable({}, {__index = t, __newindex = readonly_error, __metatable = false})
  protected[proxy] = true
  return proxy
end
local raw_rawset = rawset
R.rawset = function(t, k, v)
  if protected[t] then error('Attempt to modify a readonly table', 2) end
  return raw_rawset(t, k, v)
end

local function nonexistent(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end
-- The library-load API: only `redis.register_function`, `redis.log` and
-- the version (Redis's load environment).
local load_redis = {
  register_function = function(...)
    local e = P.register(...)
    if e then error({err = e}) end
  end,
  log = log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = P.version, REDIS_VERSION_NUM = P.version_num,
}
setmetatable(load_redis, {__index = nonexistent})
local L = setmetatable({redis = protect(load_redis)}, {__index = nonexistent})

for name, value in pairs(R) do
  if type(value) == 'table' and name ~= '_G' and name ~= 'redis' then
    raw_rawset(R, name, protect(value))
  end
end
raw_rawset(R, 'redis', protect(redis))

-- The globals scripts see: an empty read-only table over R (or over L
-- while a library loads).
local genv_mt = {__index = R, __newindex = function(_, k)
  error('Attempt to modify a readonly table', 2)
end, __metatable = false}
local G = setmetatable({}, genv_mt)
protected[G] = true
raw_rawset(R, '_G', G)
setmetatable(R, {__index = nonexistent})

local function run_eval(f)
  return xpcall(f, handler)
end
local function run_function(f, keys, args)
  return xpcall(function() return f(keys, args) end, handler)
end
local function run_load(f)
  genv_mt.__index = L
  local ok, res = xpcall(f, handler)
  genv_mt.__index = R
  return ok, res
end
local function set_keys_argv(keys, argv)
  raw_rawset(R, 'KEYS', keys)
  raw_rawset(R, 'ARGV', argv)
end
return G, run_eval, run_function, run_load, set_keys_argv
