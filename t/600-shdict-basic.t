use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: set and get strings, numbers, booleans, with flags
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:flush_all()
            ngx.say("set: ", dogs:set("s", "hello"))
            ngx.say(dogs:get("s"))
            dogs:set("n", 3.5)
            local v = dogs:get("n")
            ngx.say(type(v), " ", v)
            dogs:set("big", 2^53)
            ngx.say(string.format("%.0f", dogs:get("big")))
            dogs:set("t", true)
            dogs:set("f", false)
            ngx.say(dogs:get("t"), " ", dogs:get("f"))
            dogs:set("e", "")
            ngx.say("[", dogs:get("e"), "]")
            ngx.say("flags: ", dogs:set("fl", "v", 0, 42))
            ngx.say(dogs:get("fl"))
            ngx.say(select("#", dogs:get("s")), " ", select("#", dogs:get("fl")))
            ngx.say("missing: ", dogs:get("nope"), " ", select("#", dogs:get("nope")))
            ngx.say("number key: ", dogs:set(12, "twelve"), " ", dogs:get("12"), " ", dogs:get(12))
            dogs:set("s", "a longer value than before")
            ngx.say(dogs:get("s"))
            dogs:set("s", 7)
            ngx.say(dogs:get("s"))
            ngx.say("binary: ", dogs:set("b\0k", "x\0y"), " ", #dogs:get("b\0k"), " ", dogs:get("b") == nil)
        }
    }
--- request
GET /t
--- response_body
set: truenilfalse
hello
number 3.5
9007199254740992
true false
[]
flags: truenilfalse
v42
1 2
missing: nil 1
number key: true twelve twelve
a longer value than before
7
binary: true 3 true
--- no_error_log
[error]



=== TEST 2: key and value errors
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            ngx.say(dogs:set("", 1))
            ngx.say(dogs:set(nil, 1))
            ngx.say(dogs:set(string.rep("a", 65536), 1))
            ngx.say(dogs:set(string.rep("a", 65535), 1))
            ngx.say(dogs:get(string.rep("a", 65535)))
            ngx.say(dogs:get(""))
            ngx.say(dogs:get(nil))
            ngx.say(dogs:get(string.rep("a", 65536)))
            ngx.say(dogs:set("k", {}))
            ngx.say(dogs:set("k", function() end))
            ngx.say(dogs:add("k", nil))
            ngx.say(dogs:replace("k", nil))
            ngx.say(pcall(dogs.set, dogs, "k", 1, -1))
            ngx.say(pcall(dogs.get, nil, "k"))
            ngx.say(pcall(dogs.get, {}, "k"))
            ngx.say(dogs.get(dogs, "k"))
        }
    }
--- request
GET /t
--- response_body_like chomp
\Anilempty key
nilnil key
nilkey too long
truenilfalse
1
nilempty key
nilnil key
nilkey too long
nilbad value type
nilbad value type
falseattempt to add or replace nil valuesfalse
falseattempt to add or replace nil valuesfalse
falsebad "exptime" argument
falsebad "zone" argument
falsebad "zone" argument
nil
\z
--- no_error_log
[error]



=== TEST 3: add, safe_add, replace, delete
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:flush_all()
            ngx.say("add: ", dogs:add("a", 1))
            ngx.say("add again: ", dogs:add("a", 2))
            ngx.say("safe_add again: ", dogs:safe_add("a", 2))
            ngx.say("get: ", dogs:get("a"))
            ngx.say("replace missing: ", dogs:replace("b", 1))
            ngx.say("replace: ", dogs:replace("a", "x", 0, 5))
            ngx.say("get: ", dogs:get("a"))
            ngx.say("delete: ", dogs:delete("a"))
            ngx.say("get: ", dogs:get("a"))
            ngx.say("delete missing: ", dogs:delete("a"))
            ngx.say("set nil: ", dogs:set("c", 1), " ", dogs:set("c", nil), " ", dogs:get("c"))
            ngx.say("safe_set: ", dogs:safe_set("d", "v"), " ", dogs:get("d"))
        }
    }
--- request
GET /t
--- response_body
add: truenilfalse
add again: falseexistsfalse
safe_add again: falseexistsfalse
get: 1
replace missing: falsenot foundfalse
replace: truenilfalse
get: x5
delete: truenilfalse
get: nil
delete missing: truenilfalse
set nil: true true nil
safe_set: true v
--- no_error_log
[error]



=== TEST 4: data survives between requests
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /set {
        content_by_lua_block {
            ngx.shared.dogs:set("persist", ngx.var.arg_v)
            ngx.say("ok")
        }
    }
    location = /get {
        content_by_lua_block {
            ngx.say(ngx.shared.dogs:get("persist"))
        }
    }
--- request eval
["GET /set?v=one", "GET /get", "GET /set?v=two", "GET /get"]
--- response_body eval
["ok\n", "one\n", "ok\n", "two\n"]
--- no_error_log
[error]



=== TEST 5: ngx.shared lists every dict; unknown names are nil; methods via metatable
--- http_config
    lua_shared_dict dogs 1m;
    lua_shared_dict cats 16k;
--- config
    location = /t {
        content_by_lua_block {
            local names = {}
            for k, v in pairs(ngx.shared) do names[#names + 1] = k .. ":" .. type(v) end
            table.sort(names)
            ngx.say(table.concat(names, " "))
            ngx.say(ngx.shared.birds)
            ngx.say(type(getmetatable(ngx.shared.dogs).__index.get))
            ngx.shared.cats:set("x", 1)
            ngx.say(ngx.shared.dogs:get("x"), " ", ngx.shared.cats:get("x"))
        }
    }
--- request
GET /t
--- response_body
cats:table dogs:table
nil
function
nil 1
--- no_error_log
[error]
