use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: lua_malloc_trim 1 trims after every request
--- http_config
    lua_malloc_trim 1;
--- config
    location /t {
        content_by_lua_block { ngx.say("ok") }
    }
--- request
GET /t
--- response_body
ok
--- error_log
malloc_trim(1) returned



=== TEST 2: lua_malloc_trim 0 never trims, and says so where a log handler runs
--- http_config
    lua_malloc_trim 0;
--- config
    location /t {
        content_by_lua_block { ngx.say("ok") }
        log_by_lua_block { ngx.log(ngx.INFO, "log phase ran") }
    }
--- request
GET /t
--- response_body
ok
--- log_level: debug
--- error_log
log phase ran
malloc_trim() disabled
--- no_error_log
malloc_trim(1) returned



=== TEST 3: lua_code_cache off reloads Lua files per request
--- http_config
    lua_code_cache off;
--- config
    location /t {
        content_by_lua_block {
            local f = io.open(ngx.config.prefix() .. "html/versioned.lua", "w")
            f:write("ngx.say('version ', " .. ngx.var.arg_v .. ")")
            f:close()
            ngx.say("written")
        }
    }
    location /run {
        content_by_lua_file html/versioned.lua;
    }
--- request eval
["GET /t?v=1", "GET /run", "GET /t?v=2", "GET /run"]
--- response_body eval
["written\n", "version 1\n", "written\n", "version 2\n"]



=== TEST 4: a *_by_lua_file path may hold nginx variables, relative to the prefix
--- user_files
>>> a.lua
ngx.say("file a")
>>> b.lua
ngx.say("file b")
--- config
    location ~ ^/lua/(\w+)$ {
        content_by_lua_file html/$1.lua;
    }
--- request eval
["GET /lua/a", "GET /lua/b"]
--- response_body eval
["file a\n", "file b\n"]
--- no_error_log
[error]



