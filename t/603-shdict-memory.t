use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: a full zone evicts the least recently used items (forcible = true)
--- http_config
    lua_shared_dict small 64k;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.small
            d:flush_all()
            d:flush_expired()
            local forced_at
            for i = 1, 2000 do
                local ok, err, forcible = d:set("key" .. i, string.rep("v", 100))
                if not ok then
                    ngx.say("set failed: ", err)
                    return
                end
                if forcible and not forced_at then forced_at = i end
            end
            ngx.say("evicted: ", forced_at ~= nil and forced_at > 10)
            ngx.say("newest kept: ", d:get("key2000") ~= nil)
            ngx.say("oldest evicted: ", d:get("key1"))
            local keys = d:get_keys(0)
            ngx.say("kept fewer than written: ", #keys > 10 and #keys < 2000)
        }
    }
--- request
GET /t
--- response_body
evicted: true
newest kept: true
oldest evicted: nil
kept fewer than written: true
--- no_error_log
[error]



=== TEST 2: recently read items survive eviction
--- http_config
    lua_shared_dict small 64k;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.small
            d:flush_all()
            d:flush_expired()
            d:set("precious", "p")
            for i = 1, 2000 do
                d:get("precious")
                d:set("key" .. i, string.rep("v", 100))
            end
            ngx.say("precious: ", d:get("precious"))
        }
    }
--- request
GET /t
--- response_body
precious: p
--- no_error_log
[error]



=== TEST 3: safe_set and safe_add never evict: "no memory"
--- http_config
    lua_shared_dict small 64k;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.small
            d:flush_all()
            d:flush_expired()
            local n, err
            for i = 1, 2000 do
                local ok, e, forcible = d:safe_set("key" .. i, string.rep("v", 100))
                if not ok then
                    n, err = i, e
                    ngx.say("safe_set: ", ok, " ", e, " ", forcible)
                    break
                end
            end
            ngx.say("stopped: ", n ~= nil and n > 10)
            ngx.say("first kept: ", d:get("key1") ~= nil)
            ngx.say("safe_add: ", d:safe_add("another", string.rep("v", 100)))
            ngx.say("set evicts: ", d:set("another", string.rep("v", 100)))
            ngx.say("huge: ", d:set("huge", string.rep("v", 64 * 1024)))
        }
    }
--- request
GET /t
--- response_body
safe_set: false no memory false
stopped: true
first kept: true
safe_add: falseno memoryfalse
set evicts: trueniltrue
huge: falseno memorytrue
--- no_error_log
[error]



=== TEST 4: capacity and free_space
--- http_config
    lua_shared_dict dogs 1m;
    lua_shared_dict cats 12k;
--- config
    location = /t {
        content_by_lua_block {
            local dogs, cats = ngx.shared.dogs, ngx.shared.cats
            dogs:flush_all()
            dogs:flush_expired()
            ngx.say("capacity: ", dogs:capacity(), " ", cats:capacity())
            local free = dogs:free_space()
            ngx.say("free: ", free > 900 * 1024 and free < 1024 * 1024, " ", free % 4096)
            for i = 1, 100 do dogs:set("k" .. i, string.rep("x", 8000)) end
            local used = dogs:free_space()
            ngx.say("less after filling: ", used < free)
            dogs:flush_all()
            dogs:flush_expired()
            ngx.say("back after flush: ", dogs:free_space() == free)
        }
    }
--- request
GET /t
--- response_body
capacity: 1048576 12288
free: true 0
less after filling: true
back after flush: true
--- no_error_log
[error]



=== TEST 5: a 12k zone holds a few dozen small items, then evicts
--- http_config
    lua_shared_dict tiny 12k;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.tiny
            d:flush_all()
            d:flush_expired()
            local stored, forced = 0, nil
            for i = 1, 500 do
                local ok, err, forcible = d:set("k" .. i, i)
                if not ok then ngx.say("failed: ", err) return end
                if forcible then forced = forced or i else stored = i end
            end
            ngx.say("stored before eviction: ", stored > 5 and stored < 500, " forced: ", forced == stored + 1)
            ngx.say("last: ", d:get("k500"), " first: ", d:get("k1"))
            ngx.say("safe_set: ", d:safe_set("new", 1))
            ngx.say("set: ", d:set("new", 1))
        }
    }
--- request
GET /t
--- response_body
stored before eviction: true forced: true
last: 500 first: nil
safe_set: falseno memoryfalse
set: trueniltrue
--- no_error_log
[error]



=== TEST 6: a full dict: a push whose item finds no room returns nil, "no memory"; one whose new list finds none returns false, "no memory"
--- http_config
    lua_shared_dict small 64k;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.small
            d:flush_all()
            d:flush_expired()
            local len, err, n = nil, nil, 0
            repeat
                len, err = d:lpush("items", "bar")
                n = n + 1
            until not len or n > 100000
            ngx.say("item: ", tostring(len), " ", err, ", list kept: ", d:llen("items") == n - 1)
            local ok, err2 = d:lpush(string.rep("k", 1500), "x")
            ngx.say("list: ", tostring(ok), " ", err2)
        }
    }
--- request
GET /t
--- response_body
item: nil no memory, list kept: true
list: false no memory
--- no_error_log
[error]
