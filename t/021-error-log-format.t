use Test::Nginx::Socket::Lua;

# What a dying thread writes to error.log, in lua-nginx-module's format:
# users grep for these lines.

repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: the traceback names functions as Lua 5.1 does, under "coroutine 0:"
--- config
    location /t {
        content_by_lua_block {
            local function inner()
                return undefined_function(1)
            end
            local function outer()
                inner()
            end
            outer()
        }
    }
--- request
GET /t
--- error_code: 500
--- error_log eval
[
qr/\[error\] .*lua entry thread aborted: runtime error: content_by_lua\(nginx\.conf:\d+\):3: attempt to call global 'undefined_function' \(a nil value\)$/,
qr/^stack traceback:$/,
qr/^coroutine 0:$/,
qr/^\tcontent_by_lua\(nginx\.conf:\d+\): in function 'inner'$/,
qr/^\tcontent_by_lua\(nginx\.conf:\d+\):6: in function 'outer'$/,
qr/^\tcontent_by_lua\(nginx\.conf:\d+\):8: in main chunk, client: /,
]



=== TEST 2: an error value that is not a string is "unknown reason"
--- config
    location /t {
        content_by_lua_block {
            local what = ngx.var.arg_what
            if what == "nil" then error(nil) end
            error({code = 1})
        }
    }
--- request eval
["GET /t?what=nil", "GET /t?what=table"]
--- error_code eval
[500, 500]
--- error_log
lua entry thread aborted: runtime error: unknown reason
--- no_error_log
table: 0x



=== TEST 3: a failed light thread shows its parent, still running, as coroutine 1
--- config
    location /t {
        content_by_lua_block {
            local function worker()
                ngx.sleep(0.001)
                error("worker failed")
            end
            local function start()
                return ngx.thread.spawn(worker)
            end
            local t = start()
            local ok, err = ngx.thread.wait(t)
            ngx.say(ok, " ", err)
        }
    }
--- request
GET /t
--- response_body_like
^false worker failed$
--- error_log eval
[
qr/lua user thread aborted: runtime error: content_by_lua\(nginx\.conf:\d+\):4: worker failed$/,
qr/^\t\[C\]: in function 'error'$/,
qr/^\tcontent_by_lua\(nginx\.conf:\d+\):4: in function <content_by_lua\(nginx\.conf:\d+\):2>$/,
qr/^coroutine 1:$/,
qr/^\t\[C\]: in function 'wait'$/,
qr/^\tcontent_by_lua\(nginx\.conf:\d+\):10: in main chunk, client: /,
]



=== TEST 4: deep stacks stop after 22 frames with "..."
--- config
    location /t {
        content_by_lua_block {
            local function dive(n)
                if n == 0 then error("bottom") end
                local r = dive(n - 1)
                return r
            end
            dive(30)
        }
    }
--- request
GET /t
--- error_code: 500
--- grep_error_log eval: qr/in function 'dive'|^\t\.\.\.,/
--- grep_error_log_out eval
"in function 'dive'\n" x 21 . "\t...,\n"



=== TEST 5: chunk names: a long included file keeps its end after "..."
--- config
    location /t {
        include $TEST_NGINX_SERVER_ROOT/html/a_rather_long_file_name_for_the_chunk_name_rule.conf;
    }
--- user_files
>>> a_rather_long_file_name_for_the_chunk_name_rule.conf
content_by_lua_block {
    error("where am I")
}
--- request
GET /t
--- error_code: 500
--- error_log eval
qr/runtime error: content_by_lua\(\.\.\.file_name_for_the_chunk_name_rule\.conf:1\):2: where am I/



=== TEST 6: ngx.log and print argument errors count from the message's first argument
--- config
    location /t {
        content_by_lua_block {
            ngx.say(select(2, pcall(ngx.log, ngx.ERR, {})))
            ngx.say(select(2, pcall(ngx.log, ngx.ERR, "a", print)))
            ngx.say(select(2, pcall(print, "a", "b", {})))
            ngx.log(ngx.WARN, "null:", ngx.null, " done")
        }
    }
--- request
GET /t
--- response_body
bad argument #1 to 'log' (expected table to have __tostring metamethod)
bad argument #2 to 'log' (string, number, boolean, or nil expected, got function)
bad argument #3 to 'print' (expected table to have __tostring metamethod)
--- error_log
null:null done



