use Test::Nginx::Socket::Lua;

# The upstream TLS hooks (lua-nginx-module master's proxy_ssl_*_by_lua*).
# Each block has a TLS backend in the same nginx, on $TEST_NGINX_RAND_PORT_1,
# serving test.com's certificate; where it wants a client certificate it
# trusts only dyn.test's (t/cert/dyn.*), which the proxy has nowhere in its
# configuration: only proxy_ssl_certificate_by_lua* can present it.

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: proxy_ssl_certificate_by_lua_block presents a PEM client certificate the backend requires
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_verify_client on;
        ssl_client_certificate $TEST_NGINX_SERVER_ROOT/../cert/dyn.crt;
        location / { return 200 "client $ssl_client_s_dn $ssl_client_verify\n"; }
    }
--- config
    proxy_ssl_session_reuse off;
    location /t {
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
        proxy_ssl_certificate_by_lua_block {
            local ssl = require "ngx.ssl"
            local pcert = require "ngx.ssl.proxysslcert"
            local function slurp(p)
                local f = assert(io.open(p)) local s = f:read("*a") f:close() return s
            end
            local cert = assert(ssl.parse_pem_cert(slurp("$TEST_NGINX_SERVER_ROOT/../cert/dyn.crt")))
            local key = assert(ssl.parse_pem_priv_key(slurp("$TEST_NGINX_SERVER_ROOT/../cert/dyn.key")))
            assert(pcert.clear_certs())
            assert(pcert.set_cert(cert))
            assert(pcert.set_priv_key(key))
            local p = assert(ssl.get_upstream_ssl_pointer())
            ngx.log(ngx.WARN, "phase: ", ngx.get_phase(), ", ssl: ", type(p),
                    ", reused: ", tostring(ssl.ssl_session_reused(p)))
        }
    }
--- request
GET /t
--- response_body
client CN=dyn.test SUCCESS
--- error_log eval
qr/\[warn\] .*phase: proxy_ssl_cert, ssl: cdata, reused: false/
--- no_error_log
[error]



=== TEST 2: without the hook the backend refuses the request (no client certificate)
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_verify_client on;
        ssl_client_certificate $TEST_NGINX_SERVER_ROOT/../cert/dyn.crt;
        location / { return 200 "client $ssl_client_s_dn\n"; }
    }
--- config
    location /t {
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
    }
--- request
GET /t
--- error_code: 400
--- response_body_like: No required SSL certificate was sent



=== TEST 3: DER certificate and key from a shared dict; a location sharing the proxy's SSL context without code presents none
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
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_verify_client optional;
        ssl_client_certificate $TEST_NGINX_SERVER_ROOT/../cert/dyn.crt;
        location / { return 200 "client [$ssl_client_s_dn] $ssl_client_verify\n"; }
    }
--- config
    proxy_ssl_session_reuse off;
    location /t {
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
        proxy_ssl_certificate_by_lua_block {
            local pcert = require "ngx.ssl.proxysslcert"
            assert(pcert.clear_certs())
            assert(pcert.set_der_cert(ngx.shared.certs:get("cert")))
            assert(pcert.set_der_priv_key(ngx.shared.certs:get("key")))
        }
    }
    location /plain {
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
    }
--- request eval
["GET /t", "GET /plain"]
--- response_body eval
["client [CN=dyn.test] SUCCESS\n", "client [] NONE\n"]
--- no_error_log
[error]



=== TEST 4: the setters' errors: bad DER, no chain, no key
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_verify_client optional;
        ssl_client_certificate $TEST_NGINX_SERVER_ROOT/../cert/dyn.crt;
        location / { return 200 "client [$ssl_client_s_dn]\n"; }
    }
--- config
    proxy_ssl_session_reuse off;
    location /t {
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
        proxy_ssl_certificate_by_lua_block {
            local pcert = require "ngx.ssl.proxysslcert"
            local function show(what, ok, err)
                ngx.log(ngx.WARN, what, ": ", tostring(ok), " ", tostring(err))
            end
            show("der cert", pcert.set_der_cert("not a certificate"))
            show("der key", pcert.set_der_priv_key("not a key"))
            show("chain", pcert.set_cert(nil))
            show("key", pcert.set_priv_key(nil))
        }
    }
--- request
GET /t
--- response_body
client []
--- error_log
der cert: nil d2i_X509_bio() failed
der key: nil d2i_PrivateKey_bio() failed
chain: nil invalid certificate chain
key: nil invalid private key
--- no_error_log
[error]



=== TEST 5: ngx.exit(ngx.ERROR) and a Lua error fail the upstream handshake (502)
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_verify_client optional;
        ssl_client_certificate $TEST_NGINX_SERVER_ROOT/../cert/dyn.crt;
        location / { return 200 "ok\n"; }
    }
--- config
    proxy_ssl_session_reuse off;
    location /exit {
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
        proxy_ssl_certificate_by_lua_block {
            return ngx.exit(ngx.ERROR)
        }
    }
    location /err {
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
        proxy_ssl_certificate_by_lua_block {
            error("no certificate for you")
        }
    }
    location /ok {
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
        proxy_ssl_certificate_by_lua_block {
            return ngx.exit(ngx.OK)
        }
    }
