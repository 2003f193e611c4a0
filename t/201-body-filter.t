use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: upper-case Lua content, one call per chain plus the final eof
--- config
    location /t {
        body_filter_by_lua_block {
            ngx.log(ngx.WARN, "chunk: [", ngx.arg[1], "] eof: ", ngx.arg[2])
            ngx.arg[1] = string.upper(ngx.arg[1])
        }
        content_by_lua_block {
            ngx.say("hello")
            ngx.say("world")
        }
    }
--- request
GET /t
--- response_body
HELLO
WORLD
--- error_log
chunk: [hello
] eof: false
chunk: [world
] eof: false
chunk: [] eof: true
--- no_error_log
[error]



=== TEST 2: static file read through the body filter
--- user_files
>>> foo.txt
static body
--- config
    sendfile on;
    location /foo.txt {
        body_filter_by_lua_block {
            ngx.arg[1] = string.gsub(ngx.arg[1], "static", "STATIC")
        }
    }
--- request
GET /foo.txt
--- response_body
STATIC body
--- no_error_log
[error]



=== TEST 3: dropping data with nil and ""
--- config
    location /t {
        body_filter_by_lua_block {
            if string.find(ngx.arg[1], "secret", 1, true) then
                ngx.arg[1] = nil
            elseif string.find(ngx.arg[1], "hidden", 1, true) then
                ngx.arg[1] = ""
            end
        }
        content_by_lua_block {
            ngx.print("a\n")
            ngx.flush()
            ngx.print("secret\n")
            ngx.flush()
            ngx.print("hidden\n")
            ngx.flush()
            ngx.print("b\n")
        }
    }
--- request
GET /t
--- response_body
a
b
--- no_error_log
[error]



=== TEST 4: ngx.arg[2] = true truncates the response; later data is discarded
--- config
    location /t {
        body_filter_by_lua_block {
            ngx.log(ngx.WARN, "seen: ", ngx.arg[1])
            if string.find(ngx.arg[1], "stop", 1, true) then
                ngx.arg[1] = "stopped\n"
                ngx.arg[2] = true
            end
        }
        content_by_lua_block {
            ngx.say("one")
            ngx.say("stop")
            ngx.say("three")
        }
    }
--- request
GET /t
--- response_body
one
stopped
--- error_log
seen: one
seen: stop
--- no_error_log
seen: three
[error]



