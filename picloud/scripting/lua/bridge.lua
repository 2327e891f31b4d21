-- Values crossing between Lua and Python.
--
-- Lua -> Python: `encode` writes JSON text with raw access only (no
-- metamethod of the script runs), inside the hooked coroutine, and stops at a
-- size and a nesting limit. Python decodes the text.
--
-- Python -> Lua: Python sends a shape string (one byte per node) and a flat
-- table of the scalar values; `build` rebuilds the value here, inside the
-- hooked coroutine, so its allocations are ordinary, catchable Lua ones and no
-- Python object is ever handed over.
--
-- JSON mapping: objects are tables with string keys; arrays are sequences;
-- JSON null is `json.null` (a per-invocation sentinel), so an object keeps a
-- key whose value is null. An empty table encodes as {} unless marked with
-- json.array(); json.decode marks the empty arrays it makes, so [] survives a
-- round trip. A table whose keys are exactly 1..n encodes as an array; any
-- other table as an object, its integer and float keys written as strings.
local I = ...
local R = I.raw
local next, type, error, tostring = R.next, R.type, R.error, R.tostring
local rawlen, setmetatable, dgetmetatable = R.rawlen, R.setmetatable, R.dgetmetatable
local string, math, utf8, table = R.string, R.math, R.utf8, R.table
local s_format, s_gsub, s_byte, s_find = string.format, string.gsub, string.byte, string.find
local math_type, huge = math.type, math.huge
local utf8_len, concat = utf8.len, table.concat
local kill = I.kill

local NULL_MT = {__metatable = false, __newindex = function() error("json.null is read-only", 2) end,
                 __tostring = function() return "null" end}
local ARRAY_MT = {__metatable = false}
local OBJECT_MT = {__metatable = false}
-- json.null of the running invocation, made when first needed.
function I.null()
  local inv = I.current()
  local n = inv.null
  if not n then
    n = setmetatable({}, NULL_MT)
    inv.null = n
  end
  return n
end
function I.mark_array(t) return setmetatable(t or {}, ARRAY_MT) end
function I.mark_object(t) return setmetatable(t or {}, OBJECT_MT) end

-- encode ---------------------------------------------------------------------

local ESC = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
             ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t', ['\127'] = '\\u007f'}
for i = 0, 31 do
  local c = string.char(i)
  if not ESC[c] then ESC[c] = s_format("\\u%04x", i) end
end

local buf, n, size, max_size, max_depth, size_limit, fname

local function fail(msg) error(fname .. ": " .. msg, 0) end

local function put_string(s)
  local len = #s
  size = size + len + 2
  if size > max_size then kill(size_limit) end
  if not utf8_len(s) then fail("cannot encode a string that is not valid UTF-8") end
  if s_find(s, '[%c"\\]') then
    s = s_gsub(s, '[%c"\\]', ESC)
    size = size + #s - len
    if size > max_size then kill(size_limit) end
  end
  buf[n + 1], buf[n + 2], buf[n + 3] = '"', s, '"'
  n = n + 3
end

local function number_text(v)
  if math_type(v) == "integer" then return s_format("%d", v) end
  if v ~= v or v == huge or v == -huge then fail("cannot encode NaN or infinity") end
  local s = s_format("%.14g", v)
  if R.tonumber(s) ~= v then s = s_format("%.17g", v) end
  if not s_find(s, "[%.eEn]") then s = s .. ".0" end
  return s
end

local function put(s)
  size = size + #s
  if size > max_size then kill(size_limit) end
  n = n + 1
  buf[n] = s
end

local encode_value

local function is_array(t, mt)
  if mt == ARRAY_MT then return true end
  if mt == OBJECT_MT then return false end
  local count, top = 0, 0
  for k in next, t do
    if math_type(k) ~= "integer" or k < 1 then return false end
    count = count + 1
    if k > top then top = k end
  end
  return count > 0 and top == count
end

local function encode_table(t, depth)
  if depth > max_depth then kill("value_depth") end
  local mt = dgetmetatable(t)
  if mt == NULL_MT then return put("null") end
  if is_array(t, mt) then
    n = n + 1
    buf[n] = "["
    for i = 1, rawlen(t) do
      if i > 1 then
        n = n + 1
        buf[n] = ","
      end
      encode_value(R.rawget(t, i), depth + 1)
    end
    n = n + 1
    buf[n] = "]"
    size = size + 2 + rawlen(t)
    return
  end
  n = n + 1
  buf[n] = "{"
  local first = true
  for k, v in next, t do
    local kt = type(k)
    if kt == "number" then
      k = number_text(k)
    elseif kt ~= "string" then
      fail("cannot encode a table key of type " .. kt)
    end
    if not first then
      n = n + 1
      buf[n] = ","
    end
    first = false
    put_string(k)
    n = n + 1
    buf[n] = ":"
    size = size + 2
    encode_value(v, depth + 1)
  end
  n = n + 1
  buf[n] = "}"
  size = size + 2
end

encode_value = function(v, depth)
  local t = type(v)
  if t == "string" then return put_string(v) end
  if t == "number" then return put(number_text(v)) end
  if t == "boolean" then return put(v and "true" or "false") end
  if t == "table" then return encode_table(v, depth) end
  if t == "nil" then return put("null") end
  fail("cannot encode a " .. t .. " value")
end

