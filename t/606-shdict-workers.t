use Test::Nginx::Socket::Lua;

workers(2);
repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: two workers share one dict
--- http_config
    lua_shared_dict dogs 1m;
    init_worker_by_lua_block {
        local dogs = ngx.shared.dogs
        dogs:incr("workers", 1, 0)
        dogs:set("pid:" .. ngx.worker.pid(), ngx.worker.id())
    }
--- config
    location = /t {
        content_by_lua_block {
            ngx.sleep(0.2)
            local dogs = ngx.shared.dogs
            local pids = {}
            for _, k in ipairs(dogs:get_keys(0)) do
                if k:find("^pid:") then pids[#pids + 1] = k end
            end
            local mine = dogs:get("pid:" .. ngx.worker.pid())
            ngx.say("workers: ", dogs:get("workers"), " pids: ", #pids, " mine: ", mine == ngx.worker.id())
        }
    }
--- request
GET /t
--- response_body
workers: 2 pids: 2 mine: true
--- no_error_log
[error]



=== TEST 2: counts from many requests over both workers add up
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /hit {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:incr("hits", 1, 0)
            dogs:set("seen:" .. ngx.worker.pid(), true)
            ngx.say("ok")
        }
    }
    location = /count {
        content_by_lua_block {
            ngx.say(ngx.shared.dogs:get("hits"))
            ngx.shared.dogs:delete("hits")
        }
    }
--- request eval
["GET /hit", "GET /hit", "GET /hit", "GET /hit", "GET /hit", "GET /hit", "GET /count"]
--- response_body eval
["ok\n", "ok\n", "ok\n", "ok\n", "ok\n", "ok\n", "6\n"]
--- no_error_log
[error]
