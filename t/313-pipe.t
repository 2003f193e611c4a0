use Test::Nginx::Socket::Lua;

# ngx.pipe on a stock nginx: children spawned with pipes, read and written
# through the scheduler, reaped by the worker's own SIGCHLD handling.

repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: stdout and stderr read by line, bytes, any and all; the exit status; nothing else inherited
--- config
    location /t {
        content_by_lua_block {
            local pipe = require "ngx.pipe"
            local function show(...)
                local t = { ... }
                for i = 1, select("#", ...) do
                    t[i] = tostring(t[i])
                end
                return table.concat(t, " ")
            end
            local proc = assert(pipe.spawn({ "sh", "-c",
                "printf 'one\\r\\ntwo\\nabcdefgh'; echo oops >&2; ls /proc/self/fd | tr '\\n' ' ' >&2; exit 0" }))
            ngx.say("pid: ", proc:pid() == math.floor(proc:pid()) and proc:pid() > 1)
            ngx.say("line: ", (proc:stdout_read_line()))
            ngx.say("line: ", (proc:stdout_read_line()))
            ngx.say("bytes: ", (proc:stdout_read_bytes(3)))
            ngx.say("bytes 0: [", proc:stdout_read_bytes(0), "]")
            ngx.say("any: ", (proc:stdout_read_any(2)))
            ngx.say("all: ", (proc:stdout_read_all()))
            ngx.say("all again: [", proc:stdout_read_all(), "]")
            ngx.say("line at eof: ", show(proc:stdout_read_line()))
            ngx.say("stderr: ", (proc:stderr_read_line()))
            -- ls opens one directory itself (3): descriptors 0, 1, 2 and its own
            ngx.say("child fds: ", (proc:stderr_read_all()))
            ngx.say("wait: ", show(proc:wait()))
        }
    }
--- request
GET /t
--- response_body_like
^pid: true
line: one
line: two
bytes: abc
bytes 0: \[\]
any: de
all: fgh
all again: \[\]
line at eof: nil closed 
stderr: oops
child fds: 0 1 2 3 
wait: true exit 0
--- no_error_log
[error]



=== TEST 2: wait: non-zero exit, killed by a signal, twice, and kill after the end
--- config
    location /t {
        content_by_lua_block {
            local pipe = require "ngx.pipe"
            local function show(...)
                local t = { ... }
                for i = 1, select("#", ...) do
                    t[i] = tostring(t[i])
                end
                return table.concat(t, " ")
            end
            local p1 = assert(pipe.spawn("exit 3"))
            ngx.say("exit 3: ", show(p1:wait()))
            local p2 = assert(pipe.spawn({ "sleep", "10" }))
            ngx.say("kill: ", p2:kill(9))
            local ok, reason, status = p2:wait()
            ngx.say("killed: ", ok, " ", reason, " ", status)
            ngx.say("wait again: ", show(p2:wait()))
            ngx.say("kill again: ", show(p2:kill(15)))
            local p3 = assert(pipe.spawn({ "true" }))
            ngx.say("true: ", show(p3:wait()))
        }
    }
--- request
GET /t
--- response_body
exit 3: false exit 3
kill: true
killed: false signal 9
wait again: nil exited
kill again: nil exited
true: true exit 0
--- error_log eval
qr/signal 17 \(SIGCHLD\) received from \d+/
--- no_error_log
[error]



=== TEST 3: write to stdin, shutdown stdin, then read what the child made of it
--- config
    location /t {
        content_by_lua_block {
            local pipe = require "ngx.pipe"
            local function show(...)
                local t = { ... }
                for i = 1, select("#", ...) do
                    t[i] = tostring(t[i])
                end
                return table.concat(t, " ")
            end
            local proc = assert(pipe.spawn({ "tr", "a-z", "A-Z" }))
            ngx.say(proc:write("hello "))
            ngx.say(proc:write({ "wor", "ld ", 42 }))
            ngx.say(proc:write(7))
            ngx.say(proc:shutdown("stdin"))
            ngx.say((proc:stdout_read_all()))
            ngx.say(show(proc:write("late")))
            ngx.say(proc:wait())
            -- a big write fills the pipe: the call waits until the child reads
            local big = assert(pipe.spawn({ "wc", "-c" }))
            local n = big:write(string.rep("x", 1024 * 1024))
            big:shutdown("stdin")
            ngx.say(n, " ", (big:stdout_read_line()):match("%d+"))
        }
    }
