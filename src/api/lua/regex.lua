-- ngx.re.match and ngx.re.find in Lua over the FFI function of
-- api/regex_ffi.rs, so that loops that match (HTTP clients reading header
-- lines, routers, templates) stay in compiled traces instead of leaving
-- the trace for a C function on every call; the captures table is built
-- here. The plain case (string subject and pattern, options as a string,
-- no ctx, res table or nth) runs here; anything else, and whatever the
-- FFI function declines (errors, named groups, the DFA mode), goes to the
-- classic C function by a tail call, whose results and messages stay as
-- they were.
--
-- Run once at VM creation, after the ngx table is in place.

local ffi = require "ffi"
local new_tab = require "table.new"
local C = ffi.C
local ffi_new = ffi.new
local type, pcall, sub = type, pcall, string.sub
local re = ngx.re

if not pcall(function() return C.ngx_http_lua_rs_ffi_re_exec end) then
    ffi.cdef [[
int ngx_http_lua_rs_ffi_re_exec(const unsigned char *pat, size_t pat_len,
    const unsigned char *opts, size_t opts_len, const unsigned char *subj,
    size_t subj_len, size_t start, int *ovec, int ovec_pairs);]]
end
local exec = C.ngx_http_lua_rs_ffi_re_exec

-- Room for the whole match and 31 groups; a pattern with more goes to the
-- classic function. Calls never overlap: none of them yields.
local OVEC_PAIRS = 32
local ovec = ffi_new("int[?]", OVEC_PAIRS * 2)

local classic_match, classic_find = re.match, re.find

function re.match(subj, regex, opts, ctx, res)
    if ctx == nil and res == nil and type(subj) == "string" and type(regex) == "string" then
        if opts == nil then
            opts = ""
        end
        if type(opts) == "string" then
            local n = exec(regex, #regex, opts, #opts, subj, #subj, 0, ovec, OVEC_PAIRS)
            if n == 0 then
                return nil
            end
            if n > 0 then
                -- [0] the whole match, [i] group i or false when it did
                -- not take part.
                local m = new_tab(n, 0)
                for i = 0, n - 1 do
                    local from = ovec[2 * i]
                    if from < 0 then
                        m[i] = false
                    else
                        m[i] = sub(subj, from + 1, ovec[2 * i + 1])
                    end
                end
                return m
            end
        end
    end
    return classic_match(subj, regex, opts, ctx, res)
end

function re.find(subj, regex, opts, ctx, nth)
    if ctx == nil and (nth == nil or nth == 0) and type(subj) == "string"
       and type(regex) == "string"
    then
        if opts == nil then
            opts = ""
        end
        if type(opts) == "string" then
            local n = exec(regex, #regex, opts, #opts, subj, #subj, 0, ovec, OVEC_PAIRS)
            if n == 0 then
                return nil
            end
            if n > 0 then
                return ovec[0] + 1, ovec[1]
            end
        end
    end
    return classic_find(subj, regex, opts, ctx, nth)
end
