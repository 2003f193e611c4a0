use Test::Nginx::Socket::Lua;

# The TLS handshake's Lua phases. The server's static certificate is
# test.com's; the clients trust only dyn.test's (t/cert/dyn.*), so a
# handshake verifies only when ssl_certificate_by_lua* put dyn.test's
# certificate in place.
#
# Waiting inside ssl_certificate_by_lua* needs an nginx that calls the
# certificate callback again after it returned -1: OpenResty's
# ssl_cert_cb_yield patch, which Debian's nginx 1.22 carries. nginx.org's
# sources (the 1.28 built by scripts/nginx-1.28.sh) lack it: there the
# handshake fails, as with the C module, so the blocks that wait are
# skipped on it (the version is the only trait the runner can test).

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: ssl_certificate_by_lua_block sets a DER certificate and key from a shared dict; the ngx.ssl getters
--- http_config
    lua_shared_dict certs 1m;
    init_by_lua_block {
        local ssl = require "ngx.ssl"
        local function slurp(p)
            local f = assert(io.open(p)) local s = f:read("*a") f:close() return s
        end
        local certs = ngx.shared.certs
        certs:set("cert", assert(ssl.cert_pem_to_der(slurp("$TEST_NGINX_SERVER_ROOT/../cert/dyn.crt"))))
        certs:set("key", assert(ssl.priv_key_pem_to_der(slurp("$TEST_NGINX_SERVER_ROOT/../cert/dyn.key"))))
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        server_name dyn.test;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_certificate_by_lua_block {
            local ssl = require "ngx.ssl"
            local addr, typ = ssl.raw_client_addr()
            ngx.log(ngx.WARN, "phase: ", ngx.get_phase(), ", sni: ", ssl.server_name(),
                    ", port: ", ssl.server_port(), ", client: ", typ, " ", #addr,
                    ", version: ", ssl.get_tls1_version_str())
            assert(ssl.clear_certs())
            assert(ssl.set_der_cert(ngx.shared.certs:get("cert")))
            assert(ssl.set_der_priv_key(ngx.shared.certs:get("key")))
        }
        location /s { return 200 "over tls $ssl_server_name"; }
    }
--- config
    lua_ssl_trusted_certificate $TEST_NGINX_SERVER_ROOT/../cert/dyn.crt;
    lua_ssl_protocols TLSv1.2 TLSv1.3;
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(3000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            local sess, err = sock:sslhandshake(nil, "dyn.test", true)
            ngx.say("handshake: ", type(sess), " ", err)
            assert(sock:send("GET /s HTTP/1.0\r\nHost: dyn.test\r\n\r\n"))
            ngx.say((sock:receive("*a"):match("over tls.*$")))
        }
    }
--- request
GET /t
--- response_body
handshake: cdata nil
over tls dyn.test
--- error_log eval
qr/\[warn\] .*phase: ssl_cert, sni: dyn.test, port: \d+, client: inet 4, version: TLSv1\.[23], context: ssl_certificate_by_lua\*, client: 127.0.0.1, server: 127.0.0.1:\d+/
--- no_error_log
[error]



=== TEST 2: without the Lua code the client cannot verify the static certificate
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_certificate_by_lua_block { ngx.log(ngx.WARN, "leaving the static certificate") }
    }
--- config
    lua_ssl_trusted_certificate $TEST_NGINX_SERVER_ROOT/../cert/dyn.crt;
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:sslhandshake(nil, "dyn.test", true))
        }
    }
--- request
GET /t
--- response_body_like
^nil\t?.*self-signed certificate
--- error_log
leaving the static certificate



=== TEST 3: parsed cdata certificate and key, set after waiting (ngx.sleep, a cosocket) in the handshake
--- skip_nginx: 3: > 1.22.1
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_certificate_by_lua_block {
            local ssl = require "ngx.ssl"
            local t0 = ngx.now()
            ngx.sleep(0.1)
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            assert(sock:send("GET /pem HTTP/1.0\r\n\r\n"))
            local body = sock:receive("*a"):match("\r\n\r\n(.*)$")
            sock:close()
            ngx.update_time()
            ngx.log(ngx.WARN, "waited ", ngx.now() - t0 >= 0.09, " then got ", #body, " bytes")
            local cert = assert(ssl.parse_pem_cert(body))
            local key = assert(ssl.parse_pem_priv_key(body))
            assert(ssl.clear_certs())
            assert(ssl.set_cert(cert))
            assert(ssl.set_priv_key(key))
        }
        location /s { return 200 "ok"; }
    }