--- request
GET /t
--- response_body
6
8
1
true
HELLO WORLD 427
nil closed
trueexit0
1048576 1048576



=== TEST 4: timeouts: a read that gets nothing, a wait that outlasts it; set_timeouts and the spawn options
--- config
    location /t {
        content_by_lua_block {
            local pipe = require "ngx.pipe"
            local function show(...)
                local t = { ... }
                for i = 1, select("#", ...) do
                    t[i] = tostring(t[i])
                end
                return table.concat(t, " ")
            end
            local proc = assert(pipe.spawn({ "sh", "-c", "printf partial; sleep 2" }, { stdout_read_timeout = 100 }))
            ngx.say(show(proc:stdout_read_line()))
            local data, err, partial = proc:stdout_read_all()
            ngx.say("all: ", data, " ", err, " [", partial, "]")
            proc:set_timeouts(nil, nil, nil, 50)
            ngx.say("wait: ", show(proc:wait()))
            ngx.say("kill: ", proc:kill(9), " then: ", select(2, proc:wait()))
        }
    }
--- request
GET /t
--- response_body_like
^nil timeout partial
all: nil timeout \[\]
wait: nil timeout
kill: true then: signal9




=== TEST 5: merge_stderr, environ and buffer_size options; shutdown of stdout
--- config
    location /t {
        content_by_lua_block {
            local pipe = require "ngx.pipe"
            local function show(...)
                local t = { ... }
                for i = 1, select("#", ...) do
                    t[i] = tostring(t[i])
                end
                return table.concat(t, " ")
            end
            local proc = assert(pipe.spawn("echo out; echo err >&2; echo \"$FOO-$BAR\"",
                                           { merge_stderr = true, environ = { "FOO=foo", "BAR=" }, buffer_size = 2 }))
            ngx.say((proc:stdout_read_all()))
            ngx.say(show(proc:stderr_read_line()))
            ngx.say(show(proc:shutdown("stderr")))
            ngx.say(proc:shutdown("stdout"))
            ngx.say(show(proc:stdout_read_all()))
            ngx.say(proc:wait())
        }
    }
--- request
GET /t
--- response_body
out
err
foo-

nil merged to stdout nil
nil merged to stdout
true
nil closed nil
trueexit0



=== TEST 6: a program that cannot run: the child exits 1 and the error log says why
--- config
    location /t {
        content_by_lua_block {
            local pipe = require "ngx.pipe"
            local function show(...)
                local t = { ... }
                for i = 1, select("#", ...) do
                    t[i] = tostring(t[i])
                end
                return table.concat(t, " ")
            end
            local proc, err = pipe.spawn({ "/no/such/program", "x" })
            ngx.say(proc ~= nil, " ", err)
            ngx.say(proc:wait())
        }
    }
--- request
GET /t
--- response_body
true nil
falseexit1
--- error_log
lua pipe child execvp() failed while executing /no/such/program



