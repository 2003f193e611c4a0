use Test::Nginx::Socket::Lua;

repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: a HUP reload runs init_by_lua again in a new VM, which the new workers inherit
--- http_config
    init_by_lua_block {
        local path = ngx.config.prefix() .. "html/init_runs.txt"
        local f = assert(io.open(path, "a"))
        f:write("run\n")
        f:close()
        local n = 0
        for _ in io.lines(path) do n = n + 1 end
        init_generation = n
    }
--- config
    location /hup {
        content_by_lua_block {
            local f = assert(io.open(ngx.config.prefix() .. "logs/nginx.pid"))
            local master = f:read("*l")
            f:close()
            ngx.say("generation before: ", init_generation)
            os.execute("kill -HUP " .. master)
            -- let the new workers take over the listening sockets
            ngx.sleep(0.5)
        }
    }
    location /after {
        content_by_lua_block {
            local n = 0
            for _ in io.lines(ngx.config.prefix() .. "html/init_runs.txt") do n = n + 1 end
            ngx.say("generation after: ", init_generation, " of ", n)
        }
    }
--- user_files
>>> init_runs.txt
--- request eval
["GET /hup", "GET /after"]
--- response_body eval
["generation before: 1\n", "generation after: 2 of 2\n"]
--- wait: 0.5
--- no_error_log
[error]
[alert]



=== TEST 2: a timer pending in a worker retired by a HUP reload runs with premature=true
--- config
    location /t {
        content_by_lua_block {
            ngx.timer.at(100, function(premature)
                ngx.log(ngx.WARN, "pending timer on reload, premature: ", premature)
            end)
            local f = assert(io.open(ngx.config.prefix() .. "logs/nginx.pid"))
            local master = f:read("*l")
            f:close()
            os.execute("kill -HUP " .. master)
            ngx.say("reloading")
        }
    }
--- request
GET /t
--- response_body
reloading
--- wait: 0.5
--- error_log
pending timer on reload, premature: true
