-- The I/O SDK as scripts see it (kv, docs, dead_letters, ...), built from the
-- table of SDK operations that Python hands in (SPEC below; see sdk_spec.py):
-- adding an operation there adds it here, with its argument checks.
-- Each call checks its arguments, encodes them (bounded by the value limits),
-- yields one request to the Python driver and rebuilds the answer. Handles
-- are read-only and hold no state a script can change: the collection name
-- lives in a private table, and the app is never an argument at all.
local I, SPEC = ...
local R = I.raw
local type, error, setmetatable, tostring, ipairs = R.type, R.error, R.setmetatable, R.tostring, R.ipairs
local math, s_find = R.math, R.string.find
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

-- Checking arguments: each check answers the value to send, or nil and the
-- problem; the function the script called raises it at the script's line.

local function options(v, arg)
  if v == nil then return I.mark_object() end
  if type(v) ~= "table" then return nil, arg.name .. " must be a table, got " .. type(v) end
  local out = I.mark_object()
  for _, option in ipairs(arg.options) do
    local key, kind = option[1], option[2]
    local o = R.rawget(v, key)
    if o ~= nil then
      if kind == "integer" and not (math.type(o) == "integer" and o > 0) then
        return nil, key .. " must be a positive integer"
      elseif kind == "boolean" and type(o) ~= "boolean" then
        return nil, key .. " must be a boolean"
      elseif kind == "string" and type(o) ~= "string" then
        return nil, key .. " must be a string"
      elseif kind == "table" and type(o) ~= "table" then
        return nil, key .. " must be a table"
      end
    end
    out[key] = o
  end
  return out
end

local function checked(v, arg)
  local kind = arg.kind
  if kind == "string" then
    if type(v) ~= "string" then return nil, arg.name .. " must be a string, got " .. type(v) end
    return v
  elseif kind == "value" then
    if v == nil then return nil, "the " .. arg.name .. " must not be nil" .. arg.hint end
    return v
  elseif kind == "table" then
    if v == nil and arg.optional then return {} end
    if type(v) ~= "table" then return nil, arg.name .. " must be a table, got " .. type(v) end
    return v
  end
  return options(v, arg)
end

-- Collection handles --------------------------------------------------------------

local RULE = SPEC.collection
local HANDLES = setmetatable({}, {__mode = "k"})   -- handle -> {namespace, name}

local function collection_factory(namespace, methods)
  local mt = {
    __index = methods, __metatable = false,
    __newindex = function() error(namespace .. " collection handles are read-only", 2) end,
  }
  local op = namespace .. ".collection"
  return function(name)
    if type(name) ~= "string" then
      error(op .. ": the collection name must be a string, got " .. type(name), 2)
    end
    if #name > RULE.max_length or not s_find(name, RULE.pattern) then
      error(op .. ": invalid collection name '" .. R.string.sub(name, 1, 80) .. "': " .. RULE.explained, 2)
    end
    local h = setmetatable({}, mt)
    HANDLES[h] = {namespace = namespace, name = name}
    return h
  end
end

-- One SDK function ------------------------------------------------------------------

local function all_strings(args)
  for _, arg in ipairs(args) do
    if arg.kind ~= "string" then return false end
  end
  return true
end

local function make(fn)
  local op, args, n, method = fn.namespace .. "." .. fn.name, fn.args, #fn.args, fn.method
  local strings, returns = all_strings(args) and n + (method and 1 or 0) <= 2, fn.returns
  local misuse = op .. ": call it as a method of a collection: coll:" .. fn.name .. "(...)"
  for _, arg in ipairs(args) do arg.hint = arg.name == "value" and " (use delete)" or "" end
  return function(...)
    local given, first = R.table.pack(...), 1
    local values, v, problem = {}, nil, nil
    if method then
      local h = HANDLES[given[1]]
      if not h or h.namespace ~= fn.namespace then error(misuse, 2) end
      values[1], first = h.name, 2
    end
    for i, arg in ipairs(args) do
      v, problem = checked(given[first + i - 1], arg)
      if problem then error(op .. ": " .. problem, 2) end
      values[#values + 1] = v
    end
    local result
    if strings then
      result = request_strings(op, values[1], values[2])
    else
      result = request(op, values)
    end
    if returns == "boolean" then return result == true end
    if returns == "value" then return result end
  end
end

-- The namespaces ----------------------------------------------------------------------

-- A namespace read by field (secrets.NAME): a fresh read-only proxy per
-- invocation (stdlib.lua's I.LIB_FACTORIES), whose fields call `fn`.
local function index_factory(namespace, fn)
  local get = make(fn)
  local mt = {
    __index = function(_, key)
      if type(key) ~= "string" then return nil end
      return get(key)
    end,
    __newindex = function() error(namespace .. " is read-only", 2) end,
    __metatable = false,
  }
  return function() return setmetatable({}, mt) end
end

local namespaces = {}
for _, fn in ipairs(SPEC.functions) do
  local ns = namespaces[fn.namespace]
  if not ns then
    ns = {lib = {}, methods = {}}
    namespaces[fn.namespace] = ns
  end
  if fn.index then
    I.LIB_FACTORIES[fn.namespace] = index_factory(fn.namespace, fn)
  elseif fn.method then
    ns.methods[fn.name] = make(fn)
  else
    ns.lib[fn.name] = make(fn)
  end
end
for name, ns in R.next, namespaces do
  if R.next(ns.methods) ~= nil then ns.lib.collection = collection_factory(name, ns.methods) end
  if not I.LIB_FACTORIES[name] then I.LIBS[name] = ns.lib end
end