--- request eval
["GET /exit", "GET /err", "GET /ok"]
--- error_code eval
[502, 502, 200]
--- error_log eval
[qr/SSL_do_handshake\(\) failed \(SSL: .*callback failed\) while proxy pass SSL handshaking, .*request: "GET \/exit /,
 qr/proxy_ssl_certificate_by_lua: handler return value: -1, cert cb exit code: 0/,
 qr/proxy_ssl_certificate_by_lua: handler return value: 0, cert cb exit code: 1/,
 qr/lua entry thread aborted: runtime error: proxy_ssl_certificate_by_lua\(nginx\.conf:\d+\):2: no certificate for you/]



=== TEST 6: proxy_ssl_verify_by_lua_block reads the verify result and the certificate, and rejects it
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        location / { return 200 "backend\n"; }
    }
--- config
    proxy_ssl_session_reuse off;
    location /t {
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
        proxy_ssl_verify on;
        proxy_ssl_name test.com;
        proxy_ssl_trusted_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        proxy_ssl_verify_by_lua_block {
            local verify = require "ngx.ssl.proxysslverify"
            local ffi = require "ffi"
            ffi.cdef[[
                typedef struct x509_st X509;
                void *X509_get_subject_name(const X509 *x);
                char *X509_NAME_oneline(void *name, char *buf, int size);
                void CRYPTO_free(void *ptr, const char *file, int line);
            ]]
            local cert = assert(verify.get_verify_cert())
            -- OpenSSL allocates the line; freeing it is the caller's job
            local line = ffi.C.X509_NAME_oneline(ffi.C.X509_get_subject_name(cert), nil, 0)
            local name = ffi.string(line)
            ffi.C.CRYPTO_free(line, nil, 0)
            ngx.log(ngx.WARN, "phase: ", ngx.get_phase(), ", result: ", verify.get_verify_result(),
                    ", subject: ", name)
            if ngx.var.arg_reject then
                -- X509_V_ERR_CERT_REJECTED
                assert(verify.set_verify_result(28))
                ngx.log(ngx.WARN, "now: ", verify.get_verify_result())
            end
        }
    }
--- request eval
["GET /t", "GET /t?reject=1"]
--- error_code eval
[200, 502]
--- response_body_like eval
["^backend\n\$", "502 Bad Gateway"]
--- error_log eval
[qr/\[warn\] .*phase: proxy_ssl_verify, result: 0, subject: \/CN=test\.com/,
 qr/upstream SSL certificate verify error: \(28:certificate rejected\)/]



=== TEST 7: the code sees OpenSSL's verdict and may overturn it; lua_upstream_skip_openssl_default_verify skips OpenSSL's check
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        location / { return 200 "backend\n"; }
    }
--- config
    proxy_ssl_verify on;
    proxy_ssl_name test.com;
    proxy_ssl_session_reuse off;
    # The wrong CA: OpenSSL's own check of test.com's certificate fails.
    proxy_ssl_trusted_certificate $TEST_NGINX_SERVER_ROOT/../cert/dyn.crt;
    location /default {
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
        proxy_ssl_verify_by_lua_block {
            local verify = require "ngx.ssl.proxysslverify"
            ngx.log(ngx.WARN, "default: result ", verify.get_verify_result())
        }
    }
    location /override {
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
        proxy_ssl_verify_by_lua_block {
            local verify = require "ngx.ssl.proxysslverify"
            -- X509_V_OK
            assert(verify.set_verify_result(0))
        }
    }
    location /skip {
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
        lua_upstream_skip_openssl_default_verify on;
        proxy_ssl_verify_by_lua_block {
            local verify = require "ngx.ssl.proxysslverify"
            ngx.log(ngx.WARN, "skip: result ", verify.get_verify_result())
        }
    }
--- request eval
["GET /default", "GET /override", "GET /skip"]
--- error_code eval
[502, 200, 200]
--- error_log eval
[qr/default: result 18\b/,
 qr/upstream SSL certificate verify error: \(18:self-signed certificate\) .*request: "GET \/default /,
 qr/skip: result 0\b/]