=== TEST 7: bad arguments raise lua-resty-core's errors
--- config
    location /t {
        content_by_lua_block {
            local pipe = require "ngx.pipe"
            local function show(...)
                local t = { ... }
                for i = 1, select("#", ...) do
                    t[i] = tostring(t[i])
                end
                return table.concat(t, " ")
            end
            local function try(f, ...)
                local ok, err = pcall(f, ...)
                ngx.say((tostring(err):gsub("^.-:%d+: ", "")))
            end
            try(pipe.spawn, {})
            try(pipe.spawn, 42)
            try(pipe.spawn, { "true" }, { buffer_size = 0 })
            try(pipe.spawn, { "true" }, { environ = "FOO=1" })
            try(pipe.spawn, { "true" }, { environ = { "FOO" } })
            try(pipe.spawn, { "true" }, { environ = { 1 } })
            try(pipe.spawn, { "true" }, { wait_timeout = -1 })
            local proc = assert(pipe.spawn({ "cat" }))
            try(proc.stdout_read_bytes, proc, -1)
            try(proc.stdout_read_any, proc, 0)
            try(proc.write, proc, true)
            try(proc.shutdown, proc, "sideways")
            try(proc.kill, proc, "TERM")
            try(proc.set_timeouts, proc, 2 ^ 33)
            try(proc.wait, {})
            proc:kill(9)
            proc:wait()
        }
    }
--- request
GET /t
--- response_body
bad args arg: non-empty table expected
bad args arg: table expected, got number
bad buffer_size option
bad environ option: table expected, got string
bad value at index 1 of environ option: 'name=[value]' format expected, got 'FOO'
bad value at index 1 of environ option: string expected, got number
bad wait_timeout option
bad len argument
bad max argument
bad data arg: string, number, or table expected, got boolean
bad shutdown arg: sideways
bad signal arg: number expected, got TERM
bad write_timeout option
not a process instance



=== TEST 8: two threads on one pipe: the second read is refused while the first waits; phases that cannot wait
--- config
    location /t {
        content_by_lua_block {
            local pipe = require "ngx.pipe"
            local function show(...)
                local t = { ... }
                for i = 1, select("#", ...) do
                    t[i] = tostring(t[i])
                end
                return table.concat(t, " ")
            end
            local proc = assert(pipe.spawn({ "sh", "-c", "sleep 0.2; echo late" }))
            local t = ngx.thread.spawn(function() return (proc:stdout_read_line()) end)
            ngx.say(show(proc:stdout_read_line()))
            local w = ngx.thread.spawn(function() return proc:wait() end)
            ngx.say(show(proc:wait()))
            ngx.say(select(2, ngx.thread.wait(t)))
            ngx.say(select(2, ngx.thread.wait(w)))
        }
        log_by_lua_block {
            local proc = require("ngx.pipe").spawn({ "true" })
            local ok, err = pcall(proc.wait, proc)
            ngx.log(ngx.WARN, "log phase wait: ", err)
        }
    }
--- request
GET /t
--- response_body
nil pipe busy reading nil
nil pipe busy waiting
late
trueexit0
--- error_log eval
qr/log phase wait: ngx\.pipe:\d+: API disabled in the context of log_by_lua\*/



=== TEST 9: the child dies with the request that spawned it; a timer can spawn and read
--- http_config
    lua_shared_dict d 1m;
--- config
    location /spawn {
        content_by_lua_block {
            local proc = assert(require("ngx.pipe").spawn({ "sleep", "30" }))
            ngx.shared.d:set("pid", proc:pid())
            ngx.say("spawned")
        }
    }
    location /check {
        content_by_lua_block {
            ngx.sleep(0.1)
            local pid = ngx.shared.d:get("pid")
            -- kill -0 fails once the child is gone and reaped
            local ok = os.execute("kill -0 " .. pid .. " 2>/dev/null")
            ngx.say("still alive: ", ok == 0 or ok == true)
            local got
            ngx.timer.at(0, function()
                local proc = require("ngx.pipe").spawn({ "echo", "from timer" })
                got = proc:stdout_read_line()
            end)
            for _ = 1, 50 do
                if got then break end
                ngx.sleep(0.02)
            end
            ngx.say(got)
        }
    }
--- request eval
["GET /spawn", "GET /check"]
--- response_body eval
["spawned\n", "still alive: false\nfrom timer\n"]
--- no_error_log
[error]