=== TEST 7: code that runs to completion (log, header filter): a string error gets lua-nginx-module's traceback, any other value is "unknown reason"
--- config
    location /t {
        content_by_lua_block { ngx.say("ok") }
        log_by_lua_block {
            local inner
            local function outer()
                inner()
            end
            function inner()
                error("broken in log")
            end
            outer()
        }
    }
    location /nil {
        content_by_lua_block { ngx.say("ok") }
        log_by_lua_block { error({}) }
    }
--- request eval
["GET /t", "GET /nil"]
--- response_body eval
["ok\n", "ok\n"]
--- error_log eval
[qr/failed to run log_by_lua\*: log_by_lua\(nginx\.conf:\d+\):7: broken in log$/,
qr/^\t\[C\]: in function 'error'$/,
qr/^\tlog_by_lua\(nginx\.conf:\d+\):7: in function 'inner'$/,
qr/^\tlog_by_lua\(nginx\.conf:\d+\):4: in function 'outer'$/,
qr/^\tlog_by_lua\(nginx\.conf:\d+\):9: in main chunk while logging request/,
"failed to run log_by_lua*: unknown reason while logging request"]



=== TEST 8: each phase handler and output filter logs its entry at debug level, only where code is configured for it
--- log_level: debug
--- config
    location /rw {
        rewrite_by_lua_block { ngx.ctx.x = 1 }
        return 200 "rw\n";
    }
    location /plain {
        return 200 "plain\n";
    }
--- request eval
["GET /rw", "GET /plain"]
--- response_body eval
["rw\n", "plain\n"]
--- error_log eval
[
qr/\[debug\] .*lua rewrite handler, uri:"\/rw" c:1/,
qr/\[debug\] .*lua capture header filter, uri "\/rw"/,
qr/\[debug\] .*lua capture body filter, uri "\/plain"/,
]
--- no_error_log
lua access handler
lua content handler
lua log handler
lua header filter for user lua code
lua body filter for user lua code



=== TEST 9: filters and the log phase log their entry for every request once such code exists anywhere
--- log_level: debug
--- config
    location /f {
        header_filter_by_lua_block { ngx.header["X-F"] = "1" }
        body_filter_by_lua_block { }
        log_by_lua_block { }
        return 200 "f\n";
    }
    location /plain {
        return 200 "plain\n";
    }
--- request eval
["GET /f", "GET /plain"]
--- response_body eval
["f\n", "plain\n"]
--- error_log eval
[
qr/lua header filter for user lua code, uri "\/f"/,
qr/lua body filter for user lua code, uri "\/plain"/,
qr/lua log handler, uri:"\/plain" c:0/,
]
--- no_error_log
lua capture header filter
lua rewrite handler
lua content handler



=== TEST 10: init_worker_by_lua's lines carry a connection number and ", context: init_worker_by_lua*"; timers' carry ", context: ngx.timer"
--- http_config
    init_worker_by_lua_block {
        ngx.log(ngx.WARN, "worker starting")
        ngx.timer.at(0, function() ngx.log(ngx.WARN, "timer running") end)
    }
--- config
    location /t {
        return 200 "ok\n";
    }
--- request
GET /t
--- response_body
ok
--- error_log eval
[
qr/\[warn\] \d+#\d+: \*\d+ \[lua\] init_worker_by_lua\(nginx\.conf:\d+\):2: worker starting, context: init_worker_by_lua\*$/,
qr/\[warn\] \d+#\d+: \*\d+ \[lua\] init_worker_by_lua\(nginx\.conf:\d+\):3: timer running, context: ngx\.timer$/,
]



=== TEST 11: a compile error in init_worker_by_lua is reported with the compiler's text only
--- http_config
    init_worker_by_lua_block {
        local x = (1
    }
--- config
    location /t {
        return 200 "ok\n";
    }
--- request
GET /t
--- response_body
ok
--- error_log eval
qr/\[error\] .*init_worker_by_lua error: init_worker_by_lua\(nginx\.conf:\d+\):3: '\)' expected \(to close '\(' at line 2\) near '<eof>', context: init_worker_by_lua\*$/
--- no_error_log
failed to load inlined Lua code