=== TEST 5: body filter on proxy_pass to the same server, HTTP/1.1 chunked
--- config
    location /backend {
        content_by_lua_block {
            ngx.say("alpha")
            ngx.flush(true)
            ngx.say("beta")
        }
    }
    location /t {
        body_filter_by_lua_block {
            ngx.arg[1] = string.gsub(ngx.arg[1], "%a+", function(w) return "<" .. w .. ">" end)
        }
        proxy_http_version 1.1;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /t
--- response_headers
Transfer-Encoding: chunked
--- response_body
<alpha>
<beta>
--- no_error_log
[error]



=== TEST 6: HTTP/1.0 client without buffering: the longer body arrives whole
--- config
    lua_http10_buffering off;
    location /t {
        header_filter_by_lua_block { ngx.log(ngx.WARN, "hf ran") }
        body_filter_by_lua_block {
            ngx.arg[1] = string.rep(ngx.arg[1], 2)
        }
        content_by_lua_block {
            ngx.say("x")
        }
    }
--- request
GET /t HTTP/1.0
--- response_body
x
x
--- error_log
hf ran
--- no_error_log
[error]



=== TEST 7: appending at eof
--- config
    location /t {
        body_filter_by_lua_block {
            if ngx.arg[2] then
                ngx.arg[1] = ngx.arg[1] .. "-- footer\n"
            end
        }
        content_by_lua_block { ngx.say("body") }
    }
--- request
GET /t
--- response_body
body
-- footer
--- no_error_log
[error]



=== TEST 8: ngx.ctx is shared with content and header filter
--- config
    location /t {
        header_filter_by_lua_block { ngx.ctx.n = (ngx.ctx.n or 0) + 100 }
        body_filter_by_lua_block {
            ngx.ctx.calls = (ngx.ctx.calls or 0) + 1
            if ngx.arg[2] then
                ngx.arg[1] = "ctx: " .. ngx.ctx.n .. " " .. ngx.ctx.from .. " calls " .. ngx.ctx.calls .. "\n"
            end
        }
        content_by_lua_block {
            ngx.ctx.from = "content"
            ngx.ctx.n = 1
            ngx.say("data")
        }
    }
--- request
GET /t
--- response_body
data
ctx: 101 content calls 2
--- no_error_log
[error]



=== TEST 9: a large proxied response is streamed through many calls
--- config
    location /backend {
        content_by_lua_block {
            for i = 1, 50 do
                ngx.print(string.rep("a", 4096))
                ngx.flush(true)
            end
        }
    }
    location /t {
        body_filter_by_lua_block {
            ngx.ctx.n = (ngx.ctx.n or 0) + 1
            ngx.arg[1] = string.gsub(ngx.arg[1], "a", "b")
            if ngx.arg[2] then
                ngx.log(ngx.WARN, "several calls: ", ngx.ctx.n > 2)
            end
        }
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /t
--- response_body eval
"b" x 204800
--- error_log
several calls: true
--- no_error_log
[error]



=== TEST 10: body filter on `return` text and a runtime error is logged
--- config
    location /t {
        body_filter_by_lua_block {
            if ngx.arg[1] == "" then return end
            ngx.arg[1] = "[" .. ngx.arg[1] .. "]"
        }
        return 200 "ret";
    }
    location /err {
        body_filter_by_lua_block { error("bad filter") }
        return 200 "x";
    }
--- request eval
["GET /t", "GET /err"]
--- response_body eval
["[ret]", ""]
--- ignore_response
--- error_log
failed to run body_filter_by_lua*:
bad filter



=== TEST 11: flush-only chains reach the filter and keep flushing
--- config
    location /t {
        body_filter_by_lua_block {
            if ngx.arg[1] == "" and not ngx.arg[2] then
                ngx.ctx.flushes = (ngx.ctx.flushes or 0) + 1
            end
            if ngx.arg[2] then
                ngx.arg[1] = "flush-only calls: " .. (ngx.ctx.flushes or 0) .. "\n"
            end
        }
        content_by_lua_block {
            ngx.say("one")
            ngx.flush(true)
            ngx.flush()
            ngx.say("two")
            local ok, err = ngx.flush(true)
            ngx.say("flushed: ", ok)
        }
    }
--- request
GET /t
--- response_body
one
two
flushed: 1
flush-only calls: 3
--- no_error_log
[error]



=== TEST 12: output APIs are disabled in body filters; body_filter_by_lua_file
--- user_files
>>> bf.lua
local ok, err = pcall(ngx.say, "x")
if ngx.arg[2] then
    ngx.arg[1] = "say: " .. err .. "\n"
end
--- config
    location /t {
        body_filter_by_lua_file html/bf.lua;
        content_by_lua_block { ngx.print("ignored") }
    }
--- request
GET /t
--- response_body
ignoredsay: API disabled in the context of body_filter_by_lua*
--- no_error_log
[error]



=== TEST 13: truncation inside a captured subrequest
--- config
    location /sub {
        body_filter_by_lua_block {
            if ngx.arg[1] == "cut\n" then
                ngx.arg[2] = true
            end
        }
        content_by_lua_block {
            ngx.say("keep")
            ngx.say("cut")
            ngx.say("lost")
        }
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/sub")
            ngx.print(res.body)
            ngx.say("truncated: ", res.truncated)
        }
    }
--- request
GET /t
--- response_body
keep
cut
truncated: false
--- no_error_log
[error]



=== TEST 14: ngx.arg[1] takes a (nested) table of strings and numbers
--- config
    location /t {
        body_filter_by_lua_block {
            if ngx.arg[1] ~= "" then
                ngx.arg[1] = { "<", { ngx.arg[1], 42 }, ">" }
            end
        }
        content_by_lua_block { ngx.print("x") }
    }
--- request
GET /t
--- response_body chomp
<x42>
--- no_error_log
[error]



=== TEST 15: a bad ngx.arg[1] type is an error
--- config
    location /bad {
        body_filter_by_lua_block { ngx.arg[1] = true }
        content_by_lua_block { ngx.print("x") }
    }
--- request
GET /bad
--- ignore_response
--- error_log
bad ngx.arg[1] value type: boolean



=== TEST 100: header filter clears Content-Length, body filter changes the length of a static file
--- user_files
>>> page.txt
hello static
--- config
    location /page.txt {
        root html;
        header_filter_by_lua_block { ngx.header.content_length = nil }
        body_filter_by_lua_block {
            if ngx.arg[1] ~= "" then
                ngx.arg[1] = "[" .. ngx.arg[1]:upper() .. "]"
            end
        }
    }
--- request
GET /page.txt
--- response_headers
!Content-Length
--- response_body eval
"[HELLO STATIC\n]"
--- no_error_log
[error]



=== TEST 101: ngx.location.capture of a location that reads the parent's forwarded body
--- config
    location /t {
        content_by_lua_block {
            ngx.req.read_body()
            local res = ngx.location.capture("/echo", { method = ngx.HTTP_POST, always_forward_body = true })
            ngx.say(res.status, " ", res.body)
        }
    }
    location /echo {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.print("got: ", ngx.req.get_body_data())
        }
    }
--- request
POST /t
hello body
--- response_body
200 got: hello body
--- no_error_log
[error]



