//! The write guard on `_G`: code that creates a global outside init_by_lua
//! and init_worker_by_lua gets lua-nginx-module's warning (globals are
//! shared by all requests of a worker).

use crate::lua::lua_State;

const GUARD: &[u8] = br#"
local rawset, tostring, getmetatable, setmetatable = rawset, tostring, getmetatable, setmetatable
local traceback, get_phase, log, WARN = debug.traceback, ngx.get_phase, ngx.log, ngx.WARN
-- Every phase but the ones that set a worker up, as in lua-nginx-module
-- (timers and the TLS handshake phases included).
local quiet_phases = { init = true, init_worker = true }
local mt = getmetatable(_G) or {}
if not mt.__newindex then
    mt.__newindex = function(t, k, v)
        if not quiet_phases[get_phase()] then
            log(WARN, "writing a global Lua variable ('", tostring(k),
                "') which may lead to race conditions between concurrent requests, ",
                "so prefer the use of 'local' variables", traceback('', 2))
        end
        rawset(t, k, v)
    end
    setmetatable(_G, mt)
end
"#;

/// Installs the guard (after init_by_lua, whose globals are intended).
///
/// # Safety
/// `l` must be the main state, not running.
pub unsafe fn guard_writes(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    let _ = unsafe { super::run_snippet(l, GUARD, c"=ngx_lua_global_guard") };
}
