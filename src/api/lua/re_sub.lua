-- ngx.re.sub and ngx.re.gsub. A function replacement is called from Lua,
-- not from a C function, so it may wait (ngx.sleep, cosockets) as it may
-- with lua-nginx-module. Templates are expanded in Rust in one call: over
-- the FFI (api/regex_ffi.rs, the result in the scratch buffer) for string
-- arguments, so that loops stay in compiled traces; the classic function
-- answers the rest (errors, results over 4 KB, the DFA mode).
local declare, c_sub, c_gsub, c_matches = ...
local type, error, concat, sub, pcall = type, error, table.concat, string.sub, pcall

local ffi = require "ffi"
local C = ffi.C
local ffi_str = ffi.string
declare({
    ngx_http_lua_rs_scratch = "unsigned char *ngx_http_lua_rs_scratch(void);",
    ngx_http_lua_rs_ffi_re_sub = [[
int ngx_http_lua_rs_ffi_re_sub(const char *pat, size_t pat_len, const char *opts,
    size_t opts_len, const char *subj, size_t subj_len, const char *tmpl, size_t tmpl_len,
    int global);]],
    ngx_http_lua_rs_ffi_re_sub_count = "int ngx_http_lua_rs_ffi_re_sub_count(void);",
})
local re_sub, sub_count, scratch = C.ngx_http_lua_rs_ffi_re_sub, C.ngx_http_lua_rs_ffi_re_sub_count,
                                   C.ngx_http_lua_rs_scratch
local ok, new_tab = pcall(require, "table.new")
if not ok then
    new_tab = function() return {} end
end

-- Tail-called from re_sub/re_gsub, so error level 2 is the user's code.
local function with_function(global, fname, subj, regex, repl, opts)
    -- c_matches returns every match first: the replacement function may run
    -- ngx.re itself, and may not see a half-built result anyway.
    local found, n, err = c_matches(subj, regex, opts, global, fname)
    if found == false then
        error(n, 2)
    end
    if not found then
        return nil, nil, err
    end
    if n == 0 then
        return subj, 0
    end
    -- (`out` is indexed by a count: `#out` is a search on every append)
    local out, k, copied = new_tab(2 * n + 1, 0), 0, 0
    for i = 1, n * 3, 3 do
        local from, to = found[i], found[i + 1]
        local r = repl(found[i + 2])
        local t = type(r)
        if t ~= "string" and t ~= "number" then
            error("attempt to use a " .. t .. " value as the replacement of '" .. fname .. "'", 2)
        end
        out[k + 1] = sub(subj, copied + 1, from)
        out[k + 2] = r
        k = k + 2
        copied = to
    end
    out[k + 1] = sub(subj, copied + 1)
    return concat(out), n
end

-- A template over the FFI. A fixed-argument function, tail-called from the
-- vararg front: LuaJIT starts no trace in a function with varargs, and
-- this one compiles as a trace of its own even when its caller is not
-- compiled. Its result returns from here, not by a tail call: a trace that
-- starts at a function's entry ends at its own return (see var.lua).
local function templated(c_fn, g, subj, regex, repl, opts)
    local o = opts
    if o == nil then
        o = ""
    end
    local n = re_sub(regex, #regex, o, #o, subj, #subj, repl, #repl, g)
    if n >= 0 then
        -- The running thread's buffer, asked for on every call: this code
        -- also runs in the VMs of ngx.run_worker_thread, which move
        -- between pool threads (see api/ffi_scratch.rs).
        local s = ffi_str(scratch(), n)
        local count = sub_count()
        return s, count
    end
    if n == -2 then
        return subj, 0
    end
    return c_fn(subj, regex, repl, opts)
end

-- Fixed arguments: LuaJIT compiles no function with varargs, and a
-- handler that calls sub once runs this front in the interpreter. A
-- missing argument therefore reaches the classic function as nil ("got
-- nil" where it would say "got no value"); extra ones are ignored, as
-- lua-resty-core ignores them.
local function front(global, fname, c_fn)
    local g = global and 1 or 0
    return function(subj, regex, repl, opts)
        local tr = type(repl)
        if tr == "function" then
            return with_function(global, fname, subj, regex, repl, opts)
        end
        if tr == "string" and type(subj) == "string" and type(regex) == "string"
            and (opts == nil or type(opts) == "string") then
            return templated(c_fn, g, subj, regex, repl, opts)
        end
        return c_fn(subj, regex, repl, opts)
    end
end

return front(false, "sub", c_sub), front(true, "gsub", c_gsub)
