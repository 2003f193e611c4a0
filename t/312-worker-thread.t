use Test::Nginx::Socket::Lua;

# ngx.run_worker_thread: a function of a module runs in a separate Lua VM on
# an nginx thread pool thread while the calling Lua thread waits.

repeat_each(1);
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->main_config) {
        $block->set_value("main_config", "thread_pool tp threads=4;\n");
    }
    my $http = $block->http_config // '';
    $block->set_value("http_config", "lua_package_path \"\$prefix/html/?.lua;;\";\n$http");
});

run_tests();

__DATA__

=== TEST 1: values of every allowed type go in and come back, tables nested; several results
--- user_files
>>> echo.lua
local _M = {}
function _M.echo(...)
    return select("#", ...), ...
end
function _M.sum(t)
    local s = 0
    for _, v in ipairs(t.list) do s = s + v end
    return s, t.inner.deeper.name, #t.list
end
return _M
--- config
    location /t {
        content_by_lua_block {
            local res = { ngx.run_worker_thread("tp", "echo", "echo", nil, true, false, 1.5, "str", ngx.null,
                                               { a = { b = { "x", "y" } }, [10] = 20 }) }
            ngx.say(res[1], " n=", res[2])
            for i = 3, 8 do
                ngx.say(i - 2, ": ", type(res[i]), " ", tostring(res[i]))
            end
            ngx.say("null back: ", res[8] == ngx.null)
            local t = res[9]
            ngx.say("table: ", t.a.b[1], t.a.b[2], " ", t[10])
            ngx.say(ngx.run_worker_thread("tp", "echo", "sum", { list = { 1, 2, 3, 4 }, inner = { deeper = { name = "n" } } }))
            ngx.say(ngx.run_worker_thread("tp", "echo", "echo"))
        }
    }
--- request
GET /t
--- response_body
true n=7
1: nil nil
2: boolean true
3: boolean false
4: number 1.5
5: string str
6: userdata userdata: NULL
null back: true
table: xy 20
true10n4
true0
--- no_error_log
[error]



=== TEST 2: failures reported before any call: arguments, pool, module, function, values that cannot pass
--- user_files
>>> good.lua
return { f = function() return 1 end, notfn = 42 }
>>> notatable.lua
return "a string"
>>> broken.lua
error("broken at load time")
--- config
    location /t {
        content_by_lua_block {
            local function show(...)
                ngx.say(select("#", ...), " ", table.concat({ tostring((...)), tostring((select(2, ...))) }, " | "))
            end
            show(ngx.run_worker_thread("tp", "good"))
            show(ngx.run_worker_thread("nosuchpool", "good", "f"))
            show(ngx.run_worker_thread({}, "good", "f"))
            show(ngx.run_worker_thread("tp", {}, "f"))
            show(ngx.run_worker_thread("tp", "good", true))
            show(ngx.run_worker_thread("tp", "nosuchmodule", "f"))
            show(ngx.run_worker_thread("tp", "broken", "f"))
            show(ngx.run_worker_thread("tp", "notatable", "f"))
            show(ngx.run_worker_thread("tp", "good", "nosuchfn"))
            show(ngx.run_worker_thread("tp", "good", "notfn"))
            show(ngx.run_worker_thread("tp", "good", "f", function() end))
            show(ngx.run_worker_thread("tp", "good", "f", { k = coroutine.create(function() end) }))
            local loop = {}
            loop.self = loop
            show(ngx.run_worker_thread("tp", "good", "f", loop))
            -- after all of these the one VM the pool may make still works
            show(ngx.run_worker_thread("tp", "good", "f"))
        }
    }
--- http_config
    lua_worker_thread_vm_pool_size 1;
--- request
GET /t
--- response_body_like
^2 false \| expecting at least 3 arguments
2 false \| thread pool nosuchpool not found
2 false \| threadpool should be a string
2 false \| module name should be a string
2 false \| function name should be a string
2 false \| module 'nosuchmodule' not found:[^|]*
2 false \| .*broken.lua:1: broken at load time
2 false \| invalid lua module
2 false \| invalid function
2 false \| invalid function
2 false \| unsupported Lua type: LUA_TFUNCTION in the argument
2 false \| unsupported Lua type: LUA_TTHREAD in the argument
2 false \| suspicious circular references, table depth exceed max depth: 100 in the argument
2 true \| 1



=== TEST 3: a function that raises, returns a function or a userdata, or a nested function
--- user_files
>>> bad.lua
local _M = {}
function _M.raise(msg) error(msg) end
function _M.raise_table() error({}) end
function _M.ret_fn() return 1, function() end end
function _M.ret_udata() return io.stdout end
function _M.ret_nested() return { a = { print } } end
return _M
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.run_worker_thread("tp", "bad", "raise", "custom failure"))
            ngx.say(ngx.run_worker_thread("tp", "bad", "raise_table"))
            ngx.say(ngx.run_worker_thread("tp", "bad", "ret_fn"))
            ngx.say(ngx.run_worker_thread("tp", "bad", "ret_udata"))
            ngx.say(ngx.run_worker_thread("tp", "bad", "ret_nested"))
        }
    }
