use Test::Nginx::Socket::Lua;

# Debian's packaged OpenResty libraries, exactly as apt installs them under
# /usr/share/lua/5.1 (nothing copied or patched), against real servers:
# redis-server and memcached from scripts/services.sh, a WebSocket echo
# served by this same nginx, and the DNS stub. scripts/test.sh installs the
# lua-nginx-* packages when they are missing.

repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: nginx.redis: commands, hashes, pipelines, errors, and connection reuse through the pool
--- config
    location /t {
        content_by_lua_block {
            local redis = require "nginx.redis"
            local function conn()
                local red = redis:new()
                red:set_timeout(1000)
                assert(red:connect("127.0.0.1", $TEST_NGINX_REDIS_PORT))
                return red
            end
            local red = conn()
            ngx.say("reused: ", red:get_reused_times())
            assert(red:del("deb:k", "deb:h", "deb:n"))
            ngx.say("set: ", red:set("deb:k", "v\r\n1"))
            ngx.say("get: ", red:get("deb:k") == "v\r\n1")
            ngx.say("missing: ", red:get("deb:none") == ngx.null)
            ngx.say("hmset: ", red:hmset("deb:h", "a", "1", "b", "2"))
            local all = red:hgetall("deb:h")
            local h = red:array_to_hash(all)
            ngx.say("hash: ", h.a, h.b)
            red:init_pipeline()
            red:incr("deb:n")
            red:incrby("deb:n", 41)
            red:get("deb:n")
            local res = assert(red:commit_pipeline())
            ngx.say("pipeline: ", table.concat(res, ","))
            local ok, err = red:hget("deb:k", "x")
            ngx.say("wrong type: ", ok, " ", err:match("^WRONGTYPE") ~= nil)
            assert(red:set_keepalive(10000, 10))
            red = conn()
            ngx.say("reused: ", red:get_reused_times())
            assert(red:close())
        }
    }
--- request
GET /t
--- response_body
reused: 0
set: OK
get: true
missing: true
hmset: OK
hash: 12
pipeline: 1,42,42
wrong type: false true
reused: 1
--- no_error_log
[error]



=== TEST 2: nginx.redis: a subscriber gets what another connection publishes
--- config
    location /t {
        content_by_lua_block {
            local redis = require "nginx.redis"
            local sub = redis:new()
            sub:set_timeout(1000)
            assert(sub:connect("127.0.0.1", $TEST_NGINX_REDIS_PORT))
            local res = assert(sub:subscribe("deb:chan"))
            ngx.say(res[1], " ", res[2], " ", res[3])
            local pub = redis:new()
            assert(pub:connect("127.0.0.1", $TEST_NGINX_REDIS_PORT))
            ngx.say("receivers: ", pub:publish("deb:chan", "hello"))
            res = assert(sub:read_reply())
            ngx.say(res[1], " ", res[2], " ", res[3])
            sub:unsubscribe("deb:chan")
            sub:close()
            pub:close()
        }
    }
--- request
GET /t
--- response_body
subscribe deb:chan 1
receivers: 1
message deb:chan hello
--- no_error_log
[error]



=== TEST 3: nginx.memcached: set, get with flags, add on an existing key, incr, delete, pool reuse
--- config
    location /t {
        content_by_lua_block {
            local memcached = require "nginx.memcached"
            local function conn()
                local memc = memcached:new()
                memc:set_timeout(1000)
                assert(memc:connect("127.0.0.1", $TEST_NGINX_MEMCACHED_PORT))
                return memc
            end
            local memc = conn()
            memc:delete("deb_k")
            memc:delete("deb_n")
            ngx.say("set: ", memc:set("deb_k", "some value", 60, 7))
            local v, flags = memc:get("deb_k")
            ngx.say("get: ", v, " flags ", flags)
            ngx.say("add: ", select(2, memc:add("deb_k", "x")))
            memc:set("deb_n", 10)
            ngx.say("incr: ", memc:incr("deb_n", 5))
            ngx.say("delete: ", memc:delete("deb_k"))
            ngx.say("gone: ", (memc:get("deb_k")))
            assert(memc:set_keepalive(10000, 10))
            memc = conn()
            ngx.say("reused: ", memc:get_reused_times())
            memc:close()
        }
    }
--- request
GET /t
--- response_body
set: 1
get: some value flags 7
add: NOT_STORED
incr: 15
delete: 1
gone: nil
reused: 1
--- no_error_log
[error]



