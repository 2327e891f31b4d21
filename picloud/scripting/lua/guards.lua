-- Guards on the C functions of `string` and `table` that can spin or allocate
-- without the instruction hook firing. Each guarded function either runs in
-- time proportional to data the script already holds (and charges that work,
-- so the time and instruction checks run soon after), or is refused before it
-- starts. The results are the shared, never-written libraries that every
-- invocation copies; the string metatable indexes the string one.
local I = ...
local R = I.raw
local type, error, select, tostring = R.type, R.error, R.select, R.tostring
local dgetmetatable, setmetatable = R.dgetmetatable, R.setmetatable
local string, table, math, utf8 = R.string, R.table, R.math, R.utf8
local byte, rep = string.byte, string.rep
local math_type = math.type
local charge, kill = I.charge, I.kill

-- What luaL_checkinteger accepts: integers, integral floats, numeric strings.
local function to_int(v)
  if type(v) == "string" then v = R.tonumber(v) end
  return math.tointeger(v)
end

local BIG = 4096            -- strings shorter than this are not worth charging
local PATTERN_BUDGET = 1e8  -- worst-case matcher steps allowed for one call (~0.1 s)
local SHIFT_IN_C = 4096     -- element moves done by C; larger ones run hooked Lua

-- string ---------------------------------------------------------------------

local S = {}
for k, v in R.next, string do S[k] = v end
S.dump = nil

-- Functions linear in their first (string) argument: charge it.
local function charged(f)
  return function(s, ...)
    if type(s) == "string" and #s > BIG then charge(#s) end
    return f(s, ...)
  end
end
for _, name in R.ipairs({"byte", "lower", "upper", "reverse", "sub"}) do
  S[name] = charged(string[name])
end

local format = string.format
function S.format(...)
  local r = format(...)
  if #r > BIG then charge(#r) end
  return r
end

local pack = string.pack
function S.pack(...)
  local r = pack(...)
  if #r > BIG then charge(#r) end
  return r
end

-- string.rep("", 1e15) loops 1e15 times without allocating anything.
function S.rep(s, n, sep)
  if type(s) == "number" then s = tostring(s) end
  if type(sep) == "number" then sep = tostring(sep) end
  if type(s) == "string" and (sep == nil or type(sep) == "string") then
    n = to_int(n) or n
    if math_type(n) == "integer" and n > 0 then
      local unit = #s + (sep and #sep or 0)
      if unit == 0 then return "" end
      local total = unit * (n + 0.0)   -- in floats: cannot wrap around
      if total > I.remaining_memory() then kill("memory") end
      charge(total)
    end
  end
  return rep(s, n, sep)
end

-- Lua patterns backtrack: a pattern with k quantified items that are followed
-- by more pattern costs up to n^k steps at each of n starting positions.
-- Estimate that worst case from the pattern and refuse what exceeds the budget.
local analysis, analysed = {}, 0

local function skip_set(p, i, n)   -- p[i] is '['; returns the index after ']'
  i = i + 1
  if byte(p, i) == 94 then i = i + 1 end
  repeat
    if i > n then return n + 1 end
    local c = byte(p, i)
    i = i + 1
    if c == 37 and i <= n then i = i + 1 end
  until byte(p, i) == 93
  return i + 1
end

-- Returns: anchored, number of backtracking factors, number of '?' items.
local function analyse(p)
  local a = analysis[p]
  if a then return a[1], a[2], a[3] end
  local n, i = #p, 1
  local anchored = byte(p, 1) == 94
  if anchored then i = 2 end
  local k, o, last_q = 0, 0, nil
  while i <= n do
    local c, quantifiable = byte(p, i), true
    if c == 40 or c == 41 then
      i, quantifiable = i + 1, false
    elseif c == 37 then
      local d = byte(p, i + 1)
      if d == 98 then
        i, quantifiable, k = i + 4, false, k + 1
      elseif d == 102 then
        i, quantifiable = skip_set(p, i + 2, n), false
      elseif d and d >= 48 and d <= 57 then
        i, quantifiable, k = i + 2, false, k + 1
      else
        i = i + 2
      end
    elseif c == 91 then
      i = skip_set(p, i, n)
    else
      i = i + 1
    end
    if quantifiable and i <= n then
      local q = byte(p, i)
      if q == 42 or q == 43 or q == 45 then
        k, i, last_q = k + 1, i + 1, i + 1
      elseif q == 63 then
        o, i = o + 1, i + 1
      end
    end
  end
  -- A quantifier followed only by closing captures never backtracks.
  if last_q then
    local j = last_q
    while j <= n and byte(p, j) == 41 do j = j + 1 end
    if j > n then k = k - 1 end
  end
  if analysed >= 512 then analysis, analysed = {}, 0 end
  analysis[p], analysed = {anchored, k, o}, analysed + 1
  return anchored, k, o
end