--- request
GET /t
--- response_body_like
^false.*bad.lua:2: custom failure
falsenil
falseunsupported Lua type: LUA_TFUNCTION in the return value
falseunsupported Lua type: LUA_TUSERDATA in the return value
falseunsupported Lua type: LUA_TFUNCTION in the return value



=== TEST 4: the call really runs off the event loop: two slow calls overlap, and the worker serves meanwhile
--- user_files
>>> slow.lua
return { nap = function(s) os.execute("sleep " .. s) return s end }
--- config
    location /slow {
        content_by_lua_block {
            ngx.say(ngx.run_worker_thread("tp", "slow", "nap", "0.5"))
        }
    }
    location /t {
        content_by_lua_block {
            local function get(path)
                local sock = ngx.socket.tcp()
                assert(sock:connect("127.0.0.1", ngx.var.server_port))
                sock:send("GET " .. path .. " HTTP/1.0\r\nHost: x\r\n\r\n")
                local body = sock:receive("*a")
                sock:close()
                return body:match("\r\n\r\n(.*)$")
            end
            local start = ngx.now()
            local a = ngx.thread.spawn(get, "/slow")
            local b = ngx.thread.spawn(get, "/slow")
            ngx.sleep(0.1)
            ngx.update_time()
            ngx.say("served while waiting: ", ngx.now() - start < 0.4)
            local _, ra = ngx.thread.wait(a)
            local _, rb = ngx.thread.wait(b)
            ngx.update_time()
            local took = ngx.now() - start
            ngx.print(ra, rb)
            ngx.say("overlapped: ", took >= 0.45 and took < 0.95)
        }
    }
--- request
GET /t
--- response_body
served while waiting: true
true0.5
true0.5
overlapped: true
--- timeout: 5



=== TEST 5: lua_worker_thread_vm_pool_size bounds the VMs: a call while all are busy fails, a later one works
--- http_config
    lua_worker_thread_vm_pool_size 1;
--- user_files
>>> slow.lua
return { nap = function(s) os.execute("sleep " .. s) return "slept " .. s end }
--- config
    location /t {
        content_by_lua_block {
            local first = ngx.thread.spawn(function()
                return ngx.run_worker_thread("tp", "slow", "nap", "0.3")
            end)
            ngx.say(ngx.run_worker_thread("tp", "slow", "nap", "0"))
            ngx.say(select(2, ngx.thread.wait(first)))
            ngx.say(ngx.run_worker_thread("tp", "slow", "nap", "0"))
        }
    }
--- request
GET /t
--- response_body eval
"falseno available Lua vm\ntrueslept 0.3\ntrueslept 0\n"
--- timeout: 5



=== TEST 6: the worker VM has ngx's request-free API: string functions, ngx.re, ngx.config, ngx.shared
--- http_config
    lua_shared_dict dogs 1m;
--- user_files
>>> tools.lua
local _M = {}
function _M.run(s)
    local dogs = ngx.shared.dogs
    local old = dogs:get("k")
    dogs:set("k", old .. "+thread")
    dogs:incr("n", 5, 0)
    local m = ngx.re.match(s, [[(\d+)-(\d+)]], "jo")
    return ngx.md5(s), ngx.encode_base64(s), ngx.crc32_long(s), m[1] + m[2],
        (ngx.re.gsub(s, "[0-9]", "N")), ngx.config.subsystem, ngx.config.ngx_lua_version > 0,
        type(ngx.config.prefix()), ngx.quote_sql_str("a'b"), ngx.null == ngx.null,
        type(ngx.say), type(ngx.var), type(ngx.req)
end
return _M
--- config
    location /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("k", "main")
            local res = { ngx.run_worker_thread("tp", "tools", "run", "12-30") }
            for i = 1, 14 do
                res[i] = tostring(res[i])
            end
            ngx.say(table.concat(res, " ", 1, 14))
            ngx.say(res[2] == ngx.md5("12-30"), " ", tonumber(res[4]) == ngx.crc32_long("12-30"))
            ngx.say(dogs:get("k"), " ", dogs:get("n"))
        }
    }
--- request
GET /t
--- response_body_like
^true [0-9a-f]{32} MTItMzA= \d+ 42 NN-NN http true string 'a\\'b' true nil nil nil
true true
main\+thread 5



