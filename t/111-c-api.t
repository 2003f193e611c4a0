use Test::Nginx::Socket::Lua;

# lua-nginx-module's C API for other modules (api/ngx_http_lua_api.h),
# reached here through the FFI, as Lua code that declares it does.

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: ngx_http_lua_find_zone and ngx_http_lua_shared_dict_get read a lua_shared_dict
--- http_config
    lua_shared_dict store 1m;
    init_by_lua_block {
        local ffi = require "ffi"
        ffi.cdef[[
            typedef struct { size_t len; unsigned char *data; } capi_str_t;
            typedef struct {
                uint8_t type;
                union { int b; double n; capi_str_t s; } value;
            } capi_value_t;
            void *ngx_http_lua_find_zone(const char *name, size_t len);
            intptr_t ngx_http_lua_shared_dict_get(void *zone, const char *key, size_t klen, capi_value_t *val);
            void *ngx_http_lua_get_request(void *L);
        ]]
    }
--- config
    location /t {
        content_by_lua_block {
            local ffi = require "ffi"
            local C = ffi.C
            ngx.say("unknown zone: ", C.ngx_http_lua_find_zone("nosuch", 6) == nil)
            local zone = C.ngx_http_lua_find_zone("store", 5)
            ngx.say("known zone: ", zone ~= nil)
            local store = ngx.shared.store
            store:set("num", 42.5)
            store:set("yes", true)
            store:set("str", "hello world")
            store:set("gone", 1, 0.001)
            ngx.sleep(0.01)
            local val = ffi.new("capi_value_t[1]")
            local function get(key)
                return tonumber(C.ngx_http_lua_shared_dict_get(zone, key, #key, val))
            end
            local rc = get("num")
            ngx.say("num: ", rc, " type ", val[0].type, " ", val[0].value.n)
            rc = get("yes")
            ngx.say("yes: ", rc, " type ", val[0].type, " ", val[0].value.b)
            local buf = ffi.new("unsigned char[5]")
            val[0].value.s.data = buf
            val[0].value.s.len = 5
            rc = get("str")
            ngx.say("str: ", rc, " type ", val[0].type, " ", ffi.string(buf, val[0].value.s.len))
            ngx.say("missing: ", get("nope"), " expired: ", get("gone"))
            ngx.say("request: ", C.ngx_http_lua_get_request(nil) ~= nil)
        }
    }
--- request
GET /t
--- response_body
unknown zone: true
known zone: true
num: 0 type 3 42.5
yes: 0 type 1 1
str: 0 type 4 hello
missing: -5 expired: -5
request: true
--- no_error_log
[error]



=== TEST 2: a string read without a buffer fails with lua-nginx-module's error line
--- http_config
    lua_shared_dict store 1m;
--- config
    location /t {
        content_by_lua_block {
            local ffi = require "ffi"
            pcall(ffi.cdef, [[
                typedef struct { size_t len; unsigned char *data; } capi_str_t;
                typedef struct {
                    uint8_t type;
                    union { int b; double n; capi_str_t s; } value;
                } capi_value_t;
                void *ngx_http_lua_find_zone(const char *name, size_t len);
                intptr_t ngx_http_lua_shared_dict_get(void *zone, const char *key, size_t klen, capi_value_t *val);
            ]])
            ngx.shared.store:set("s", "text")
            local zone = ffi.C.ngx_http_lua_find_zone("store", 5)
            local val = ffi.new("capi_value_t[1]")
            ngx.say(tonumber(ffi.C.ngx_http_lua_shared_dict_get(zone, "s", 1, val)))
        }
    }
--- request
GET /t
--- response_body
-1
--- error_log
no string buffer initialized
