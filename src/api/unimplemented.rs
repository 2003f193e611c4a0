//! API functions of lua-nginx-module this module does not implement yet:
//! each raises a clear "not implemented" error instead of Lua's "attempt to
//! call a nil value". Entries leave this list as their areas land.

use crate::lua::lua_State;

const STUBS: &[u8] = br#"
local error = error
local function stub(tbl, prefix, names)
    for _, name in ipairs(names) do
        if tbl[name] == nil then
            local full = prefix .. name
            tbl[name] = function()
                error(full .. " is not implemented yet by this ngx_http_lua_module", 2)
            end
        end
    end
end
local function sub(name)
    local t = rawget(ngx, name)
    if t == nil then
        t = {}
        rawset(ngx, name, t)
    end
    return t
end
-- lua-resty-core's modules we lack: each public function (of the installed
-- lua-resty-core 0.1.25, or of its master for master-only modules) is a
-- stub, and any other field raises too.
local modules = {
}
for name, fields in pairs(modules) do
    package.preload[name] = function()
        local m = { version = "0.1.25" }
        stub(m, name .. ".", fields)
        return setmetatable(m, { __index = function(_, field)
            error(name .. "." .. tostring(field) .. " is not implemented yet by this ngx_http_lua_module", 2)
        end })
    end
end
"#;

/// # Safety
/// `l` must be the main state with the `ngx` global installed.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { super::run_snippet(l, STUBS, c"=ngx_lua_not_implemented") }
}