=== TEST 4: nginx.websocket: a client in one request talks to an echo server in another
--- config
    location /ws {
        content_by_lua_block {
            local server = require "nginx.websocket.server"
            local wb = assert(server:new{ timeout = 2000, max_payload_len = 65535 })
            while true do
                local data, typ, err = wb:recv_frame()
                if not data then
                    ngx.log(ngx.ERR, "server recv failed: ", err)
                    return
                end
                if typ == "close" then
                    wb:send_close(1000, "bye")
                    return
                elseif typ == "ping" then
                    wb:send_pong(data)
                elseif typ == "text" then
                    wb:send_text("echo: " .. data)
                elseif typ == "binary" then
                    wb:send_binary(data:reverse())
                end
            end
        }
    }
    location /t {
        content_by_lua_block {
            local client = require "nginx.websocket.client"
            local wb = client:new{ timeout = 2000 }
            assert(wb:connect("ws://127.0.0.1:" .. ngx.var.server_port .. "/ws"))
            assert(wb:send_text("hello"))
            local data, typ = wb:recv_frame()
            ngx.say(typ, ": ", data)
            local big = string.rep("0123456789", 2000)
            assert(wb:send_binary(big))
            data, typ = wb:recv_frame()
            ngx.say(typ, ": ", #data, " ", data == big:reverse())
            assert(wb:send_ping("are you there"))
            data, typ = wb:recv_frame()
            ngx.say(typ, ": ", data)
            assert(wb:send_close(1000, "done"))
            data, typ, err = wb:recv_frame()
            ngx.say(typ, ": ", data, " ", err)
            wb:close()
        }
    }
--- request
GET /t
--- response_body
text: echo: hello
binary: 20000 true
pong: are you there
close: bye 1000
--- no_error_log
[error]



=== TEST 5: nginx.dns.resolver: A records from the stub, NXDOMAIN, a missing type
--- config
    location /t {
        content_by_lua_block {
            local resolver = require "nginx.dns.resolver"
            local r = assert(resolver:new{
                nameservers = { { "127.0.0.1", $TEST_NGINX_DNS_PORT } },
                retrans = 2, timeout = 1000,
            })
            local answers = assert(r:query("www.example.test"))
            for _, a in ipairs(answers) do
                ngx.say(a.name, " ", a.type == r.TYPE_A, " ", a.address, " ttl ", a.ttl)
            end
            answers = assert(r:query("nowhere.invalid"))
            ngx.say("nx: ", answers.errcode, " ", answers.errstr)
            answers = assert(r:query("www.example.test", { qtype = r.TYPE_AAAA }))
            ngx.say("aaaa: ", #answers)
        }
    }
--- request
GET /t
--- response_body
www.example.test true 127.0.0.1 ttl 60
nx: 3 name error
aaaa: 0
--- no_error_log
[error]



=== TEST 6: nginx.sha1/md5/sha256, nginx.string, nginx.random and nginx.aes over the nginx binary's OpenSSL
--- config
    location /t {
        content_by_lua_block {
            local str = require "nginx.string"
            local function hex(mod)
                local h = require(mod):new()
                h:update("hel")
                h:update("lo")
                return str.to_hex(h:final())
            end
            ngx.say("sha1 ", hex("nginx.sha1"))
            ngx.say("md5 ", hex("nginx.md5"))
            ngx.say("sha256 ", hex("nginx.sha256"))
            ngx.say("atoi ", str.atoi("123"))
            local random = require "nginx.random"
            ngx.say("random ", #random.bytes(16))
            local aes = require "nginx.aes"
            local cipher = aes:new("secret key", "salt1234", aes.cipher(256, "cbc"), aes.hash.sha256, 5)
            local enc = cipher:encrypt("plain text, longer than one block")
            ngx.say("aes ", #enc, " ", cipher:decrypt(enc))
        }
    }
--- request
GET /t
--- response_body
sha1 aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d
md5 5d41402abc4b2a76b9719d911017c592
sha256 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
atoi 123
random 16
aes 48 plain text, longer than one block
--- no_error_log
[error]



=== TEST 7: nginx.cookie reads the request's cookies and sets new ones; cjson round-trips a body
--- config
    location /t {
        content_by_lua_block {
            local ck = require "nginx.cookie"
            local cookie = assert(ck:new())
            local all = assert(cookie:get_all())
            local names = {}
            for k in pairs(all) do names[#names + 1] = k end
            table.sort(names)
            assert(cookie:set({ key = "seen", value = "yes", path = "/", httponly = true, max_age = 60 }))
            ngx.say(table.concat(names, ","), " session=", cookie:get("session"))
            local cjson = require "cjson"
            local doc = cjson.decode('{"list":[1,2,3],"name":"x","nested":{"ok":true}}')
            ngx.say(#doc.list, " ", doc.name, " ", tostring(doc.nested.ok), " ", cjson.encode(doc.list))
        }
    }
--- request
GET /t
--- more_headers
Cookie: session=abc123; theme=dark; lang=en
--- response_body
lang,session,theme session=abc123
3 x true [1,2,3]
--- response_headers
Set-Cookie: seen=yes; Max-Age=60; Path=/; HttpOnly
--- no_error_log
[error]