local function pattern_guard(fname, s, p, plain, repeated)
  if type(s) == "number" then s = tostring(s) end
  if type(p) == "number" then p = tostring(p) end
  if type(s) ~= "string" or type(p) ~= "string" then return end
  local n, m = #s, #p
  local cost
  if plain or not string.find(p, "[%^%$%*%+%?%.%(%)%[%]%%%-]") then
    cost = n * (m + 1)
  else
    local anchored, k, o = analyse(p)
    cost = (m + 1) * (anchored and not repeated and 1 or n + 1) * (n + 1) ^ k * 2.0 ^ o
  end
  if cost > PATTERN_BUDGET then
    error(fname .. ": pattern too complex for a subject of " .. n
      .. " bytes (Lua patterns backtrack); use the regex library", 3)
  end
  if cost > BIG then charge(cost / 8) end
end

-- (The locals carry the library's names: argument errors quote them.)
local find, match, gmatch, gsub = string.find, string.match, string.gmatch, string.gsub
function S.find(s, p, init, plain)
  pattern_guard("string.find", s, p, plain, false)
  return find(s, p, init, plain)
end
function S.match(s, p, init)
  pattern_guard("string.match", s, p, false, false)
  return match(s, p, init)
end
function S.gmatch(s, p, init)
  pattern_guard("string.gmatch", s, p, false, true)
  return gmatch(s, p, init)
end
function S.gsub(s, p, repl, n)
  pattern_guard("string.gsub", s, p, false, true)
  return gsub(s, p, repl, n)
end

I.safe_string = setmetatable(S, {__metatable = false})
I.set_string_index(I.safe_string)

-- table ----------------------------------------------------------------------

local T = {}
for k, v in R.next, table do T[k] = v end
local insert, remove, move = table.insert, table.remove, table.move
local concat, sort, unpack = table.concat, table.sort, table.unpack

-- With a __len metamethod, or a length made huge by a sparse table
-- ({[1]=1, [2]=1, [4]=1, ..., [2^40]=1} has #t == 2^40), table.insert and
-- table.remove would shift elements in C forever. Large shifts, and all shifts
-- of tables with a metatable (whose __len may answer differently each time),
-- run here in Lua, where the hook counts them.
local function position(v, fname)
  local p = to_int(v)
  if p == nil then
    error("bad argument #2 to '" .. fname .. "' (number has no integer representation)", 3)
  end
  return p
end

local function length(t)
  local n = #t
  if math_type(n) ~= "integer" then error("object length is not an integer", 3) end
  return n
end

function T.insert(t, ...)
  if select("#", ...) ~= 2 or type(t) ~= "table" then return insert(t, ...) end
  local pos, v = ...
  local plain = dgetmetatable(t) == nil
  local e = length(t) + 1
  local p = position(pos, "insert")
  if p < 1 or p > e then
    error("bad argument #2 to 'insert' (position out of bounds)", 2)
  end
  if plain and e - p <= SHIFT_IN_C then return insert(t, p, v) end
  for i = e, p + 1, -1 do t[i] = t[i - 1] end
  t[p] = v
end

function T.remove(t, ...)
  if type(t) ~= "table" then return remove(t, ...) end
  local plain = dgetmetatable(t) == nil
  local size = length(t)
  local pos = ...
  if pos == nil then pos = size else pos = position(pos, "remove") end
  if pos ~= size and (pos < 1 or pos > size + 1) then
    error("bad argument #2 to 'remove' (position out of bounds)", 2)
  end
  if plain and size - pos <= SHIFT_IN_C then return remove(t, pos) end
  local v = t[pos]
  while pos < size do
    t[pos] = t[pos + 1]
    pos = pos + 1
  end
  t[pos] = nil
  return v
end

-- table.move(a, 1, 1e15, 2) loops in C over a huge range: move in slices
-- and charge each, preserving the direction that handles overlap.
local SLICE = 65536
function T.move(a1, f, e, t, a2)
  local fi, ei, ti = to_int(f), to_int(e), to_int(t)
  if not (fi and ei and ti) or ei - fi < SLICE then return move(a1, f, e, t, a2) end
  f, e, t = fi, ei, ti
  local dest = a2 == nil and a1 or a2
  if t > e or t <= f or dest ~= a1 then
    for s = f, e, SLICE do
      local last = s + SLICE - 1
      if last > e then last = e end
      move(a1, s, last, t + (s - f), a2)
      charge(SLICE * 64)
    end
  else
    for last = e, f, -SLICE do
      local s = last - SLICE + 1
      if s < f then s = f end
      move(a1, s, last, t + (s - f), a2)
      charge(SLICE * 64)
    end
  end
  return dest
end

function T.concat(...)
  local r = concat(...)
  if #r > BIG then charge(#r) end
  return r
end

function T.sort(t, comp)
  if type(t) == "table" and dgetmetatable(t) == nil then
    local n = R.rawlen(t)
    if n > BIG then charge(n * 64) end
  end
  return sort(t, comp)
end

function T.unpack(t, i, j)
  local first, last = to_int(i or 1), to_int(j)
  if first and last and last - first > BIG then charge((last - first) * 16) end
  return unpack(t, i, j)
end

I.safe_table = T

-- utf8: the length and offset functions walk the string in C.
local U = {}
for k, v in R.next, utf8 do U[k] = v end
for _, name in R.ipairs({"len", "offset", "codepoint"}) do U[name] = charged(utf8[name]) end
I.safe_utf8 = U
