-- ngx.pipe: the Lua face of api/pipe.rs. Argument checks and their error
-- texts follow lua-resty-core's lib/ngx/pipe.lua (the readers return
-- data, err, partial: three values). The C functions suspend
-- the Lua thread themselves; they are not tail calls, so that an error they
-- raise ("API disabled in the context of ...") has a position here, as
-- lua-resty-core's have.
local c = ...
local error, type, tostring, tonumber, ipairs = error, type, tostring, tonumber, ipairs
local str_find, concat = string.find, table.concat
local c_spawn, c_read, c_write, c_wait = c.spawn, c.read, c.write, c.wait
local c_shutdown, c_kill, c_pid, c_set_timeouts, is_proc = c.shutdown, c.kill, c.pid, c.set_timeouts, c.is_proc

local MAX_TIMEOUT = 0xffffffff
local DEFAULT_TIMEOUT = 10000
local READ_ALL, READ_BYTES, READ_LINE, READ_ANY = 0, 1, 2, 3

-- Passes its arguments on: `return ret(c_fn(...))` keeps the C call's
-- results, however many, without making it a tail call.
local function ret(...)
    return ...
end

local function check_proc(proc)
    if not is_proc(proc) then
        error("not a process instance", 3)
    end
end

-- Each timeout: nil keeps it, else 0 .. 2^32-1 ms (0: none).
local function check_timeouts(w, so, se, wt)
    local names = { "write_timeout", "stdout_read_timeout", "stderr_read_timeout", "wait_timeout" }
    for i, v in ipairs({ w or false, so or false, se or false, wt or false }) do
        if v and (type(v) ~= "number" or v < 0 or v > MAX_TIMEOUT) then
            error("bad " .. names[i] .. " option", 3)
        end
    end
end

local methods = {}

function methods.pid(proc)
    check_proc(proc)
    return c_pid(proc)
end

function methods.set_timeouts(proc, w, so, se, wt)
    check_proc(proc)
    check_timeouts(w, so, se, wt)
    c_set_timeouts(proc, w, so, se, wt)
end

local function reader(from_stderr, kind)
    if kind == READ_BYTES then
        return function(proc, len)
            check_proc(proc)
            if len <= 0 then
                if len < 0 then
                    error("bad len argument", 2)
                end
                return ""
            end
            local data, err, partial = c_read(proc, from_stderr, kind, len)
            return data, err, partial
        end
    elseif kind == READ_ANY then
        return function(proc, max)
            check_proc(proc)
            if type(max) ~= "number" then
                max = tonumber(max)
            end
            if not max or max <= 0 then
                error("bad max argument", 2)
            end
            local data, err, partial = c_read(proc, from_stderr, kind, max)
            return data, err, partial
        end
    end
    return function(proc)
        check_proc(proc)
        local data, err, partial = c_read(proc, from_stderr, kind, 0)
        return data, err, partial
    end
end

for _, side in ipairs({ { "stdout", false }, { "stderr", true } }) do
    methods[side[1] .. "_read_all"] = reader(side[2], READ_ALL)
    methods[side[1] .. "_read_bytes"] = reader(side[2], READ_BYTES)
    methods[side[1] .. "_read_line"] = reader(side[2], READ_LINE)
    methods[side[1] .. "_read_any"] = reader(side[2], READ_ANY)
end

function methods.write(proc, data)
    check_proc(proc)
    local t = type(data)
    if t == "table" then
        data = concat(data, "")
    elseif t == "number" then
        data = tostring(data)
    elseif t ~= "string" then
        error("bad data arg: string, number, or table expected, got " .. t, 2)
    end
    return ret(c_write(proc, data))
end

local directions = { stdin = 0, stdout = 1, stderr = 2 }

function methods.shutdown(proc, direction)
    check_proc(proc)
    local d = directions[direction]
    if not d then
        error("bad shutdown arg: " .. tostring(direction), 2)
    end
    return c_shutdown(proc, d)
end

function methods.wait(proc)
    check_proc(proc)
    return ret(c_wait(proc))
end

function methods.kill(proc, signal)
    check_proc(proc)
    if type(signal) ~= "number" then
        error("bad signal arg: number expected, got " .. tostring(signal), 2)
    end
    return c_kill(proc, signal)
end

c.mt.__index = methods

local function spawn(args, opts)
    if ngx.get_phase() == "init" then
        error("API disabled in the current context", 2)
    end
    local argv
    local t = type(args)
    if t == "table" then
        argv = {}
        for i, a in ipairs(args) do
            argv[i] = type(a) == "string" and a or tostring(a)
        end
        if #argv == 0 then
            error("bad args arg: non-empty table expected", 2)
        end
    elseif t == "string" then
        argv = { "/bin/sh", "-c", args }
    else
        error("bad args arg: table expected, got " .. t, 2)
    end

    local merge, buffer_size, environ = false, 4096, nil
    local w, so, se, wt = DEFAULT_TIMEOUT, DEFAULT_TIMEOUT, DEFAULT_TIMEOUT, DEFAULT_TIMEOUT
    if opts then
        merge = opts.merge_stderr and true or false
        if opts.buffer_size then
            buffer_size = tonumber(opts.buffer_size)
            if not buffer_size or buffer_size < 1 then
                error("bad buffer_size option", 2)
            end
        end
        if opts.environ then
            local env = opts.environ
            if type(env) ~= "table" then
                error("bad environ option: table expected, got " .. type(env), 2)
            end
            for i, e in ipairs(env) do
                if type(e) ~= "string" then
                    error("bad value at index " .. i .. " of environ option: string expected, got " .. type(e), 2)
                end
                if not str_find(e, "=", 2, true) then
                    error("bad value at index " .. i .. " of environ option: 'name=[value]' format expected, got '"
                          .. e .. "'", 2)
                end
            end
            -- up to the first hole, as ipairs goes
            local list = {}
            for i, e in ipairs(env) do
                list[i] = e
            end
            if #list > 0 then
                environ = list
            end
        end
        w = opts.write_timeout or w
        so = opts.stdout_read_timeout or so
        se = opts.stderr_read_timeout or se
        wt = opts.wait_timeout or wt
        check_timeouts(w, so, se, wt)
    end
    return c_spawn(argv, merge, buffer_size, environ, w, so, se, wt)
end

local module = { version = "0.1.25", spawn = spawn }
return function()
    return module
end