--- config
    lua_ssl_trusted_certificate $TEST_NGINX_SERVER_ROOT/../cert/dyn.crt;
    location /pem {
        content_by_lua_block {
            for _, f in ipairs({"dyn.crt", "dyn.key"}) do
                local h = assert(io.open("$TEST_NGINX_SERVER_ROOT/../cert/" .. f))
                ngx.print(h:read("*a"))
                h:close()
            end
        }
    }
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(3000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            local sess, err = sock:sslhandshake(nil, "dyn.test", true)
            ngx.say("handshake: ", type(sess), " ", err)
        }
    }
--- request
GET /t
--- response_body
handshake: cdata nil
--- error_log eval
qr/waited true then got \d{3,} bytes, context: ssl_certificate_by_lua\*/
--- no_error_log
[error]
[alert]



=== TEST 4: ngx.exit(ngx.ERROR) after a wait and a Lua error fail the handshake; ngx.exit(ngx.OK) goes on
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        server_name exit.test;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_certificate_by_lua_block {
            local sni = require("ngx.ssl").server_name()
            if sni == "exit-error.test" then
                ngx.sleep(0.01)
                ngx.exit(ngx.ERROR)
            elseif sni == "boom.test" then
                error("boom in the handshake")
            end
            ngx.exit(ngx.OK)
        }
    }
--- config
    location /t {
        content_by_lua_block {
            for _, name in ipairs({"exit-error.test", "boom.test", "ok.test"}) do
                local sock = ngx.socket.tcp()
                sock:settimeout(3000)
                assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
                local sess, err = sock:sslhandshake(nil, name, false)
                ngx.say(name, ": ", type(sess), " ", err)
                sock:close()
            end
        }
    }
--- request
GET /t
--- response_body
exit-error.test: nil handshake failed
boom.test: nil handshake failed
ok.test: cdata nil
--- error_log eval
[
qr/runtime error: ssl_certificate_by_lua\(nginx.conf:\d+\):7: boom in the handshake/,
qr/\[info\] .*SSL_do_handshake\(\) failed .*cert cb error/,
]



=== TEST 5: a client that goes away while the handshake code waits: the code finishes, the handshake fails quietly
--- skip_nginx: 3: > 1.22.1
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_certificate_by_lua_block {
            ngx.log(ngx.WARN, "handshake code sleeping")
            ngx.sleep(0.3)
            ngx.log(ngx.WARN, "handshake code woke up")
        }
    }
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(100)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:sslhandshake(nil, "x.test", false))
            sock:close()
            ngx.sleep(0.5)
            ngx.say("done")
        }
    }
--- request
GET /t
--- response_body
niltimeout
done
--- error_log
handshake code sleeping
handshake code woke up
--- no_error_log
[alert]
[crit]
[error]



=== TEST 6: ssl_client_hello_by_lua_block reads the ClientHello and limits the protocols
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_client_hello_by_lua_block {
            local ch = require "ngx.ssl.clienthello"
            local vers = ch.get_supported_versions()
            ngx.log(ngx.WARN, "phase: ", ngx.get_phase(), ", sni: ", ch.get_client_hello_server_name(),
                    ", sni ext bytes: ", #ch.get_client_hello_ext(0),
                    ", offers 1.3: ", table.concat(vers, ","):find("TLSv1.3", 1, true) ~= nil)
            assert(ch.set_protocols({"TLSv1.2"}))
            ngx.log(ngx.WARN, "bad protocol: ", select(2, ch.set_protocols({"TLSv9"})))
        }
        ssl_certificate_by_lua_block {
            local ssl = require "ngx.ssl"
            ngx.log(ngx.WARN, "negotiating ", ssl.get_tls1_version_str())
            local ok, err = pcall(require("ngx.ssl.clienthello").get_client_hello_server_name)
            ngx.log(ngx.WARN, "clienthello in cert phase: ", err)
        }
    }
