use Test::Nginx::Socket::Lua;

# ngx.ocsp over t/cert/ocsp-*: a leaf (ocsp.test) whose certificate names
# an OCSP responder, its CA, and a "good" response the CA signed
# (openssl ocsp, valid for a century).

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: responder, request and response checks on a DER chain
--- config
    location /t {
        content_by_lua_block {
            local ssl = require "ngx.ssl"
            local ocsp = require "ngx.ocsp"
            local function slurp(name)
                local f = assert(io.open("$TEST_NGINX_SERVER_ROOT/../cert/" .. name, "rb"))
                local s = f:read("*a") f:close() return s
            end
            local leaf = assert(ssl.cert_pem_to_der(slurp("ocsp-leaf.crt")))
            local chain = assert(ssl.cert_pem_to_der(slurp("ocsp-leaf.crt") .. slurp("ocsp-ca.crt")))
            ngx.say("chain longer than leaf: ", #chain > #leaf)
            ngx.say("responder: ", ocsp.get_ocsp_responder_from_der_chain(chain))
            ngx.say("short buffer: ", table.concat({ocsp.get_ocsp_responder_from_der_chain(chain, 10)}, " "))
            ngx.say("leaf only: ", select(2, ocsp.get_ocsp_responder_from_der_chain(leaf)))
            ngx.say("no responder: ", ocsp.get_ocsp_responder_from_der_chain(assert(ssl.cert_pem_to_der(slurp("dyn.crt")))))
            local req = assert(ocsp.create_ocsp_request(chain))
            ngx.say("request: ", req:byte(1) == 0x30, " ", #req > 50)
            ngx.say("request buffer: ", (select(2, ocsp.create_ocsp_request(chain, 10)):gsub("%d+ >", "N >")))
            ngx.say("request without issuer: ", select(2, ocsp.create_ocsp_request(leaf)))
            local resp = slurp("ocsp-resp.der")
            ngx.say("valid: ", ocsp.validate_ocsp_response(resp, chain))
            ngx.say("garbage: ", select(2, ocsp.validate_ocsp_response("garbage", chain)))
            ngx.say("other issuer: ", select(2, ocsp.validate_ocsp_response(resp,
                leaf .. assert(ssl.cert_pem_to_der(slurp("dyn.crt"))))))
            ngx.say("short errbuf: ", select(2, ocsp.validate_ocsp_response("garbage", chain, 6)))
            ngx.say("bad chain: ", select(2, ocsp.validate_ocsp_response(resp, "x")))
        }
    }
--- request
GET /t
--- response_body
chain longer than leaf: true
responder: http://127.0.0.1:1/ocsp
short buffer: http://127 truncated
leaf only: no issuer certificate in chain
no responder: nil
request: true true
request buffer: output buffer too small: N > 10
request without issuer: no issuer certificate in chain
valid: true
garbage: d2i_OCSP_RESPONSE() failed
other issuer: certificate status not found in the OCSP response
short errbuf: d2i_OC
bad chain: d2i_X509_bio() failed
--- no_error_log
[error]



=== TEST 2: set_ocsp_status_resp in the handshake, when the client asked for no status, and outside one
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_certificate_by_lua_block {
            local ocsp = require "ngx.ocsp"
            ngx.log(ngx.WARN, "staple: ", table.concat({tostring(ocsp.set_ocsp_status_resp("resp"))}, " "),
                    " ", select(2, ocsp.set_ocsp_status_resp("resp")))
        }
    }
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(type(sock:sslhandshake(nil, "x.test", false)))
            ngx.say(require("ngx.ocsp").set_ocsp_status_resp("x"))
        }
    }
--- request
GET /t
--- response_body
cdata
nilbad request
--- error_log
staple: true no status req



=== TEST 3: set_ocsp_status_resp staples the response for a client that asks (openssl s_client -status, run through ngx.pipe)
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_certificate_by_lua_block {
            local ssl = require "ngx.ssl"
            local ocsp = require "ngx.ocsp"
            local function slurp(name)
                local f = assert(io.open("$TEST_NGINX_SERVER_ROOT/../cert/" .. name, "rb"))
                local s = f:read("*a") f:close() return s
            end
            assert(ssl.clear_certs())
            assert(ssl.set_der_cert(assert(ssl.cert_pem_to_der(slurp("ocsp-leaf.crt") .. slurp("ocsp-ca.crt")))))
            assert(ssl.set_der_priv_key(assert(ssl.priv_key_pem_to_der(slurp("ocsp-leaf.key")))))
            if ngx.shared.mode:get("staple") then
                ngx.log(ngx.WARN, "staple: ", tostring(ocsp.set_ocsp_status_resp(slurp("ocsp-resp.der"))))
            end
        }
    }
    lua_shared_dict mode 1m;
--- config
    location /t {
        content_by_lua_block {
            ngx.shared.mode:set("staple", ngx.var.arg_staple == "1")
            local proc = assert(require("ngx.pipe").spawn({"openssl", "s_client", "-connect",
                "127.0.0.1:$TEST_NGINX_RAND_PORT_1", "-servername", "ocsp.test", "-status"},
                {merge_stderr = true}))
            proc:set_timeouts(5000, 5000, 5000, 10000)
            assert(proc:shutdown("stdin"))
            local out = proc:stdout_read_all() or ""
            proc:wait()
            ngx.say("response status: ", out:match("OCSP Response Status: (%a+)") or "none")
            ngx.say("cert status: ", out:match("Cert Status: (%a+)") or "none")
            ngx.say("no response: ", out:find("OCSP response: no response sent", 1, true) ~= nil)
        }
    }
--- request eval
["GET /t?staple=1", "GET /t?staple=0"]
--- response_body eval
["response status: successful\ncert status: good\nno response: false\n",
 "response status: none\ncert status: none\nno response: true\n"]
--- error_log
staple: true
