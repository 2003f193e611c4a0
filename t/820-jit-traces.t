use Test::Nginx::Socket::Lua;

# The hot APIs that are Lua over LuaJIT's FFI must stay inside compiled
# traces when called in a loop. Two things take a loop out of machine code
# because of an API: a trace abort for something the compiler does not
# support ("NYI", e.g. a light userdata passed as a C pointer), and a trace
# that ends at a classic Lua C function (what a hot path turned back into
# a C function does: LuaJIT 2.1 does not abort there, it ends the trace,
# stitching or returning to the interpreter for the call).
#
# check_traces(label, f) runs f with the trace events watched and says
# "<label>: compiled" when at least one trace was made and none of them
# aborted on NYI or ended at a C function; otherwise what happened and
# where.

our $HttpConfig = <<'_EOC_';
    lua_shared_dict dogs 1m;
    init_by_lua_block {
        local jutil = require "jit.util"
        local vmdef = require "jit.vmdef"

        local function where(func, pc)
            local fi = jutil.funcinfo(func, pc)
            if fi.addr then
                return string.format("C function %#x", fi.addr)
            end
            if fi.ffid then
                return "fast function " .. (vmdef.ffnames[fi.ffid] or fi.ffid)
            end
            return string.format("%s:%s", fi.source, fi.currentline or fi.linedefined)
        end

        function check_traces(label, f)
            local problems, traces = {}, 0
            local function on_trace(what, tr, func, pc, otr, oex)
                if what == "abort" then
                    local msg = vmdef.traceerr[otr] or tostring(otr)
                    if type(oex) == "function" then
                        oex = where(oex, 0)
                    end
                    -- Loop unrolling and similar limits are the compiler's
                    -- own business; NYI aborts are an API's.
                    if msg:find("NYI", 1, true) then
                        problems[#problems + 1] = "abort: " .. msg:format(tostring(oex))
                            .. " at " .. where(func, pc)
                    end
                elseif what == "stop" then
                    traces = traces + 1
                    -- A trace that ends at a C function: stitched around
                    -- it, or returning to the interpreter for the call.
                    local info = jutil.traceinfo(tr)
                    if info.linktype == "stitch" or jutil.funcinfo(func).addr then
                        problems[#problems + 1] = info.linktype .. ": trace " .. tr
                            .. " ends calling " .. where(func, pc)
                    end
                end
            end
            jit.flush()
            jit.attach(on_trace, "trace")
            local ok, err = pcall(f)
            jit.attach(on_trace)
            if not ok then
                return label .. ": error " .. tostring(err)
            end
            if traces == 0 then
                return label .. ": no trace compiled"
            end
            if #problems > 0 then
                return label .. ": " .. table.concat(problems, "; ")
            end
            return label .. ": compiled"
        end
    }
_EOC_

repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: shared dict get/set/incr and the other hot methods stay compiled
--- http_config eval: $::HttpConfig
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.dogs
            local sum = 0
            ngx.say(check_traces("set", function()
                for i = 1, 400 do d:set("k" .. (i % 16), i) end
            end))
            ngx.say(check_traces("get", function()
                for i = 1, 400 do sum = sum + d:get("k" .. (i % 16)) end
            end))
            ngx.say(check_traces("incr", function()
                for i = 1, 400 do d:incr("hits", 1, 0) end
            end))
            ngx.say(check_traces("add, replace, safe_set, delete", function()
                for i = 1, 400 do
                    local k = "a" .. (i % 4)
                    d:add(k, "v")
                    d:replace(k, "w")
                    d:safe_set("s" .. (i % 8), "value")
                    d:delete(k)
                end
            end))
            ngx.say(check_traces("get_stale", function()
                for i = 1, 400 do local v, flags, stale = d:get_stale("k" .. (i % 16)) end
            end))
            ngx.say(sum, " ", d:get("hits"))
        }
    }
--- request
GET /t
--- response_body
set: compiled
get: compiled
incr: compiled
add, replace, safe_set, delete: compiled
get_stale: compiled
157000 400
--- no_error_log
[error]



