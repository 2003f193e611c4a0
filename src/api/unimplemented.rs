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
-- lua-resty-core's modules we lack: each public function of the installed
-- lua-resty-core 0.1.25 is a stub, and any other field raises too.
local modules = {
    ["ngx.ssl"] = { "clear_certs", "set_der_cert", "set_der_priv_key", "raw_server_addr",
                    "server_port", "server_name", "raw_client_addr", "cert_pem_to_der",
                    "priv_key_pem_to_der", "get_tls1_version", "parse_pem_cert",
                    "parse_pem_priv_key", "set_cert", "set_priv_key", "verify_client",
                    "get_tls1_version_str" },
    ["ngx.ssl.session"] = { "get_serialized_session", "get_session_id", "set_serialized_session" },
    ["ngx.ssl.clienthello"] = { "get_client_hello_server_name", "get_client_hello_ext",
                                "get_supported_versions", "set_protocols" },
    ["ngx.ocsp"] = { "get_ocsp_responder_from_der_chain", "create_ocsp_request",
                     "validate_ocsp_response", "set_ocsp_status_resp" },
}
local ssl_versions = { SSL3_VERSION = 0x0300, TLS1_VERSION = 0x0301, TLS1_1_VERSION = 0x0302,
                       TLS1_2_VERSION = 0x0303, TLS1_3_VERSION = 0x0304 }
for name, fields in pairs(modules) do
    package.preload[name] = function()
        local m = { version = "0.1.25" }
        if name == "ngx.ssl" then
            for k, v in pairs(ssl_versions) do m[k] = v end
        end
        stub(m, name .. ".", fields)
        return setmetatable(m, { __index = function(_, field)
            error(name .. "." .. tostring(field) .. " is not implemented yet by this ngx_http_lua_module", 2)
        end })
    end
end
ndk = { set_var = setmetatable({}, { __index = function(_, directive)
    error("ndk.set_var." .. tostring(directive) .. " is not implemented yet by this ngx_http_lua_module", 2)
end }) }
"#;

/// # Safety
/// `l` must be the main state with the `ngx` global installed.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    super::run_snippet(l, STUBS, c"=ngx_lua_not_implemented")
}
