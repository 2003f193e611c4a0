use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: read_body then get_body_data; get_body_file is nil for a body in memory
--- config
    location /t {
        content_by_lua_block {
            ngx.say("before: ", ngx.req.get_body_data())
            ngx.req.read_body()
            ngx.say("data: ", ngx.req.get_body_data())
            ngx.say("file: ", ngx.req.get_body_file())
            ngx.say("first 3: ", ngx.req.get_body_data(3))
        }
    }
--- request
POST /t
hello body
--- response_body
before: nil
data: hello body
file: nil
first 3: hel
--- no_error_log
[error]



=== TEST 2: a body larger than client_body_buffer_size goes to a temp file
--- config
    client_body_buffer_size 1k;
    location /t {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say("data: ", ngx.req.get_body_data())
            local name = ngx.req.get_body_file()
            local f = io.open(name, "rb")
            local s = f:read("*a")
            f:close()
            ngx.say(#s, " ", s:sub(1, 4), " ", s:sub(-4))
        }
    }
--- request eval
"POST /t\n" . ("abcd" x 5000)
--- response_body
data: nil
20000 abcd abcd
--- no_error_log
[error]



=== TEST 3: client_max_body_size gives 413 from read_body
--- config
    location /t {
        client_max_body_size 10;
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say("not reached")
        }
    }
--- request
POST /t
0123456789abcdef
--- error_code: 413
--- response_body_like: 413 Request Entity Too Large



=== TEST 4: chunked request body
--- config
    location /t {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say("data: ", ngx.req.get_body_data())
        }
    }
--- raw_request eval
"POST /t HTTP/1.1\r
Host: localhost\r
Connection: close\r
Transfer-Encoding: chunked\r
\r
5\r
hello\r
6\r
 world\r
0\r
\r
"
--- response_body
data: hello world
--- no_error_log
[error]



=== TEST 5: read_body in rewrite and access, the body reaches the content phase
--- config
    location /t {
        rewrite_by_lua_block {
            ngx.req.read_body()
            ngx.ctx.r = ngx.req.get_body_data()
        }
        access_by_lua_block {
            ngx.req.read_body()
            ngx.ctx.a = ngx.req.get_body_data()
        }
        content_by_lua_block {
            ngx.say(ngx.ctx.r, " ", ngx.ctx.a)
        }
    }
--- request
POST /t
abc
--- response_body
abc abc
--- no_error_log
[error]



=== TEST 6: discard_body; read_body without a body
--- config
    location /t {
        content_by_lua_block {
            ngx.req.discard_body()
            ngx.req.read_body()
            ngx.say(ngx.req.get_body_data())
        }
    }
    location /empty {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say(ngx.req.get_body_data(), " ", ngx.req.get_body_file())
        }
    }
--- pipelined_requests eval
["POST /t\nignored", "GET /empty"]
--- response_body eval
["nil\n", "nil nil\n"]
--- no_error_log
[error]



=== TEST 7: set_body_data in rewrite reaches proxy_pass with a new Content-Length
--- config
    location /t {
        rewrite_by_lua_block {
            ngx.req.read_body()
            ngx.req.set_body_data("replaced: " .. ngx.req.get_body_data())
        }
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo;
    }
    location /echo {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say(ngx.var.http_content_length, " ", ngx.req.get_body_data())
        }
    }
--- request
POST /t
original
--- response_body
18 replaced: original
--- no_error_log
[error]



=== TEST 8: set_body_data turns a chunked body into a sized one for proxy_pass
--- config
    location /t {
        access_by_lua_block {
            ngx.req.read_body()
            ngx.req.set_body_data(string.upper(ngx.req.get_body_data()))
        }
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo;
    }
    location /echo {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say(ngx.var.http_content_length, " ", ngx.var.http_transfer_encoding, " ", ngx.req.get_body_data())
        }
    }
