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



=== TEST 3: setkeepalive in a worker retired by a reload closes the connection, so the worker exits without waiting for the keepalive timeout
--- config
    location /t {
        content_by_lua_block {
            local prefix = ngx.config.prefix()
            local f = assert(io.open(prefix .. "logs/nginx.pid"))
            local master = f:read("*l")
            f:close()
            os.execute("kill -HUP " .. master)
            -- wait until the master tells this worker to shut down
            for _ = 1, 50 do
                if ngx.worker.exiting() then break end
                ngx.sleep(0.1)
            end
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_REDIS_PORT))
            ngx.say("exiting: ", ngx.worker.exiting(), ", setkeepalive: ", sock:setkeepalive(60000))
            local out = assert(io.open(prefix .. "html/old_worker.txt", "w"))
            out:write(ngx.worker.pid())
            out:close()
        }
    }
    location /after {
        content_by_lua_block {
            local f = assert(io.open(ngx.config.prefix() .. "html/old_worker.txt"))
            local stat = "/proc/" .. f:read("*l") .. "/stat"
            f:close()
            -- gone, or a zombie, within 3 seconds (the pool's timeout is 60)
            local alive = true
            for _ = 1, 30 do
                local s = io.open(stat)
                local line = s and s:read("*l")
                if s then s:close() end
                if not line or line:match("^%d+ %b() Z") then
                    alive = false
                    break
                end
                ngx.sleep(0.1)
            end
            ngx.say("old worker alive: ", alive)
        }
    }
--- request eval
["GET /t", "GET /after"]
--- response_body eval
["exiting: true, setkeepalive: 1\n", "old worker alive: false\n"]
--- timeout: 6
--- no_error_log
[error]
[alert]
