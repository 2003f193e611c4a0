//! API functions of lua-nginx-module this module does not implement yet:
//! each raises a clear "not implemented" error instead of Lua's "attempt to
//! call a nil value". Entries leave this list as their areas land.

use crate::runtime::lua::lua_State;

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
stub(ngx, "ngx.", {
    "escape_uri", "unescape_uri", "encode_args", "decode_args", "encode_base64",
    "decode_base64", "decode_base64mime", "crc32_short", "crc32_long", "hmac_sha1",
    "md5", "md5_bin", "sha1_bin", "quote_sql_str", "today", "time", "now",
    "update_time", "localtime", "utctime", "cookie_time", "http_time",
    "parse_http_time", "on_abort",
})
stub(sub("req"), "ngx.req.", {
    "is_internal", "start_time", "http_version", "raw_header", "get_method",
    "set_method", "set_uri", "set_uri_args", "get_uri_args", "get_post_args",
    "get_headers", "set_header", "clear_header", "read_body", "discard_body",
    "get_body_data", "get_body_file", "set_body_data", "set_body_file", "init_body",
    "append_body", "finish_body", "socket",
})
stub(sub("resp"), "ngx.resp.", { "get_headers" })
stub(sub("thread"), "ngx.thread.", { "spawn", "wait", "kill" })
stub(sub("timer"), "ngx.timer.", { "at", "every", "running_count", "pending_count" })
stub(sub("socket"), "ngx.socket.", { "tcp", "udp", "stream", "connect" })
stub(sub("re"), "ngx.re.", { "match", "find", "gmatch", "sub", "gsub" })
stub(sub("worker"), "ngx.worker.", { "pids" })
"#;

/// # Safety
/// `l` must be the main state with the `ngx` global installed.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    super::run_snippet(l, STUBS, c"=ngx_lua_not_implemented")
}