=== TEST 16: the filter's output buffers are reused only once sent
The filter upper-cases chains of changing sizes while limit_rate keeps
earlier ones in flight; a buffer reused too early would change bytes of
the body.
--- config
    location /t {
        limit_rate 32k;
        content_by_lua_block {
            ngx.print(string.rep("a", 40000))
            ngx.print(string.rep("b", 4000))
            ngx.flush()
            ngx.print(string.rep("c", 10))
            ngx.flush(true)
            ngx.print(string.rep("d", 3000))
            ngx.print(string.rep("e", 41000))
            ngx.say("f")
        }
        body_filter_by_lua_block {
            if ngx.arg[1] ~= "" then
                ngx.arg[1] = string.upper(ngx.arg[1])
            end
        }
    }
--- request
GET /t
--- response_body eval
("A" x 40000) . ("B" x 4000) . ("C" x 10) . ("D" x 3000) . ("E" x 41000) . "F\n"
--- timeout: 10
--- no_error_log
[error]



=== TEST 19: a body filter returning ngx.ERROR aborts the output (in a subrequest, the whole request goes); other return values do not
--- config
    location = /sub {
        content_by_lua_block { ngx.say("sub body") }
        body_filter_by_lua_block {
            if ngx.arg[1] ~= "" then
                return ngx.ERROR
            end
        }
    }
    location = /t {
        content_by_lua_block {
            local res = ngx.location.capture("/sub")
            ngx.say("parent went on: ", res.status)
        }
    }
    location = /ok {
        content_by_lua_block {
            ngx.say("kept")
        }
        body_filter_by_lua_block {
            return 299
        }
    }
--- pipelined_requests eval
["GET /ok", "GET /t"]
--- error_code eval
[200, ""]
--- response_body eval
["kept\n", ""]
--- no_error_log
[error]



=== TEST 20: ngx.arg[1] and [2] set to nil read back as "" and false; clearing the eof flag leaves the body unended (a capture sees it truncated)
--- config
    location = /sub {
        return 200 "sub body";
        body_filter_by_lua_block {
            local eof = ngx.arg[2]
            ngx.arg[1] = nil
            ngx.arg[2] = nil
            ngx.log(ngx.WARN, "read back: [", ngx.arg[1], "] ", tostring(ngx.arg[2]), " (eof was ", tostring(eof), ")")
            ngx.arg[1] = "replaced"
        }
    }
    location = /t {
        content_by_lua_block {
            local res = ngx.location.capture("/sub")
            ngx.say(res.body, " truncated: ", res.truncated)
        }
    }
--- request
GET /t
--- response_body
replaced truncated: true
--- error_log
read back: [] false (eof was true)
--- no_error_log
[error]



=== TEST 21: results passed on without a copy stay intact while in flight
The filter's large results go to nginx as the Lua strings themselves.
limit_rate keeps all eight chains in flight (more than a request lends at
once, so later ones are copied), and each call collects garbage and
allocates strings of the same size: a string released before nginx sent
it would have its bytes reused.
--- config
    location /t {
        limit_rate 200k;
        content_by_lua_block {
            for i = 1, 8 do
                ngx.print(string.rep(string.char(96 + i), 10000))
                ngx.flush()
            end
        }
        body_filter_by_lua_block {
            local s = ngx.arg[1]
            if s ~= "" then
                ngx.arg[1] = string.upper(s)
            end
            collectgarbage()
            local junk = {}
            for i = 1, 8 do junk[i] = string.rep("z", 9999) .. i end
        }
    }
--- request
GET /t
--- response_body eval
CORE::join "", map { uc(chr(96 + $_)) x 10000 } 1 .. 8
--- timeout: 10
--- no_error_log
[error]



=== TEST 22: ngx.arg is one table for the VM's life: a reference taken at init works in body filters; set_by_lua* sees only its own arguments; elsewhere reading it is refused
--- http_config
    init_by_lua_block { saved_arg = ngx.arg }
--- config
    location /filtered {
        content_by_lua_block {
            ngx.say(type(ngx.arg), " ", rawequal(ngx.arg, saved_arg), " ", type(getmetatable(ngx.arg)))
            local ok, err = pcall(function() return ngx.arg[1] end)
            ngx.say(ok, " ", err)
        }
        body_filter_by_lua_block {
            if saved_arg[1] ~= "" then
                saved_arg[1] = string.upper(saved_arg[1])
            end
        }
    }
    location /set {
        set_by_lua $two 'return ngx.arg[1] .. "+" .. ngx.arg[2]' a b;
        set_by_lua $one 'return ngx.arg[1] .. "+" .. tostring(ngx.arg[2])' c;
        return 200 "$two $one\n";
    }
--- request eval
["GET /filtered", "GET /set"]
--- response_body_like eval
["^TABLE TRUE TABLE\nFALSE .*API DISABLED IN THE CURRENT CONTEXT\n\\z", "^a\\+b c\\+nil\n\\z"]
--- no_error_log
[error]