-- Encode `v` as JSON text of at most `limit` bytes (else the invocation is
-- killed for `limit_name`) and at most the invocation's nesting depth.
function I.encode(v, limit, limit_name, what)
  buf, n, size, max_size, size_limit = {}, 0, 0, limit, limit_name
  max_depth, fname = I.L.max_value_depth, what
  encode_value(v, 1)
  if size > max_size then kill(size_limit) end
  local text = concat(buf, "", 1, n)
  buf = nil
  if size > 4096 then I.charge(size) end
  return text
end

-- What crosses into Python: bounded by the value limits.
function I.export(v, what)
  return I.encode(v, I.L.max_value, "value_bytes", what)
end

-- build ----------------------------------------------------------------------

local shape, vals, pos, vi, null
local S_, N_, T_, F_, Z_, O_, A_ = s_byte("sntfz{[", 1, 7)

local function node()
  local c = s_byte(shape, pos)
  pos = pos + 1
  if c == S_ or c == N_ then
    local v = vals[vi]
    vi = vi + 1
    return v
  elseif c == T_ then return true
  elseif c == F_ then return false
  elseif c == Z_ then return null
  end
  local count = vals[vi]
  vi = vi + 1
  local t = {}
  if c == O_ then
    for _ = 1, count do
      local k = vals[vi]
      vi = vi + 1
      t[k] = node()
    end
  else
    for i = 1, count do t[i] = node() end
    if count == 0 then setmetatable(t, ARRAY_MT) end
  end
  return t
end

-- Rebuild a value Python sent as (shape, vals); type checks every scalar so a
-- Python object could never pass even if Python sent one by mistake.
function I.build(sh, vs)
  local tv = type(vs)
  if tv ~= "table" then
    -- a scalar sent on its own: shape is one byte and vs the value
    local c = s_byte(sh, 1)
    if c == S_ and tv == "string" or c == N_ and tv == "number" then return vs end
    if c == T_ then return true elseif c == F_ then return false end
    if c == Z_ then return I.null() end
    error("internal error", 0)
  end
  if type(sh) ~= "string" then error("internal error", 0) end
  for i = 1, rawlen(vs) do
    local t = type(vs[i])
    if t ~= "string" and t ~= "number" then error("internal error", 0) end
  end
  shape, vals, pos, vi, null = sh, vs, 1, 1, I.null()
  local v = node()
  shape, vals = nil, nil
  return v
end

-- the invocation body ----------------------------------------------------------

local RESPONSE_KEYS = {status = true, headers = true, body = true}

-- A response table has no key but status, headers and body, its status (if
-- any) is an integer and its headers (if any) a table; any other table is
-- data, sent as JSON (so {status = "ok"} is data).
local function is_response(t)
  if dgetmetatable(t) ~= nil then return false end
  local k = next(t)
  if k == nil then return false end
  repeat
    if not RESPONSE_KEYS[k] then return false end
    k = next(t, k)
  until k == nil
  local status, headers = R.rawget(t, "status"), R.rawget(t, "headers")
  return (status == nil or math_type(status) == "integer")
    and (headers == nil or type(headers) == "table")
end

-- Turn the script's return value into what the driver hands to Python:
--   "nil" | "string", s | "json", text | "response", status, headers, body, body_is_json
local function finish(v)
  local limit = I.L.max_response
  local t = type(v)
  if v == nil then return "nil" end
  if t == "string" then
    if #v > limit then kill("response_bytes") end
    return "string", v
  end
  if t == "table" and is_response(v) then
    local status, headers, body = R.rawget(v, "status"), R.rawget(v, "headers"), R.rawget(v, "body")
    local htext = headers and I.encode(headers, limit, "response_bytes", "response headers") or "{}"
    if type(body) == "string" then
      if #body + #htext > limit then kill("response_bytes") end
      return "response", status or 200, htext, body, false
    end
    if body == nil then return "response", status or 200, htext, "", false end
    return "response", status or 200, htext,
      I.encode(body, limit - #htext, "response_bytes", "response body"), true
  end
  if t == "function" or t == "thread" or t == "userdata" then
    error("a script cannot return a " .. t .. " value", 0)
  end
  return "json", I.encode(v, limit, "response_bytes", "response")
end

local function map(flat, i)
  local t = {}
  local n = flat[i]
  for j = i + 1, i + 2 * n, 2 do t[flat[j]] = flat[j + 1] end
  return t, i + 2 * n + 1
end

-- ctx from the arguments Python sends: execution_id, app id, slug, name,
-- trigger_depth, attempt, has_request, and with a request: method, path,
-- body, then params, query and headers, each as a count followed by keys and
-- values.
local function build_ctx(event_shape, event_vals, decode, ...)
  local flat = {...}
  local ctx = {
    execution_id = flat[1], app = {id = flat[2], slug = flat[3], name = flat[4]},
    trigger_depth = flat[5], attempt = flat[6], request = false, event = false,
  }
  if flat[7] == 1 then
    local body = flat[10]
    local req = {method = flat[8], path = flat[9], body = body,
                 json = function() return decode(body) end}
    local i = 11
    req.params, i = map(flat, i)
    req.query, i = map(flat, i)
    req.headers = map(flat, i)
    ctx.request = req
  else
    ctx.request = nil
  end
  if event_shape then ctx.event = I.build(event_shape, event_vals) else ctx.event = nil end
  return ctx
end

-- The main function of an invocation's coroutine.
function I.body(fn, env, event_shape, event_vals, ...)
  local ctx = build_ctx(event_shape, event_vals, I.decode_json, ...)
  ctx.secrets = env.secrets   -- the same read-only proxy (nil without an SDK)
  env.ctx = ctx
  return finish((fn(env, ctx)))
end
