use Test::Nginx::Socket::Lua;

repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: a HUP reload keeps the data of a zone whose size did not change
--- http_config
    lua_shared_dict dogs 1m;
    init_by_lua_block {
        local dogs = ngx.shared.dogs
        init_count = dogs:incr("inits", 1, 0)
    }
--- config
    location /hup {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("kept", "yes")
            dogs:rpush("list", "a")
            ngx.say("inits before: ", init_count)
            local f = assert(io.open(ngx.config.prefix() .. "logs/nginx.pid"))
            local master = f:read("*l")
            f:close()
            os.execute("kill -HUP " .. master)
            ngx.sleep(0.5)
        }
    }
    location /after {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            ngx.say("inits after: ", init_count, " ", dogs:get("inits"))
            ngx.say("kept: ", dogs:get("kept"), " ", dogs:lpop("list"))
        }
    }
--- request eval
["GET /hup", "GET /after"]
--- response_body eval
["inits before: 1\n", "inits after: 2 2\nkept: yes a\n"]
--- wait: 0.5
--- no_error_log
[error]
[alert]



=== TEST 2: a HUP reload with another size starts the zone afresh
--- http_config
    include $TEST_NGINX_HTML_DIR/dict.conf;
--- config
    location /hup {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("kept", "yes")
            ngx.say("capacity before: ", dogs:capacity())
            local f = assert(io.open(ngx.config.prefix() .. "html/dict.conf", "w"))
            f:write("lua_shared_dict dogs 2m;\n")
            f:close()
            f = assert(io.open(ngx.config.prefix() .. "logs/nginx.pid"))
            local master = f:read("*l")
            f:close()
            os.execute("kill -HUP " .. master)
            ngx.sleep(0.5)
        }
    }
    location /after {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            ngx.say("capacity after: ", dogs:capacity(), " kept: ", dogs:get("kept"))
        }
    }
--- user_files
>>> dict.conf
lua_shared_dict dogs 1m;
--- request eval
["GET /hup", "GET /after"]
--- response_body eval
["capacity before: 1048576\n", "capacity after: 2097152 kept: nil\n"]
--- wait: 0.5
--- no_error_log
[error]
[alert]