=== TEST 2: cosocket receive (lines, sizes) and send of strings stay compiled
--- http_config eval: $::HttpConfig
--- config
    location = /lines {
        content_by_lua_block {
            ngx.print(string.rep("a line of text\r\n", 500), string.rep("x", 4000))
        }
    }
    location = /sink {
        content_by_lua_block {
            local n = 0
            for k in pairs(ngx.req.get_headers(1000)) do n = n + 1 end
            ngx.say("headers ", n)
        }
    }
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            assert(sock:send("GET /lines HTTP/1.0\r\nHost: x\r\n\r\n"))
            -- The status line waits for the response; the rest is there
            -- by the time the loops run (one write on loopback).
            assert(sock:receive("*l"))
            repeat local l = assert(sock:receive("*l")) until l == ""
            ngx.sleep(0.05)
            local n = 0
            ngx.say(check_traces("receive *l", function()
                for i = 1, 400 do
                    n = n + #assert(sock:receive("*l"))
                end
            end))
            ngx.say(check_traces("receive size", function()
                for i = 1, 400 do
                    n = n + #assert(sock:receive(10))
                end
            end))
            sock:close()
            ngx.say(n)

            sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            assert(sock:send("GET /sink HTTP/1.0\r\nHost: x\r\n"))
            ngx.say(check_traces("send", function()
                for i = 1, 400 do
                    assert(sock:send("X-Pad-" .. i .. ": v\r\n"))
                end
            end))
            assert(sock:send("\r\n"))
            repeat local l = assert(sock:receive("*l")) until l == ""
            ngx.say(sock:receive("*l"))
            sock:close()
        }
    }
--- request
GET /t
--- response_body
receive *l: compiled
receive size: compiled
9600
send: compiled
headers 401
--- no_error_log
[error]



