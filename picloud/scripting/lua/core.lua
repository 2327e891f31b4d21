-- The sandbox core: runs once per LuaRuntime, in the main state, before any
-- tenant code exists. It captures what the sandbox needs, locks the shared
-- metatables, deletes every real global, and returns the internal table `I`
-- through which the other chunks (guards, bridge, stdlib, sdk) and the Python
-- driver reach the sandbox. `I` itself is never reachable from a script.
--
-- Invariants:
--   * a script only ever runs inside a coroutine that carries `hook`;
--   * once an invocation is killed, every one of its coroutines errors on its
--     next instruction, and every place that could catch the error (pcall,
--     xpcall, coroutine.resume/wrap/close) re-raises it;
--   * no value crossing from Python is a Python object (see bridge.lua).
local host, TICK = ...

local next, type, select, error, tostring = next, type, select, error, tostring
local rawget, rawlen, setmetatable, pcall, xpcall = rawget, rawlen, setmetatable, pcall, xpcall
local load, string, table, math, utf8, os = load, string, table, math, utf8, os
local coroutine, debug, package, collectgarbage = coroutine, debug, package, collectgarbage
local sethook, getinfo, dgetmetatable = debug.sethook, debug.getinfo, debug.getmetatable
local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local co_status, co_close, co_isyieldable = coroutine.status, coroutine.close, coroutine.isyieldable
local s_sub, s_find, s_match = string.sub, string.find, string.match
local clock, cpu_clock = host.clock, host.cpu_clock

local I = {host = host}

-- Lock the metatables every state shares. Strings index the guarded string
-- library (set by guards.lua); lupa's Python-object metatable must never be
-- reachable even if a Python object ever leaked in.
local string_mt = dgetmetatable("")
string_mt.__metatable = false
local registry = debug.getregistry()
if type(registry.POBJECT) == "table" then registry.POBJECT.__metatable = false end
function I.set_string_index(lib) string_mt.__index = lib end

-- Everything the other chunks may capture, taken before the globals go.
I.raw = {
  next = next, type = type, select = select, error = error, tostring = tostring,
  tonumber = tonumber, rawget = rawget, rawset = rawset, rawequal = rawequal,
  rawlen = rawlen, setmetatable = setmetatable, getmetatable = getmetatable,
  dgetmetatable = dgetmetatable, pcall = pcall, xpcall = xpcall, load = load,
  assert = assert, ipairs = ipairs, pairs = pairs, string = string, table = table,
  math = math, utf8 = utf8, os = os, coroutine = coroutine,
  collectgarbage = collectgarbage, getinfo = getinfo,
}

-- Delete the real globals, and the library registry `require` would use, so
-- nothing (python, debug, io, os, package, load, ...) is left to find.
local G, loaded = _G, package.loaded
for k in next, loaded do loaded[k] = nil end
for k in next, G do G[k] = nil end

local KILL = {}          -- the error value of a kill; never reaches a script
local SDK = {}           -- first value of an SDK yield; never reaches a script

local current = nil      -- the invocation whose Lua code is running, or nil
function I.current() return current end

local L = {}             -- the runtime's limits (see limits.py), set by configure
I.L = L

-- Script chunk names ("=name") known to this runtime: their frames give the
-- positions in error messages; all other frames are ours and are skipped.
local SOURCES = {}

local function script_where(co, level)
  for l = level, level + 300 do
    local info
    if co then info = getinfo(co, l, "Sl") else info = getinfo(l, "Sl") end
    if not info then return nil end
    if SOURCES[info.source] and info.currentline > 0 then
      return s_sub(info.source, 2) .. ":" .. info.currentline
    end
  end
  return nil
end

local function gc_kb() return collectgarbage("count") end

local hook
-- Kill `inv` for `reason`: from now on each of its coroutines errors on every
-- instruction, so nothing a script does can outlive the kill.
local set_hooks

local function kill(inv, reason)
  if not inv.killed then
    inv.killed = reason
    inv.kill_where = script_where(nil, 2)
  end
  set_hooks(inv, 1)
  error(KILL, 0)
