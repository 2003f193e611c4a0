use Test::Nginx::Socket::Lua;

repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: escape_uri escapes all but unreserved bytes and !*'(), unescape_uri reverses it
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.escape_uri("a b&c=d/é~-._!*'()"))
            ngx.say(ngx.escape_uri("/a b?x#y%\"'&=\1", 0))
            ngx.say(ngx.unescape_uri("a%20b+c%2fd%zz%4"))
            ngx.say(ngx.escape_uri(nil), "|", ngx.unescape_uri(nil), "|", ngx.escape_uri(12))
            ngx.say(ngx.unescape_uri(ngx.escape_uri("\r\n\0\255")) == "\r\n\0\255")
        }
    }
--- request
GET /t
--- response_body
a%20b%26c%3Dd%2F%C3%A9~-._!*'()
/a%20b%3Fx%23y%25"'&=%01
a b c/d%zz%4
||12
true
--- no_error_log
[error]



=== TEST 2: encode_args: strings, numbers, booleans, arrays; errors for bad values
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.encode_args({a = "x y"}))
            ngx.say(ngx.encode_args({b = true}))
            ngx.say("[", ngx.encode_args({c = false}), "]")
            ngx.say(ngx.encode_args({d = {1, "z", true}}))
            ngx.say(ngx.encode_args({["k&="] = 3.5}))
            ngx.say("[", ngx.encode_args({}), "]")
            local ok, err = pcall(ngx.encode_args, {a = {}})
            ngx.say(ok, " ", #ngx.encode_args({a = {}}))
            ok, err = pcall(ngx.encode_args, {a = print})
            ngx.say(err)
            ok, err = pcall(ngx.encode_args, "x")
            ngx.say(err)
            ok, err = pcall(function() local r = ngx.encode_args("x"); return r end)
            ngx.say(err)
            local decode = ngx.decode_args
            ok, err = pcall(function() local r = decode(nil); return r end)
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body_like
^a=x%20y
b
\[\]
d=1&d=z&d
k%26%3D=3.5
\[\]
true 0
attempt to use function as query arg value
bad argument #1 to '\?' \(table expected, got string\)
content_by_lua\(nginx.conf:\d+\):\d+: bad argument #1 to 'encode_args' \(table expected, got string\)
content_by_lua\(nginx.conf:\d+\):\d+: bad argument #1 to 'decode' \(string expected, got nil\)
--- no_error_log
[error]



=== TEST 3: decode_args: arrays, bare keys, empty values, limit
--- config
    location /t {
        content_by_lua_block {
            local t = ngx.decode_args("a=1&b&c=&a=2&&=x&d=%41+b")
            ngx.say(type(t.a), " ", t.a[1], " ", t.a[2])
            ngx.say(t.b, " [", t.c, "] ", t.d, " ", t[""])
            local n = 0
            for k in pairs(ngx.decode_args("a=1&b=2&c=3", 2)) do n = n + 1 end
            ngx.say(n)
            n = 0
            for k in pairs(ngx.decode_args(string.rep("x=1&", 300), 0).x) do n = n + 1 end
            ngx.say(n)
        }
    }
--- request
GET /t
--- response_body
table 1 2
true [] A b nil
2
300
--- no_error_log
[error]



=== TEST 4: ngx.exec with a table of args uses encode_args
--- config
    location /t {
        content_by_lua_block {
            ngx.exec("/target", {q = "a b"})
        }
    }
    location /target {
        content_by_lua_block { ngx.say("args: ", ngx.var.args) }
    }
--- request
GET /t
--- response_body
args: q=a%20b
--- no_error_log
[error]



=== TEST 5: base64: nginx's encoder, no_padding, decode errors, mime
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.encode_base64("hello"), " ", ngx.encode_base64("hello", true))
            ngx.say("[", ngx.encode_base64(""), "] [", ngx.encode_base64(nil), "]")
            ngx.say(ngx.decode_base64("aGVsbG8="), " ", ngx.decode_base64("aGVsbG8"))
            ngx.say(ngx.decode_base64("a"), " ", ngx.decode_base64("!!!!"))
            ngx.say(ngx.decode_base64mime("aGVs\r\nbG8g\n d29y bGQ="))
            local ok, err = pcall(ngx.encode_base64, "x", 1)
            ngx.say(err)
            ok, err = pcall(ngx.decode_base64, nil)
            ngx.say(err)
            -- the decoders take strings only, not numbers (lua-resty-core)
            ok, err = pcall(ngx.decode_base64, 32)
            ngx.say(err)
            ok, err = pcall(ngx.decode_base64mime, 32)
            ngx.say(err)
            -- nil encodes as "" (lua-resty-core)
            ngx.say(pcall(ngx.encode_base64))
        }
    }
--- request
GET /t
--- response_body
aGVsbG8= aGVsbG8
[] []
hello hello
nil nil
hello world
bad no_padding: boolean expected, got number
string argument only
string argument only
string argument only
true
--- no_error_log
[error]



=== TEST 6: require "ngx.base64"
--- config
    location /t {
        content_by_lua_block {
            local b64 = require "ngx.base64"
            ngx.say(b64.encode_base64url("\255\254\253hello?"))
            ngx.say(b64.decode_base64url("__79aGVsbG8_"))
            ngx.say(b64.decode_base64url("*"))
            ngx.say(pcall(b64.encode_base64url, 1))
        }
    }
--- request
GET /t
--- response_body eval
"__79aGVsbG8_\n\xff\xfe\xfdhello?\nnilinvalid input\nfalsemust provide a string\n"
--- no_error_log
[error]



