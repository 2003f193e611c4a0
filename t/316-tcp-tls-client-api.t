use Test::Nginx::Socket::Lua;

# The TLS socket methods of lua-nginx-module master: setclientcert,
# settrustedstore, getsslpointer, getsslctx, getsslsession, getfd.
# Certificates: t/cert/mtls-ca.crt signs mtls-server.crt and
# mtls-client.crt; mtls-client2-chain.crt is a client certificate followed
# by the intermediate CA (signed by mtls-ca) that signed it.

repeat_each(2);
no_long_string();

our $MtlsServer = <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/mtls-server.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/mtls-server.key;
        ssl_client_certificate $TEST_NGINX_SERVER_ROOT/../cert/mtls-ca.crt;
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_session_cache shared:MTLS:1m;
        location / { return 200 "client=$ssl_client_s_dn verify=$ssl_client_verify\n"; }
        location /reused { return 200 "reused=$ssl_session_reused\n"; }
    }
    init_by_lua_block {
        local dir = "$TEST_NGINX_SERVER_ROOT/../cert/"
        function _G.read_cert_file(name)
            local f = assert(io.open(dir .. name))
            local data = f:read("*a")
            f:close()
            return data
        end
        -- GET / on a handshaked socket: the body, or the 400 page's reason
        function _G.ask(sock, path)
            assert(sock:send("GET " .. (path or "/") .. " HTTP/1.0\r\nHost: mtls-server.test\r\n\r\n"))
            local resp = assert(sock:receive("*a"))
            local status = resp:match("^HTTP/1%.%d (%d+)")
            local why = resp:match("<center>([^<]*)</center>")
            if status == "200" then
                return resp:match("\r\n\r\n(.*)\n$")
            end
            return status .. " " .. tostring(why)
        end
        -- pcall's results, the error without its position
        function _G.caught(ok, err, ...)
            if not ok and type(err) == "string" then
                err = err:gsub("^[^\n]-:%d+: ", "")
            end
            return ok, err, ...
        end
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->http_config) {
        $block->set_value("http_config", $::MtlsServer);
    }
});

run_tests();

__DATA__

=== TEST 1: setclientcert: the server requiring a client certificate gets it; without one, or after clearing it, it refuses
--- config
    location /t {
        content_by_lua_block {
            local ssl = require "ngx.ssl"
            local chain = assert(ssl.parse_pem_cert(read_cert_file("mtls-client.crt")))
            local key = assert(ssl.parse_pem_priv_key(read_cert_file("mtls-client.key")))

            local sock = ngx.socket.tcp()
            sock:settimeout(3000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say("no cert: ", type(assert(sock:sslhandshake())), " ", ask(sock))

            sock = ngx.socket.tcp()
            sock:settimeout(3000)
            ngx.say("set: ", sock:setclientcert(chain, key))
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say("with cert: ", type(assert(sock:sslhandshake(false))), " ", ask(sock))

            -- the object keeps the certificate for its next handshakes
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:sslhandshake(false))
            ngx.say("again: ", ask(sock))

            ngx.say("cleared: ", sock:setclientcert(nil, nil))
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:sslhandshake(false))
            ngx.say("after clear: ", ask(sock))
        }
    }
--- request
GET /t
--- response_body
no cert: cdata 400 No required SSL certificate was sent
set: true
with cert: boolean client=CN=mtls-client.test,O=ngx-lua-rs tests verify=SUCCESS
again: client=CN=mtls-client.test,O=ngx-lua-rs tests verify=SUCCESS
cleared: true
after clear: 400 No required SSL certificate was sent
--- no_error_log
[error]
[alert]