=== TEST 3: the time functions stay compiled
--- http_config eval: $::HttpConfig
--- config
    location = /t {
        content_by_lua_block {
            local n = 0
            ngx.say(check_traces("now, time", function()
                for i = 1, 400 do n = n + ngx.now() - ngx.time() end
            end))
            ngx.say(check_traces("today, localtime, utctime", function()
                for i = 1, 400 do n = n + #ngx.today() + #ngx.localtime() + #ngx.utctime() end
            end))
            ngx.say(check_traces("update_time", function()
                for i = 1, 400 do ngx.update_time() end
            end))
            local rtime = require "resty.core.time"
            ngx.say(check_traces("monotonic_msec, monotonic_time", function()
                for i = 1, 400 do n = n + rtime.monotonic_msec() - rtime.monotonic_time() * 1000 end
            end))
            ngx.say(check_traces("http_time, cookie_time, parse_http_time", function()
                for i = 1, 400 do
                    local t = 1290079655 + i
                    n = n + #ngx.cookie_time(t) + ngx.parse_http_time(ngx.http_time(t)) - t
                end
            end))
            ngx.say(ngx.http_time(1290079655), " ", ngx.cookie_time(1290079655))
            ngx.say(ngx.parse_http_time("Thu, 18 Nov 2010 11:27:35 GMT"), " ", ngx.parse_http_time("x"))
            ngx.say(ngx.today() == ngx.localtime():sub(1, 10), " ", #ngx.utctime())
        }
    }
--- request
GET /t
--- response_body
now, time: compiled
today, localtime, utctime: compiled
update_time: compiled
monotonic_msec, monotonic_time: compiled
http_time, cookie_time, parse_http_time: compiled
Thu, 18 Nov 2010 11:27:35 GMT Thu, 18-Nov-10 11:27:35 GMT
1290079655 nil
true 19
--- no_error_log
[error]



=== TEST 4: hashes, base64 and URI escaping stay compiled
--- http_config eval: $::HttpConfig
--- config
    location = /t {
        content_by_lua_block {
            local n = 0
            ngx.say(check_traces("md5, md5_bin, sha1_bin", function()
                for i = 1, 400 do
                    local s = "k" .. i
                    n = n + #ngx.md5(s) + #ngx.md5_bin(s) + #ngx.sha1_bin(s)
                end
            end))
            ngx.say(check_traces("crc32_short, crc32_long", function()
                for i = 1, 400 do n = n + ngx.crc32_short("k" .. i) - ngx.crc32_long("k" .. i) end
            end))
            ngx.say(check_traces("encode_base64, decode_base64", function()
                for i = 1, 400 do
                    n = n + #ngx.decode_base64(ngx.encode_base64("value " .. i, i % 2 == 0))
                end
            end))
            ngx.say(check_traces("escape_uri, unescape_uri", function()
                for i = 1, 400 do
                    n = n + #ngx.unescape_uri(ngx.escape_uri("a b/" .. i, i % 3))
                end
            end))
            ngx.say(check_traces("nil, numbers and booleans as strings", function()
                for i = 1, 400 do
                    n = n + #ngx.md5(nil) + #ngx.md5_bin(i) + #ngx.encode_base64(true)
                        + #ngx.escape_uri(i) + #ngx.unescape_uri(false)
                end
            end))
            ngx.say(ngx.md5("hello"), " ", ngx.md5(12), " ", ngx.md5("12"))
            ngx.say(ngx.encode_base64("hello"), " ", ngx.encode_base64("hello", true), " ",
                    ngx.decode_base64("aGVsbG8="), " ", ngx.decode_base64("!!"))
            ngx.say(ngx.escape_uri("a b&c"), " ", ngx.escape_uri("a b&c", 0), " ",
                    ngx.unescape_uri("a%20b+c%zz"))
            ngx.say(ngx.crc32_short("hello"), " ", ngx.crc32_long("hello"))
            local long = string.rep("\1", 5000)
            ngx.say(#ngx.escape_uri(long), " ", #ngx.encode_base64(long), " ",
                    ngx.decode_base64(ngx.encode_base64(long)) == long)
        }
    }
--- request
GET /t
--- response_body
md5, md5_bin, sha1_bin: compiled
crc32_short, crc32_long: compiled
encode_base64, decode_base64: compiled
escape_uri, unescape_uri: compiled
nil, numbers and booleans as strings: compiled
5d41402abc4b2a76b9719d911017c592 c20ad4d76fe97759aa27a0c99bff6710 c20ad4d76fe97759aa27a0c99bff6710
aGVsbG8= aGVsbG8 hello nil
a%20b%26c a%20b&c a b c%zz
907060870 907060870
15000 6668 true
--- no_error_log
[error]



=== TEST 5: ngx.re.match and ngx.re.find (plain case) stay compiled; the rest still answers through the classic functions
--- http_config eval: $::HttpConfig
--- config
    location = /t {
        content_by_lua_block {
            local lines = { "Content-Type: text/html", "X-Empty:", "Server: test", "no colon here" }
            local n = 0
            ngx.say(check_traces("match, cached", function()
                for i = 1, 400 do
                    local m = ngx.re.match(lines[i % 4 + 1], [[^([\w-]+):\s*(.*)$]], "jo")
                    if m then n = n + #m[1] + #m[2] end
                end
            end))
            ngx.say(check_traces("match, unmatched group, not cached", function()
                for i = 1, 400 do
                    local m = ngx.re.match("hello!", "(hello)(, .+)?(!)")
                    if m[2] == false then n = n + 1 end
                end
            end))
            ngx.say(check_traces("find", function()
                for i = 1, 400 do
                    local from, to = ngx.re.find(lines[i % 4 + 1], ":", "jo")
                    if from then n = n + to - from + 1 end
                end
            end))
            ngx.say(check_traces("gmatch", function()
                for i = 1, 300 do
                    for m in ngx.re.gmatch("a=1, b=2, c=3", [[(\w)=(\d)]], "jo") do
                        n = n + #m[1] + #m[2]
                    end
                end
            end))
            -- the FFI iterator ("o") and the classic one agree, empty
            -- matches (stepping by a character, UTF-8 aware) included
            local function all(subj, re, opts)
                local t = {}
                for m in ngx.re.gmatch(subj, re, opts) do t[#t + 1] = "[" .. m[0] .. "]" end
                return table.concat(t)
            end
            ngx.say(all("ab12", [[\d*]], "jo"), " ", all("ab12", [[\d*]], "j"))
            ngx.say(all("\195\169a", "", "jou") == all("\195\169a", "", "ju"), " ", #all("\195\169a", "", "jou"))
            ngx.say(type(ngx.re.gmatch("a", "a", "jo")), " ", type(ngx.re.gmatch("a", "a")))
            local m = ngx.re.match("hello!", "(hello)(, .+)?(!)", "jo")
            ngx.say(m[0], " ", m[1], " ", tostring(m[2]), " ", m[3], " ", #m)
            local from, to = ngx.re.find("abcabc", "b(c)", "jo")
            ngx.say(from, " ", to, " ", ngx.re.match("abc", "x", "jo"))
            -- named groups, ctx, nth and errors: the classic functions
            m = ngx.re.match("k=v", [[(?<key>\w+)=(?<val>\w+)]], "jo")
            ngx.say(m.key, " ", m.val, " ", m[2])
            local ctx = { pos = 2 }
            from, to = ngx.re.find("abcabc", "b", "jo", ctx)
            ngx.say(from, " ", to, " ", ctx.pos)
            ngx.say(ngx.re.find("abcabc", "b(c)", "jo", nil, 1))
            ngx.say(ngx.re.match("abc", "(", "jo"))
            ngx.say(pcall(ngx.re.match, "abc", "b", "Z"))
            ngx.say(n)
        }
    }
--- request
GET /t
--- response_body
match, cached: compiled
match, unmatched group, not cached: compiled
find: compiled
gmatch: compiled
[][][12][] [][][12][]
true 6
table function
hello! hello false ! 3
2 3 nil
k v v
2 2 3
33
nilpcre2_compile() failed: missing closing parenthesis in "("
falseunknown flag "Z" (flags "Z")
6300
--- no_error_log
[error]



=== TEST 6: ngx.worker.pid, id, count and exiting stay compiled
--- http_config eval: $::HttpConfig
--- config
    location = /t {
        content_by_lua_block {
            local n = 0
            ngx.say(check_traces("worker", function()
                for i = 1, 400 do
                    n = n + ngx.worker.pid() + (ngx.worker.id() or 0) + ngx.worker.count()
                    if ngx.worker.exiting() then n = -1 end
                end
            end))
            local w = ngx.worker
            ngx.say(w.pid() == tonumber(ngx.var.pid), " ", w.id(), " ", w.count(), " ", w.exiting())
            ngx.say(n == 400 * (w.pid() + w.id() + w.count()))
        }
    }
--- request
GET /t
--- response_body
worker: compiled
true 0 1 false
true
--- no_error_log
[error]



=== TEST 7: ngx.re.split without a ctx stays compiled, with and without a max, a res table and a captured separator; with a ctx it still answers through the classic function
--- http_config eval: $::HttpConfig
--- config
    location = /t {
        content_by_lua_block {
            local split = require("ngx.re").split
            local total, res = 0, {}
            ngx.say(check_traces("split", function()
                for i = 1, 300 do
                    local a = split("a,b,,c,,", ",")
                    local b = split("k1=v1;k2=v2;k3", "([;=])", "jo", nil, 3)
                    split("x y  z", " +", nil, nil, nil, res)
                    total = total + #a + #b + #res
                end
            end))
            ngx.say(total)
            local a = split("a,b,,c,,", ",")
            ngx.say(#a, " ", table.concat(a, "|"))
            local b = split("k1=v1;k2=v2;k3", "([;=])", "jo", nil, 3)
            ngx.say(#b, " ", table.concat(b, "|"))
            ngx.say(#res, " ", table.concat(res, "|"))
            local ctx = { pos = 3 }
            local c = split("a,b,c", ",", nil, ctx)
            ngx.say(#c, " ", table.concat(c, "|"), " pos=", ctx.pos)
            ngx.say(#split("", "(", "jo"), " ", select(2, split("x", "(", "jo")))
            local big = split(string.rep("x,", 200), ",")
            ngx.say(#big, " ", big[1], big[200], " ", tostring(big[201]))
        }
    }
--- request
GET /t
--- response_body
split: compiled
3600
4 a|b||c
5 k1|=|v1|;|k2=v2;k3
3 x|y|z
2 b|c pos=5
0 pcre2_compile() failed: missing closing parenthesis in "("
200 xx nil
--- no_error_log
[error]



=== TEST 8: ngx.var reads (names, regex captures) and writes stay compiled; errors, long values and other types still answer through the classic functions
--- http_config eval: $::HttpConfig
--- config
    location ~ ^/(t)$ {
        set $slot "";
        content_by_lua_block {
            local n = 0
            ngx.say(check_traces("get by name", function()
                for i = 1, 400 do
                    n = n + #ngx.var.uri + #ngx.var.request_method + #(ngx.var.arg_q or "")
                    if ngx.var.no_such_var == nil then n = n + 1 end
                end
            end))
            ngx.say(check_traces("get capture", function()
                for i = 1, 400 do n = n + #ngx.var[1] + (ngx.var[2] and 1000 or 0) end
            end))
            ngx.say(check_traces("set", function()
                for i = 1, 400 do
                    ngx.var.slot = "v" .. i
                    n = n + #ngx.var.slot
                    ngx.var.slot = i
                    ngx.var.slot = nil
                end
            end))
            ngx.say(n)
            ngx.var.slot = 12.5
            ngx.say(ngx.var.slot, " ", ngx.var.URI, " ", tostring(ngx.var[0]), " ", tostring(ngx.var[-1]))
            local long = string.rep("z", 5000)
            ngx.var.slot = long
            ngx.say(#ngx.var.slot, " ", ngx.var.slot == long)
            -- errors name the caller's line, as lua-resty-core's do
            local function try(f)
                local ok, err = pcall(f)
                return tostring(ok) .. " " .. (tostring(err):gsub("^content_by_lua%(nginx%.conf:%d+%)", "chunk"))
            end
            ngx.say(try(function() ngx.var.uri = "x" end))
            ngx.var.slot = true
            ngx.say(ngx.var.slot, " ", try(function() ngx.var.slot = {} end), " ", ngx.var.slot:sub(1, 6))
            ngx.say(try(function() return ngx.var[true] end))
            ngx.say(try(function() ngx.var.nonexistent = "x" end))
        }
    }
--- request
GET /t?q=abc
--- response_body
get by name: compiled
get capture: compiled
set: compiled
5492
12.5 /t nil nil
5000 true
false chunk:31: variable "uri" not changeable
true true nil table:
false chunk:34: bad variable name
false chunk:35: variable "nonexistent" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use "set $nonexistent '';" in the config file to define it first
--- no_error_log
[error]



=== TEST 9: the FFI faces get compiled when handler code without loops calls them (the usual request handler): as traces of their own, or inside the handler's when it grew hot, instead of failing to record on every call
--- http_config eval
$::HttpConfig . q{
    init_worker_by_lua_block {
        -- Every trace that starts at the entry of a function of one of
        -- our faces (chunks named "=ngx.*") and aborts, by where it
        -- started and why. (A loop inside a face that runs a few rounds
        -- per call makes traces of its own that may not loop back, and
        -- until it has one, a trace through it stops there: that is the
        -- compiler's business, not a face's.)
        -- A face counts as compiled when a trace that got compiled ran
        -- through it: its own, or (when the handler itself grew hot
        -- enough, which depends on where LuaJIT's hot counters fall) the
        -- handler's.
        local jutil = require "jit.util"
        local vmdef = require "jit.vmdef"
        local started, recorded = {}, {}
        face_aborts, face_compiled = {}, {}
        jit.attach(function(what, tr, func, pc, otr, oex)
            if what == "start" then
                local fi = jutil.funcinfo(func, pc)
                local src = fi.source or ""
                local entry = fi.currentline == fi.linedefined
                local ours = entry and src:sub(1, 5) == "=ngx."
                started[tr] = ours and (src .. ":" .. fi.currentline) or nil
                recorded[tr] = {}
            elseif what == "abort" and started[tr] then
                local msg = vmdef.traceerr[otr] or tostring(otr)
                if msg ~= "inner loop in root trace" then
                    face_aborts[#face_aborts + 1] = started[tr] .. ": " .. msg:format(tostring(oex))
                end
            elseif what == "stop" then
                for src in pairs(recorded[tr] or {}) do face_compiled[src] = true end
            end
        end, "trace")
        jit.attach(function(tr, func, pc)
            local src = jutil.funcinfo(func, pc).source or ""
            if recorded[tr] and src:sub(1, 5) == "=ngx." then
                recorded[tr][src] = true
            end
        end, "record")
    }
}
--- config
    location ~ ^/hit/(\w+)$ {
        content_by_lua_block {
            local s = ngx.var.uri .. ngx.var[1] .. ngx.var.request_method
            ngx.var.args = "a=1"
            s = s .. ngx.md5(s) .. ngx.md5_bin(s) .. ngx.sha1_bin(s) .. ngx.encode_base64(s)
                .. ngx.escape_uri(s) .. ngx.unescape_uri(s) .. ngx.today() .. ngx.localtime()
                .. ngx.http_time(ngx.time()) .. ngx.now() .. ngx.crc32_short(s)
            local m = ngx.re.match(s, [[(\w+)]], "jo")
            local from = ngx.re.find(s, "GET", "jo")
            local args, hdrs = ngx.req.get_uri_args(), ngx.req.get_headers()
            ngx.req.set_header("X-Seen", ngx.req.get_method())
            ngx.header["X-Hit"] = args.n or "none"
            ngx.status = 200
            ngx.ctx.hit = hdrs.host
            s = s .. ngx.ctx.hit .. ngx.status .. ngx.header["X-Hit"]
            local subbed, n = ngx.re.gsub(s, "[aeiou]", "<$0>", "jo")
            local one = ngx.re.sub(s, [[(\w)(\w)]], "$2$1", "jo")
            ngx.print(#s > 0 and m[1] and from and n > 0 and #subbed > #s and #one == #s and "" or "bad")
        }
    }
    location = /t {
        content_by_lua_block {
            for i = 1, 1000 do
                local res = ngx.location.capture("/hit/x" .. i % 7, { args = { n = i } })
                if res.status ~= 200 or res.body ~= "" then
                    ngx.say("bad response ", res.status, " ", res.body)
                end
            end
            ngx.say(#face_aborts == 0 and "no abort" or table.concat(face_aborts, "\n"))
            -- and the faces the handler calls did compile
            local names = {}
            for name in pairs(face_compiled) do names[#names + 1] = name end
            table.sort(names)
            ngx.say(table.concat(names, " "))
        }
    }
--- request
GET /t
--- response_body
no abort
=ngx.fields =ngx.header =ngx.re =ngx.re.sub =ngx.req =ngx.string =ngx.time =ngx.var
--- no_error_log
[error]



=== TEST 10: ngx.status, ngx.ctx (read and replace), ngx.headers_sent and ngx.is_subrequest stay compiled; the table a loop put in ngx.ctx is the one later phases see; errors still raise
--- http_config eval: $::HttpConfig
--- config
    location = /sub {
        content_by_lua_block {
            local n = 0
            for i = 1, 100 do if ngx.is_subrequest then n = n + 1 end end
            ngx.print(n)
        }
    }
    location = /t {
        rewrite_by_lua_block {
            ngx.ctx.seen = "rewrite"
            local res = check_traces("ctx replace", function()
                for i = 1, 400 do ngx.ctx = { round = i, seen = ngx.ctx.seen } end
            end)
            ngx.ctx.res = res
        }
        content_by_lua_block {
            local n = 0
            -- Nothing is sent before the loops: a status set after the
            -- header went out is only logged.
            local out = { ngx.ctx.res }
            out[#out + 1] = check_traces("ctx read", function()
                for i = 1, 400 do n = n + ngx.ctx.round end
            end)
            out[#out + 1] = check_traces("status", function()
                for i = 1, 400 do
                    ngx.status = 200 + i % 3
                    n = n + ngx.status
                end
            end)
            out[#out + 1] = check_traces("headers_sent, is_subrequest", function()
                for i = 1, 400 do
                    if not ngx.headers_sent and not ngx.is_subrequest then n = n + 1 end
                end
            end)
            out[#out + 1] = table.concat({ n, ngx.ctx.seen, ngx.ctx.round, ngx.location.capture("/sub").body }, " ")
            ngx.status = 201
            ngx.say(table.concat(out, "\n"))
            ngx.say(ngx.headers_sent, " ", ngx.status)
            ngx.status = 404
            local ok, err = pcall(function() ngx.ctx = 1 end)
            ngx.say(ngx.status, " ", ok, " ", (err:gsub("^content_by_lua%(nginx%.conf:%d+%):%d+:", "caller:")))
            ngx.say(pcall(function() ngx.status = 1000 end))
        }
        log_by_lua_block {
            ngx.log(ngx.WARN, "log phase ctx: ", ngx.ctx.seen, " ", ngx.ctx.round, " status ", ngx.status)
        }
    }
--- request
GET /t
--- response_body
ctx replace: compiled
ctx read: compiled
status: compiled
headers_sent, is_subrequest: compiled
240800 rewrite 400 100
true 201
201 false caller: ctx should be a table while getting a number
true
--- error_code: 201
--- error_log
attempt to set ngx.status after sending out response headers
log phase ctx: rewrite 400 status 201
--- no_error_log
[alert]
entry thread aborted



=== TEST 11: ngx.header reads and writes of one value stay compiled; tables, several values and removal answer as before
--- http_config eval: $::HttpConfig
--- config
    location = /t {
        content_by_lua_block {
            local n = 0
            local out = {}
            out[#out + 1] = check_traces("set", function()
                for i = 1, 400 do
                    ngx.header["X-Round"] = "r" .. i
                    ngx.header.x_count = i
                    ngx.header["Content-Type"] = "text/x-" .. i % 2
                end
            end)
            out[#out + 1] = check_traces("get", function()
                for i = 1, 400 do
                    n = n + #ngx.header["X-Round"] + #ngx.header.x_count + #ngx.header.content_type
                    if ngx.header["X-Missing"] == nil then n = n + 1 end
                end
            end)
            out[#out + 1] = check_traces("remove", function()
                for i = 1, 400 do
                    ngx.header["X-Gone"] = "v"
                    ngx.header["X-Gone"] = nil
                end
            end)
            ngx.header["X-Multi"] = { "a", "b" }
            ngx.header["X-Long"] = string.rep("l", 5000)
            local multi = ngx.header["X-Multi"]
            out[#out + 1] = table.concat({ n, type(multi), #multi, multi[2], #ngx.header["X-Long"],
                                           tostring(ngx.header["X-Gone"]) }, " ")
            ngx.say(table.concat(out, "\n"))
        }
    }
--- request
GET /t
--- response_body
set: compiled
get: compiled
remove: compiled
6400 table 2 b 5000 nil
--- response_headers
X-Round: r400
X-Count: 400
Content-Type: text/x-0
X-Multi: a, b
X-Gone:
--- no_error_log
[error]



=== TEST 12: ngx.req.get_method, set_method, http_version, is_internal and start_time stay compiled; bad arguments still raise
--- http_config eval: $::HttpConfig
--- config
    location = /t {
        content_by_lua_block {
            local n = 0
            local out = {}
            out[#out + 1] = check_traces("get_method, http_version, is_internal, start_time", function()
                for i = 1, 400 do
                    n = n + #ngx.req.get_method() + ngx.req.http_version()
                    if not ngx.req.is_internal() and ngx.req.start_time() > 0 then n = n + 1 end
                end
            end)
            out[#out + 1] = check_traces("set_method", function()
                for i = 1, 400 do
                    ngx.req.set_method(i % 2 == 0 and ngx.HTTP_PUT or ngx.HTTP_POST)
                end
            end)
            out[#out + 1] = n .. " " .. ngx.req.get_method()
            local function try(...)
                local ok, err = pcall(ngx.req.set_method, ...)
                return tostring(ok) .. " " .. tostring(err)
            end
            out[#out + 1] = try()
            out[#out + 1] = try(ngx.HTTP_GET, 1)
            out[#out + 1] = try("GET")
            out[#out + 1] = try(3)
            ngx.req.set_method(ngx.HTTP_DELETE)
            out[#out + 1] = ngx.req.get_method()
            ngx.say(table.concat(out, "\n"))
        }
    }
--- request
GET /t
--- response_body
get_method, http_version, is_internal, start_time: compiled
set_method: compiled
2040 PUT
false bad method number
true nil
false bad method number
false unsupported HTTP method: 3
DELETE
--- no_error_log
[error]



=== TEST 13: ngx.req.set_header and clear_header of one value stay compiled; tables of values still work
--- http_config eval: $::HttpConfig
--- config
    location = /t {
        content_by_lua_block {
            local out = {}
            out[#out + 1] = check_traces("set_header, clear_header", function()
                for i = 1, 400 do
                    ngx.req.set_header("X-Round", "r" .. i)
                    ngx.req.set_header("X-Number", i)
                    ngx.req.set_header("X-Gone", "v")
                    ngx.req.clear_header("X-Gone")
                    ngx.req.set_header("X-Also-Gone", "v")
                    ngx.req.set_header("X-Also-Gone", nil)
                end
            end)
            ngx.req.set_header("X-Multi", { "a", 2 })
            local h = ngx.req.get_headers()
            out[#out + 1] = table.concat({ h["x-round"], h["x-number"], tostring(h["x-gone"]),
                                           tostring(h["x-also-gone"]), table.concat(h["x-multi"], ",") }, " ")
            out[#out + 1] = ngx.var.http_x_round
            ngx.say(table.concat(out, "\n"))
        }
    }
--- request
GET /t
--- more_headers
X-Gone: original
--- response_body
set_header, clear_header: compiled
r400 400 nil nil a,2
r400
--- no_error_log
[error]



=== TEST 14: ngx.re.sub and gsub with a template stay compiled; functions, errors and long results answer as before
--- http_config eval: $::HttpConfig
--- config
    location = /t {
        content_by_lua_block {
            local n = 0
            local out = {}
            local words = { "hello world", "foo bar baz", "no-match-here", "" }
            out[#out + 1] = check_traces("sub, gsub", function()
                for i = 1, 400 do
                    local w = words[i % 4 + 1]
                    local a, c1 = ngx.re.sub(w, [[(\w+) (\w+)]], "$2 $1", "jo")
                    local b, c2 = ngx.re.gsub(w, "o", "0")
                    n = n + #a + c1 + #b + c2
                end
            end)
            out[#out + 1] = n
            out[#out + 1] = table.concat({ ngx.re.gsub("a.b.c", [[\.]], "$$") }, " ")
            out[#out + 1] = table.concat({ ngx.re.sub("abc", "(?<x>b)", "[${1}]") }, " ")
            out[#out + 1] = table.concat({ ngx.re.gsub("abc", "[ac]", function(m) return m[0]:upper() end) }, " ")
            local long, cnt = ngx.re.gsub(string.rep("x", 3000), "x", "yy", "jo")
            out[#out + 1] = #long .. " " .. cnt
            local r, c, err = ngx.re.sub("abc", "(", "x")
            out[#out + 1] = tostring(r) .. " " .. tostring(c) .. " " .. err
            r, c, err = ngx.re.sub("abc", "b", "$", "jo")
            out[#out + 1] = tostring(r) .. " " .. tostring(c) .. " " .. err
            out[#out + 1] = table.concat({ ngx.re.gsub("aaa", "a", "b", "jod") }, " ")
            ngx.say(table.concat(out, "\n"))
        }
    }
--- request
GET /t
--- response_body
sub, gsub: compiled
7700
a$b$c 2
a[b]c 1
AbC 2
6000 3000
nil nil pcre2_compile() failed: missing closing parenthesis in "("
nil nil failed to compile the replacement template
bbb 3
--- error_log
lua script: invalid capturing variable name found in "$"



=== TEST 15: ngx.req.get_headers and get_uri_args stay compiled, with their tables as before: repeated keys, raw names, the lookup metatable, arguments without a value, limits
--- http_config eval: $::HttpConfig
--- config
    location = /t {
        content_by_lua_block {
            local n = 0
            local out = {}
            out[#out + 1] = check_traces("get_headers", function()
                for i = 1, 400 do
                    local h = ngx.req.get_headers()
                    n = n + #h["x-twice"] + #h.X_One + #h["Host"]
                end
            end)
            out[#out + 1] = check_traces("get_uri_args", function()
                for i = 1, 400 do
                    local a = ngx.req.get_uri_args()
                    n = n + #a.a + #a.b + (a.flag == true and 1 or 0)
                end
            end)
            out[#out + 1] = n
            local h = ngx.req.get_headers(nil, true)
            out[#out + 1] = table.concat({ tostring(h["X-One"]), tostring(h["x-one"]), tostring(getmetatable(h)) }, " ")
            local h2, tr = ngx.req.get_headers(2)
            local k = {}
            for name in pairs(h2) do k[#k + 1] = name end
            table.sort(k)
            out[#out + 1] = table.concat(k, ",") .. " " .. tostring(tr)
            local a, atr = ngx.req.get_uri_args(2)
            out[#out + 1] = table.concat(a.a, ",") .. " " .. tostring(a.b) .. " " .. tostring(atr)
            local all = ngx.req.get_uri_args(0)
            out[#out + 1] = table.concat({ all.a[1], all.a[2], all.b, tostring(all.flag), all["sp ace"] }, " ")
            local into = { stale = 1 }
            ngx.req.get_uri_args(nil, into)
            out[#out + 1] = tostring(into.stale) .. " " .. into.b
            out[#out + 1] = tostring(select(2, pcall(ngx.req.get_headers, "x")))
            ngx.say(table.concat(out, "\n"))
        }
    }
--- request
GET /t?a=1&a=22&b=x%20y&flag&sp%20ace=v&=empty
--- more_headers
X-Twice: one
X-Twice: two
X-One: 1
--- response_body
get_headers: compiled
get_uri_args: compiled
7200
1 nil nil
connection,host truncated
1,22 nil truncated
1 22 x y true v
nil x y
bad argument #1 to 'get_headers' (number expected, got string)
--- no_error_log
[error]
