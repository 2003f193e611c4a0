use Test::Nginx::Socket::Lua;

# init_by_lua runs while nginx still has the previous cycle as ngx_cycle
# (at the first start, one with no configuration at all): the APIs it may
# call must read the cycle being configured.

workers(3);
repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: ngx.worker.count and ngx.config in init_by_lua see the configuration being loaded
--- http_config
    init_by_lua_block {
        init_count = ngx.worker.count()
        init_prefix = ngx.config.prefix()
    }
--- config
    location /t {
        content_by_lua_block {
            ngx.say(init_count, " ", ngx.worker.count(), " ", init_prefix == ngx.config.prefix())
        }
    }
--- request
GET /t
--- response_body
3 3 true
--- no_error_log
[error]



=== TEST 2: cache manager and loader processes close their copy of the Lua VM
--- http_config
    proxy_cache_path /tmp/ngx-lua-rs-cache-test levels=1:2 keys_zone=lua_rs_test_cache:1m;
--- config
    location /t {
        content_by_lua_block { ngx.say("worker keeps its VM") }
    }
--- request
GET /t
--- response_body
worker keeps its VM
--- wait: 0.2
--- log_level: debug
--- error_log eval
qr/lua close the global Lua VM [0-9A-F]{16} in the cache helper process \d+/
--- no_error_log
[error]