=== TEST 7: allowed in rewrite, access, content, and timers; refused in the phases that cannot wait
--- user_files
>>> hi.lua
return { hi = function(who) return "hi " .. who end }
--- config
    location /t {
        rewrite_by_lua_block {
            ngx.ctx.r = select(2, ngx.run_worker_thread("tp", "hi", "hi", "rewrite"))
        }
        access_by_lua_block {
            ngx.ctx.a = select(2, ngx.run_worker_thread("tp", "hi", "hi", "access"))
        }
        content_by_lua_block {
            local from_timer
            ngx.timer.at(0, function()
                from_timer = select(2, ngx.run_worker_thread("tp", "hi", "hi", "timer"))
            end)
            ngx.say(ngx.ctx.r, ", ", ngx.ctx.a, ", ", select(2, ngx.run_worker_thread("tp", "hi", "hi", "content")))
            for _ = 1, 50 do
                if from_timer then break end
                ngx.sleep(0.02)
            end
            ngx.say(from_timer)
        }
        header_filter_by_lua_block {
            local ok, err = pcall(ngx.run_worker_thread, "tp", "hi", "hi", "header")
            ngx.log(ngx.WARN, "header filter: ", err)
        }
        log_by_lua_block {
            local ok, err = pcall(ngx.run_worker_thread, "tp", "hi", "hi", "log")
            ngx.log(ngx.WARN, "log phase: ", err)
        }
    }
--- request
GET /t
--- response_body
hi rewrite, hi access, hi content
hi timer
--- error_log eval
[qr/header filter: .*API disabled in the context of header_filter_by_lua\*/,
 qr/log phase: .*API disabled in the context of log_by_lua\*/]



=== TEST 8: a waiting thread killed, or a request ended, before the call returns: the VM goes back to the pool
--- http_config
    lua_worker_thread_vm_pool_size 1;
--- user_files
>>> slow.lua
return { nap = function(s) os.execute("sleep " .. s) return "done" end }
--- config
    location /exit {
        content_by_lua_block {
            ngx.thread.spawn(function()
                ngx.run_worker_thread("tp", "slow", "nap", "0.2")
                ngx.log(ngx.ERR, "must not run")
            end)
            ngx.exit(200)
        }
    }
    location /t {
        content_by_lua_block {
            ngx.sleep(0.3) -- the call /exit left behind returns meanwhile
            local t = ngx.thread.spawn(function()
                local ok, res = ngx.run_worker_thread("tp", "slow", "nap", "0.2")
                ngx.log(ngx.ERR, "must not run either")
            end)
            ngx.thread.kill(t)
            ngx.say("killed")
            ngx.say(ngx.run_worker_thread("tp", "slow", "nap", "0"))
            ngx.sleep(0.3)
            ngx.say(ngx.run_worker_thread("tp", "slow", "nap", "0"))
        }
    }
--- request eval
["GET /exit", "GET /t"]
--- response_body eval
["", "killed\nfalseno available Lua vm\ntruedone\n"]
--- wait: 0.3
--- no_error_log
must not run



=== TEST 9: the main VM's package.path reaches the worker VMs; each VM keeps its module state between calls
--- http_config
    lua_worker_thread_vm_pool_size 1;
--- user_files
>>> counter.lua
local n = 0
return { bump = function() n = n + 1 return n, package.path:find("/html/?.lua", 1, true) ~= nil end }
--- config
    location /t {
        content_by_lua_block {
            for _ = 1, 3 do
                ngx.say(ngx.run_worker_thread("tp", "counter", "bump"))
            end
        }
    }
--- request
GET /t
--- response_body
true1true
true2true
true3true



=== TEST 10: lua_worker_thread_vm_pool_size takes a number
--- http_config
    lua_worker_thread_vm_pool_size abc;
--- config
    location /t { return 200; }
--- must_die
--- error_log
"lua_worker_thread_vm_pool_size" directive invalid number



=== TEST 11: a worker VM sees no VM of the event loop's: the regexes the main VM cached do not stop ngx.re.opt there
--- user_files
>>> reopt.lua
local _M = {}
function _M.opt(size)
    require("ngx.re").opt("jit_stack_size", size)
    return "set"
end
return _M
--- config
    location /t {
        content_by_lua_block {
            local m = ngx.re.match("ab12", [[\d+]], "jo")
            ngx.say("main matched ", m[0])
            ngx.say("main: ", pcall(require("ngx.re").opt, "jit_stack_size", 128 * 1024))
            for _ = 1, 3 do
                ngx.say("worker: ", ngx.run_worker_thread("tp", "reopt", "opt", 128 * 1024))
            end
        }
    }
--- request
GET /t
--- response_body_like
^main matched 12
main: false.*changing jit stack size is not allowed when some regexs have already been compiled and cached
worker: trueset
worker: trueset
worker: trueset