=== TEST 2: setclientcert sends the intermediate certificates of the chain; the leaf alone does not verify
--- config
    location /t {
        content_by_lua_block {
            local ssl = require "ngx.ssl"
            local pem = read_cert_file("mtls-client2-chain.crt")
            local key = assert(ssl.parse_pem_priv_key(read_cert_file("mtls-client2.key")))
            local leaf_only = pem:match("^(.-%-%-%-%-%-END CERTIFICATE%-%-%-%-%-\n)")
            for _, case in ipairs({ { "chain", pem }, { "leaf", leaf_only } }) do
                local sock = ngx.socket.tcp()
                sock:settimeout(3000)
                assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
                assert(sock:setclientcert(assert(ssl.parse_pem_cert(case[2])), key))
                assert(sock:sslhandshake(false))
                ngx.say(case[1], ": ", ask(sock))
                sock:close()
            end
        }
    }
--- request
GET /t
--- response_body
chain: client=CN=mtls-client2.test,O=ngx-lua-rs tests verify=SUCCESS
leaf: 400 The SSL certificate error
--- no_error_log
[alert]



=== TEST 3: setclientcert argument checks; a key not matching the certificate fails the handshake
--- config
    location /t {
        content_by_lua_block {
            local ssl = require "ngx.ssl"
            local chain = assert(ssl.parse_pem_cert(read_cert_file("mtls-client.crt")))
            local key = assert(ssl.parse_pem_priv_key(read_cert_file("mtls-client.key")))
            local other_key = assert(ssl.parse_pem_priv_key(read_cert_file("mtls-server.key")))
            local sock = ngx.socket.tcp()
            ngx.say(sock:setclientcert("cert", "key"))
            ngx.say(sock:setclientcert(chain, "key"))
            ngx.say(sock:setclientcert(nil, key))
            ngx.say(sock:setclientcert(chain, nil))
            ngx.say(sock:setclientcert(chain, 1))
            ngx.say(sock:setclientcert(false, false))

            assert(sock:setclientcert(chain, other_key))
            sock:settimeout(3000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:sslhandshake())
        }
    }
--- request
GET /t
--- response_body
nilbad cert arg: cdata expected, got string
nilbad pkey arg: cdata expected, got string
nilclient certificate must be supplied with corresponding private key
nilclient certificate must be supplied with corresponding private key
nilbad pkey arg: cdata expected, got number
true
nilssl set client private key failed
--- no_error_log
[alert]



