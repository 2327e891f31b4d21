---@meta
-- PiCloud scripts: LuaLS definitions. Generated; do not edit
-- (python -m picloud.domain.luals > docs/picloud.d.lua).

---@class picloud.Request
---@field method string
---@field path string the path inside the app (/things/42)
---@field params table<string, string> route {parameters}
---@field query table<string, string> the first value of each query parameter
---@field headers table<string, string> lower-case names, no PiCloud credential
---@field body string
local Request = {}
---@return any value the body decoded as JSON
function Request:json() end

---@class picloud.App
---@field id string
---@field slug string
---@field name string

---@class picloud.Context
---@field execution_id string
---@field app picloud.App
---@field secrets table<string, string?> the app's secrets (as the global secrets)
---@field attempt integer 1 for a delivery's first run, 2 for its first retry…
--- (always 1 for a sync route)
---@field request? picloud.Request set for a route's run
---@field event? table a trigger's event: source, op, collection, key or id,
--- value or data, prev_value or prev_data
---@type picloud.Context
ctx = {}

---@class picloud.Envelope
---@field id string
---@field data table
---@field created_at string RFC 3339, UTC
---@field updated_at string RFC 3339, UTC

---@class picloud.FetchAnswer
---@field status integer
---@field headers table<string, string> lower-case names
---@field body string

---@class picloud.Page
---@field items table[]
---@field cursor? string pass it back for the next page; nil at the end

kv = {}
---@class picloud.KvCollection
local Collection = {}
---@param name string
---@return picloud.KvCollection
function kv.collection(name) end
--- The value stored at key, or nil.
---@param key string
---@return any
function Collection:get(key) end
--- Store a JSON value at key (nil is refused: use delete). With ttl_ms the key lives that many milliseconds: past it, it reads as absent at once, and a KV trigger on op expire sees its expiry (ctx.event.op = "expire", prev_value, expired_at). A set without ttl_ms keeps it forever.
---@param key string
---@param value any
---@param options? {ttl_ms?: integer}
function Collection:set(key, value, options) end
--- Whether key holds a value.
---@param key string
---@return boolean
function Collection:has(key) end
--- Remove key; true if it held a value.
---@param key string
---@return boolean
function Collection:delete(key) end
--- A page of {items = {{key =, value =}...}, cursor =} in key order.
---@param options? {prefix?: string, cursor?: string, limit?: integer}
---@return picloud.Page
function Collection:list(options) end

docs = {}
---@class picloud.DocsCollection
local Collection = {}
---@param name string
---@return picloud.DocsCollection
function docs.collection(name) end
--- Store a new document; answers its envelope {id, data, created_at, updated_at}.
---@param data table
---@return picloud.Envelope
function Collection:create(data) end
--- The envelope of document id, or nil.
---@param id string
---@return picloud.Envelope?
function Collection:get(id) end
--- The envelopes matching the query DSL filter ($eq $ne $gt $gte $lt $lte $in, $sort, $limit).
---@param filter? table
---@return picloud.Envelope[]
function Collection:find(filter) end
--- The first envelope matching filter, or nil.
---@param filter? table
---@return picloud.Envelope?
function Collection:find_one(filter) end
--- Replace document id's data; answers the envelope, or nil if absent.
---@param id string
---@param data table
---@return picloud.Envelope?
function Collection:update(id, data) end
--- Remove document id; true if it existed.
---@param id string
---@return boolean
function Collection:delete(id) end
--- A page of envelopes in id (creation) order.
---@param options? {cursor?: string, limit?: integer}
---@return picloud.Page
function Collection:list(options) end

dead_letters = {}
--- A page of the app's dead letters, newest first.
---@param options? {cursor?: string, limit?: integer, resolved?: boolean}
---@return picloud.Page
function dead_letters.list(options) end
--- Deliver a dead letter's event again, with fresh attempts.
---@param id string
---@return boolean
function dead_letters.replay(id) end
--- Mark a dead letter resolved; true if it was not already.
---@param id string
---@return boolean
function dead_letters.resolve(id) end

