//! The directive table and its setters.
//!
//! Our configuration structs are Rust structs, so every directive has a
//! setter; `ngx_command_t.offset` carries which slot or flag it sets.

use std::ffi::{c_char, c_void};
use std::ptr;

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_str_t, ngx_uint_t, NGX_CONF_ANY, NGX_CONF_BLOCK, NGX_CONF_FLAG,
    NGX_CONF_NOARGS, NGX_CONF_TAKE1, NGX_HTTP_LIF_CONF, NGX_HTTP_LOC_CONF, NGX_HTTP_LOC_CONF_OFFSET,
    NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET, NGX_HTTP_SIF_CONF, NGX_HTTP_SRV_CONF,
};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::http::{HttpModuleLocationConf, NgxHttpCoreModule};

use super::chunk::{self, FilePath, LuaCode};
use super::{args, lua_block, LocConf, MainConf};
use crate::conf::main_conf_cf;

/// Which code slot a `*_by_lua*` directive fills.
#[derive(Clone, Copy)]
#[repr(usize)]
enum Slot {
    Init,
    InitWorker,
    ExitWorker,
    Rewrite,
    Access,
    Content,
    Log,
    ServerRewrite,
}

impl Slot {
    fn from(n: usize) -> Slot {
        [
            Slot::Init,
            Slot::InitWorker,
            Slot::ExitWorker,
            Slot::Rewrite,
            Slot::Access,
            Slot::Content,
            Slot::Log,
            Slot::ServerRewrite,
        ][n]
    }
}

/// Which flag an on|off directive sets.
#[repr(usize)]
enum FlagId {
    CodeCache,
    CheckClientAbort,
    Http10Buffering,
    UseDefaultType,
    TransformUnderscores,
    RewriteNoPostpone,
    AccessNoPostpone,
}

unsafe fn args<'a>(cf: *mut ngx_conf_t) -> &'a [ngx_str_t] {
    (*(*cf).args).as_slice::<ngx_str_t>()
}

/// Reports a configuration error in nginx's format and returns NGX_CONF_ERROR.
unsafe fn conf_error(cf: *mut ngx_conf_t, msg: &str) -> *mut c_char {
    ngx::ngx_conf_log_error!(nginx_sys::NGX_LOG_EMERG, cf, "{}", msg);
    NGX_CONF_ERROR
}

enum Form {
    Inline,
    Block,
    File,
}

unsafe extern "C" fn set_code(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        // SAFETY: called by nginx while parsing, with `conf` of the level the
        // command's offset selects.
        unsafe { set_code_inner(cf, cmd, conf) }
    })
}

unsafe fn set_code_inner(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    let name = (*cmd).name.as_bytes();
    let (form, base) = if let Some(b) = name.strip_suffix(b"_block") {
        (Form::Block, b)
    } else if let Some(b) = name.strip_suffix(b"_file") {
        (Form::File, b)
    } else {
        (Form::Inline, name)
    };
    let base = String::from_utf8_lossy(base).into_owned();
    let code = match form {
        Form::Block | Form::Inline => {
            let chunk_name = chunk::inline_name(cf, &base);
            let src = match form {
                Form::Block => match lua_block::read(cf) {
                    Ok(s) => s,
                    Err(e) => return conf_error(cf, &e),
                },
                _ => args(cf)[1].as_bytes().to_vec(),
            };
            LuaCode::inline(src, chunk_name)
        }
        Form::File => match file_path(cf, args(cf)[1]) {
            Ok(p) => LuaCode::file(p),
            Err(e) => return conf_error(cf, &e),
        },
    };
    let slot = Slot::from((*cmd).offset);
    let target: &mut Option<LuaCode> = match slot {
        Slot::Init | Slot::InitWorker | Slot::ExitWorker => {
            let m = &mut *(conf as *mut MainConf);
            match slot {
                Slot::Init => &mut m.init,
                Slot::InitWorker => &mut m.init_worker,
                _ => &mut m.exit_worker,
            }
        }
        _ => {
            let l = &mut *(conf as *mut LocConf);
            let m = main_conf_cf(cf);
            match slot {
                Slot::Rewrite => {
                    m.uses_rewrite = true;
                    &mut l.rewrite
                }
                Slot::Access => {
                    m.uses_access = true;
                    &mut l.access
                }
                Slot::Log => {
                    m.uses_log = true;
                    &mut l.log
                }
                Slot::ServerRewrite => {
                    m.uses_server_rewrite = true;
                    &mut l.server_rewrite
                }
                _ => {
                    let clcf = NgxHttpCoreModule::location_conf_mut(
                        &*((*cf).ctx as *const nginx_sys::ngx_http_conf_ctx_t),
                    )
                    .expect("core loc conf");
                    clcf.handler = Some(crate::phase::content::handler);
                    &mut l.content
                }
            }
        }
    };
    if target.is_some() {
        return c"is duplicate".as_ptr() as *mut c_char;
    }
    *target = Some(code);
    NGX_CONF_OK
}