--- config
    lua_ssl_protocols TLSv1.2 TLSv1.3;
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(type(sock:sslhandshake(nil, "hello.test", false)))
        }
    }
--- request
GET /t
--- response_body
cdata
--- error_log eval
[
qr/phase: ssl_client_hello, sni: hello.test, sni ext bytes: 15, offers 1.3: true, context: ssl_client_hello_by_lua\*/,
"bad protocol: invalid protocols failed",
"negotiating TLSv1.2",
"clienthello in cert phase: API disabled in the current context",
]
--- no_error_log
[error]



=== TEST 7: ssl_client_hello_by_lua: a Lua error fails the handshake, with its chunk name
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_client_hello_by_lua_block {
            error("no hello")
        }
    }
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:sslhandshake(nil, "x.test", false))
        }
    }
--- request
GET /t
--- response_body
nilhandshake failed
--- error_log
runtime error: ssl_client_hello_by_lua:2: no hello



=== TEST 8: ssl_session_store_by_lua and ssl_session_fetch_by_lua keep TLS 1.2 sessions in a shared dict
--- http_config
    lua_shared_dict sessions 1m;
    ssl_session_store_by_lua_block {
        local s = require "ngx.ssl.session"
        local id = assert(s.get_session_id())
        local data = assert(s.get_serialized_session())
        ngx.log(ngx.WARN, "storing session ", #id, " hex chars in ", ngx.get_phase())
        ngx.shared.sessions:set(id, data)
        ngx.exit(ngx.OK)
    }
    ssl_session_fetch_by_lua_block {
        local s = require "ngx.ssl.session"
        local id = assert(s.get_session_id())
        local data = ngx.shared.sessions:get(id)
        ngx.log(ngx.WARN, "fetching session in ", ngx.get_phase(), ": ", data and "found" or "missing")
        if data then
            assert(s.set_serialized_session(data))
        end
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_session_tickets off;
        location /s { return 200 "reused:$ssl_session_reused"; }
    }
--- config
    lua_ssl_protocols TLSv1.2;
    location /t {
        content_by_lua_block {
            local session
            for i = 1, 2 do
                local sock = ngx.socket.tcp()
                sock:settimeout(3000)
                assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
                session = assert(sock:sslhandshake(session, "x.test", false))
                assert(sock:send("GET /s HTTP/1.0\r\n\r\n"))
                ngx.say((sock:receive("*a"):match("reused:.*$")))
                sock:close()
            end
        }
    }
--- request
GET /t
--- response_body
reused:.
reused:r
--- error_log eval
[
qr/storing session 64 hex chars in ssl_session_store, context: ssl_session_store_by_lua\*/,
qr/fetching session in ssl_session_fetch: found, context: ssl_session_fetch_by_lua\*/,
]
--- no_error_log
[error]



=== TEST 9: the handshake directives need TLS, and the session ones belong to http {}
--- config
    ssl_certificate_by_lua_block { print("x") }
--- must_die
--- error_log
no ssl configured for the server



=== TEST 10: ssl_session_fetch_by_lua_block inside server {} is refused
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        ssl_session_fetch_by_lua_block { print("x") }
    }
--- config
--- must_die
--- error_log
"ssl_session_fetch_by_lua_block" directive is not allowed here



=== TEST 11: ssl_certificate_by_lua_file, and the API a handshake may not use
--- user_files
>>> cert.lua
local ok, err = pcall(ngx.location.capture, "/x")
ngx.log(ngx.WARN, "capture: ", err)
local ok, err = pcall(ngx.say, "x")
ngx.log(ngx.WARN, "say: ", err)
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_certificate_by_lua_file html/cert.lua;
    }
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(type(sock:sslhandshake(nil, "x.test", false)))
        }
    }
