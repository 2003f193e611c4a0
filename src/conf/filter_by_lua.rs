//! `header_filter_by_lua*`, `body_filter_by_lua*` and
//! `lua_capture_max_body_size`.

use std::ffi::{c_char, c_void};

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_parse_size, ngx_str_t, NGX_CONF_BLOCK, NGX_CONF_NOARGS, NGX_HTTP_LIF_CONF,
    NGX_HTTP_LOC_CONF, NGX_HTTP_MAIN_CONF, NGX_HTTP_SRV_CONF,
};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};

use super::chunk::{self, LuaCode};
use super::directives::{cmd, file_path, L, T1};
use super::{lua_block, LocConf};

const CTX: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_HTTP_LIF_CONF;
const BLK: u32 = NGX_CONF_BLOCK | NGX_CONF_NOARGS;
const HEADER: usize = 0;
const BODY: usize = 1;

pub const COMMANDS: [ngx_command_t; 7] = [
    cmd(c"header_filter_by_lua", CTX | T1, set_filter, L, HEADER),
    cmd(c"header_filter_by_lua_block", CTX | BLK, set_filter, L, HEADER),
    cmd(c"header_filter_by_lua_file", CTX | T1, set_filter, L, HEADER),
    cmd(c"body_filter_by_lua", CTX | T1, set_filter, L, BODY),
    cmd(c"body_filter_by_lua_block", CTX | BLK, set_filter, L, BODY),
    cmd(c"body_filter_by_lua_file", CTX | T1, set_filter, L, BODY),
    cmd(c"lua_capture_max_body_size", CTX | T1, set_max_body, L, 0),
];

unsafe fn conf_error(cf: *mut ngx_conf_t, msg: &str) -> *mut c_char {
    ngx::ngx_conf_log_error!(nginx_sys::NGX_LOG_EMERG, cf, "{}", msg);
    NGX_CONF_ERROR
}

unsafe fn arg(cf: *mut ngx_conf_t, i: usize) -> ngx_str_t {
    (*(*cf).args).as_slice::<ngx_str_t>()[i]
}

unsafe extern "C" fn set_filter(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        // SAFETY: called by nginx while parsing, with our location conf.
        unsafe { set_filter_inner(cf, cmd, &mut *(conf as *mut LocConf)) }
    })
}

unsafe fn set_filter_inner(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, lcf: &mut LocConf) -> *mut c_char {
    let name = (*cmd).name.as_bytes();
    let code = if name.ends_with(b"_file") {
        match file_path(cf, arg(cf, 1)) {
            Ok(p) => LuaCode::file(p),
            Err(e) => return conf_error(cf, &e),
        }
    } else {
        let block = name.ends_with(b"_block");
        let base = if (*cmd).offset == HEADER {
            "header_filter_by_lua"
        } else {
            "body_filter_by_lua"
        };
        let chunk_name = chunk::inline_name(cf, base);
        let src = if block {
            match lua_block::read(cf) {
                Ok(s) => s,
                Err(e) => return conf_error(cf, &e),
            }
        } else {
            arg(cf, 1).as_bytes().to_vec()
        };
        LuaCode::inline(src, chunk_name)
    };
    let slot = if (*cmd).offset == HEADER {
        &mut lcf.header_filter
    } else {
        &mut lcf.body_filter
    };
    if slot.is_some() {
        return c"is duplicate".as_ptr() as *mut c_char;
    }
    *slot = Some(code);
    NGX_CONF_OK
}

unsafe extern "C" fn set_max_body(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        // SAFETY: called by nginx while parsing, with our location conf.
        unsafe {
            let lcf = &mut *(conf as *mut LocConf);
            if lcf.capture_max_body_size.is_some() {
                return c"is duplicate".as_ptr() as *mut c_char;
            }
            let mut v = arg(cf, 1);
            let n = ngx_parse_size(&mut v);
            if n < 0 {
                return c"invalid value".as_ptr() as *mut c_char;
            }
            lcf.capture_max_body_size = Some(n as usize);
            NGX_CONF_OK
        }
    })
}