/// A `*_by_lua_file` path: compiled as a complex value when it has
/// variables, else made absolute against the prefix now.
pub unsafe fn file_path(cf: *mut ngx_conf_t, value: ngx_str_t) -> Result<FilePath, String> {
    let v = value.as_bytes();
    if v.is_empty() {
        return Err("invalid empty file path".into());
    }
    if v.contains(&b'$') {
        let cv = crate::glue::complex::compile(cf, value).ok_or("failed to compile the file path")?;
        return Ok(FilePath::Complex(cv));
    }
    Ok(FilePath::Fixed(crate::glue::complex::prefixed(cf, v)))
}

unsafe extern "C" fn set_flag(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        // SAFETY: called by nginx while parsing, with our conf for the level.
        unsafe {
            let on = match args::flag(cf, cmd) {
                Ok(on) => on,
                Err(e) => return e,
            };
            let id = (*cmd).offset;
            if id == FlagId::RewriteNoPostpone as usize || id == FlagId::AccessNoPostpone as usize {
                let m = &mut *(conf as *mut MainConf);
                if id == FlagId::RewriteNoPostpone as usize {
                    m.rewrite_no_postpone = on;
                } else {
                    m.access_no_postpone = on;
                }
                return NGX_CONF_OK;
            }
            let l = &mut *(conf as *mut LocConf);
            let slot = match id {
                x if x == FlagId::CodeCache as usize => &mut l.code_cache,
                x if x == FlagId::CheckClientAbort as usize => &mut l.check_client_abort,
                x if x == FlagId::Http10Buffering as usize => &mut l.http10_buffering,
                x if x == FlagId::UseDefaultType as usize => &mut l.use_default_type,
                _ => &mut l.transform_underscores,
            };
            let rc = args::set_once(slot, on);
            if rc == NGX_CONF_OK && id == FlagId::CodeCache as usize && !on {
                ngx::ngx_conf_log_error!(
                    nginx_sys::NGX_LOG_ALERT,
                    cf,
                    "lua_code_cache is off; this will hurt performance"
                );
            }
            rc
        }
    })
}

unsafe extern "C" fn set_package_path(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        // SAFETY: called by nginx while parsing the http block.
        unsafe {
            let m = &mut *(conf as *mut MainConf);
            let slot = if (*cmd).offset == 0 {
                &mut m.package_path
            } else {
                &mut m.package_cpath
            };
            args::set_once(slot, args::arg(cf, 1).to_vec())
        }
    })
}

/// Directives taking a count for the main conf; `offset` picks the field.
unsafe extern "C" fn set_count(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        // SAFETY: called by nginx while parsing the http block.
        unsafe {
            let m = &mut *(conf as *mut MainConf);
            let n = match args::count(cf) {
                Ok(n) => n,
                Err(e) => return e,
            };
            let slot = match (*cmd).offset {
                0 => &mut m.malloc_trim,
                1 => &mut m.max_pending_timers,
                _ => &mut m.max_running_timers,
            };
            args::set_once(slot, n)
        }
    })
}

