use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: several sleeps in a row in content
--- config
    location /t {
        content_by_lua_block {
            ngx.say("a")
            ngx.sleep(0.05)
            ngx.say("b")
            ngx.sleep(0)
            ngx.sleep(0.01)
            ngx.say("c")
        }
    }
--- request
GET /t
--- response_body
a
b
c
--- no_error_log
[error]



=== TEST 2: sleep inside pcall
--- config
    location /t {
        content_by_lua_block {
            local ok, err = pcall(ngx.sleep, 0.01)
            ngx.say(ok, " ", err)
        }
    }
--- request
GET /t
--- response_body
true nil
--- no_error_log
[error]



=== TEST 3: sleep in rewrite and access, then content sees their variables
--- config
    location /t {
        set $x "";
        set $y "";
        rewrite_by_lua_block { ngx.sleep(0.01) ngx.var.x = "rw" }
        access_by_lua_block { ngx.sleep(0.01) ngx.var.y = "ac" }
        content_by_lua_block { ngx.say(ngx.var.x, " ", ngx.var.y) }
    }
--- request
GET /t
--- response_body
rw ac
--- no_error_log
[error]



=== TEST 4: sleep inside coroutine.wrap suspends the request, yields still reach the caller
--- config
    location /t {
        content_by_lua_block {
            local f = coroutine.wrap(function()
                ngx.sleep(0.01)
                coroutine.yield("first")
                ngx.sleep(0.01)
                return "second"
            end)
            ngx.say(f())
            ngx.say(f())
        }
    }
--- request
GET /t
--- response_body
first
second
--- no_error_log
[error]



=== TEST 5: ngx.sleep is disabled in log_by_lua
--- config
    location /t {
        content_by_lua_block { ngx.say("ok") }
        log_by_lua_block {
            local ok, err = pcall(ngx.sleep, 0.1)
            ngx.log(ngx.WARN, "sleep in log: ", err)
        }
    }
--- request
GET /t
--- response_body
ok
--- error_log
API disabled in the context of log_by_lua*



=== TEST 6: bad sleep argument
--- config
    location /t {
        content_by_lua_block {
            local ok, err = pcall(ngx.sleep, "abc")
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body_like
bad argument #1 to 'sleep' \(number expected, got string\)
--- no_error_log
[error]
