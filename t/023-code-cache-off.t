# lua_code_cache off: each request runs in a Lua VM of its own, built as
# the worker's (API, package path, shared dicts, init_by_lua), and closed
# when the request and every timer it created are done.

__DATA__

=== TEST 1: a required module is loaded anew by each request
--- http_config
    lua_package_path "$prefix/html/?.lua;;";
--- config
    location /use {
        lua_code_cache off;
        content_by_lua_block {
            local m = require "greeter"
            ngx.say(m.word, " ", package.loaded.greeter == m)
        }
    }
    location /edit {
        content_by_lua_block {
            local f = io.open(ngx.config.prefix() .. "html/greeter.lua", "w")
            f:write("return { word = 'edited' }")
            f:close()
            ngx.say("edited")
        }
    }
--- user_files
>>> greeter.lua
return { word = "first" }
--- request eval
["GET /use", "GET /edit", "GET /use"]
--- response_body eval
["first true\n", "edited\n", "edited true\n"]
--- no_error_log
[error]



=== TEST 2: globals of one request are gone in the next
--- config
    lua_code_cache off;
    location /t {
        content_by_lua_block {
            rawset(_G, "hits", (rawget(_G, "hits") or 0) + 1)
            ngx.say("hits: ", hits)
        }
    }
--- request eval
["GET /t", "GET /t", "GET /t"]
--- response_body eval
["hits: 1\n", "hits: 1\n", "hits: 1\n"]
--- no_error_log
[error]



=== TEST 3: init_by_lua runs in each request's VM, shared dicts are the worker's
--- http_config
    lua_code_cache off;
    lua_shared_dict store 1m;
    init_by_lua_block {
        init_runs = (init_runs or 0) + 1
        ngx.shared.store:incr("inits", 1, 0)
    }
--- config
    location /t {
        content_by_lua_block {
            ngx.say("init runs in this VM: ", init_runs)
            local n = ngx.shared.store:incr("requests", 1, 0)
            ngx.say("requests: ", n)
            ngx.say("inits above requests: ", ngx.shared.store:get("inits") > n)
        }
    }
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["init runs in this VM: 1\nrequests: 1\ninits above requests: true\n",
 "init runs in this VM: 1\nrequests: 2\ninits above requests: true\n"]
--- no_error_log
[error]



=== TEST 4: a timer keeps its request's VM open until it has run
--- config
    lua_code_cache off;
    location /t {
        content_by_lua_block {
            local seen = "before"
            local ok = ngx.timer.at(0.05, function()
                ngx.log(ngx.WARN, "timer sees: ", seen, " in phase ", ngx.get_phase())
            end)
            seen = "after"
            ngx.say("timer armed: ", ok ~= nil)
        }
    }
--- request
GET /t
--- response_body
timer armed: true
--- wait: 0.3
--- log_level: debug
--- error_log
timer sees: after in phase timer
lua decrementing the reference count for Lua VM: 2
lua decrementing the reference count for Lua VM: 1
lua close the global Lua VM
--- no_error_log
[error]
reference count for Lua VM: 3



=== TEST 5: ngx.ctx, set_by_lua and log_by_lua share the request's VM
--- config
    lua_code_cache off;
    location /t {
        set_by_lua_block $tag { tagged = "from set"; return "v1" }
        rewrite_by_lua_block { ngx.ctx.step = "rewrite:" .. tostring(rawget(_G, "tagged")) }
        content_by_lua_block { ngx.say(ngx.ctx.step, " tag=", ngx.var.tag) }
        log_by_lua_block { ngx.log(ngx.WARN, "log sees: ", ngx.ctx.step) }
    }
--- request
GET /t
--- response_body
rewrite:from set tag=v1
--- error_log
log sees: rewrite:from set
--- no_error_log
[error]



=== TEST 6: light threads and sleeps run in the request's VM
--- config
    lua_code_cache off;
    location /t {
        content_by_lua_block {
            local function worker(n)
                ngx.sleep(0.01 * n)
                return n * 10
            end
            local a = ngx.thread.spawn(worker, 1)
            local b = ngx.thread.spawn(worker, 2)
            local _, x = ngx.thread.wait(a)
            local _, y = ngx.thread.wait(b)
            ngx.say(x + y)
        }
    }
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["30\n", "30\n"]
--- no_error_log
[error]