--- secrets.NAME (also ctx.secrets.NAME) is the app's secret NAME as a string, or nil. Set them with PUT /api/v1/admin/apps/{app}/secrets/NAME or picloud secrets set; the log holds them sealed (AES-GCM), and a value a run read (of 4 characters or more) is replaced by [secret NAME] in its logs and error.
---@type table<string, string?>
secrets = {}

http = {}
--- Send an HTTP(S) request; answers {status =, headers = {lower-case name = value}, body = string} (the body as UTF-8 text, an invalid byte replaced by U+FFFD). A body table is sent as JSON. Only public addresses on the app's fetch allowlist, checked after DNS and at every redirect; sizes, redirects, calls per run and time are limited (PICLOUD_FETCH_*), and every failure is a Lua error naming its cause (pcall catches it). The time counts against the run's. In an async run or a trigger, a run retried after its commit failed gets the answers its first try got (no second request).
---@param url string
---@param options? {method?: string, headers?: table, body?: any, timeout_ms?: integer}
---@return picloud.FetchAnswer
function http.fetch(url, options) end

json = {}
---@param value any
---@return string
function json.encode(value) end
---@param text string
---@return any
function json.decode(text) end
---@param t? table
---@return table t marked to encode as a JSON array, even empty
function json.array(t) end
---@param t? table
---@return table t marked to encode as a JSON object, even empty
function json.object(t) end
---@type any the JSON null of the running invocation
json.null = nil

base64 = {}
---@param s string
---@return string
function base64.encode(s) end
---@param s string
---@return string
function base64.decode(s) end
---@param s string
---@return string
function base64.url_encode(s) end
---@param s string
---@return string
function base64.url_decode(s) end

hex = {}
---@param s string
---@return string
function hex.encode(s) end
---@param s string
---@return string
function hex.decode(s) end

url = {}
---@param s string
---@return string
function url.encode(s) end
---@param s string
---@return string
function url.decode(s) end
---@param s string
---@return table parts scheme, host, port, path, query, fragment…
function url.parse(s) end
---@param s string
---@return table<string, string>
function url.parse_query(s) end
---@param t table<string, any>
---@return string
function url.build_query(t) end

-- Regular expressions (RE2 syntax, linear time: safe on hostile input).
regex = {}
---@param pattern string
---@param subject string
---@param init? integer
---@return table? groups
function regex.match(pattern, subject, init) end
---@param pattern string
---@param subject string
---@param init? integer
---@return integer? first, integer? last
function regex.find(pattern, subject, init) end
---@param pattern string
---@param subject string
---@param limit? integer
---@return table matches
function regex.find_all(pattern, subject, limit) end
---@param pattern string
---@param subject string
---@param repl string
---@param count? integer
---@return string text, integer replaced
function regex.replace(pattern, subject, repl, count) end
---@param pattern string
---@param subject string
---@param max? integer
---@return string[]
function regex.split(pattern, subject, max) end

-- Two views of one clock: time.now() is text (to show or store), time.unix()
-- a number (for arithmetic); time.parse(time.now()) equals time.unix() to the
-- millisecond. Subtract numbers, never the strings: time.unix() - started,
-- or time.parse(ctx.event.scheduled_at) for a time some event gives as text.
time = {}
---@return string now RFC 3339 in UTC, milliseconds (2026-01-02T03:04:05.678Z)
function time.now() end
---@return number seconds since the Unix epoch (with a fraction): do arithmetic on these
function time.unix() end
---@param t? number unix seconds (default: now)
---@param fmt? string strftime format (default: RFC 3339)
---@return string
function time.format(t, fmt) end
---@param text string RFC 3339 / ISO 8601
---@return number unix seconds
function time.parse(text) end

random = {}
---@param m? integer
---@param n? integer
---@return integer
function random.int(m, n) end
---@return number in [0, 1)
function random.float() end
---@return string a version 4 UUID
function random.uuid() end
---@param n integer
---@return string n random bytes
function random.bytes(n) end

log = {}
---@param ... any
function log.debug(...) end
---@param ... any
function log.info(...) end
---@param ... any
function log.warn(...) end
---@param ... any
function log.error(...) end