end
I.kill = function(reason) return kill(current, reason) end

-- The checks of the hook, also run by `charge` after large C-level work.
-- Returns the heap size in KiB.
local function check(inv)
  if inv.count > L.max_count then kill(inv, "instructions") end
  local now = clock()
  if now > inv.deadline then kill(inv, "time") end
  -- An invocation running on the host's event loop gets a short slice of
  -- its own CPU time; past it, it is stopped and the host runs it again on
  -- a worker thread. Not wall time: a loop the OS did not schedule, or an
  -- SDK call that waited, is no sign of a CPU-bound script.
  if inv.slice and cpu_clock() > inv.slice then kill(inv, "slice") end
  local kb = gc_kb()
  if kb > inv.mem_kb then
    collectgarbage("collect")
    kb = gc_kb()
    if kb > inv.mem_kb then kill(inv, "memory") end
  end
  return kb
end

-- Set the hook of every coroutine of `inv` to run every `count` instructions.
set_hooks = function(inv, count)
  sethook(inv.co, hook, "", count)
  if inv.threads then
    for co in next, inv.threads do sethook(co, hook, "", count) end
  end
end

-- One VM instruction can take time proportional to the strings it touches
-- (comparing two 30 MB strings takes milliseconds), so the more heap a
-- script holds, the more often the hook runs: every L.tick instructions up
-- to 1 MiB of heap, then proportionally fewer, down to 64.
local function adapt(inv, kb)
  local tick = L.tick
  if kb > 1024 then
    tick = L.tick * 1024 // math.floor(kb)
    if tick < 64 then tick = 64 end
  end
  if tick ~= inv.tick then
    inv.tick = tick
    set_hooks(inv, tick)
  end
end

hook = function()
  local inv = current
  if not inv then return end
  if inv.killed then error(KILL, 0) end
  inv.count = inv.count + inv.tick
  adapt(inv, check(inv))
  if getinfo(L.depth_level, "") then kill(inv, "call_depth") end
end

