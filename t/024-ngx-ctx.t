use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: each request gets a fresh ngx.ctx on first use, seen by later phases and light threads, and its registry slot is freed at the end (300 requests)
--- config
    location = /ctx {
        rewrite_by_lua_block { ngx.ctx.n = tonumber(ngx.var.arg_n) }
        content_by_lua_block {
            local ctx = ngx.ctx
            local fresh = ctx.seen == nil
            ctx.seen = true
            -- a thread takes a registry reference of its own after the ctx's
            local t = ngx.thread.spawn(function() return ngx.ctx.n end)
            local _, from_thread = ngx.thread.wait(t)
            ngx.print("n=", ctx.n, " thread=", from_thread, " fresh=", tostring(fresh),
                      " same=", tostring(rawequal(ctx, ngx.ctx)), " reg=", #debug.getregistry())
        }
    }
    location = /t {
        content_by_lua_block {
            local bad, regs = {}, {}
            for i = 1, 300 do
                local sock = ngx.socket.tcp()
                assert(sock:connect("127.0.0.1", tonumber(ngx.var.server_port)))
                assert(sock:send("GET /ctx?n=" .. i .. " HTTP/1.0\r\nHost: x\r\n\r\n"))
                local resp = assert(sock:receive("*a"))
                sock:close()
                local n, th, fresh, same, reg =
                    resp:match("\r\n\r\nn=(%d+) thread=(%d+) fresh=(%a+) same=(%a+) reg=(%d+)$")
                if tonumber(n) ~= i or tonumber(th) ~= i or fresh ~= "true" or same ~= "true" then
                    bad[#bad + 1] = i .. ": " .. resp:sub(-60)
                end
                regs[i] = tonumber(reg)
            end
            ngx.say("wrong answers: ", #bad, " ", bad[1] or "")
            -- Slots are reused from the free list: after the first requests
            -- the registry does not grow with the number of requests.
            ngx.say("registry grew: ", regs[300] - regs[20])
        }
    }
--- request
GET /t
--- response_body
wrong answers: 0 
registry grew: 0
--- no_error_log
[error]



=== TEST 2: ngx.ctx in a timer is the timer's own table, fresh on each run; the request's stays its own
--- config
    location = /t {
        content_by_lua_block {
            ngx.ctx.who = "request"
            local seen = {}
            local function tick(premature, i)
                seen[i] = tostring(ngx.ctx.who)
                ngx.ctx.who = "timer " .. i
            end
            for i = 1, 3 do assert(ngx.timer.at(0, tick, i)) end
            ngx.sleep(0.05)
            ngx.say(seen[1], ", ", seen[2], ", ", seen[3], "; ", ngx.ctx.who)
        }
    }
--- request
GET /t
--- response_body
nil, nil, nil; request
--- no_error_log
[error]



=== TEST 3: ngx.ctx = t before any use, then reads: the table given is the one every phase sees
--- config
    location = /t {
        rewrite_by_lua_block { ngx.ctx = { from = "rewrite" } }
        access_by_lua_block { ngx.ctx.also = "access" }
        content_by_lua_block { ngx.say(ngx.ctx.from, " ", ngx.ctx.also) }
    }
--- request
GET /t
--- response_body
rewrite access
--- no_error_log
[error]
