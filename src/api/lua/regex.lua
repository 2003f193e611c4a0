-- ngx.re.match, ngx.re.find, ngx.re.gmatch and require("ngx.re").split in
-- Lua over the FFI functions of api/regex_ffi.rs, so that loops that match (HTTP clients reading header
-- lines, routers, templates) stay in compiled traces instead of leaving
-- the trace for a C function on every call; the captures table is built
-- here. The plain case (string subject and pattern, options as a string,
-- no ctx, res table or nth; gmatch with a cached "o" regex; split without
-- a ctx) runs here;
-- anything else, and whatever the
-- FFI function declines (errors, named groups, the DFA mode), goes to the
-- classic C function by a tail call, whose results and messages stay as
-- they were.
--
-- Run once at VM creation, after the ngx table is in place.

local declare = ...

local ffi = require "ffi"
local new_tab = require "table.new"
local C = ffi.C
local ffi_new = ffi.new
local type, sub, byte, find = type, string.sub, string.byte, string.find
local band, setmetatable = bit.band, setmetatable
local re = ngx.re

declare({
    ngx_http_lua_rs_ffi_re_exec = [[
int ngx_http_lua_rs_ffi_re_exec(const unsigned char *pat, size_t pat_len,
    const unsigned char *opts, size_t opts_len, const unsigned char *subj,
    size_t subj_len, size_t start, int *ovec, int ovec_pairs);]],
    ngx_http_lua_rs_ffi_re_split = [[
int ngx_http_lua_rs_ffi_re_split(const unsigned char *pat, size_t pat_len,
    const unsigned char *opts, size_t opts_len, const unsigned char *subj,
    size_t subj_len, int64_t max, int *out, int out_pairs);]],
})
local exec, split = C.ngx_http_lua_rs_ffi_re_exec, C.ngx_http_lua_rs_ffi_re_split

-- Room for the whole match and 31 groups; a pattern with more goes to the
-- classic function. Calls never overlap: none of them yields.
local OVEC_PAIRS = 32
local ovec = ffi_new("int[?]", OVEC_PAIRS * 2)

local classic_match, classic_find, classic_gmatch = re.match, re.find, re.gmatch

-- Group `i` of the last match into `m`: its text, or false when it did
-- not take part.
local function capture(subj, m, i)
    local from = ovec[2 * i]
    if from < 0 then
        m[i] = false
    else
        m[i] = sub(subj, from + 1, ovec[2 * i + 1])
    end
end

-- The captures table of a match of `n` groups (whole match included):
-- [0] the whole match, [i] group i. Up to three groups go without a loop:
-- a loop of a round or two per call makes LuaJIT abort the trace of a
-- handler that calls re.match once ("inner loop in root trace"), and
-- after a few aborts it blacklists the loop, and with it every trace
-- through this function.
local function captures(subj, n)
    local m = new_tab(n, 0)
    capture(subj, m, 0)
    if n > 1 then
        capture(subj, m, 1)
        if n > 2 then
            capture(subj, m, 2)
            for i = 3, n - 1 do
                capture(subj, m, i)
            end
        end
    end
    return m
end

-- The FFI function on a plain call from the start of `subj`: the number
-- of groups matched (0: no match), or nil when the arguments are not the
-- plain kind or the function declined.
local function run(subj, regex, opts)
    if type(subj) ~= "string" or type(regex) ~= "string" then
        return nil
    end
    if opts == nil then
        opts = ""
    elseif type(opts) ~= "string" then
        return nil
    end
    local n = exec(regex, #regex, opts, #opts, subj, #subj, 0, ovec, OVEC_PAIRS)
    if n >= 0 then
        return n
    end
    return nil
end

function re.match(subj, regex, opts, ctx, res)
    if ctx == nil and res == nil then
        local n = run(subj, regex, opts)
        if n == 0 then
            return nil
        end
        if n then
            return captures(subj, n)
        end
    end
    return classic_match(subj, regex, opts, ctx, res)
end

function re.find(subj, regex, opts, ctx, nth)
    if ctx == nil and (nth == nil or nth == 0) then
        local n = run(subj, regex, opts)
        if n == 0 then
            return nil
        end
        if n then
            return ovec[0] + 1, ovec[1]
        end
    end
    return classic_find(subj, regex, opts, ctx, nth)
end

-- gmatch over a cached regex ("o": the FFI function compiles it once); a
-- pattern the FFI function declines is found out before the first match.
-- The iterator is a callable table, as lua-resty-core's, not a closure:
-- making a closure is something LuaJIT's compiler does not do.
local function iterate(it)
    if it.done then
        return nil
    end
    local subj, regex, opts, len, pos = it.subj, it.regex, it.opts, it.len, it.pos
    local n = exec(regex, #regex, opts, #opts, subj, len, pos, ovec, OVEC_PAIRS)
    if n == 0 then
        it.done = true
        return nil
    end
    if n < 0 then
        -- A match error: the classic function's (nil, message).
        it.done = true
        return classic_match(subj, regex, opts, { pos = pos + 1 })
    end
    local from, to = ovec[0], ovec[1]
    local m = captures(subj, n)
    -- Past an empty match by one character, so that the search moves.
    if to > from then
        it.pos = to
    elseif to >= len then
        it.done = true
    else
        pos = to + 1
        if it.utf then
            while pos < len and band(byte(subj, pos + 1), 0xC0) == 0x80 do
                pos = pos + 1
            end
        end
        it.pos = pos
    end
    return m
end

local iterator_mt = { __call = iterate }

function re.gmatch(subj, regex, opts)
    if type(subj) ~= "string" or type(regex) ~= "string" or type(opts) ~= "string"
       or not find(opts, "o", 1, true)
       or exec(regex, #regex, opts, #opts, subj, #subj, #subj + 1, ovec, OVEC_PAIRS) ~= 0
    then
        return classic_gmatch(subj, regex, opts)
    end
    return setmetatable({
        subj = subj, regex = regex, opts = opts, len = #subj, pos = 0,
        done = false, utf = find(opts, "u", 1, true) ~= nil or find(opts, "U", 1, true) ~= nil,
    }, iterator_mt)
end

-- split without a ctx table: the FFI function gives the fields' offsets
-- (one compile per call, as the classic function), the strings are made
-- here. Assignments to `res` are plain ones, as lua-resty-core's.
local ngx_re = require "ngx.re"
local classic_split = ngx_re.split
local SPLIT_ROOM = 64
local split_buf = ffi_new("int[?]", SPLIT_ROOM * 2)

function ngx_re.split(subj, regex, opts, ctx, max, res)
    if ctx == nil and type(subj) == "string" and type(regex) == "string"
       and (opts == nil or type(opts) == "string")
       and (max == nil or (type(max) == "number" and max > -2147483648 and max < 2147483648))
       and (res == nil or type(res) == "table")
    then
        local o, m = opts or "", max or 0
        local buf, room = split_buf, SPLIT_ROOM
        local n = split(regex, #regex, o, #o, subj, #subj, m, buf, room)
        if n > room then
            room = n
            buf = ffi_new("int[?]", room * 2)
            n = split(regex, #regex, o, #o, subj, #subj, m, buf, room)
        end
        if n >= 0 and n <= room then
            if res == nil then
                res = new_tab(n, 0)
            end
            for i = 0, n - 1 do
                res[i + 1] = sub(subj, buf[2 * i] + 1, buf[2 * i + 1])
            end
            res[n + 1] = nil
            return res
        end
    end
    return classic_split(subj, regex, opts, ctx, max, res)
end