=== TEST 7: md5, md5_bin, sha1_bin, hmac_sha1 match known digests (one block and several)
--- config
    location /t {
        content_by_lua_block {
            local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
            ngx.say(ngx.md5("hello"))
            ngx.say(ngx.md5(nil), " ", ngx.md5(""))
            ngx.say(hex(ngx.md5_bin("hello")))
            ngx.say(hex(ngx.sha1_bin("hello")))
            local long = string.rep("abc", 50)
            ngx.say(ngx.md5(long), " ", hex(ngx.sha1_bin(long)))
            ngx.say(hex(ngx.hmac_sha1("key", "The quick brown fox jumps over the lazy dog")))
            ngx.say(pcall(ngx.md5))
            ngx.say(pcall(ngx.hmac_sha1, "k"))
        }
    }
--- request
GET /t
--- response_body
5d41402abc4b2a76b9719d911017c592
d41d8cd98f00b204e9800998ecf8427e d41d8cd98f00b204e9800998ecf8427e
5d41402abc4b2a76b9719d911017c592
aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d
278d86d27fdb35a382e68a3194dffd06 84006ce0c85d22dd020fe7052ef1a9bc3c381dde
de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9
trued41d8cd98f00b204e9800998ecf8427e
falseexpecting two arguments
--- no_error_log
[error]



=== TEST 8: crc32 and quote_sql_str
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.crc32_short("hello"), " ", ngx.crc32_long("hello"), " ", ngx.crc32_short(""))
            ngx.say(ngx.crc32_long(string.rep("a", 100000)) == ngx.crc32_short(string.rep("a", 100000)))
            ngx.say(ngx.quote_sql_str("a'b\"c\\d\n\r\t\0\26\8"))
            ngx.say(ngx.quote_sql_str(12))
        }
    }
--- request
GET /t
--- response_body
907060870 907060870 0
true
'a\'b\"c\\d\n\r\t\0\Z\b'
'12'
--- no_error_log
[error]



=== TEST 9: huge input is fine
--- config
    location /t {
        content_by_lua_block {
            local s = string.rep("\0\255 &=", 200000)
            ngx.say(#ngx.escape_uri(s), " ", ngx.unescape_uri(ngx.escape_uri(s)) == s)
            ngx.say(ngx.decode_base64(ngx.encode_base64(s)) == s)
            ngx.say(#ngx.md5(s))
            local n = 0
            for _ in pairs(ngx.decode_args(string.rep("&", 100000) .. "a=1", 0)) do n = n + 1 end
            ngx.say(n)
        }
    }
--- request
GET /t
--- response_body
3000000 true
true
32
1
--- no_error_log
[error]




=== TEST 10: escape_uri's types: whole URI, arguments, component, HTML, refresh, memcached; bad types raise
--- config
    location /t {
        content_by_lua_block {
            local s = "a b+c?d#e%f\"g'h<i>\1\200"
            for kind = 0, 6 do
                local out = ngx.escape_uri(s, kind)
                -- raw 8-bit bytes shown as <HH>
                ngx.say(kind, " ", (out:gsub("[\128-\255]", function(c)
                    return ("<%02X>"):format(c:byte())
                end)))
            end
            for _, bad in ipairs({-1, 7, 2.5e10, "1", true}) do
                ngx.say(select(2, pcall(ngx.escape_uri, "x", bad)))
            end
        }
    }
--- request
GET /t
--- response_body_like eval
qr{\A\Q0 a%20b+c%3Fd%23e%25f"g'h<i>%01%C8\E
\Q1 a%20b%2Bc%3Fd%23e%25f"g'h<i>%01%C8\E
\Q2 a%20b%2Bc%3Fd%23e%25f%22g'h%3Ci%3E%01%C8\E
\Q3 a%20b+c?d%23e%25f%22g%27h<i>%01%C8\E
\Q4 a%20b+c?d#e%f%22g%27h<i>%01%C8\E
\Q5 a%20b+c?d#e%25f"g'h<i>%01<C8>\E
\Q6 a%20b+c?d#e%25f"g'h<i>%01<C8>\E
content_by_lua\(nginx\.conf:\d+\):11: "type" -1 out of range
content_by_lua\(nginx\.conf:\d+\):11: "type" 7 out of range
content_by_lua\(nginx\.conf:\d+\):11: "type" 25000000000 out of range
content_by_lua\(nginx\.conf:\d+\):11: "type" is not a number
content_by_lua\(nginx\.conf:\d+\):11: "type" is not a number
\z}
--- no_error_log
[error]



=== TEST 11: quote_sql_str, encode_args and decode_args build their results in a buffer reused across calls: long results (past what the buffer keeps), then short ones, twice, each intact
--- config
    location = /t {
        content_by_lua_block {
            local big = string.rep("a'b", 40000)
            local out = {}
            for round = 1, 2 do
                local q = ngx.quote_sql_str(big)
                out[#out + 1] = #q .. " " .. q:sub(1, 7) .. " " .. q:sub(-4)
                local e = ngx.encode_args({ k = big })
                out[#out + 1] = #e .. " " .. e:sub(1, 10)
                local d = ngx.decode_args("k=" .. e:sub(3))
                out[#out + 1] = tostring(d.k == big)
                out[#out + 1] = ngx.quote_sql_str("x\n") .. " " .. ngx.encode_args({ a = 1 }) .. " " .. ngx.decode_args("b=2").b
            end
            ngx.say(table.concat(out, "\n"))
        }
    }
--- request
GET /t
--- response_body
160002 'a\'ba\ \'b'
120002 k=a'ba'ba'
true
'x\n' a=1 2
160002 'a\'ba\ \'b'
120002 k=a'ba'ba'
true
'x\n' a=1 2
--- no_error_log
[error]