=== TEST 5: a missing Lua file gives 404 (as Debian's lua-nginx-module answers) and its message
--- config
    location /t {
        content_by_lua_file html/nonexistent.lua;
    }
--- request
GET /t
--- error_code: 404
--- error_log
failed to load external Lua file



=== TEST 6: lua_package_path with ;; and $prefix, ${prefix} (nginx's prefix, with its trailing slash)
--- http_config
    lua_package_path "$prefix/html/?.lua;${prefix}lib/?.lua;;";
--- user_files
>>> mymod.lua
local _M = {}
function _M.hello() return "hello from mymod" end
return _M
>>> ../lib/other.lua
return { hello = function() return "hello from lib" end }
--- config
    location /t {
        content_by_lua_block {
            local m = require "mymod"
            ngx.say(m.hello())
            ngx.say(require("other").hello())
            ngx.say(package.path:find("/html/?.lua;", 1, true) ~= nil, " ", package.path:find(";;", 1, true) == nil)
        }
    }
--- request
GET /t
--- response_body
hello from mymod
hello from lib
true true
--- no_error_log
[error]



=== TEST 7: require "resty.core" and submodules succeed
--- http_config
    init_by_lua_block { require "resty.core" }
--- config
    location /t {
        content_by_lua_block {
            local base = require "resty.core.base"
            ngx.say(type(base))
        }
    }
--- request
GET /t
--- response_body
table
--- no_error_log
[error]



=== TEST 8: writing a new global from request code warns; init_by_lua globals do not
--- http_config
    init_by_lua_block { shared_setting = "from init" }
--- config
    location /t {
        content_by_lua_block {
            -- a new name each request: only new globals go through the guard
            _G["leaked_" .. ngx.var.connection .. "_" .. ngx.var.connection_requests] = 1
            ngx.say(shared_setting)
        }
    }
--- request
GET /t
--- response_body
from init
--- error_log eval
qr/writing a global Lua variable \('leaked_\d+_\d+'\) which may lead to race conditions between concurrent requests, so prefer the use of 'local' variables/
--- no_error_log
'shared_setting'



=== TEST 8b: the global guard is there without any init_by_lua too
--- config
    location /t {
        content_by_lua_block {
            _G["unguarded_" .. ngx.var.connection .. "_" .. ngx.var.connection_requests] = 1
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_body
ok
--- error_log eval
qr/writing a global Lua variable \('unguarded_\d+_\d+'\)/



=== TEST 9: set_by_lua with arguments, set_by_lua_block and set_by_lua_file, among rewrite directives
--- user_files
>>> concat.lua
return ngx.arg[1] .. "|" .. ngx.arg[2]
--- config
    location /t {
        set $a "foo";
        set $b "bar";
        set_by_lua $x 'return ngx.arg[1] .. ngx.arg[2]' $a $b;
        set_by_lua_block $y { return ngx.var.x .. "!" }
        set_by_lua_file $z html/concat.lua $x $y;
        set $after "$z.";
        content_by_lua_block { ngx.say(ngx.var.x, " ", ngx.var.y, " ", ngx.var.z, " ", ngx.var.after) }
    }
--- request
GET /t
--- response_body
foobar foobar! foobar|foobar! foobar|foobar!.
--- no_error_log
[error]



=== TEST 10: set_by_lua may not wait, and an error gives 500
--- config
    location /sleep {
        set_by_lua_block $x { ngx.sleep(1) return "x" }
        content_by_lua_block { ngx.say(ngx.var.x) }
    }
--- request
GET /sleep
--- error_code: 500
--- error_log
API disabled in the context of set_by_lua*



=== TEST 11: ngx.var[n] reads regex captures (n >= 1); $args and $limit_rate are writable
--- config
    location ~ ^/cap/(\w+)/(\d+)$ {
        content_by_lua_block {
            ngx.say(ngx.var[1], " ", ngx.var[2], " ", ngx.var[3])
            -- $0 and negative positions are not readable, as in lua-nginx-module
            ngx.say(ngx.var[0], " ", ngx.var[-1], " ", ngx.var[-2^52])
            ngx.var.args = "x=1"
            ngx.var.limit_rate = 1000
            ngx.say(ngx.var.args, " ", ngx.var.arg_x, " ", ngx.var.limit_rate)
        }
    }
--- request
GET /cap/abc/42
--- response_body
abc 42 nil
nil nil nil
x=1 1 1000
--- no_error_log
[error]



=== TEST 12: read-only variables cannot be written
--- config
    location /t {
        content_by_lua_block {
            local ok, err = pcall(function() ngx.var.uri = "/x" end)
            ngx.say(err:find('variable "uri" not changeable', 1, true) ~= nil)
        }
    }
--- request
GET /t
--- response_body
true



=== TEST 13: ngx.worker and ngx.config
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.worker.pid() == tonumber(ngx.var.pid), " ", ngx.worker.id(), " ", ngx.worker.count(),
                    " ", ngx.worker.exiting())
            -- the number the module was compiled with, against the version
            -- of the nginx binary that runs it ($nginx_version, "1.22.1")
            local maj, min, pat = ngx.var.nginx_version:match("^(%d+)%.(%d+)%.(%d+)$")
            local running = tonumber(maj) * 1000000 + tonumber(min) * 1000 + tonumber(pat)
            ngx.say(ngx.config.subsystem, " ", ngx.config.nginx_version == running, " ",
                    math.floor(ngx.config.nginx_version / 1000000) == 1, " ", ngx.config.ngx_lua_version,
                    " ", ngx.config.debug, " ", ngx.config.prefix() ~= "")
            ngx.say(ngx.config.nginx_configure():find("--with-http_ssl_module", 1, true) ~= nil)
        }
    }
--- request
GET /t
--- response_body
true 0 1 false
http true true 10023 true true
true
--- no_error_log
[error]



=== TEST 14: init_worker_by_lua runs in each worker; exit_worker_by_lua at its exit
--- http_config
    init_worker_by_lua_block { worker_started = ngx.get_phase() }
    exit_worker_by_lua_block { ngx.log(ngx.WARN, "exit_worker phase: ", ngx.get_phase()) }
--- config
    location /t {
        content_by_lua_block { ngx.say(worker_started) }
    }
--- request
GET /t
--- response_body
init_worker
--- shutdown_error_log
exit_worker phase: exit_worker



=== TEST 15: an error in rewrite_by_lua or access_by_lua gives 500
--- config
    location /rw {
        rewrite_by_lua_block { error("rewrite failed") }
        content_by_lua_block { ngx.say("unreachable") }
    }
    location /ac {
        access_by_lua_block { local x = nil; return x.field }
        content_by_lua_block { ngx.say("unreachable") }
    }
--- request eval
["GET /rw", "GET /ac"]
--- error_code eval
[500, 500]
--- error_log eval
[qr/rewrite_by_lua\(nginx\.conf:\d+\):1: rewrite failed/, qr/access_by_lua\(nginx\.conf:\d+\):1: attempt to index local 'x' \(a nil value\)/]



=== TEST 16: rewrite_by_lua runs after the rewrite module's directives of its location
--- config
    location /t {
        rewrite_by_lua_block { ngx.var.order = ngx.var.order .. ",lua" }
        set $order "set";
        content_by_lua_block { ngx.say(ngx.var.order) }
    }
--- request
GET /t
--- response_body
set,lua



=== TEST 17: ngx.exit(444) closes the connection without a response
--- config
    location /t {
        content_by_lua_block { ngx.exit(444) }
    }
--- request
GET /t
--- ignore_response
--- no_error_log
[error]



=== TEST 18: coroutines are reused across requests (lua_thread_cache_max_entries default), with lua-nginx-module's debug lines
--- config
    location /t {
        content_by_lua_block {
            local me = tostring(coroutine.running())
            if ngx.var.arg_store then
                rawset(_G, "last_co", me)
                ngx.say("stored")
            else
                ngx.say(me == rawget(_G, "last_co"))
            end
        }
    }
--- request eval
["GET /t?store=1", "GET /t"]
--- response_body eval
["stored\n", "true\n"]
--- grep_error_log eval: qr/lua caching unused lua thread|lua reusing cached lua thread/
--- grep_error_log_out eval
["lua caching unused lua thread\nlua reusing cached lua thread\nlua caching unused lua thread\n",
 "lua reusing cached lua thread\nlua caching unused lua thread\nlua reusing cached lua thread\nlua caching unused lua thread\n"]



=== TEST 19: lua_thread_cache_max_entries 0 disables the reuse; lua_load_resty_core and lua_sa_restart are accepted
--- http_config
    lua_thread_cache_max_entries 0;
    lua_load_resty_core on;
    lua_sa_restart off;
--- config
    location /t {
        content_by_lua_block {
            local me = tostring(coroutine.running())
            if ngx.var.arg_store then
                rawset(_G, "last_co", me)
                ngx.say("stored")
            else
                ngx.say(me == rawget(_G, "last_co"))
            end
        }
    }
--- request eval
["GET /t?store=1", "GET /t"]
--- response_body eval
["stored\n", "false\n"]
--- no_error_log
lua caching unused lua thread



=== TEST 20: ndk.set_var without NDK finds no directive; ngx.ssl.proxysslcert outside an upstream handshake answers "bad request"
--- config
    location /t {
        content_by_lua_block {
            local cert = require "ngx.ssl.proxysslcert"
            ngx.say(cert.set_cert(nil))
            local ok, err = pcall(function() return ndk.set_var.set_escape_uri end)
            ngx.say(ok, " ", err:find('directive "set_escape_uri" not found', 1, true) ~= nil)
        }
    }
--- request
GET /t
--- response_body
nilbad request
false true



=== TEST 22: content_by_lua after an `if` block of its location also serves the requests the `if` matches
--- config
    location /t {
        set $yes 1;
        if ($yes) {
            set $inside "if";
        }
        content_by_lua_block {
            ngx.say("content by lua, ", ngx.var.inside)
        }
    }
--- request
GET /t
--- response_body
content by lua, if
--- no_error_log
[error]
