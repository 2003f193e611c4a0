use Test::Nginx::Socket::Lua;

workers(2);
repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: ngx.worker.pids lists every worker, this one included
--- config
    location /t {
        content_by_lua_block {
            ngx.sleep(0.1)  -- let the master tell this worker about its sibling
            local pids = ngx.worker.pids()
            local mine = false
            for _, p in ipairs(pids) do if p == ngx.worker.pid() then mine = true end end
            ngx.say(#pids, " ", mine, " ", ngx.worker.count())
        }
    }
--- request
GET /t
--- response_body
2 true 2
--- no_error_log
[error]