const HTTP: u32 = NGX_HTTP_MAIN_CONF;
const ANY_LOC: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_HTTP_LIF_CONF;
const LOC: u32 = NGX_HTTP_LOC_CONF | NGX_HTTP_LIF_CONF;

type Setter = unsafe extern "C" fn(*mut ngx_conf_t, *mut ngx_command_t, *mut c_void) -> *mut c_char;

pub const fn cmd(
    name: &'static std::ffi::CStr,
    ty: u32,
    set: Setter,
    conf: usize,
    offset: usize,
) -> ngx_command_t {
    ngx_command_t {
        name: ngx_str_t {
            len: name.to_bytes().len(),
            data: name.as_ptr() as *mut u8,
        },
        type_: ty as ngx_uint_t,
        set: Some(set),
        conf: conf as ngx_uint_t,
        offset: offset as ngx_uint_t,
        post: ptr::null_mut(),
    }
}

const M: usize = NGX_HTTP_MAIN_CONF_OFFSET;
pub const L: usize = NGX_HTTP_LOC_CONF_OFFSET;
pub const T1: u32 = NGX_CONF_TAKE1;
const BLK: u32 = NGX_CONF_BLOCK | NGX_CONF_NOARGS;
const FLAG: u32 = NGX_CONF_FLAG;

macro_rules! code_cmds {
    ($ctx:expr, $conf:expr, $slot:expr, $inline:literal, $block:literal, $file:literal) => {
        [
            cmd($inline, $ctx | T1, set_code, $conf, $slot as usize),
            cmd($block, $ctx | BLK, set_code, $conf, $slot as usize),
            cmd($file, $ctx | T1, set_code, $conf, $slot as usize),
        ]
    };
}

/// Every area's directives; an area with directives of its own adds its
/// slice here.
const GROUPS: &[&[ngx_command_t]] = &[
    &flat3(CODE),
    &OTHER,
    &super::set_by_lua::COMMANDS,
    &super::need_body::COMMANDS,
    &super::filter_by_lua::COMMANDS,
    &super::shdict::COMMANDS,
    &super::regex::COMMANDS,
    &super::compat::COMMANDS,
    &SERVER_REWRITE,
    &super::socket::COMMANDS,
    &super::balancer::COMMANDS,
];

const MISSING: usize = super::missing::NAMES.len();
const ALL: usize = count(GROUPS) + MISSING + 1;

const fn count(groups: &[&[ngx_command_t]]) -> usize {
    let (mut n, mut i) = (0, 0);
    while i < groups.len() {
        n += groups[i].len();
        i += 1;
    }
    n
}

const fn flat3(groups: [[ngx_command_t; 3]; 7]) -> [ngx_command_t; 21] {
    let mut out = [ngx_command_t::empty(); 21];
    let mut i = 0;
    while i < 21 {
        out[i] = groups[i / 3][i % 3];
        i += 1;
    }
    out
}

const fn ends_with_block(name: &std::ffi::CStr) -> bool {
    let b = name.to_bytes();
    let n = b.len();
    n > 6
        && b[n - 6] == b'_'
        && b[n - 5] == b'b'
        && b[n - 4] == b'l'
        && b[n - 3] == b'o'
        && b[n - 2] == b'c'
        && b[n - 1] == b'k'
}

/// The whole table: every group, then the known but missing directives,
/// then the null terminator.
const fn table() -> [ngx_command_t; ALL] {
    let mut out = [ngx_command_t::empty(); ALL];
    let mut n = 0;
    let mut g = 0;
    while g < GROUPS.len() {
        let mut i = 0;
        while i < GROUPS[g].len() {
            out[n] = GROUPS[g][i];
            n += 1;
            i += 1;
        }
        g += 1;
    }
    let mut k = 0;
    while k < MISSING {
        let name = super::missing::NAMES[k];
        let block = if ends_with_block(name) { NGX_CONF_BLOCK } else { 0 };
        out[n] = cmd(
            name,
            ANY_LOC | NGX_HTTP_SIF_CONF | NGX_CONF_ANY | block,
            super::missing::not_implemented,
            L,
            0,
        );
        n += 1;
        k += 1;
    }
    out
}

