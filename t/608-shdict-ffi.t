use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: hot shared dict methods stay in compiled traces: no trace aborts on something the compiler does not support (a C function, a light userdata argument...)
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local vmdef = require "jit.vmdef"
            local aborts, traces = {}, 0
            local function on_trace(what, tr, func, pc, otr, oex)
                if what == "abort" then
                    -- Loop unrolling and similar limits are the compiler's
                    -- own business; NYI ("not yet implemented") aborts are
                    -- what an API that is not FFI-friendly causes.
                    local msg = vmdef.traceerr[otr] or tostring(otr)
                    if msg:find("NYI", 1, true) then
                        aborts[#aborts + 1] = msg:format(tostring(oex))
                    end
                elseif what == "stop" then
                    traces = traces + 1
                end
            end
            jit.flush()
            jit.attach(on_trace, "trace")
            local d = ngx.shared.dogs
            local sum = 0
            for i = 1, 300 do
                local k = "k" .. (i % 16)
                d:set(k, i)
                d:add("a" .. (i % 4), "v")
                d:replace(k, i + 1)
                d:safe_set("s" .. (i % 8), "value")
                sum = sum + d:get(k)
                local v, flags, stale = d:get_stale(k)
                d:incr("hits", 1, 0)
                d:ttl(k)
                d:expire(k, 10)
                d:delete("a" .. (i % 4))
                sum = sum + (d:capacity() > 0 and 1 or 0) + (d:free_space() >= 0 and 1 or 0)
            end
            jit.attach(on_trace)
            ngx.say("traces: ", traces > 0, ", aborts: ", #aborts)
            for _, a in ipairs(aborts) do ngx.say(a) end
            ngx.say(sum > 0, " ", d:get("hits"))
        }
    }
--- request
GET /t
--- response_body_like
^traces: true, aborts: 0
true \d+
--- no_error_log
[error]



=== TEST 2: values larger than the reusable 4 KB read buffer, and right at its size
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.dogs
            for _, n in ipairs({4095, 4096, 4097, 100000}) do
                local v = string.rep("x", n - 1) .. "y"
                assert(d:set("big" .. n, v, 0, n))
                local got, flags = d:get("big" .. n)
                local sgot, sflags, stale = d:get_stale("big" .. n)
                ngx.say(n, ": ", #got, " ", got == v, " ", flags, " ", sgot == v, " ", sflags, " ", stale)
            end
            -- a small value after a large one comes from the reusable buffer again
            d:set("small", "abc")
            ngx.say(d:get("small"))
        }
    }
--- request
GET /t
--- response_body
4095: 4095 true 4095 true 4095 false
4096: 4096 true 4096 true 4096 false
4097: 4097 true 4097 true 4097 false
100000: 100000 true 100000 true 100000 false
abc
--- no_error_log
[error]



=== TEST 3: the methods' table is the dictionaries' metatable and its own __index
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.dogs
            local mt = getmetatable(d)
            ngx.say(d.__index == mt, " ", mt.__index == mt)
            local names = {}
            for k in pairs(mt) do names[#names + 1] = k end
            table.sort(names)
            ngx.say(#names, ": ", table.concat(names, " "))
        }
    }
--- request
GET /t
--- response_body
true true
22: __index add capacity delete expire flush_all flush_expired free_space get get_keys get_stale incr llen lpop lpush replace rpop rpush safe_add safe_set set ttl
--- no_error_log
[error]



=== TEST 4: a self that is not a dictionary is refused before it reaches C, at the caller's line
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.dogs
            local sock = ngx.socket.tcp()
            local fake = setmetatable({ d[1] }, { __index = getmetatable(d) })
            -- our metatable around something that is no zone (a NULL light
            -- userdata, nothing): refused, not dereferenced
            local null_zone = setmetatable({ ngx.null }, getmetatable(d))
            local no_zone = setmetatable({}, getmetatable(d))
            for _, self in ipairs({ sock, {}, fake, "dogs", null_zone, no_zone }) do
                for _, m in ipairs({ "get", "get_stale", "set", "add", "replace", "delete", "incr",
                                     "ttl", "expire", "flush_all", "capacity", "free_space" }) do
                    local ok, err = pcall(d[m], self, "k", 1)
                    if ok or err ~= 'bad "zone" argument' then
                        ngx.say(m, ": ", ok, " ", err)
                    end
                end
            end
            -- (not tail calls, so that the caller's frame is there to name)
            local ok, err = pcall(function() local v = d.get({}, "k") return v end)
            ngx.say(err)
            ok, err = pcall(function() local v = d:set("k", 1, -1) return v end)
            ngx.say(err)
            ok, err = pcall(function() local v = d:incr("k", 1, nil, 10) return v end)
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body_like
^content_by_lua\(nginx.conf:\d+\):\d+: bad "zone" argument
content_by_lua\(nginx.conf:\d+\):\d+: bad "exptime" argument
content_by_lua\(nginx.conf:\d+\):\d+: must provide "init" when providing "init_ttl"
--- no_error_log
[error]



=== TEST 5: lua-nginx-module's FFI ABI: code that declares ngx_http_lua_ffi_shdict_* itself calls them directly
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local ffi = require "ffi"
            pcall(ffi.cdef, [[
void *ngx_http_lua_ffi_shdict_udata_to_zone(void *zone_udata);
size_t ngx_http_lua_ffi_shdict_capacity(void *zone);
long ngx_http_lua_ffi_shdict_get_ttl(void *zone, const unsigned char *key, size_t key_len);
            ]])
            local C = ffi.C
            local d = ngx.shared.dogs
            local zone = C.ngx_http_lua_ffi_shdict_udata_to_zone(d[1])
            ngx.say("zone: ", zone ~= nil, ", capacity: ", tonumber(C.ngx_http_lua_ffi_shdict_capacity(zone)) == d:capacity())
            d:set("k", 1, 100)
            local ms = tonumber(C.ngx_http_lua_ffi_shdict_get_ttl(zone, "k", 1))
            ngx.say("ttl ms: ", ms > 99000 and ms <= 100000)
            ngx.say("missing: ", tonumber(C.ngx_http_lua_ffi_shdict_get_ttl(zone, "nope", 4)))
            -- a pointer that is no dictionary's zone is refused
            ngx.say("bogus: ", C.ngx_http_lua_ffi_shdict_udata_to_zone(ffi.cast("void *", 12345)) == nil)
        }
    }
--- request
GET /t
--- response_body
zone: true, capacity: true
ttl ms: true
missing: -5
bogus: true
--- no_error_log
[error]
