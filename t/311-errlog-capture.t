use Test::Nginx::Socket::Lua;

# lua_capture_error_log and ngx.errlog.get_logs / set_filter_level: on a
# stock nginx the module hooks the error logs' writer; the lines must reach
# both the ring buffer and the log file.

repeat_each(1);
no_long_string();
log_level('info');
run_tests();

__DATA__

=== TEST 1: lines logged in access are read back in content: level, time, the whole line without its newline
--- http_config
    lua_capture_error_log 64k;
--- config
    location /t {
        access_by_lua_block {
            ngx.log(ngx.ERR, "first captured")
            ngx.log(ngx.WARN, "second captured")
        }
        content_by_lua_block {
            local errlog = require "ngx.errlog"
            local res, err = errlog.get_logs()
            if not res then
                ngx.say("failed: ", err)
                return
            end
            ngx.say("entries: ", #res / 3)
            for i = 1, #res, 3 do
                local age = ngx.now() - res[i + 1]
                ngx.say(res[i], " ", age >= 0 and age < 2, " ", res[i + 2]:sub(-1) ~= "\n")
                ngx.say(res[i + 2]:match("%[%a+%] %d+#%d+: %*%d+ %[lua%] [^ ]+ (.*)$"))
            end
            local again = errlog.get_logs()
            ngx.say("after reading: ", #again)
        }
    }
--- request
GET /t
--- response_body
entries: 2
4 true true
first captured, client: 127.0.0.1, server: localhost, request: "GET /t HTTP/1.1", host: "localhost"
5 true true
second captured, client: 127.0.0.1, server: localhost, request: "GET /t HTTP/1.1", host: "localhost"
after reading: 0
--- error_log eval
[qr/\[error\] .*first captured, client/, qr/\[warn\] .*second captured, client/]



=== TEST 2: set_filter_level keeps only lines at or above the level; the file still gets everything
--- http_config
    lua_capture_error_log 64k;
--- config
    location /t {
        content_by_lua_block {
            local errlog = require "ngx.errlog"
            ngx.say(errlog.set_filter_level(ngx.WARN))
            ngx.log(ngx.INFO, "info line")
            ngx.log(ngx.NOTICE, "notice line")
            ngx.log(ngx.WARN, "warn line")
            ngx.log(ngx.CRIT, "crit line")
            local res = errlog.get_logs(100)
            for i = 1, #res, 3 do
                ngx.say(res[i], " ", res[i + 2]:match("(%a+ line)"))
            end
            ngx.say(errlog.set_filter_level(9))
            ngx.say(errlog.set_filter_level(-1))
            ngx.say(errlog.set_filter_level())
            ngx.say(pcall(errlog.set_filter_level, "warn"))
        }
    }
--- request
GET /t
--- response_body
true
5 warn line
3 crit line
nilbad log level: 9
nilbad log level: -1
nilmissing "level" argument
falsebad argument #1 to 'ngx_http_lua_ffi_errlog_set_filter_level' (cannot convert 'string' to 'int')
--- error_log
info line
notice line
warn line



=== TEST 3: a full buffer drops the oldest lines first; a long line (nginx cuts it at 2048 bytes) evicts several
--- http_config
    lua_capture_error_log 4k;
--- config
    location /t {
        content_by_lua_block {
            local errlog = require "ngx.errlog"
            for i = 1, 100 do
                ngx.log(ngx.ERR, "line ", i, " ", string.rep("x", 40))
            end
            local res = errlog.get_logs(1000)
            local n = #res / 3
            local first = tonumber(res[3]:match("line (%d+) "))
            local last = tonumber(res[#res]:match("line (%d+) "))
            local consecutive = true
            for i = 1, #res, 3 do
                if tonumber(res[i + 2]:match("line (%d+) ")) ~= first + (i - 1) / 3 then
                    consecutive = false
                end
            end
            ngx.say("kept some but not all: ", n > 5 and n < 100)
            ngx.say("newest kept: ", last, " consecutive: ", consecutive, " first+n-1: ", first + n - 1 == last)

            ngx.log(ngx.ERR, "before the big one")
            ngx.log(ngx.ERR, string.rep("y", 4200))
            ngx.log(ngx.ERR, "after the big one")
            res = errlog.get_logs(1000)
            for i = 3, #res, 3 do
                ngx.say(res[i]:match("(%a+ the big one)") or ("a line of y: " .. tostring(#res[i] < 2048)))
            end
        }
    }
--- request
GET /t
--- response_body
kept some but not all: true
newest kept: 100 consecutive: true first+n-1: true
before the big one
a line of y: true
after the big one
--- error_log
line 1 xxxx



=== TEST 4: get_logs(max, tab) returns at most max entries, reuses the table and ends it with a nil
--- http_config
    lua_capture_error_log 16k;
--- config
    location /t {
        content_by_lua_block {
            local errlog = require "ngx.errlog"
            for i = 1, 5 do
                ngx.log(ngx.ERR, "msg ", i)
            end
            local tab = { "stale", "stale", "stale", "stale", "stale", "stale", "stale" }
            local res = errlog.get_logs(2, tab)
            ngx.say(res == tab, " ", #res)
            ngx.say(res[3]:match("msg %d"), " ", res[6]:match("msg %d"))
            res = errlog.get_logs(2)
            ngx.say(#res, " ", res[3]:match("msg %d"))
            res = errlog.get_logs(10)
            ngx.say(#res, " ", res[3]:match("msg %d"), " ", tostring(res[4]))
            ngx.say(#errlog.get_logs(0))
        }
    }
--- request
GET /t
--- response_body
true 6
msg 1 msg 2
6 msg 3
3 msg 5 nil
0



=== TEST 5: lines of a location with its own error_log, nginx's own errors, timers and init_worker are captured
--- http_config
    lua_capture_error_log 64k;
    init_worker_by_lua_block {
        ngx.log(ngx.WARN, "from init_worker")
    }
--- config
    location /own {
        error_log logs/own.log info;
        content_by_lua_block {
            ngx.log(ngx.ERR, "in a location with its own log")
            ngx.say("ok")
        }
    }
    location /static {
        root html/no-such-dir;
    }
    location /t {
        content_by_lua_block {
            local errlog = require "ngx.errlog"
            ngx.timer.at(0, function()
                ngx.log(ngx.ERR, "from a timer")
            end)
            ngx.sleep(0.05)
            local res = errlog.get_logs(100)
            for i = 3, #res, 3 do
                local m = res[i]:match("from init_worker") or res[i]:match("in a location with its own log")
                    or res[i]:match("open%(%) \"[^\"]+\" failed") or res[i]:match("from a timer, context: ngx.timer")
                if m then
                    ngx.say(res[i - 2], " ", (m:gsub("\"[^\"]+\"", "\"...\"")))
                end
            end
        }
    }
--- request eval
["GET /own", "GET /static/nothing.html", "GET /t"]
--- response_body eval
["ok\n", qr/404 Not Found/, "5 from init_worker
4 in a location with its own log
4 open() \"...\" failed
4 from a timer, context: ngx.timer
"]
--- error_code eval
[200, 404, 200]



=== TEST 6: get_logs in a timer and in log_by_lua (what the log phase logs after reading is read by the next request)
--- http_config
    lua_capture_error_log 64k;
--- config
    location /t {
        content_by_lua_block {
            local errlog = require "ngx.errlog"
            local got
            ngx.timer.at(0, function()
                ngx.log(ngx.ERR, "timer line")
                local res = errlog.get_logs()
                got = #res / 3 .. " " .. res[#res]:match("timer line")
            end)
            ngx.sleep(0.05)
            ngx.say(got)
        }
        log_by_lua_block {
            local errlog = require "ngx.errlog"
            ngx.log(ngx.ERR, "logged in the log phase")
            local res = errlog.get_logs()
            ngx.log(ngx.ERR, "log phase read ", #res / 3)
        }
    }
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["1 timer line\n", "2 timer line\n"]
--- grep_error_log eval
qr/log phase read \d+/
--- grep_error_log_out eval
"log phase read 1\nlog phase read 1\n"



=== TEST 7: a size below 4096 is refused
--- http_config
    lua_capture_error_log 4095;
--- config
    location /t { return 200; }
--- must_die
--- error_log
invalid capture error log size "4095", minimum size is 4096



=== TEST 8: the directive twice is refused
--- http_config
    lua_capture_error_log 8k;
    lua_capture_error_log 8k;
--- config
    location /t { return 200; }
--- must_die
--- error_log
"lua_capture_error_log" directive is duplicate



=== TEST 9: a location with two error_log files: each line is captured once and still reaches every file that accepts its level
--- http_config
    lua_capture_error_log 8k;
--- config
    location /t {
        error_log logs/a.log warn;
        error_log logs/b.log error;
        content_by_lua_block {
            ngx.log(ngx.ERR, "to both files")
            ngx.log(ngx.WARN, "to a only")
            local res = require("ngx.errlog").get_logs()
            ngx.say(#res / 3)
            local function read(name)
                local f = assert(io.open(ngx.config.prefix() .. "logs/" .. name))
                local s = f:read("*a")
                f:close()
                return tostring(s:find("to both files", 1, true) ~= nil) .. " " .. tostring(s:find("to a only", 1, true) ~= nil)
            end
            ngx.say("a: ", read("a.log"), " b: ", read("b.log"))
        }
    }
--- request
GET /t
--- response_body
2
a: true true b: true false