--- request
GET /t
--- response_body
cdata
--- error_log
capture: API disabled in the context of ssl_certificate_by_lua*
say: API disabled in the context of ssl_certificate_by_lua*



=== TEST 12: ngx.ssl outside a handshake: no request, or errors without a TLS connection
--- config
    location /t {
        content_by_lua_block {
            local ssl = require "ngx.ssl"
            ngx.say(ssl.server_name())
            ngx.say(ssl.get_tls1_version())
            ngx.say(ssl.cert_pem_to_der("not a pem"))
            ngx.say(ssl.priv_key_pem_to_der("not a pem"))
            ngx.say(ssl.parse_pem_cert("x"))
            ngx.say(ssl.TLS1_2_VERSION, " ", ssl.TLS1_3_VERSION)
            ngx.timer.at(0, function()
                ngx.log(ngx.WARN, "timer: ", select(2, require("ngx.ssl.session").get_session_id()))
            end)
        }
    }
--- request
GET /t
--- response_body
nilbad request
nilbad request
nilPEM_read_bio_X509_AUX() failed
nilPEM_read_bio_PrivateKey() failed
nilPEM_read_bio_X509_AUX() failed
771 772
--- error_log
timer: bad request



=== TEST 13: verify_client asks the client for a certificate, checked against the given CA; the server address
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_certificate_by_lua_block {
            local ssl = require "ngx.ssl"
            local f = assert(io.open("$TEST_NGINX_SERVER_ROOT/../cert/dyn.crt"))
            local ca = assert(ssl.parse_pem_cert(f:read("*a")))
            f:close()
            assert(ssl.verify_client(ca, 1))
            local addr, typ = ssl.raw_server_addr()
            ngx.log(ngx.WARN, "server address: ", typ, " ", table.concat({addr:byte(1, -1)}, "."))
        }
        location /s { return 200 "client: $ssl_client_verify $ssl_client_s_dn"; }
    }
--- config
    location = /t {
        lua_ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/dyn.crt;
        lua_ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/dyn.key;
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(3000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:sslhandshake(nil, "x.test", false))
            assert(sock:send("GET /s HTTP/1.0\r\n\r\n"))
            ngx.say((sock:receive("*a"):match("client: .*$")))
            ngx.say(require("ngx.ssl").verify_client(nil))
        }
    }
    location = /anonymous {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(3000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:sslhandshake(nil, "x.test", false))
            assert(sock:send("GET /s HTTP/1.0\r\n\r\n"))
            ngx.say((sock:receive("*a"):match("client: .*$")))
        }
    }
--- pipelined_requests eval
["GET /t", "GET /anonymous"]
--- response_body eval
["client: SUCCESS CN=dyn.test\nnilAPI disabled in the current context\n", "client: NONE \n"]
--- error_log
server address: inet 127.0.0.1
--- no_error_log
[error]



=== TEST 14: the _file forms of ssl_client_hello_by_lua, ssl_session_store_by_lua and ssl_session_fetch_by_lua
--- user_files
>>> hello.lua
ngx.log(ngx.WARN, "hello file for ", require("ngx.ssl.clienthello").get_client_hello_server_name())
>>> store.lua
local s = require "ngx.ssl.session"
ngx.shared.sess:set(s.get_session_id(), s.get_serialized_session())
ngx.log(ngx.WARN, "store file")
>>> fetch.lua
local s = require "ngx.ssl.session"
local data = ngx.shared.sess:get(s.get_session_id())
ngx.log(ngx.WARN, "fetch file: ", data ~= nil)
if data then assert(s.set_serialized_session(data)) end
--- http_config
    lua_shared_dict sess 1m;
    ssl_session_store_by_lua_file html/store.lua;
    ssl_session_fetch_by_lua_file html/fetch.lua;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_session_tickets off;
        ssl_client_hello_by_lua_file html/hello.lua;
        location /s { return 200 "reused:$ssl_session_reused"; }
    }
--- config
    lua_ssl_protocols TLSv1.2;
    location /t {
        content_by_lua_block {
            local session
            for i = 1, 2 do
                local sock = ngx.socket.tcp()
                sock:settimeout(3000)
                assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
                session = assert(sock:sslhandshake(session, "file.test", false))
                assert(sock:send("GET /s HTTP/1.0\r\n\r\n"))
                ngx.say((sock:receive("*a"):match("reused:.*$")))
                sock:close()
            end
        }
    }
