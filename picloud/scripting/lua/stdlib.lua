-- The standard library scripts see, and the environment built for each
-- invocation. Library tables here are templates: every invocation gets its
-- own shallow copies, so nothing one invocation writes is seen by the next.
-- Functions needing Python (json.decode, base64, regex, ...) call the host
-- through `call`, which never lets a Python error value reach the script.
--
-- What scripts get (SPEC.md §2), besides Lua's string, table, math (without
-- randomseed), utf8, coroutine, os.time/clock/date/difftime and the base
-- functions (print goes to log.info; load takes text only; setmetatable
-- refuses __gc; getmetatable answers only for tables):
--   json.encode(v) json.decode(s) json.null json.array(t?) json.object(t?)
--     (mapping rules: bridge.lua)
--   base64.encode/decode(s) base64.url_encode/url_decode(s)  hex.encode/decode(s)
--   url.encode/decode(s) url.parse(u) -> {scheme, host, port, user, password,
--     path, query, fragment, params} url.parse_query(s) url.build_query(t)
--     (also url.query); a repeated query key gives an array
--   regex.match(p, s, init?) -> {text, start, stop, groups, named} | nil
--   regex.find(p, s, init?) -> start, stop | nil   regex.find_all(p, s, max?)
--   regex.replace(p, s, repl, count?) -> s, n ("\1", "\g<name>")
--   regex.split(p, s, max?)   -- RE2 syntax, linear time
--   time.now() -> "2024-05-01T12:00:00.123Z" (text: to show or store)
--   time.unix() -> seconds, a number (for arithmetic); one clock for both:
--   time.parse(time.now()) is time.unix() to the millisecond
--   time.format(t?, strftime?) (UTC)  time.parse(iso) -> unix seconds
--   random.int(m?, n?) random.float() random.uuid() random.bytes(n) -> hex
--   log.debug/info/warn/error(...)
--   kv, docs, dead_letters: sdk.lua
-- Errors are "lib.function: reason"; limits end the invocation (limits.py).
local I = ...
local R = I.raw
local next, type, error, tostring, select = R.next, R.type, R.error, R.tostring, R.select
local rawget, pcall, raw_load = R.rawget, R.pcall, R.load
local string, math, os, table = R.string, R.math, R.os, R.table
local s_sub, s_gsub, s_find, concat = string.sub, string.gsub, string.find, table.concat
local host, kill = I.host, I.kill

-- host calls -----------------------------------------------------------------

-- A host function returns (true, values...), (false, message) for the
-- script's error, or (nil, limit_name) for a limit. Anything it raised is
-- replaced by a plain message: the error value could be a Python object.
local function result(what, status, a, b, c)
  if status == true then return a, b, c end
  if status == false then error(what .. ": " .. tostring(a), 0) end
  kill(a)
end

local function call(what, f, ...)
  local ok, status, a, b, c = pcall(f, ...)
  if not ok then error(what .. ": internal error", 0) end
  return result(what, status, a, b, c)
end

-- A value rebuilt from (shape, vals) returned by the host, or nil.
local function call_value(what, f, ...)
  local shape, vals = call(what, f, ...)
  if shape == nil then return nil end
  return I.build(shape, vals)
end

-- A string argument for the host: numbers are converted as Lua would, and
-- its size is bounded before it is copied into Python.
local function str(v, what, n)
  local t = type(v)
  if t == "number" then return tostring(v) end
  if t ~= "string" then
    error(what .. ": argument #" .. n .. " must be a string, got " .. t, 3)
  end
  if #v > I.L.max_value then kill("value_bytes") end
  return v
end

local function opt_int(v, what, n)
  if v == nil then return nil end
  local i = math.tointeger(v)
  if i == nil then error(what .. ": argument #" .. n .. " must be an integer", 3) end
  return i
end

local function host_fn(name, what)
  local f = host[name]
  return function(...) return call(what, f, ...) end
end

-- libraries --------------------------------------------------------------------