--- raw_request eval
"POST /t HTTP/1.1\r
Host: localhost\r
Connection: close\r
Transfer-Encoding: chunked\r
\r
3\r
abc\r
0\r
\r
"
--- response_body
3 nil ABC
--- no_error_log
[error]



=== TEST 9: init_body / append_body / finish_body, spilling to a temp file when large
--- config
    location /t {
        rewrite_by_lua_block {
            ngx.req.read_body()
            ngx.req.init_body(16)
            for i = 1, 10 do ngx.req.append_body("chunk" .. i .. ";") end
            ngx.req.finish_body()
            ngx.req.set_header("X-File", tostring(ngx.req.get_body_file() ~= nil))
        }
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo;
    }
    location /small {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.req.init_body()
            ngx.req.append_body("a")
            ngx.req.append_body("b")
            ngx.req.finish_body()
            ngx.say(ngx.req.get_body_data(), " ", ngx.req.get_body_file())
            ngx.say(pcall(ngx.req.append_body, "x"))
        }
    }
    location /echo {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say(ngx.var.http_content_length, " ", ngx.var.http_x_file, " ", ngx.req.get_body_data())
        }
    }
--- pipelined_requests eval
["POST /t\nold", "POST /small\nold"]
--- response_body eval
["71 true chunk1;chunk2;chunk3;chunk4;chunk5;chunk6;chunk7;chunk8;chunk9;chunk10;\n",
 "ab nil\nfalserequest body not initialized by ngx.req.init_body()\n"]
--- no_error_log
[error]



=== TEST 10: set_body_file reaches proxy_pass; errors before the body is read
--- config
    location /t {
        rewrite_by_lua_block {
            local name = ngx.config.prefix() .. "/html/body.txt"
            local f = io.open(name, "w")
            f:write("from a file")
            f:close()
            ngx.req.read_body()
            ngx.req.set_body_file(name)
        }
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo;
    }
    location /err {
        content_by_lua_block {
            ngx.say(pcall(ngx.req.set_body_data, "x"))
            ngx.req.read_body()
            ngx.say(pcall(ngx.req.set_body_file, "/nonexistent/file"))
        }
    }
    location /echo {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say(ngx.var.http_content_length, " ", ngx.var.http_x_file, " ", ngx.req.get_body_data())
        }
    }
--- pipelined_requests eval
["POST /t\nold", "GET /err"]
--- response_body eval
["11 nil from a file\n",
 "falserequest body not read yet\nfalsefailed to open file /nonexistent/file: No such file or directory (os error 2)\n"]
--- no_error_log
[error]



=== TEST 11: lua_need_request_body reads the body before the code runs
--- config
    location /t {
        lua_need_request_body on;
        client_body_buffer_size 1k;
        content_by_lua_block {
            local data = ngx.req.get_body_data()
            local file = ngx.req.get_body_file()
            ngx.say(data and #data, " ", file ~= nil)
        }
    }
--- pipelined_requests eval
["POST /t\nhello", "POST /t\n" . ("x" x 4000)]
--- response_body eval
["5 false\n", "nil true\n"]
--- no_error_log
[error]



=== TEST 12: lua_need_request_body in rewrite; get_post_args works without read_body
--- config
    location /t {
        lua_need_request_body on;
        rewrite_by_lua_block {
            ngx.ctx.a = ngx.req.get_post_args().a
        }
        content_by_lua_block { ngx.say(ngx.ctx.a) }
    }
--- request
POST /t
a=42
--- response_body
42
--- no_error_log
[error]



=== TEST 13: body API is disabled in log_by_lua; read_body in header-less HTTP/1.0 request
--- config
    location /t {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say(ngx.req.get_body_data())
        }
        log_by_lua_block {
            local ok, err = pcall(ngx.req.read_body)
            ngx.log(ngx.WARN, "log: ", err)
        }
    }
--- request
GET /t HTTP/1.0
--- response_body
nil
--- error_log
log: API disabled in the context of log_by_lua*



=== TEST 14: read_body waits for a body that arrives later (content phase)
--- config
    location /t {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say("got: ", ngx.req.get_body_data())
        }
    }