--- request
GET /t
--- response_body
reused:.
reused:r
--- error_log eval
[
qr/\[lua\] hello.lua:1: hello file for file.test, context: ssl_client_hello_by_lua\*/,
qr/\[lua\] store.lua:3: store file, context: ssl_session_store_by_lua\*/,
qr/\[lua\] fetch.lua:3: fetch file: true, context: ssl_session_fetch_by_lua\*/,
]
--- no_error_log
[error]



=== TEST 15: TLS 1.3 skips the session hooks
--- http_config
    ssl_session_store_by_lua_block { ngx.log(ngx.WARN, "store ran") }
    ssl_session_fetch_by_lua_block { ngx.log(ngx.WARN, "fetch ran") }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_protocols TLSv1.3;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        location /s { return 200 "proto:$ssl_protocol"; }
    }
--- config
    lua_ssl_protocols TLSv1.3;
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(3000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:sslhandshake(nil, "x.test", false))
            assert(sock:send("GET /s HTTP/1.0\r\n\r\n"))
            ngx.say((sock:receive("*a"):match("proto:.*$")))
        }
    }
--- request
GET /t
--- response_body
proto:TLSv1.3
--- no_error_log
store ran
fetch ran
[error]



=== TEST 16: master's additions: DER parsing into cdata, handshake randoms, master key, keying material, SSL pointer
--- http_config
    lua_shared_dict certs 1m;
    init_by_lua_block {
        local ssl = require "ngx.ssl"
        local function slurp(p)
            local f = assert(io.open(p)) local s = f:read("*a") f:close() return s
        end
        ngx.shared.certs:set("cert", assert(ssl.cert_pem_to_der(slurp("$TEST_NGINX_SERVER_ROOT/../cert/dyn.crt"))))
        ngx.shared.certs:set("key", assert(ssl.priv_key_pem_to_der(slurp("$TEST_NGINX_SERVER_ROOT/../cert/dyn.key"))))
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_certificate_by_lua_block {
            local ssl = require "ngx.ssl"
            local cert = assert(ssl.parse_der_cert(ngx.shared.certs:get("cert")))
            local key = assert(ssl.parse_der_priv_key(ngx.shared.certs:get("key")))
            assert(ssl.clear_certs())
            assert(ssl.set_cert(cert))
            assert(ssl.set_priv_key(key))
            ngx.log(ngx.WARN, "client random: ", #ssl.get_client_random(), " of ", ssl.get_client_random(0),
                    ", bad der: ", select(2, ssl.parse_der_cert("junk")), ", ", select(2, ssl.parse_der_priv_key("")))
        }
        location /s {
            content_by_lua_block {
                local ssl = require "ngx.ssl"
                local a = assert(ssl.export_keying_material(32, "EXPERIMENTAL-ngx-lua"))
                local b = assert(ssl.export_keying_material(32, "EXPERIMENTAL-ngx-lua", "ctx"))
                ngx.say("ekm: ", #a, " ", a == ssl.export_keying_material(32, "EXPERIMENTAL-ngx-lua"), " ", a ~= b)
                ngx.say("server random: ", #ssl.get_server_random(), ", master key: ", #ssl.get_session_master_key())
                ngx.say("pointer: ", type(ssl.get_req_ssl_pointer()))
                -- no early data on this connection
                ngx.say("early: ", select(2, ssl.export_keying_material_early(16, "EXPERIMENTAL-ngx-lua")))
                ngx.say("bad length: ", select(2, ssl.export_keying_material(-1, "x")))
            }
        }
    }
--- config
    lua_ssl_trusted_certificate $TEST_NGINX_SERVER_ROOT/../cert/dyn.crt;
    lua_ssl_protocols TLSv1.2;
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(3000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:sslhandshake(nil, "dyn.test", true))
            assert(sock:send("GET /s HTTP/1.0\r\n\r\n"))
            ngx.print((sock:receive("*a"):match("\r\n\r\n(.*)$")))
            ngx.say("plain: ", select(2, require("ngx.ssl").get_client_random()))
        }
    }
