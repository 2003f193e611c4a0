use Test::Nginx::Socket::Lua;

repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: every public field of lua-resty-core 0.1.25's modules exists, with the right type
--- config
    location /t {
        content_by_lua_block {
            -- The fields the installed lua-resty-core 0.1.25 exports
            -- (module tables and the ngx.* functions it defines).
            local api = {
                ["resty.core"] = "version",
                ["resty.core.base"] = "version new_tab clear_tab get_errmsg_ptr set_string_buf_size "
                    .. "get_string_buf_size get_size_ptr get_string_buf ref_in_table allows_subsystem "
                    .. "get_request FFI_OK FFI_NO_REQ_CTX FFI_BAD_CONTEXT FFI_ERROR FFI_AGAIN FFI_BUSY "
                    .. "FFI_DONE FFI_DECLINED",
                ["resty.core.base64"] = "version",
                ["resty.core.coroutine"] = "version",
                ["resty.core.ctx"] = "_VERSION get_ctx_table",
                ["resty.core.exit"] = "version",
                ["resty.core.hash"] = "version",
                ["resty.core.misc"] = "_VERSION register_ngx_magic_key_getter register_ngx_magic_key_setter",
                ["resty.core.ndk"] = "version",
                ["resty.core.param"] = "version",
                ["resty.core.phase"] = "version",
                ["resty.core.regex"] = "version set_buf_grow_ratio is_regex_cache_empty collect_captures "
                    .. "destroy_compiled_regex re_match_compile check_buf_size re_sub_compile",
                ["resty.core.request"] = "version set_req_header",
                ["resty.core.response"] = "version set_resp_header",
                ["resty.core.shdict"] = "version",
                ["resty.core.socket"] = "version",
                ["resty.core.time"] = "version monotonic_msec monotonic_time",
                ["resty.core.uri"] = "version",
                ["resty.core.utils"] = "version str_replace_char",
                ["resty.core.var"] = "version",
                ["resty.core.worker"] = "_VERSION",
                ["ngx.balancer"] = "version set_current_peer set_more_tries get_last_failure set_timeouts "
                    .. "recreate_request",
                ["ngx.base64"] = "version encode_base64url decode_base64url",
                ["ngx.errlog"] = "version set_filter_level get_logs get_sys_filter_level raw_log",
                ["ngx.ocsp"] = "version get_ocsp_responder_from_der_chain create_ocsp_request "
                    .. "validate_ocsp_response set_ocsp_status_resp",
                ["ngx.pipe"] = "version spawn",
                ["ngx.process"] = "version type enable_privileged_agent signal_graceful_exit get_master_pid",
                ["ngx.re"] = "version split opt",
                ["ngx.req"] = "version add_header",
                ["ngx.resp"] = "version add_header",
                ["ngx.semaphore"] = "version new wait post count",
                ["ngx.ssl"] = "version clear_certs set_der_cert set_der_priv_key raw_server_addr server_port "
                    .. "server_name raw_client_addr cert_pem_to_der priv_key_pem_to_der get_tls1_version "
                    .. "parse_pem_cert parse_pem_priv_key set_cert set_priv_key verify_client "
                    .. "get_tls1_version_str SSL3_VERSION TLS1_VERSION TLS1_1_VERSION TLS1_2_VERSION "
                    .. "TLS1_3_VERSION",
                ["ngx.ssl.clienthello"] = "version get_client_hello_server_name get_client_hello_ext "
                    .. "get_supported_versions set_protocols",
                ["ngx.ssl.session"] = "version get_serialized_session get_session_id set_serialized_session",
            }
            local ngx_functions = "get_raw_phase get_phase exit log now time update_time today localtime "
                .. "utctime cookie_time http_time parse_http_time escape_uri unescape_uri encode_base64 "
                .. "decode_base64 md5 md5_bin sha1_bin crc32_short crc32_long re.match re.find re.gmatch "
                .. "re.sub re.gsub req.start_time req.get_headers req.get_uri_args req.get_method "
                .. "req.set_method req.set_header req.clear_header req.is_internal worker.exiting "
                .. "worker.pid worker.pids worker.id worker.count"

            local function expected_type(field)
                if field == "version" or field == "_VERSION" then
                    return "string"
                elseif field:find("^[A-Z0-9_]+$") then
                    return "number"
                end
                return "function"
            end

            local names = {}
            for name in pairs(api) do names[#names + 1] = name end
            table.sort(names)
            local fields, bad = 0, {}
            for _, name in ipairs(names) do
                local ok, mod = pcall(require, name)
                if not ok or type(mod) ~= "table" then
                    bad[#bad + 1] = name .. ": " .. tostring(mod)
                else
                    for field in api[name]:gmatch("%S+") do
                        fields = fields + 1
                        local v = rawget(mod, field)
                        if type(v) ~= expected_type(field) then
                            bad[#bad + 1] = name .. "." .. field .. " is " .. type(v)
                        end
                    end
                end
            end
            for path in ngx_functions:gmatch("%S+") do
                fields = fields + 1
                local v = ngx
                for part in path:gmatch("[^.]+") do v = v[part] end
                if type(v) ~= "function" then
                    bad[#bad + 1] = "ngx." .. path .. " is " .. type(v)
                end
            end
            ngx.say(#names, " modules, ", fields, " fields")
            ngx.say("problems: ", #bad == 0 and "none" or table.concat(bad, "; "))
        }
    }
--- request
GET /t
--- response_body
34 modules, 163 fields
problems: none
--- no_error_log
[error]



=== TEST 2: resty.core loads every submodule; require "ngx" and "ndk" give the globals
--- http_config
    init_by_lua_block {
        local core = require "resty.core"
        INIT_VERSION = core.version
    }
--- config
    location /t {
        content_by_lua_block {
            ngx.say(INIT_VERSION, " ", require("resty.core.base").version)
            for _, m in ipairs({ "var", "worker", "regex", "shdict", "time", "hash", "uri", "exit",
                                 "base64", "request", "response", "phase", "ndk", "socket",
                                 "coroutine", "param", "misc", "ctx" }) do
                if not package.loaded["resty.core." .. m] then
                    ngx.say("not loaded: ", m)
                end
            end
            ngx.say(require("ngx") == ngx, " ", require("ndk") == ndk, " ", type(ndk))
            local ok, err = pcall(function() return ndk.set_var.set_unescape_uri end)
            ngx.say(ok, " ", err)
        }
    }
--- request
GET /t
--- response_body_like chomp
\A0\.1\.25 0\.1\.25
true true table
false .*ndk\.set_var: directive "set_unescape_uri" not found or does not use ndk_set_var_value
\z
--- no_error_log
[error]



=== TEST 3: resty.core.base: constants, tables, refs, subsystem, FFI buffers
--- config
    location /t {
        content_by_lua_block {
            local ffi = require "ffi"
            local base = require "resty.core.base"
            ngx.say(base.FFI_OK, " ", base.FFI_ERROR, " ", base.FFI_AGAIN, " ", base.FFI_BUSY, " ",
                    base.FFI_DONE, " ", base.FFI_DECLINED, " ", base.FFI_NO_REQ_CTX, " ",
                    base.FFI_BAD_CONTEXT)

            local t = base.new_tab(4, 4)
            t[1], t.x = "a", "b"
            base.clear_tab(t)
            ngx.say("cleared: ", next(t) == nil)

            -- refs: appended, then reused from the free list headed by t[0]
            local refs = {}
            ngx.say(base.ref_in_table(refs, "a"), " ", base.ref_in_table(refs, "b"), " ",
                    base.ref_in_table(refs, nil))
            refs[0], refs[1] = 1, 0          -- free slot 1
            ngx.say(base.ref_in_table(refs, "c"), " ", refs[1], " ", refs[0])
            ngx.say(base.ref_in_table(refs, "d"), " ", #refs)

            ngx.say(select("#", base.allows_subsystem("stream", "http")))
            ngx.say(pcall(base.allows_subsystem, "stream"))

            local size = base.get_string_buf_size()
            local b1, b2 = base.get_string_buf(16), base.get_string_buf(size)
            ngx.say(size, " ", b1 == b2, " ", b1 == base.get_string_buf(16, true),
                    " ", b1 == base.get_string_buf(size + 1))
            ffi.copy(b1, "hello", 5)
            ngx.say(ffi.string(b2, 5))
            base.set_string_buf_size(10.5)
            ngx.say(base.get_string_buf_size(), " ", base.get_string_buf(5) == b1)
            base.set_string_buf_size(0)
            ngx.say(base.get_string_buf_size())
            base.set_string_buf_size(4096)

            local sp, ep = base.get_size_ptr(), base.get_errmsg_ptr()
            ngx.say(sp == base.get_size_ptr(), " ", ffi.sizeof(sp), " ", ep == base.get_errmsg_ptr(),
                    " ", ffi.sizeof(ep))
            sp[0] = 7
            ngx.say(tonumber(base.get_size_ptr()[0]))
            local s = ffi.new("ngx_str_t", { len = 2, data = "ok" })
            ngx.say(ffi.string(s.data, s.len), " ", ffi.sizeof("ngx_http_lua_ffi_str_t") > 0)
        }
    }
--- request
GET /t
--- response_body_like chomp
\A0 -1 -2 -3 -4 -5 -100 -101
cleared: true
1 2 -1
1 c 0
3 3
0
falseunsupported subsystem: http
4096 true false false
hello
11 false
11
true 8 true 8
7
ok true
\z
--- no_error_log
[error]



=== TEST 4: get_request: nil outside requests (init, init_worker), set in requests and timers
--- http_config
    lua_shared_dict seen 64k;
    init_by_lua_block {
        local base = require "resty.core.base"
        INIT_REQ = select("#", base.get_request()) .. " " .. type((base.get_request()))
    }
    init_worker_by_lua_block {
        local base = require "resty.core.base"
        local seen = ngx.shared.seen
        seen:set("init_worker", type((base.get_request())))
        ngx.timer.at(0, function()
            seen:set("timer", type(base.get_request()))
        end)
    }
--- config
    location /t {
        log_by_lua_block {
            ngx.shared.seen:set("log", type((require("resty.core.base").get_request())))
        }
        content_by_lua_block {
            ngx.sleep(0.05)
            local seen = ngx.shared.seen
            local base = require "resty.core.base"
            ngx.say("init ", INIT_REQ)
            ngx.say("init_worker ", seen:get("init_worker"))
            ngx.say("timer ", seen:get("timer"))
            local r = base.get_request()
            ngx.say("content ", type(r), " ", r == base.get_request())
            ngx.say("log (previous request) ", seen:get("log"))
        }
    }
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["init 0 nil\ninit_worker nil\ntimer userdata\ncontent userdata true\nlog (previous request) nil\n",
 "init 0 nil\ninit_worker nil\ntimer userdata\ncontent userdata true\nlog (previous request) userdata\n"]
--- no_error_log
[error]



=== TEST 5: resty.core.ctx.get_ctx_table is ngx.ctx; a request without one adopts the table given
--- config
    location /t {
        content_by_lua_block {
            local get_ctx_table = require("resty.core.ctx").get_ctx_table
            local mine = { from = "caller" }
            local ctx = get_ctx_table(mine)
            ngx.say(ctx == mine, " ", ngx.ctx == mine, " ", ngx.ctx.from)
            ngx.say(get_ctx_table({}) == mine, " ", get_ctx_table() == mine)
            ngx.ctx = { other = true }
            ngx.say(get_ctx_table().other)
        }
    }
    location /plain {
        content_by_lua_block {
            local get_ctx_table = require("resty.core.ctx").get_ctx_table
            ngx.ctx.n = 3
            ngx.say(get_ctx_table().n, " ", get_ctx_table() == ngx.ctx)
        }
    }
--- request eval
["GET /t", "GET /plain"]
--- response_body eval
["true true caller\ntrue true\ntrue\n", "3 true\n"]
--- no_error_log
[error]



=== TEST 6: resty.core.misc registers magic ngx keys ahead of the built-in ones
--- config
    location /t {
        content_by_lua_block {
            local misc = require "resty.core.misc"
            local out = {}
            local function say(...) out[#out + 1] = table.concat({ ... }, " ") end
            say(tostring(ngx.answer), ngx.status)
            local stored
            misc.register_ngx_magic_key_getter("answer", function() return 42 end)
            misc.register_ngx_magic_key_setter("answer", function(v) stored = v end)
            ngx.answer = "set"
            say(ngx.answer, stored, tostring(rawget(ngx, "answer")))
            -- built-in keys still work through the wrapped metatable
            ngx.status = 201
            ngx.ctx.k = "v"
            say(ngx.status, ngx.ctx.k, tostring(ngx.headers_sent))
            ngx.plain_field = 1
            say(rawget(ngx, "plain_field"))
            ngx.plain_field = nil
            misc.register_ngx_magic_key_getter("status", function() return 999 end)
            say(ngx.status)
            ngx.say(table.concat(out, "\n"))
        }
    }
--- request
GET /t
--- response_body
nil 0
42 set nil
201 v false
1
999
--- error_code: 201
--- no_error_log
[error]



=== TEST 7: resty.core.time: nginx's cached monotonic clock
--- config
    location /t {
        content_by_lua_block {
            local time = require "resty.core.time"
            local m1 = time.monotonic_msec()
            ngx.say(m1 == math.floor(m1), " ", m1 > 0, " ", time.monotonic_time() == m1 / 1000)
            ngx.sleep(0.05)
            local m2 = time.monotonic_msec()
            ngx.say(m2 - m1 >= 40, " ", m2 - m1 < 5000)
            os.execute("sleep 0.03")
            ngx.say(time.monotonic_msec() == m2)
            ngx.update_time()
            ngx.say(time.monotonic_msec() - m2 >= 20)
        }
    }
--- request
GET /t
--- response_body
true true true
true true
true
true
--- no_error_log
[error]



=== TEST 8: resty.core.utils.str_replace_char
--- config
    location /t {
        content_by_lua_block {
            local rc = require("resty.core.utils").str_replace_char
            ngx.say(rc("x_forwarded_for", "_", "-"))
            ngx.say(rc("a.b.c", ".", "%"))
            ngx.say(rc("banana", "a", "o"))
            local s = "untouched"
            ngx.say(rc(s, "#", "-") == s)
        }
    }
--- request
GET /t
--- response_body
x-forwarded-for
a%b%c
bonono
true
--- no_error_log
[error]



=== TEST 9: ngx.req's add_header and resty.core.request.set_req_header
--- config
    location /t {
        rewrite_by_lua_block {
            local req = require "ngx.req"
            req.add_header("X-Multi", "one")
            req.add_header("X-Multi", { "two", 3 })
            req.add_header("Host", "first.example")
            req.add_header("Host", { "a.example", "second.example" })
            require("resty.core.request").set_req_header("X-Set", "v", true)
            require("resty.core.request").set_req_header("X-Gone", nil, true)
        }
        content_by_lua_block {
            local h = ngx.req.get_headers()
            -- $http_x_multi: the first header before nginx 1.23, all joined since
            local joined = ngx.config.nginx_version >= 1023000
            ngx.say(table.concat(h["x-multi"], ","), " ", ngx.var.http_x_multi == (joined and "one, two, 3" or "one"))
            ngx.say(h.host, " ", ngx.var.host, " ", h["x-set"], " ", tostring(h["x-gone"]))
            local req = require "ngx.req"
            for _, args in ipairs({ { "X-A", {} }, { "X-A" }, { nil, "v" } }) do
                local ok, err = pcall(req.add_header, args[1], args[2])
                ngx.say(ok, " ", err)
            end
        }
    }
--- request
GET /t
--- more_headers
X-Gone: soon
--- response_body
one,two,3 true
second.example second.example v nil
false bad 'value' argument: non-empty table expected
false bad 'value' argument: string or table expected, got nil
false bad 'name' argument: string expected, got nil
--- no_error_log
[error]



=== TEST 10: headers added with ngx.req's add_header reach the upstream
--- config
    location /t {
        rewrite_by_lua_block {
            require("ngx.req").add_header("X-Added", "1")
            require("ngx.req").add_header("X-Added", "2")
        }
        proxy_pass http://127.0.0.1:$server_port/echo;
    }
    location /echo {
        content_by_lua_block {
            ngx.say(table.concat(ngx.req.get_headers()["x-added"], " "))
        }
    }
--- request
GET /t
--- response_body
1 2
--- no_error_log
[error]



=== TEST 11: add_header works in header filters and is refused in timers
--- config
    location /t {
        header_filter_by_lua_block {
            require("ngx.req").add_header("X-Late", "1")
            ngx.header["X-Seen"] = ngx.req.get_headers()["x-late"]
        }
        content_by_lua_block {
            ngx.timer.at(0, function()
                local ok, err = pcall(require("ngx.req").add_header, "X-Timer", "1")
                ngx.log(ngx.WARN, "timer add: ", ok, " ", err)
            end)
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_headers
X-Seen: 1
--- response_body
ok
--- error_log
timer add: false API disabled in the



=== TEST 12: resty.core.response.set_resp_header sets, adds and clears
--- config
    location /t {
        content_by_lua_block {
            local set = require("resty.core.response").set_resp_header
            set(nil, "X-R", "a")
            set(nil, "X-R", "b", true)
            set(nil, "X-R", {}, true)
            set(nil, "X-Gone", "x")
            set(nil, "X-Gone", nil)
            local ok, err = pcall(set, nil, "X-R", nil, true)
            ngx.say(table.concat(ngx.header["X-R"], ","), " ", tostring(ngx.header["X-Gone"]), " ", ok, " ", err)
        }
    }
--- request
GET /t
--- response_headers
X-Gone:
--- response_body_like chomp
\Aa,b nil false content_by_lua\(nginx\.conf:\d+\):\d+: invalid header value
\z
--- no_error_log
[error]



=== TEST 13: resty.core.regex: the regex cache flag, FFI buffer growth, and the cdata helpers raise
--- config
    location /t {
        content_by_lua_block {
            local ffi = require "ffi"
            local regex = require "resty.core.regex"
            ngx.say(regex.is_regex_cache_empty())
            ngx.re.find("abc", "b", "jo")
            ngx.say(regex.is_regex_cache_empty())

            local buf = ffi.new("char[4]")
            ffi.copy(buf, "xyz", 3)
            local nbuf, size, pos, len = regex.check_buf_size(buf, 4, buf + 3, 3, 10)
            ngx.say(size, " ", len, " ", nbuf ~= buf, " ", pos == nbuf + 3, " ", ffi.string(nbuf, 3))
            regex.set_buf_grow_ratio(4)
            local _, size2 = regex.check_buf_size(buf, 4, buf + 3, 3, 10)
            local same, size3 = regex.check_buf_size(buf, 4, buf + 3, 3, 4)
            ngx.say(size2, " ", size3, " ", same == buf)
            regex.set_buf_grow_ratio(2)

            for _, f in ipairs({ "re_match_compile", "re_sub_compile", "collect_captures",
                                 "destroy_compiled_regex" }) do
                local ok, err = pcall(regex[f], "a")
                ngx.say(ok, " ", err)
            end
        }
    }
--- request
GET /t
--- response_body
true
false
10 10 true true xyz
16 4 true
false resty.core.regex.re_match_compile is not implemented yet by this ngx_http_lua_module
false resty.core.regex.re_sub_compile is not implemented yet by this ngx_http_lua_module
false resty.core.regex.collect_captures is not implemented yet by this ngx_http_lua_module
false resty.core.regex.destroy_compiled_regex is not implemented yet by this ngx_http_lua_module
--- no_error_log
[error]



=== TEST 14: ngx.get_raw_phase gives lua-nginx-module's context bits
--- config
    location /t {
        rewrite_by_lua_block {
            ngx.ctx.rewrite = ngx.get_raw_phase(require("resty.core.base").get_request())
        }
        access_by_lua_block {
            ngx.ctx.access = ngx.get_raw_phase(require("resty.core.base").get_request())
        }
        header_filter_by_lua_block {
            ngx.header["X-Raw"] = ngx.get_raw_phase(require("resty.core.base").get_request())
        }
        content_by_lua_block {
            local base = require "resty.core.base"
            ngx.say(ngx.ctx.rewrite, " ", ngx.ctx.access, " ", ngx.get_raw_phase(base.get_request()))
        }
    }
--- request
GET /t
--- response_headers
X-Raw: 32
--- response_body
2 4 8
--- no_error_log
[error]



=== TEST 15: ngx.process: type and master pid
--- http_config
    init_by_lua_block {
        INIT_TYPE = require("ngx.process").type()
        INIT_AGENT = { require("ngx.process").enable_privileged_agent() }
    }
--- config
    location /t {
        content_by_lua_block {
            local process = require "ngx.process"
            local f = assert(io.open(ngx.config.prefix() .. "logs/nginx.pid"))
            local master = tonumber(f:read("*l"))
            f:close()
            ngx.say(INIT_TYPE, " ", process.type())
            ngx.say(process.get_master_pid() == master, " ", master ~= ngx.worker.pid())
            ngx.say(process.enable_privileged_agent(1))
            ngx.say(INIT_AGENT[1], " ", INIT_AGENT[2])
        }
    }
--- request
GET /t
--- response_body
master worker
true true
nilAPI disabled in the current context
nil missing privileged agent process patch in the nginx core
--- no_error_log
[error]



=== TEST 16: ngx.process.signal_graceful_exit makes the worker leave gracefully; the master replaces it
--- http_config
    lua_shared_dict pids 64k;
--- config
    location /t {
        content_by_lua_block {
            local pids = ngx.shared.pids
            local first = pids:get("first")
            if not first then
                pids:set("first", ngx.worker.pid())
                require("ngx.process").signal_graceful_exit()
                ngx.say("signalled")
                return
            end
            ngx.say(first ~= ngx.worker.pid())
        }
    }
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["signalled\n", "true\n"]
--- wait: 0.2
--- error_log
gracefully shutting down
--- no_error_log
[error]



=== TEST 17: ngx.errlog: raw_log writes the message as given; the system filter level; no capture without lua_capture_error_log
--- config
    location /t {
        content_by_lua_block {
            local errlog = require "ngx.errlog"
            errlog.raw_log(ngx.WARN, "raw message without a source position")
            errlog.raw_log(ngx.INFO, "info line")
            ngx.say(errlog.get_sys_filter_level() == ngx.DEBUG)
            for _, args in ipairs({ { 99, "x" }, { "warn", "x" }, { ngx.ERR } }) do
                local ok, err = pcall(errlog.raw_log, args[1], args[2])
                ngx.say(ok, " ", err)
            end
            for _, f in ipairs({ "get_logs", "set_filter_level" }) do
                local ok, res, err = pcall(errlog[f], ngx.ERR)
                ngx.say(ok, " ", res, " ", err)
            end
        }
    }
    location /quiet {
        error_log logs/quiet.log warn;
        content_by_lua_block {
            local errlog = require "ngx.errlog"
            ngx.say(errlog.get_sys_filter_level() == ngx.WARN)
        }
    }
--- request eval
["GET /t", "GET /quiet"]
--- response_body eval
["true
false bad log level
false bad argument #1 to 'raw_log' (must be a number)
false bad argument #2 to 'raw_log' (must be a string)
true nil directive \"lua_capture_error_log\" is not set
true nil directive \"lua_capture_error_log\" is not set
", "true\n"]
--- error_log eval
[qr/\[warn\] \d+#\d+: \*\d+ raw message without a source position, client: 127\.0\.0\.1/,
 qr/\[info\] \d+#\d+: \*\d+ info line, client/]



=== TEST 18: the TLS modules load with lua-resty-core's fields, master's ngx.ssl.proxysslcert and proxysslverify included
--- config
    location /t {
        content_by_lua_block {
            local ssl = require "ngx.ssl"
            ngx.say(ssl.TLS1_2_VERSION, " ", ssl.TLS1_3_VERSION, " ", ssl.version)
            for _, name in ipairs({ "ngx.ssl.session", "ngx.ssl.clienthello", "ngx.ocsp" }) do
                ngx.say(name, " ", require(name).version)
            end
            ngx.say(type(ssl.set_der_cert), " ", type(require("ngx.ocsp").create_ocsp_request))
            local cert = require "ngx.ssl.proxysslcert"
            local verify = require "ngx.ssl.proxysslverify"
            ngx.say(type(cert.set_der_cert), " ", type(cert.set_priv_key), " ", type(cert.clear_certs),
                    " ", type(verify.get_verify_cert), " ", tostring(cert.no_such_field))
        }
    }
--- request
GET /t
--- response_body_like chomp
\A771 772 0\.1\.25
ngx.ssl.session 0\.1\.25
ngx.ssl.clienthello 0\.1\.25
ngx.ocsp 0\.1\.25
function function
function function function function nil
\z
--- no_error_log
[error]



=== TEST 19: Debian's unmodified resty.lrucache (and its pureffi variant) work
--- config
    location /t {
        content_by_lua_block {
            for _, name in ipairs({ "resty.lrucache", "resty.lrucache.pureffi" }) do
                local lrucache = require(name)
                local c = assert(lrucache.new(2))
                c:set("a", 1)
                c:set("b", 2)
                c:get("a")              -- a is now the most recent
                c:set("c", 3)           -- evicts b
                local kept = c:get("c")
                c:delete("c")
                local t = assert(lrucache.new(4))
                t:set("short", "x", 0.01, 7)
                local fresh = t:get("short")
                ngx.sleep(0.03)
                local gone, stale, flags = t:get("short")
                ngx.say(name, ": ", c:get("a"), " ", tostring(c:get("b")), " ", kept, " ",
                        tostring(c:get("c")), " ", c:count(), " ", fresh, " ", tostring(gone),
                        " ", stale, " ", flags)
            end
        }
    }
--- request
GET /t
--- response_body
resty.lrucache: 1 nil 3 nil 1 x nil x 7
resty.lrucache.pureffi: 1 nil 3 nil 1 x nil x 7
--- no_error_log
[error]



=== TEST 20: resty.core is loaded before any code runs, in every VM
--- http_config
    init_by_lua_block {
        boot_saw = package.loaded["resty.core"] ~= nil
    }
--- config
    location /on {
        content_by_lua_block {
            local early = package.loaded["resty.core"]
            ngx.say(boot_saw, " ", early == require("resty.core"),
                    " ", package.loaded["resty.core.base"] ~= nil)
        }
    }
    location /off {
        lua_code_cache off;
        content_by_lua_block {
            local early = package.loaded["resty.core"]
            ngx.say(early ~= nil and early == require("resty.core"))
        }
    }
--- request eval
["GET /on", "GET /off"]
--- response_body eval
["true true true\n", "true\n"]
--- no_error_log
[error]



=== TEST 21: os.getenv in init_by_lua sees the values of env directives; a request puts the plain os.getenv back
--- main_config
env FOO106=hello;
env EMPTY106=;
env TEST_NGINX_BAR106=goodbye;
--- http_config
    init_by_lua_block {
        package.loaded.init_getenv = os.getenv
        package.loaded.seen = {
            os.getenv("FOO106"), os.getenv("EMPTY106"), os.getenv("TEST_NGINX_BAR106"),
            tostring(os.getenv("UNSET106")), os.getenv("PATH") ~= nil,
        }
    }
--- config
    location /t {
        content_by_lua_block {
            ngx.say(table.concat(package.loaded.seen, " ", 1, 4), " ", tostring(package.loaded.seen[5]))
            ngx.say(os.getenv("FOO106"), " [", os.getenv("EMPTY106"), "] ", os.getenv("TEST_NGINX_BAR106"))
            ngx.say(os.getenv == package.loaded.init_getenv)
        }
    }
--- request
GET /t
--- response_body
hello  goodbye nil true
hello [] goodbye
false
--- no_error_log
[error]



=== TEST 22: lua-nginx-module's request FFI functions, declared as lua-resty-core declares them, act on the running request and refuse any other pointer
--- config
    location ~ ^/(t)$ {
        set $slot "";
        content_by_lua_block {
            local ffi = require "ffi"
            local base = require "resty.core.base"
            local C = ffi.C
            pcall(ffi.cdef, [[
    int ngx_http_lua_ffi_var_get(ngx_http_request_t *r, const char *name_data, size_t name_len,
        char *lowcase_buf, int capture_id, char **value, size_t *value_len, char **err);
    int ngx_http_lua_ffi_var_set(ngx_http_request_t *r, const unsigned char *name_data,
        size_t name_len, unsigned char *lowcase_buf, const unsigned char *value,
        size_t value_len, unsigned char *errbuf, size_t *errlen);
    int ngx_http_lua_ffi_get_resp_status(ngx_http_request_t *r);
    int ngx_http_lua_ffi_set_resp_status(ngx_http_request_t *r, int r);
    int ngx_http_lua_ffi_is_subrequest(ngx_http_request_t *r);
    int ngx_http_lua_ffi_headers_sent(ngx_http_request_t *r);
    int ngx_http_lua_ffi_req_get_method(ngx_http_request_t *r);
    int ngx_http_lua_ffi_req_get_method_name(ngx_http_request_t *r, unsigned char **name, size_t *len);
    int ngx_http_lua_ffi_req_set_method(ngx_http_request_t *r, int method);
    double ngx_http_lua_ffi_req_start_time(ngx_http_request_t *r);
    int ngx_http_lua_ffi_req_is_internal(ngx_http_request_t *r);
            ]])
            local out = {}
            local function say(...)
                local t = { ... }
                for i = 1, select("#", ...) do t[i] = tostring(t[i]) end
                out[#out + 1] = table.concat(t)
            end
            local r = base.get_request()
            local value, len = ffi.new("char *[1]"), ffi.new("size_t[1]")
            local err, low = ffi.new("char *[1]"), ffi.new("char[64]")
            local rc = C.ngx_http_lua_ffi_var_get(r, "URI", 3, low, 0, value, len, err)
            say("var_get ", rc, " ", ffi.string(value[0], len[0]))
            rc = C.ngx_http_lua_ffi_var_get(r, nil, 0, nil, 1, value, len, err)
            say("capture ", rc, " ", ffi.string(value[0], len[0]))
            say("missing ", C.ngx_http_lua_ffi_var_get(r, "nope", 4, low, 0, value, len, err))
            local errbuf, errlen = ffi.new("unsigned char[128]"), ffi.new("size_t[1]", 128)
            say("var_set ", C.ngx_http_lua_ffi_var_set(r, "slot", 4, low, "v1", 2, errbuf, errlen), " ", ngx.var.slot)
            rc = C.ngx_http_lua_ffi_var_set(r, "uri", 3, low, "x", 1, errbuf, errlen)
            say("read-only ", rc, " ", ffi.string(errbuf, errlen[0]))
            say("status ", C.ngx_http_lua_ffi_set_resp_status(r, 201), " ", C.ngx_http_lua_ffi_get_resp_status(r))
            say("subrequest ", C.ngx_http_lua_ffi_is_subrequest(r), " sent ", C.ngx_http_lua_ffi_headers_sent(r))
            local name = ffi.new("unsigned char *[1]")
            rc = C.ngx_http_lua_ffi_req_get_method_name(r, name, len)
            say("method ", C.ngx_http_lua_ffi_req_get_method(r), " ", rc, " ", ffi.string(name[0], len[0]))
            say("set_method ", C.ngx_http_lua_ffi_req_set_method(r, 16), " ", ngx.req.get_method(),
                    " ", C.ngx_http_lua_ffi_req_set_method(r, 3), " ", C.ngx_http_lua_ffi_req_set_method(r, 2))
            say("start ", math.abs(C.ngx_http_lua_ffi_req_start_time(r) - ngx.req.start_time()) < 0.001,
                    " internal ", C.ngx_http_lua_ffi_req_is_internal(r))
            -- a pointer that is not the running request is never followed
            local other = ffi.cast("void *", 4096)
            rc = C.ngx_http_lua_ffi_var_get(other, "uri", 3, low, 0, value, len, err)
            say("other ", rc, " ", ffi.string(err[0]), " ", C.ngx_http_lua_ffi_get_resp_status(other),
                    " ", C.ngx_http_lua_ffi_req_get_method(other), " ", C.ngx_http_lua_ffi_req_start_time(other))
            ngx.print(table.concat(out, "\n"), "\n")
            ngx.say("sent ", C.ngx_http_lua_ffi_headers_sent(r))
        }
    }
--- request
GET /t
--- response_body
var_get 0 /t
capture 0 t
missing -5
var_set 0 v1
read-only -1 variable "uri" not changeable
status 0 201
subrequest 0 sent 0
method 2 0 GET
set_method 0 PUT -5 0
start true internal 0
other -1 no request found -101 -101 -1
sent 1
--- error_code: 201
--- no_error_log
[error]