local LIBS = {}
I.LIBS = LIBS
-- Libraries made afresh for each invocation by a function (sdk.lua's proxies).
I.LIB_FACTORIES = {}

local json = {}
function json.encode(v) return I.export(v, "json.encode") end
function json.decode(s) return call_value("json.decode", host.json_decode, str(s, "json.decode", 1)) end
function json.array(t)
  if t ~= nil and type(t) ~= "table" then error("json.array: expected a table", 2) end
  return I.mark_array(t)
end
function json.object(t)
  if t ~= nil and type(t) ~= "table" then error("json.object: expected a table", 2) end
  return I.mark_object(t)
end
LIBS.json = json

local function codec(prefix, encode_name, decode_name)
  local enc, dec = host[encode_name], host[decode_name]
  return function(s) return call(prefix .. "encode", enc, str(s, prefix .. "encode", 1)) end,
         function(s) return call(prefix .. "decode", dec, str(s, prefix .. "decode", 1)) end
end
local base64 = {}
base64.encode, base64.decode = codec("base64.", "b64_encode", "b64_decode")
base64.url_encode, base64.url_decode = codec("base64.url_", "b64url_encode", "b64url_decode")
LIBS.base64 = base64
local hex = {}
hex.encode, hex.decode = codec("hex.", "hex_encode", "hex_decode")
LIBS.hex = hex

local url = {}
url.encode, url.decode = codec("url.", "url_encode", "url_decode")
function url.parse(s) return call_value("url.parse", host.url_parse, str(s, "url.parse", 1)) end
function url.parse_query(s)
  return call_value("url.parse_query", host.url_parse_query, str(s, "url.parse_query", 1))
end
function url.build_query(t)
  if type(t) ~= "table" then error("url.build_query: expected a table", 2) end
  return call("url.build_query", host.url_build_query, I.export(t, "url.build_query"))
end
url.query = url.build_query   -- SPEC.md §2 names it so
LIBS.url = url

-- regex: RE2 (linear time) through Python; positions are 1-based and
-- inclusive like string.find. A match is {text=, start=, stop=, groups={...},
-- named={...}}; a group that did not take part is false.
local regex = {}
local function re_args(what, p, s)
  return str(p, what, 1), str(s, what, 2)
end
function regex.match(p, s, init)
  p, s = re_args("regex.match", p, s)
  I.charge(#s)
  return call_value("regex.match", host.re_match, p, s, opt_int(init, "regex.match", 3) or 1)
end
function regex.find(p, s, init)
  p, s = re_args("regex.find", p, s)
  I.charge(#s)
  return call("regex.find", host.re_find, p, s, opt_int(init, "regex.find", 3) or 1)
end
function regex.find_all(p, s, limit)
  p, s = re_args("regex.find_all", p, s)
  I.charge(#s)
  return call_value("regex.find_all", host.re_find_all, p, s, opt_int(limit, "regex.find_all", 3) or 0)
end
function regex.replace(p, s, repl, count)
  p, s = re_args("regex.replace", p, s)
  I.charge(#s)
  return call("regex.replace", host.re_replace, p, s, str(repl, "regex.replace", 3),
    opt_int(count, "regex.replace", 4) or 0)
end
function regex.split(p, s, max)
  p, s = re_args("regex.split", p, s)
  I.charge(#s)
  return call_value("regex.split", host.re_split, p, s, opt_int(max, "regex.split", 3) or 0)
end
LIBS.regex = regex

local time = {now = host_fn("time_now", "time.now"), unix = host_fn("time_unix", "time.unix")}
function time.format(t, fmt)
  if t ~= nil and type(t) ~= "number" then error("time.format: argument #1 must be a number", 2) end
  if fmt ~= nil then fmt = str(fmt, "time.format", 2) end
  return call("time.format", host.time_format, t, fmt)
end
function time.parse(s) return call("time.parse", host.time_parse, str(s, "time.parse", 1)) end
LIBS.time = time

local random = {float = host_fn("rand_float", "random.float"), uuid = host_fn("rand_uuid", "random.uuid")}
function random.int(m, n)
  return call("random.int", host.rand_int, opt_int(m, "random.int", 1), opt_int(n, "random.int", 2))
end
function random.bytes(n)
  return call("random.bytes", host.rand_bytes, opt_int(n, "random.bytes", 1) or 16)
end
LIBS.random = random

-- log: captured per invocation with level and time; the total is bounded.
local host_log = host.log
local function logger(level)
  return function(...)
    local n = select("#", ...)
    local parts = {...}
    local size = n > 0 and n - 1 or 0
    for i = 1, n do
      local v = parts[i]
      if type(v) ~= "string" then
        v = tostring(v)
        parts[i] = v
      end
      size = size + #v
    end
    local inv = I.current()
    inv.log_bytes = inv.log_bytes + size
    if inv.log_bytes > I.L.max_log then kill("log_bytes") end
    call("log", host_log, level, concat(parts, " ", 1, n))
  end
end
LIBS.log = {debug = logger("debug"), info = logger("info"), warn = logger("warn"), error = logger("error")}

local safe_math = {}
for k, v in next, math do safe_math[k] = v end
safe_math.randomseed = nil  -- the generator is shared by all invocations
LIBS.math = safe_math
LIBS.string, LIBS.table, LIBS.utf8 = I.safe_string, I.safe_table, I.safe_utf8
-- os.clock is the invocation's own CPU time, not the host process's (which
-- would tell a script how busy its neighbours are).
local cpu_clock = host.cpu_clock
LIBS.os = {time = os.time, clock = function() return cpu_clock() end, date = os.date, difftime = os.difftime}
local co = R.coroutine
LIBS.coroutine = {
  create = I.co_create, resume = I.co_resume, wrap = I.co_wrap, close = I.co_close,
  yield = co.yield, status = co.status, running = co.running, isyieldable = co.isyieldable,
}

-- base functions -----------------------------------------------------------------

local raw_setmetatable, raw_getmetatable = R.setmetatable, R.getmetatable

local BASE = {
  assert = R.assert, error = error, ipairs = R.ipairs, next = next, pairs = R.pairs,
  rawequal = R.rawequal, rawget = rawget, rawlen = R.rawlen, rawset = R.rawset,
  select = select, tonumber = R.tonumber, tostring = tostring, type = type,
  pcall = I.pcall, xpcall = I.xpcall, _VERSION = "Lua 5.4", print = LIBS.log.info,
}

-- Finalizers would run outside any hook (and at runtime close): refused.
-- Lua only marks an object for finalization if __gc is present when the
-- metatable is set, so checking here is enough.
local make_all
function BASE.setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc metamethods are not allowed", 2)
  end
  local old = type(t) == "table" and raw_getmetatable(t)
  if old then make_all(t, old) end
  return raw_setmetatable(t, mt)
end

function BASE.getmetatable(v)
  if type(v) ~= "table" then return nil end
  return raw_getmetatable(v)
end

-- Text only (binary chunks can crash the VM), in the invocation's environment
-- unless the script gives its own table.
local function sandbox_load(env, chunk, chunkname, _, e)
  if type(chunk) ~= "string" then error("load: only strings can be loaded", 2) end
  if e ~= nil and type(e) ~= "table" then error("load: the environment must be a table", 2) end
  if #chunk > I.L.max_value then kill("value_bytes") end
  local name = "=load"
  if type(chunkname) == "string" then name = "=" .. s_sub((s_gsub(chunkname, "^[=@]", "")), 1, 60) end
  I.charge(#chunk)
  return raw_load(chunk, name, "t", e or env)
end

-- require ----------------------------------------------------------------------

-- Compiled modules of this runtime (one app): name -> {token=, fn=, used=}, at
-- most L.module_cache of them, least recently used evicted. The host's token
-- names the module script and its version, so a saved module is compiled
-- again on its next require. Only code is kept: each invocation runs the
-- module afresh, so no state outlives an invocation.
local MODULES, cached_count, uses = {}, 0, 0

local function evict_lru()
  local oldest, used = nil, math.huge
  for name, entry in next, MODULES do
    if entry.used < used then oldest, used = name, entry.used end
  end
  MODULES[oldest] = nil
end

-- The compiled module `name`: without asking the host when it was compiled
-- under the invocation's module generation (nothing changed since).
local function compiled_module(name, gen)
  local cached = MODULES[name]
  if not (gen and cached and cached.gen == gen) then
    local token, src = call("require", host.module, name, cached and cached.token)
    if src ~= nil or not cached or cached.token ~= token then
      local fn, err = I.compile(name, src)
      if not fn then error("require: module '" .. name .. "' does not compile: " .. err, 3) end
      if not cached then
        if cached_count >= I.L.module_cache then evict_lru() else cached_count = cached_count + 1 end
      end
      cached = {token = token, fn = fn}
      MODULES[name] = cached
    end
    cached.gen = gen
  end
  uses = uses + 1
  cached.used = uses
  return cached.fn
end

-- The modules of one invocation share one base environment (globals and
-- libraries, made once for all of them, as a script's are), but each module
-- has its own globals: its environment is a small table that reads through
-- to the base. Nothing is shared with the invoking script's environment or
-- with another invocation. (A full environment per module was most of the
-- cost of a require.)
local MODULE_MT = raw_setmetatable({}, {__mode = "k"})

local function module_env(inv)
  local mt = inv.module_mt
  if not mt then
    mt = {__index = I.new_env(inv)}
    MODULE_MT[mt] = true
    inv.module_mt = mt
  end
  local env = {}
  env._G = env
  env.load = function(chunk, chunkname, mode, e) return sandbox_load(env, chunk, chunkname, mode, e) end
  return raw_setmetatable(env, mt)
end

local function require_module(env, name)
  if type(name) ~= "string" then error("require: the module name must be a string", 2) end
  if LIBS[name] or I.LIB_FACTORIES[name] then return env[name] end
  if #name > 64 or not s_find(name, "^[%a_][%w_]*$") then
    error("require: invalid module name", 2)
  end
  local inv = I.current()
  local loaded = inv.modules
  if not loaded then
    loaded = {}
    inv.modules, inv.importing = loaded, {}
  end
  local m = loaded[name]
  if m ~= nil then return m end
  local stack = inv.importing
  for i = 1, #stack do
    if stack[i] == name then
      error("require: circular import " .. concat(stack, " -> ", i) .. " -> " .. name, 2)
    end
  end
  if #stack >= I.L.max_import then
    error("require: imports nested deeper than " .. I.L.max_import, 2)
  end
  local fn = compiled_module(name, inv.modules_gen)
  stack[#stack + 1] = name
  m = fn(module_env(inv))
  stack[#stack] = nil
  if type(m) ~= "table" then error("require: module '" .. name .. "' must return a table", 2) end
  loaded[name] = m
  return m
end

-- The environment of one invocation. Base functions are copied in by one
-- generated, presized table constructor; each library is copied from its
-- template the first time the invocation reads its name (most scripts touch
-- a few of the seventeen, and copying all of them was most of the cost of a
-- small invocation). Once made, a library is an ordinary field of the
-- environment: assigning nil to it sticks.
local build_base, BUILDERS
local LAZY = raw_setmetatable({}, {__mode = "k"})   -- metatables of environments

local function generate(fields, extra)
  local code = {"local T = ...\nreturn function() return {"}
  for k in next, fields do code[#code + 1] = k .. " = T." .. k .. "," end
  code[#code + 1] = (extra or "") .. "} end"
  return raw_load(concat(code, " "), "=sandbox.env", "t", {})(fields)
end

local function generate_builders()
  build_base = generate(BASE, "load = false, require = false, _G = false, ctx = false")
  BUILDERS = {}
  for name, lib in next, LIBS do BUILDERS[name] = generate(lib, name == "json" and "null = false") end
end

-- Make every library of `env` that is not made yet (before a script replaces
-- the metatable of its environment, which would lose the lazy loader).
-- A module's environment gets a copy of what it reads through to instead.
make_all = function(env, mt)
  if LAZY[mt] then
    local index = mt.__index
    for name in next, BUILDERS do index(env, name) end
    for name in next, I.LIB_FACTORIES do index(env, name) end
  elseif MODULE_MT[mt] then
    local base = mt.__index
    make_all(base, raw_getmetatable(base))
    for k, v in next, base do
      if rawget(env, k) == nil then R.rawset(env, k, v) end
    end
  end
end

function I.new_env(inv)
  if not build_base then generate_builders() end
  local env = build_base()
  local made = {}
  local mt = {__index = function(t, k)
    local build = BUILDERS[k] or I.LIB_FACTORIES[k]
    if build == nil or made[k] then return nil end
    made[k] = true
    local lib = build()
    if k == "json" then lib.null = I.null() end
    R.rawset(t, k, lib)
    return lib
  end}
  LAZY[mt] = true
  env.load = function(chunk, chunkname, mode, e) return sandbox_load(env, chunk, chunkname, mode, e) end
  env.require = function(name) return require_module(env, name) end
  env._G = env
  return raw_setmetatable(env, mt)
end

I.decode_json = json.decode
