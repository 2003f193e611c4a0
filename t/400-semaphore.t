use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: FIFO via mirror subrequests
--- http_config
    init_by_lua_block {
        SEMA = require("ngx.semaphore").new()
        ORDER = {}
    }
--- config
    location = /w1 { internal; content_by_lua_block { local ok, err = SEMA:wait(1) ORDER[#ORDER + 1] = "w1:" .. tostring(ok) .. tostring(err) } }
    location = /w2 { internal; content_by_lua_block { local ok, err = SEMA:wait(1) ORDER[#ORDER + 1] = "w2:" .. tostring(ok) .. tostring(err) } }
    location = /w3 { internal; content_by_lua_block { local ok, err = SEMA:wait(1) ORDER[#ORDER + 1] = "w3:" .. tostring(ok) .. tostring(err) } }
    location = /t {
        mirror /w1;
        mirror /w2;
        mirror /w3;
        content_by_lua_block {
            ORDER = {}
            ngx.sleep(0.02)
            ngx.say("count: ", SEMA:count())
            SEMA:post(1)
            ngx.say("count: ", SEMA:count())
            ngx.sleep(0.01)
            ngx.say(table.concat(ORDER, " "))
            SEMA:post(2)
            ngx.sleep(0.01)
            ngx.say(table.concat(ORDER, " "))
            ngx.say("count: ", SEMA:count())
        }
    }
--- request
GET /t
--- response_body
count: -3
count: -2
w1:truenil
w1:truenil w2:truenil w3:truenil
count: 0
--- no_error_log
[error]
