use Test::Nginx::Socket::Lua;

repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: data written by init_by_lua (in the master) is seen by requests
--- http_config
    lua_shared_dict dogs 1m;
    init_by_lua_block {
        local dogs = ngx.shared.dogs
        dogs:set("from_init", "hello")
        dogs:rpush("list", "first")
        init_set_ok = dogs:get("from_init")
    }
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            ngx.say(init_set_ok, " ", dogs:get("from_init"), " ", dogs:llen("list"))
        }
    }
--- request
GET /t
--- response_body
hello hello 1
--- no_error_log
[error]



=== TEST 2: init_worker_by_lua and timers use the dicts too
--- http_config
    lua_shared_dict dogs 1m;
    init_worker_by_lua_block {
        ngx.shared.dogs:set("init_worker", ngx.worker.pid())
        ngx.timer.at(0, function()
            ngx.shared.dogs:set("timer", "ran")
        end)
    }
--- config
    location = /t {
        content_by_lua_block {
            ngx.sleep(0.05)
            local dogs = ngx.shared.dogs
            ngx.say(dogs:get("init_worker") == ngx.worker.pid(), " ", dogs:get("timer"))
        }
    }
--- request
GET /t
--- response_body
true ran
--- no_error_log
[error]



=== TEST 3: an error in init_by_lua with dicts configured still fails the start
--- http_config
    lua_shared_dict dogs 1m;
    init_by_lua_block { error("boom") }
--- config
    location /t { return 200; }
--- must_die
--- error_log eval
qr/init_by_lua error: .*boom/



=== TEST 4: set_by_lua and log_by_lua use the dicts too
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        set_by_lua_block $v { return ngx.shared.dogs:incr("set_by", 1, 0) }
        content_by_lua_block {
            ngx.say("set_by_lua: ", ngx.var.v, " log_by_lua: ", ngx.shared.dogs:get("logged"))
        }
        log_by_lua_block { ngx.shared.dogs:incr("logged", 1, 0) }
    }
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["set_by_lua: 1 log_by_lua: nil\n", "set_by_lua: 2 log_by_lua: 1\n"]
--- no_error_log
[error]
