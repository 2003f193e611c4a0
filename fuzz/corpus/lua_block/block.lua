local t = { a = "}", b = '{' }
-- a comment with } and "
local s = [==[ ]] } ]=] ]==]
--[[ long
comment } ]]
ngx.say(t.a, s)
}
trailing