-- ngx.re.sub and ngx.re.gsub. A function replacement is called from Lua,
-- not from a C function, so it may wait (ngx.sleep, cosockets) as it may
-- with lua-nginx-module. Templates are expanded in Rust in one call.
local c_sub, c_gsub, c_matches = ...
local type, error, concat, sub = type, error, table.concat, string.sub
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

-- Varargs, so that the C side still tells a missing argument from nil.
local function front(global, fname, c_fn)
    return function(...)
        local subj, regex, repl, opts = ...
        if type(repl) == "function" then
            return with_function(global, fname, subj, regex, repl, opts)
        end
        return c_fn(...)
    end
end

return front(false, "sub", c_sub), front(true, "gsub", c_gsub)