-- The garbage collector runs in proportion to what is allocated, so a
-- finalizer of ours, re-armed at every cycle, catches a script that
-- allocates a lot in few instructions (`s .. s` on big strings) between two
-- runs of the hook: it makes the hook run at the next instruction, and the
-- hook checks and sets the interval again. It calls no Python (a finalizer
-- can run inside lupa's own calls) and cannot fail. Scripts still cannot set
-- __gc (stdlib.lua).
local GC_TICK = {}
GC_TICK.__gc = function()
  setmetatable({}, GC_TICK)
  local inv = current
  if inv and inv.tick ~= 1 then
    inv.tick = 1
    set_hooks(inv, 1)
  end
end
setmetatable({}, GC_TICK)

-- Account `n` bytes of work done by a C function the hook cannot see into:
-- it counts as n/32 instructions, and every 1 MiB of it runs the checks.
function I.charge(n)
  local inv = current
  if not inv or not (n > 0) then return end
  n = math.floor(n)
  inv.count = inv.count + n // 32
  local p = inv.pending + n
  if p >= 1048576 then
    inv.pending = 0
    adapt(inv, check(inv))
  else
    inv.pending = p
  end
end

-- The soft memory limit, checked before every SDK call so that the hard
-- limit always leaves lupa room for the values Python hands back.
function I.memory_check()
  local inv = current
  if gc_kb() > inv.mem_kb then
    collectgarbage("collect")
    if gc_kb() > inv.mem_kb then kill(inv, "memory") end
  end
end

function I.remaining_memory()
  return (current.mem_kb - gc_kb()) * 1024
end

-- pcall, xpcall and coroutine functions as scripts see them ----------------

-- What every catching function passes its results through: a kill is
-- re-raised, and a failed allocation (the heap at the hard limit, which the
-- soft limit should have prevented) becomes the memory limit. Recovering from
-- the latter is never allowed: it may have been raised where hooks are off.
local function settle(ok, ...)
  local inv = current
  if inv then
    if inv.killed then error(KILL, 0) end
    if not ok and (...) == "not enough memory" then kill(inv, "memory") end
  end
  return ok, ...
end

local function rethrow_if_killed()
  local inv = current
  if inv and inv.killed then error(KILL, 0) end
end

function I.pcall(f, ...) return settle(pcall(f, ...)) end

-- Lua calls a message handler where the error was raised: for the kill that
-- is inside the hook, where hooks are off, so the script's handler must not
-- run then (it could loop unhooked). Other errors are raised by ordinary
-- code and the handler runs hooked.
function I.xpcall(f, h, ...)
  if type(h) ~= "function" then
    error("bad argument #2 to 'xpcall' (function expected, got " .. type(h) .. ")", 2)
  end
  return settle(xpcall(f, function(e)
    local inv = current
    if inv and inv.killed then return e end
    return h(e)
  end, ...))
end

local WEAK_KEYS = {__mode = "k"}

function I.co_create(f)
  local inv = current
  local co = co_create(f)
  sethook(co, hook, "", inv.killed and 1 or inv.tick)
  local threads = inv.threads
  if not threads then
    threads = setmetatable({}, WEAK_KEYS)
    inv.threads = threads
  end
  threads[co] = true
  return co
end

-- An SDK yield from a script's own coroutine is passed up to the driver and
-- its answer passed back down, so SDK calls work at any coroutine depth.
local function through(co, ok, first, ...)
  if ok and first == SDK and co_status(co) == "suspended" then
    return through(co, co_resume(co, co_yield(SDK, ...)))
  end
  return settle(ok, first, ...)
end

function I.co_resume(co, ...) return through(co, co_resume(co, ...)) end

local function unwrap(ok, ...)
  if ok then return ... end
  error((...), 0)
end

function I.co_wrap(f)
  local co = I.co_create(f)
  return function(...) return unwrap(I.co_resume(co, ...)) end
end

-- A coroutine killed inside the hook died with hooks off; closing it would
-- run its __close handlers unhooked. After a kill nothing is closed.
function I.co_close(co)
  rethrow_if_killed()
  return settle(co_close(co))
end

-- The SDK bridge ---------------------------------------------------------------

-- Yield one SDK request to the driver: the arguments as JSON text, or (when
-- `payload` is nil) as the strings that follow. Returns true, shape, vals
-- (see bridge.lua), or false, message.
function I.sdk_yield(op, payload, ...)
  if not co_isyieldable() then
    error(op .. ": cannot be called from a metamethod, iterator or comparator "
      .. "that a library function calls", 0)
  end
  return co_yield(SDK, op, payload, ...)
end

-- Compiling ------------------------------------------------------------------

local EMPTY = setmetatable({}, {__newindex = function() end, __metatable = false})

-- Compile `src` as script `name`: once as a chunk (syntax errors as Lua
-- reports them), then wrapped as `function(_ENV, ...)`, so each invocation
-- runs the same prototype with its own fresh environment. A source that
-- compiles as a chunk parses to the same block inside the wrapper, so the
-- wrapper's main function only ever creates the closure.
function I.compile(name, src)
  local chunkname = "=" .. name
  local f, err = load(src, chunkname, "t", EMPTY)
  if not f then return nil, err end
  f, err = load("return function(_ENV, ...) " .. src .. "\nend", chunkname, "t", EMPTY)
  if not f then return nil, err end
  SOURCES[chunkname] = true
  return f()
end

-- Errors ---------------------------------------------------------------------

local MAX_MESSAGE = 2000

-- Turn an error value into text with the script position, never a position
-- inside the sandbox, and never calling a script's metamethod.
local function describe(co, e)
  local msg
  local t = type(e)
  if t == "string" then
    msg = e
  elseif t == "table" then
    local m = rawget(e, "message")
    msg = type(m) == "string" and m or "error object is a table value"
  else
    msg = "error object is a " .. t .. " value"
  end
  if #msg > MAX_MESSAGE then msg = s_sub(msg, 1, MAX_MESSAGE) .. "..." end
  -- Drop positions inside the sandbox's own chunks.
  while s_find(msg, "^sandbox%.%w+:%d+: ") do msg = s_match(msg, "^sandbox%.%w+:%d+: (.*)$") end
  local chunk = s_match(msg, "^([%w_]+):%d+: ")
  if chunk and SOURCES["=" .. chunk] then return msg end
  local where = script_where(co, 0)
  if where then return where .. ": " .. msg end
  return msg
end

-- The driver -------------------------------------------------------------------

-- What a step of the driver returns first (numbers: cheaper to hand to Python).
local SDK_REQUEST, DONE, FAILED, LIMIT = 1, 2, 3, 4

local function finish(inv, kind, ...)
  if kind == FAILED and not inv.killed then
    -- run pending to-be-closed variables, hooked; not after a limit, whose
    -- error may have been raised where hooks are off (see I.co_close)
    current = inv
    co_close(inv.co)
    current = nil
  end
  return kind, inv.count, ...
end

local function after_resume(inv, ok, ...)
  current = nil
  local co = inv.co
  if inv.killed then return finish(inv, LIMIT, inv.killed, inv.kill_where) end
  if not ok then
    local e = ...
    if e == "not enough memory" then
      return finish(inv, LIMIT, "memory", script_where(co, 0))
    end
    if type(e) == "string" and s_find(e, "stack overflow", 1, true) then
      return finish(inv, LIMIT, "call_depth", script_where(co, 0))
    end
    return finish(inv, FAILED, describe(co, e))
  end
  if co_status(co) == "dead" then return finish(inv, DONE, ...) end
  if (...) == SDK then
    -- the handle goes to Python once; later it already has it
    if inv.handed then return SDK_REQUEST, inv.count, false, select(2, ...) end
    inv.handed = true
    return SDK_REQUEST, inv.count, inv, select(2, ...)
  end
  local where = script_where(co, 0)
  return finish(inv, FAILED, (where and where .. ": " or "")
    .. "coroutine.yield called outside of a coroutine")
end

local function step(inv, ...)
  current = inv
  return after_resume(inv, co_resume(inv.co, ...))
end

function I.configure(max_count, mem_bytes, max_depth, max_log, max_value,
                     max_value_depth, max_response, max_import, module_cache)
  L.max_count, L.mem_kb, L.max_log = max_count, mem_bytes / 1024, max_log
  -- the hook's own frame is level 1 and the coroutine body is below the script
  L.depth_level = max_depth + 3
  L.max_value, L.max_value_depth, L.max_response = max_value, max_value_depth, max_response
  L.max_import, L.module_cache = max_import, module_cache
  L.tick = TICK
  if max_count < TICK * 10 then L.tick = max_count // 10 + 1 end
end

-- Start an invocation of compiled script `fn` that must end by `deadline`
-- (the clock's time), and be stopped with the "slice" limit once it used
-- `slice` seconds of CPU (or never: false). The context arrives as arguments (see bridge.lua)
-- and is built inside the hooked coroutine.
-- `modules_gen` (an integer or nil) is the module source's generation: while
-- it stays the same, modules compiled under it need no lookup (stdlib.lua).
function I.start(fn, deadline, slice, modules_gen, ...)
  local co = co_create(I.body)
  local inv = {
    count = 0, pending = 0, deadline = deadline, slice = slice, mem_kb = gc_kb() + L.mem_kb, tick = L.tick,
    killed = false, co = co, threads = false, log_bytes = 0, null = false,
    kill_where = false, modules = false, importing = false, handed = false,
    modules_gen = modules_gen or false, module_mt = false,
  }
  sethook(co, hook, "", L.tick)
  return step(inv, fn, I.new_env(inv), ...)
end

function I.resume(inv, ...) return step(inv, ...) end

-- The invocation may no longer be stopped at its slice (it did something
-- outside the sandbox: running it again from the start would repeat that).
function I.unslice(inv) inv.slice = false end

-- End an invocation from outside (timeout while awaiting I/O, cancellation,
-- or no memory left for an SDK answer).
function I.abort(inv, reason)
  local where = script_where(inv.co, 0)
  if not inv.killed then inv.killed = reason end
  set_hooks(inv, 1)
  return where
end

return I