--- request
GET /t
--- response_body
ekm: 32 true true
server random: 32, master key: 48
pointer: cdata
early: SSL_export_keying_material_early() failed
bad length: bad length
plain: bad request
--- error_log
client random: 32 of 32, bad der: d2i_X509_bio() failed, invalid argument
--- no_error_log
[error]



=== TEST 17: lua_ssl_key_log appends the secrets of cosocket handshakes (NSS key log lines)
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
    }
--- config
    location /t {
        lua_ssl_protocols TLSv1.2;
        lua_ssl_key_log logs/keys.log;
        content_by_lua_block {
            for i = 1, 2 do
                local sock = ngx.socket.tcp()
                assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
                assert(sock:sslhandshake(false, "x.test", false))
                sock:close()
            end
            local f = assert(io.open("$TEST_NGINX_SERVER_ROOT/logs/keys.log"))
            local n = 0
            for line in f:lines() do
                if line:match("^CLIENT_RANDOM %x+ %x+$") then n = n + 1 end
            end
            f:close()
            ngx.say("client random lines: ", n)
        }
    }
--- request
GET /t
--- response_body_like
^client random lines: [24]$



=== TEST 18: lua-nginx-module master's upstream TLS hooks need an https proxy_pass (t/317 has the rest)
--- config
    location /t {
        proxy_ssl_certificate_by_lua_block { print("x") }
    }
--- must_die
--- error_log
proxy_ssl_certificate_by_lua* should be used with proxy_pass https url



=== TEST 19: a global written in handshake code and in a timer gets the write warning, not in init_worker_by_lua
--- http_config
    init_worker_by_lua_block { quiet_global = 1 }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_certificate_by_lua_block { handshake_global = 1 }
    }
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(type(sock:sslhandshake(nil, "x.test", false)))
            ngx.timer.at(0, function() timer_global = 1 end)
            ngx.sleep(0.05)
            -- gone again, so that the next repetition creates them anew
            rawset(_G, "handshake_global", nil)
            rawset(_G, "timer_global", nil)
        }
    }
--- request
GET /t
--- response_body
cdata
--- error_log eval
[
qr/\[warn\] .*writing a global Lua variable \('handshake_global'\)/,
qr/\[warn\] .*writing a global Lua variable \('timer_global'\)/,
]
--- no_error_log
quiet_global



=== TEST 20: ngx.ctx of the handshake code (client hello, certificate) is one table per connection; each request on it reads through to it, and what a request sets stays its own
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_client_hello_by_lua_block {
            ngx.ctx.tenant = "hello"
            ngx.ctx.count = 0
        }
        ssl_certificate_by_lua_block {
            ngx.ctx.tenant = ngx.ctx.tenant .. "+cert"
            ngx.ctx.shared = { hits = 0 }
        }
        location /in {
            content_by_lua_block {
                ngx.ctx.count = ngx.ctx.count + 1
                ngx.ctx.shared.hits = ngx.ctx.shared.hits + 1
                ngx.say(ngx.ctx.tenant, " ", ngx.ctx.count, " ", ngx.ctx.shared.hits,
                        " ", rawget(ngx.ctx, "tenant"))
            }
        }
    }
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:sslhandshake(nil, "ctx.test", false))
            for i = 1, 2 do
                assert(sock:send("GET /in HTTP/1.1\r\nHost: ctx.test\r\n\r\n"))
                local body
                repeat
                    local line = assert(sock:receive())
                    if line:find("^%x+$") and line ~= "0" then
                        body = assert(sock:receive(tonumber(line, 16)))
                        assert(sock:receive())
                    end
                until line == "0"
                assert(sock:receive())
                ngx.print(body)
            end
            sock:close()
            ngx.say(ngx.ctx.tenant)
        }
    }
--- request
GET /t
--- response_body
hello+cert 1 1 nil
hello+cert 1 2 nil
nil
--- no_error_log
[error]
