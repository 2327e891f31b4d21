-- The I/O SDK as scripts see it (SPEC.md §3, §4): kv, docs and dead_letters.
-- Each call checks its arguments here, encodes them (bounded by the value
-- limits), yields one request to the Python driver and rebuilds the answer.
-- Handles are read-only and hold no state a script can change: the collection
-- name lives in a private table, and the app is never an argument at all.
local I = ...
local R = I.raw
local type, error, setmetatable, tostring = R.type, R.error, R.setmetatable, R.tostring
local math = R.math
local utf8_len = R.utf8.len

local build, memory_check, sdk_yield, export, L = I.build, I.memory_check, I.sdk_yield, I.export, I.L

local function answer(op, ok, shape, vals)
  if ok ~= true then error(op .. ": " .. tostring(shape), 0) end
  if shape == nil then return nil end
  return build(shape, vals)
end

-- A request whose arguments go as JSON (any JSON-like values).
local function request(op, args)
  memory_check()
  return answer(op, sdk_yield(op, export(args, op)))
end

-- A request whose arguments are all strings: they go as they are.
local function request_strings(op, a, b)
  memory_check()
  local max = L.max_value
  if not utf8_len(a) or b and not utf8_len(b) then
    error(op .. ": the arguments must be valid UTF-8", 0)
  end
  if #a > max or b and #b > max then I.kill("value_bytes") end
  if b == nil then return answer(op, sdk_yield(op, nil, a)) end
  return answer(op, sdk_yield(op, nil, a, b))
end

local function check(cond, op, msg)
  if not cond then error(op .. ": " .. msg, 3) end
end

local function str(v, op, what)
  check(type(v) == "string", op, what .. " must be a string, got " .. type(v))
  return v
end

local function tbl(v, op, what)
  check(type(v) == "table", op, what .. " must be a table, got " .. type(v))
  return v
end

-- Copy the recognised options of a list call, type-checked.
local function list_opts(opts, op, keys)
  if opts == nil then return I.mark_object() end
  tbl(opts, op, "options")
  local out = I.mark_object()
  for _, key in R.ipairs(keys) do
    local v = R.rawget(opts, key)
    if key == "limit" then
      check(v == nil or math.type(v) == "integer" and v > 0, op, "limit must be a positive integer")
    elseif key == "resolved" then
      check(v == nil or type(v) == "boolean", op, "resolved must be a boolean")
    else
      check(v == nil or type(v) == "string", op, key .. " must be a string")
    end
    out[key] = v
  end
  return out
end

local HANDLES = setmetatable({}, {__mode = "k"})   -- handle -> {kind, name}

local function handle(self, kind, method)
  local h = HANDLES[self]
  if not h or h.kind ~= kind then
    error(kind .. "." .. method .. ": call it as a method of a collection: coll:"
      .. method .. "(...)", 3)
  end
  return h.name
end

local function collection_factory(kind, methods)
  local mt = {
    __index = methods, __metatable = false,
    __newindex = function() error(kind .. " collection handles are read-only", 2) end,
  }
  return function(name)
    local op = kind .. ".collection"
    str(name, op, "the collection name")
    check(#name > 0 and #name <= 256, op, "the collection name must have 1 to 256 bytes")
    local h = setmetatable({}, mt)
    HANDLES[h] = {kind = kind, name = name}
    return h
  end
end

-- kv ----------------------------------------------------------------------------

local KV = {}
function KV.get(self, key)
  local c = handle(self, "kv", "get")
  return request_strings("kv.get", c, str(key, "kv.get", "key"))
end
function KV.set(self, key, value)
  local c = handle(self, "kv", "set")
  str(key, "kv.set", "key")
  check(value ~= nil, "kv.set", "the value must not be nil (use delete)")
  request("kv.set", {c, key, value})
end
function KV.has(self, key)
  local c = handle(self, "kv", "has")
  return request_strings("kv.has", c, str(key, "kv.has", "key")) == true
end
function KV.delete(self, key)
  local c = handle(self, "kv", "delete")
  return request_strings("kv.delete", c, str(key, "kv.delete", "key"))
end
function KV.list(self, opts)
  local c = handle(self, "kv", "list")
  return request("kv.list", {c, list_opts(opts, "kv.list", {"prefix", "cursor", "limit"})})
end
I.LIBS.kv = {collection = collection_factory("kv", KV)}

-- docs ----------------------------------------------------------------------------

local DOCS = {}
function DOCS.create(self, data)
  local c = handle(self, "docs", "create")
  return request("docs.create", {c, tbl(data, "docs.create", "data")})
end
function DOCS.get(self, id)
  local c = handle(self, "docs", "get")
  return request_strings("docs.get", c, str(id, "docs.get", "id"))
end
function DOCS.find(self, filter)
  local c = handle(self, "docs", "find")
  return request("docs.find", {c, tbl(filter or {}, "docs.find", "filter")})
end
function DOCS.find_one(self, filter)
  local c = handle(self, "docs", "find_one")
  return request("docs.find_one", {c, tbl(filter or {}, "docs.find_one", "filter")})
end
function DOCS.update(self, id, data)
  local c = handle(self, "docs", "update")
  return request("docs.update", {c, str(id, "docs.update", "id"), tbl(data, "docs.update", "data")})
end
function DOCS.delete(self, id)
  local c = handle(self, "docs", "delete")
  return request_strings("docs.delete", c, str(id, "docs.delete", "id"))
end
function DOCS.list(self, opts)
  local c = handle(self, "docs", "list")
  return request("docs.list", {c, list_opts(opts, "docs.list", {"cursor", "limit"})})
end
I.LIBS.docs = {collection = collection_factory("docs", DOCS)}

-- dead letters ----------------------------------------------------------------------

I.LIBS.dead_letters = {
  list = function(opts)
    return request("dead_letters.list", {list_opts(opts, "dead_letters.list", {"cursor", "limit", "resolved"})})
  end,
  replay = function(id)
    return request_strings("dead_letters.replay", str(id, "dead_letters.replay", "id"))
  end,
  resolve = function(id)
    return request_strings("dead_letters.resolve", str(id, "dead_letters.resolve", "id"))
  end,
}