--- no_error_log eval
[qr/upstream SSL certificate verify error: .*request: "GET \/(override|skip) /]



=== TEST 8: ngx.ssl.proxysslverify outside proxy_ssl_verify_by_lua*, get_upstream_ssl_pointer without an upstream
--- config
    location /t {
        content_by_lua_block {
            local verify = require "ngx.ssl.proxysslverify"
            local ssl = require "ngx.ssl"
            for _, f in ipairs{"get_verify_result", "set_verify_result", "get_verify_cert"} do
                local ok, err = pcall(verify[f], 0)
                ngx.say(f, ": ", ok, " ", err)
            end
            ngx.say("pointer: ", select(2, ssl.get_upstream_ssl_pointer()))
            ngx.say("reused: ", select(2, ssl.ssl_session_reused("x")))
            local ffi = require "ffi"
            -- Not an SSL object of this request: refused, never handed to OpenSSL.
            ngx.say("reused null: ", select(2, ssl.ssl_session_reused(ffi.cast("void *", 0))))
            ngx.say("reused other: ", select(2, ssl.ssl_session_reused(ffi.new("char[64]"))))
            local pcert = require "ngx.ssl.proxysslcert"
            ngx.say("clear_certs: ", select(2, pcert.clear_certs()))
        }
    }
--- request
GET /t
--- response_body_like
get_verify_result: false .*API disabled in the current context
set_verify_result: false .*API disabled in the current context
get_verify_cert: false .*API disabled in the current context
pointer: bad upstream
reused: bad ssl
reused null: bad ssl
reused other: bad ssl
clear_certs: bad request



=== TEST 9: proxy_ssl_certificate_by_lua* needs proxy_pass https
--- config
    location /t {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/;
        proxy_ssl_certificate_by_lua_block { }
    }
--- must_die
--- error_log
proxy_ssl_certificate_by_lua* should be used with proxy_pass https url



=== TEST 10: proxy_ssl_verify_by_lua* needs proxy_pass https; the directives are refused twice
--- config
    location /t {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/;
        proxy_ssl_verify_by_lua_block { }
    }
--- must_die
--- error_log
proxy_ssl_verify_by_lua* should be used with proxy_pass https url



=== TEST 11: a second proxy_ssl_certificate_by_lua_file is a duplicate
--- config
    location /t {
        proxy_pass https://127.0.0.1:$TEST_NGINX_SERVER_PORT/;
        proxy_ssl_certificate_by_lua_file html/a.lua;
        proxy_ssl_certificate_by_lua_file html/a.lua;
    }
--- must_die
--- error_log
"proxy_ssl_certificate_by_lua_file" directive is duplicate



=== TEST 12: proxy_ssl_certificate_by_lua_file; waiting is refused there (the API that waits is disabled)
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_verify_client optional;
        ssl_client_certificate $TEST_NGINX_SERVER_ROOT/../cert/dyn.crt;
        location / { return 200 "client [$ssl_client_s_dn]\n"; }
    }
--- config
    proxy_ssl_session_reuse off;
    location /t {
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
        proxy_ssl_certificate_by_lua_file html/cert.lua;
    }
--- user_files
>>> cert.lua
local ok, err = pcall(ngx.sleep, 0.001)
ngx.log(ngx.WARN, "sleep: ", tostring(ok), " ", err)
local pcert = require "ngx.ssl.proxysslcert"
local ssl = require "ngx.ssl"
local function slurp(p)
    local f = assert(io.open(p)) local s = f:read("*a") f:close() return s
end
assert(pcert.set_cert(assert(ssl.parse_pem_cert(slurp(ngx.config.prefix() .. "/../cert/dyn.crt")))))
assert(pcert.set_priv_key(assert(ssl.parse_pem_priv_key(slurp(ngx.config.prefix() .. "/../cert/dyn.key")))))
--- request
GET /t
--- response_body
client [CN=dyn.test]
--- error_log
sleep: false API disabled in the context of proxy_ssl_certificate_by_lua*



=== TEST 13: ngx.ssl.verify_client's trusted certificates (third argument) accept the proxy's client certificate
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_certificate_by_lua_block {
            local ssl = require "ngx.ssl"
            local f = assert(io.open("$TEST_NGINX_SERVER_ROOT/../cert/dyn.crt"))
            local pem = f:read("*a") f:close()
            local trusted = assert(ssl.parse_pem_cert(pem))
            if ngx.shared.mode:get("trusted") then
                assert(ssl.verify_client(nil, 2, trusted))
            else
                assert(ssl.verify_client(nil, 2))
            end
        }
        location / {
            content_by_lua_block {
                local ssl = require "ngx.ssl"
                local ciphers = assert(ssl.get_req_shared_ssl_ciphers())
                ngx.say("client ", ngx.var.ssl_client_verify, ", shared ciphers: ", #ciphers > 0)
            }
        }
    }
    lua_shared_dict mode 1m;
--- config
    proxy_ssl_session_reuse off;
    location /t {
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
        proxy_ssl_certificate_by_lua_block {
            local ssl = require "ngx.ssl"
            local pcert = require "ngx.ssl.proxysslcert"
            local function slurp(p)
                local f = assert(io.open(p)) local s = f:read("*a") f:close() return s
            end
            assert(pcert.set_cert(assert(ssl.parse_pem_cert(slurp("$TEST_NGINX_SERVER_ROOT/../cert/dyn.crt")))))
            assert(pcert.set_priv_key(assert(ssl.parse_pem_priv_key(slurp("$TEST_NGINX_SERVER_ROOT/../cert/dyn.key")))))
        }
    }
    location /mode {
        content_by_lua_block { ngx.shared.mode:set("trusted", ngx.var.arg_t == "1") ngx.say("set") }
    }
--- request eval
["GET /mode?t=0", "GET /t", "GET /mode?t=1", "GET /t"]
--- response_body_like eval
["set", "client FAILED:.*, shared ciphers: true", "set", "client SUCCESS, shared ciphers: true"]