=== TEST 4: settrustedstore: the store verifies the server in place of lua_ssl_trusted_certificate, for one handshake
--- http_config eval
$::MtlsServer . <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/mtls-server.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/mtls-server.key;
        location / { return 200 "plain tls\n"; }
    }
    init_worker_by_lua_block {
        local ffi = require "ffi"
        ffi.cdef [[
            typedef struct x509_store_st X509_STORE;
            X509_STORE *X509_STORE_new(void);
            void X509_STORE_free(X509_STORE *st);
            int X509_STORE_add_cert(X509_STORE *st, void *x);
            void *BIO_new_mem_buf(const void *buf, int len);
            int BIO_free(void *b);
            void *PEM_read_bio_X509(void *bp, void *x, void *cb, void *u);
            void X509_free(void *x);
        ]]
        local C = ffi.C
        function _G.store_of(pem)
            local bio = C.BIO_new_mem_buf(pem, #pem)
            local x = C.PEM_read_bio_X509(bio, nil, nil, nil)
            C.BIO_free(bio)
            assert(x ~= nil)
            local st = ffi.gc(C.X509_STORE_new(), C.X509_STORE_free)
            assert(C.X509_STORE_add_cert(st, x) == 1)
            C.X509_free(x)
            return st
        end
    }
_EOC_
--- config
    lua_ssl_trusted_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
    location /t {
        content_by_lua_block {
            local port = $TEST_NGINX_RAND_PORT_2
            local sock = ngx.socket.tcp()
            sock:settimeout(3000)
            assert(sock:connect("127.0.0.1", port))
            ngx.say("configured CA only: ", select(2, sock:sslhandshake(nil, "mtls-server.test", true)))

            assert(sock:connect("127.0.0.1", port))
            local st = store_of(read_cert_file("mtls-ca.crt"))
            ngx.say("set: ", sock:settrustedstore(st))
            st = nil
            collectgarbage()
            ngx.say("with store: ", type(sock:sslhandshake(nil, "mtls-server.test", true)), " ", ask(sock))

            -- used by one handshake only
            assert(sock:connect("127.0.0.1", port))
            ngx.say("next handshake: ", select(2, sock:sslhandshake(nil, "mtls-server.test", true)))

            assert(sock:connect("127.0.0.1", port))
            assert(sock:settrustedstore(store_of(read_cert_file("test.crt"))))
            ngx.say("wrong CA: ", select(2, sock:sslhandshake(nil, "mtls-server.test", true)))

            -- nil clears it
            assert(sock:connect("127.0.0.1", port))
            assert(sock:settrustedstore(store_of(read_cert_file("mtls-ca.crt"))))
            ngx.say("cleared: ", sock:settrustedstore(nil))
            ngx.say("after clear: ", select(2, sock:sslhandshake(nil, "mtls-server.test", true)))
        }
    }
--- request
GET /t
--- response_body
configured CA only: 21: unable to verify the first certificate
set: true
with store: cdata plain tls
next handshake: 21: unable to verify the first certificate
wrong CA: 21: unable to verify the first certificate
cleared: true
after clear: 21: unable to verify the first certificate
--- error_log
lua ssl certificate verify error: (21: unable to verify the first certificate)
--- no_error_log
[alert]



=== TEST 5: settrustedstore checks: argument type, connection state, after the handshake
--- config
    location /t {
        content_by_lua_block {
            local ffi = require "ffi"
            local sock = ngx.socket.tcp()
            ngx.say(sock:settrustedstore("store"))
            ngx.say(caught(pcall(sock.settrustedstore, sock, nil)))
            sock:settimeout(3000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:settrustedstore(ffi.cast("void *", nil)))
            assert(sock:sslhandshake())
            ngx.say(sock:settrustedstore(nil))
            sock:close()
            ngx.say(sock:settrustedstore(nil))
        }
    }
--- request
GET /t
--- response_body
nilbad store arg: cdata expected, got string
falsesocket is never created nor connected
true
nilssl handshake already done; trusted store cannot be changed on an established TLS connection
nilclosed
--- no_error_log
[alert]



=== TEST 6: getsslpointer, getsslctx: OpenSSL's objects of the connection, usable through the FFI
--- config
    lua_ssl_protocols TLSv1.2;
    location /t {
        content_by_lua_block {
            local ffi = require "ffi"
            -- declared once per VM (a second cdef of a function raises)
            pcall(ffi.cdef, [[
                const char *SSL_get_version(const void *ssl);
                void *SSL_get_SSL_CTX(const void *ssl);
            ]])
            local sock = ngx.socket.tcp()
            ngx.say(caught(pcall(sock.getsslpointer, sock)))
            ngx.say(caught(pcall(sock.getsslctx, sock)))
            sock:settimeout(3000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:getsslpointer())
            ngx.say(sock:getsslctx())
            assert(sock:sslhandshake())
            local ssl = assert(sock:getsslpointer())
            local ctx = assert(sock:getsslctx())
            ngx.say(type(ssl), " ", type(ctx))
            ngx.say(ffi.string(ffi.C.SSL_get_version(ssl)))
            ngx.say("same ctx: ", ffi.C.SSL_get_SSL_CTX(ssl) == ctx)
            ngx.say(ask(sock))
            sock:close()
            ngx.say(sock:getsslpointer())
            ngx.say(sock:getsslctx())
            ngx.say(caught(pcall(sock.getsslpointer)))
        }
    }
--- request
GET /t
--- response_body
falsesocket is never created nor connected
falsesocket is never created nor connected
nilno ssl connection
nilno ssl context
cdata cdata
TLSv1.2
same ctx: true
400 No required SSL certificate was sent
nilclosed
nilclosed
falsengx.socket getfd: expecting the cosocket object, but seen none
--- no_error_log
[alert]



=== TEST 7: getsslsession: a session that resumes a later handshake
--- config
    lua_ssl_protocols TLSv1.2;
    location /t {
        content_by_lua_block {
            local ssl = require "ngx.ssl"
            local chain = assert(ssl.parse_pem_cert(read_cert_file("mtls-client.crt")))
            local key = assert(ssl.parse_pem_priv_key(read_cert_file("mtls-client.key")))
            local function connect()
                local sock = ngx.socket.tcp()
                sock:settimeout(3000)
                assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
                assert(sock:setclientcert(chain, key))
                return sock
            end
            local sock = connect()
            ngx.say("plain: ", sock:getsslsession())
            assert(sock:sslhandshake(false))
            local sess = assert(sock:getsslsession())
            ngx.say(type(sess))
            ngx.say(ask(sock))
            sock:close()
            ngx.say("closed: ", sock:getsslsession())

            sock = connect()
            assert(sock:sslhandshake(sess))
            ngx.say("given: ", ask(sock, "/reused"))
            sock = connect()
            assert(sock:sslhandshake())
            ngx.say("not given: ", ask(sock, "/reused"))
        }
    }
--- request
GET /t
--- response_body
plain: nilno session
cdata
client=CN=mtls-client.test,O=ngx-lua-rs tests verify=SUCCESS
closed: nilclosed
given: reused=r
not given: reused=.
--- no_error_log
[alert]



=== TEST 8: getfd: the connection's descriptor (writing to it reaches the peer); request sockets have it too
--- config
    location /t {
        content_by_lua_block {
            local ffi = require "ffi"
            pcall(ffi.cdef, "long write(int fd, const void *buf, unsigned long n);")
            local sock = ngx.socket.tcp()
            ngx.say(caught(pcall(sock.getfd, sock)))
            sock:settimeout(3000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            local fd = assert(sock:getfd())
            ngx.say(type(fd), " ", fd > 2)
            local req = "GET /echo HTTP/1.0\r\nHost: x\r\n\r\n"
            ngx.say(tonumber(ffi.C.write(fd, req, #req)) == #req)
            ngx.say(sock:receive("*a"):match("from the fd$"))
            sock:close()
            ngx.say(sock:getfd())
        }
    }
    location = /echo {
        return 200 "from the fd";
    }
    location = /req {
        content_by_lua_block {
            local rs = assert(ngx.req.socket())
            local fd = rs:getfd()
            ngx.say(type(fd), " ", fd > 2)
        }
    }
--- request eval
["GET /t", "POST /req\nhello"]
--- response_body eval
["falsesocket is never created nor connected\nnumber true\ntrue\nfrom the fd\nnilclosed\n", "number true\n"]
--- no_error_log
[error]



=== TEST 9: cdata that ngx.ssl did not make is refused, not handed to OpenSSL
--- config
    location /t {
        content_by_lua_block {
            local ffi = require "ffi"
            local ssl = require "ngx.ssl"
            local junk = ffi.new("char[?]", 8)
            local sock = ngx.socket.tcp()
            ngx.say(sock:setclientcert(junk, junk))
            local f = assert(io.open(ngx.config.prefix() .. "../cert/mtls-client.crt"))
            local pem = f:read("*a")
            f:close()
            local cert = assert(ssl.parse_pem_cert(pem))
            ngx.say(sock:setclientcert(cert, cert))
            ngx.say(sock:settrustedstore(junk))
        }
    }
--- request
GET /t
--- response_body
nilbad cert arg: not a certificate chain from parse_pem_cert or parse_der_cert
nilbad pkey arg: not a private key from parse_pem_priv_key or parse_der_priv_key
nilbad store arg: X509_STORE * expected, got ctype<char [?]>
--- no_error_log
[error]