pub static mut COMMANDS: [ngx_command_t; ALL] = table();

const CODE: [[ngx_command_t; 3]; 7] = [
    code_cmds!(
        HTTP,
        M,
        Slot::Init,
        c"init_by_lua",
        c"init_by_lua_block",
        c"init_by_lua_file"
    ),
    code_cmds!(
        HTTP,
        M,
        Slot::InitWorker,
        c"init_worker_by_lua",
        c"init_worker_by_lua_block",
        c"init_worker_by_lua_file"
    ),
    code_cmds!(
        HTTP,
        M,
        Slot::ExitWorker,
        c"exit_worker_by_lua",
        c"exit_worker_by_lua_block",
        c"exit_worker_by_lua_file"
    ),
    code_cmds!(
        ANY_LOC,
        L,
        Slot::Rewrite,
        c"rewrite_by_lua",
        c"rewrite_by_lua_block",
        c"rewrite_by_lua_file"
    ),
    code_cmds!(
        ANY_LOC,
        L,
        Slot::Access,
        c"access_by_lua",
        c"access_by_lua_block",
        c"access_by_lua_file"
    ),
    code_cmds!(
        LOC,
        L,
        Slot::Content,
        c"content_by_lua",
        c"content_by_lua_block",
        c"content_by_lua_file"
    ),
    code_cmds!(
        ANY_LOC,
        L,
        Slot::Log,
        c"log_by_lua",
        c"log_by_lua_block",
        c"log_by_lua_file"
    ),
];

const OTHER: [ngx_command_t; 12] = [
    cmd(
        c"lua_code_cache",
        ANY_LOC | FLAG,
        set_flag,
        L,
        FlagId::CodeCache as usize,
    ),
    cmd(
        c"lua_check_client_abort",
        ANY_LOC | FLAG,
        set_flag,
        L,
        FlagId::CheckClientAbort as usize,
    ),
    cmd(
        c"lua_http10_buffering",
        ANY_LOC | FLAG,
        set_flag,
        L,
        FlagId::Http10Buffering as usize,
    ),
    cmd(
        c"lua_use_default_type",
        ANY_LOC | FLAG,
        set_flag,
        L,
        FlagId::UseDefaultType as usize,
    ),
    cmd(
        c"lua_transform_underscores_in_response_headers",
        ANY_LOC | FLAG,
        set_flag,
        L,
        FlagId::TransformUnderscores as usize,
    ),
    cmd(
        c"rewrite_by_lua_no_postpone",
        HTTP | FLAG,
        set_flag,
        M,
        FlagId::RewriteNoPostpone as usize,
    ),
    cmd(
        c"access_by_lua_no_postpone",
        HTTP | FLAG,
        set_flag,
        M,
        FlagId::AccessNoPostpone as usize,
    ),
    cmd(c"lua_package_path", HTTP | T1, set_package_path, M, 0),
    cmd(c"lua_package_cpath", HTTP | T1, set_package_path, M, 1),
    cmd(c"lua_malloc_trim", HTTP | T1, set_count, M, 0),
    cmd(c"lua_max_pending_timers", HTTP | T1, set_count, M, 1),
    cmd(c"lua_max_running_timers", HTTP | T1, set_count, M, 2),
];

/// server_rewrite_by_lua_block and _file (no quoted-string form, as in
/// lua-nginx-module).
const SERVER_REWRITE: [ngx_command_t; 2] = [
    cmd(
        c"server_rewrite_by_lua_block",
        NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | BLK,
        set_code,
        L,
        Slot::ServerRewrite as usize,
    ),
    cmd(
        c"server_rewrite_by_lua_file",
        NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | T1,
        set_code,
        L,
        Slot::ServerRewrite as usize,
    ),
];