--- raw_request eval
["POST /t HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 11\r\n\r\nhello",
 " world"]
--- raw_request_middle_delay: 0.05
--- response_body
got: hello world
--- no_error_log
[error]



=== TEST 15: read_body waits for a late chunked body in rewrite, then proxy_pass gets it
--- config
    location /t {
        rewrite_by_lua_block {
            ngx.req.read_body()
            ngx.req.set_header("X-Seen", ngx.req.get_body_data())
        }
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo;
    }
    location /echo {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say(ngx.var.http_x_seen, " ", ngx.req.get_body_data())
        }
    }
--- raw_request eval
["POST /t HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
 "2\r\nde\r\n0\r\n\r\n"]
--- raw_request_middle_delay: 0.05
--- response_body
abcde abcde
--- no_error_log
[error]



=== TEST 16: a late chunked body over client_max_body_size gives 413
--- config
    location /t {
        client_max_body_size 4;
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say("not reached")
        }
    }
--- raw_request eval
["POST /t HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
 "5\r\ndefgh\r\n0\r\n\r\n"]
--- raw_request_middle_delay: 0.05
--- error_code: 413
--- response_body_like: 413 Request Entity Too Large



=== TEST 17: a body nobody read is discarded when the response ends, so the next pipelined request is intact
--- config
    location /noread {
        content_by_lua_block {
            ngx.say("not reading")
        }
    }
    location /exit {
        content_by_lua_block {
            ngx.say("exiting")
            ngx.exit(201)
        }
    }
    location /echo {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say("body: ", ngx.req.get_body_data())
        }
    }
--- pipelined_requests eval
["POST /noread\nfirst body", "POST /exit\nsecond body", "POST /echo\nthird body"]
--- response_body eval
["not reading\n", "exiting\n", "body: third body\n"]
--- no_error_log
[error]



=== TEST 18: init_body needs a read body; init_body(0) keeps the new body in a temporary file
--- config
    location /unread {
        content_by_lua_block {
            ngx.say(pcall(ngx.req.init_body))
        }
    }
    location /file {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say(pcall(ngx.req.init_body, -1))
            ngx.req.init_body(0)
            ngx.req.append_body("he")
            ngx.req.append_body("llo")
            ngx.req.finish_body()
            local f = ngx.req.get_body_file()
            ngx.say(ngx.req.get_body_data(), " ", f ~= nil, " ", f and io.open(f):read("*a"))
            ngx.say("length: ", ngx.var.http_content_length)
        }
    }
--- request eval
["GET /unread", "POST /file\nold"]
--- response_body_like eval
["^falserequest body not read yet\\n\\z",
 "^falsebad size argument: -1\\nnil true hello\\nlength: 5\\n\\z"]
--- error_log
a client request body is buffered to a temporary file



=== TEST 19: set_body_file with an empty file gives an empty body; replacing an auto-clean body file deletes it at once
--- config
    location /t {
        content_by_lua_block {
            ngx.req.read_body()
            local root = ngx.var.realpath_root
            ngx.req.set_body_file(root .. "/empty.txt")
            ngx.say("empty: [", ngx.req.get_body_data(), "] ", ngx.req.get_body_file(), " ", ngx.var.http_content_length)
            for _, name in ipairs({"first", "second"}) do
                local f = assert(io.open(root .. "/" .. name .. ".txt", "w"))
                f:write(name)
                f:close()
            end
            ngx.req.set_body_file(root .. "/first.txt", true)
            ngx.req.set_body_file(root .. "/second.txt", true)
            ngx.say("first: ", io.open(root .. "/first.txt") ~= nil)
            ngx.say("second: ", io.open(root .. "/second.txt") ~= nil)
        }
    }
--- user_files
>>> empty.txt
--- request
POST /t
original
--- response_body
empty: [nil] nil 0
first: false
second: true
--- no_error_log
[error]
[alert]
