//! The directive table and every directive setter.
//!
//! Our configuration structs are Rust structs, so each directive has a
//! setter of its own (one per field: nothing is told apart by
//! `ngx_command_t.offset`). [`conf_setters!`] writes the part nginx sees of
//! each (panic guard, conf cast, result); the bodies say what the
//! directive does.

pub mod args;
mod balancer;
mod by_lua;
mod capture_log;
mod chunk_name;
mod code;
mod filter_by_lua;
mod lua_block;
mod lua_lexer;
mod need_body;
mod proxy_ssl;
mod regex;
mod set_by_lua;
mod settings;
mod shdict;
mod socket;
mod ssl;
mod unimplemented;
mod vm_tuning;

use std::ffi::{CStr, c_char, c_void};
use std::ptr;

use nginx_sys::{
    NGX_CONF_1MORE, NGX_CONF_2MORE, NGX_CONF_ANY, NGX_CONF_BLOCK, NGX_CONF_FLAG, NGX_CONF_NOARGS,
    NGX_CONF_TAKE1, NGX_CONF_TAKE2, NGX_HTTP_LIF_CONF, NGX_HTTP_LOC_CONF, NGX_HTTP_LOC_CONF_OFFSET,
    NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET, NGX_HTTP_SIF_CONF, NGX_HTTP_SRV_CONF, ngx_command_t,
    ngx_conf_t, ngx_str_t, ngx_uint_t,
};

/// Declares directive setters: `fn name(cf, cmd, conf: ConfType) { body }`,
/// where the body returns an [`args::ConfResult`] and `conf` is the
/// structure of the level the command's `conf` field selects.
macro_rules! conf_setters {
    ($(
        $(#[$attr:meta])*
        $vis:vis fn $name:ident($cf:tt, $cmd:tt, $conf:tt: $ty:ty) $body:block
    )*) => {$(
        $(#[$attr])*
        $vis unsafe extern "C" fn $name(
            cf: *mut ::nginx_sys::ngx_conf_t,
            cmd: *mut ::nginx_sys::ngx_command_t,
            conf: *mut ::std::ffi::c_void,
        ) -> *mut ::std::ffi::c_char {
            unsafe fn body(
                $cf: *mut ::nginx_sys::ngx_conf_t,
                $cmd: *mut ::nginx_sys::ngx_command_t,
                $conf: &mut $ty,
            ) -> $crate::directives::args::ConfResult $body
            $crate::glue::catch(::ngx::core::NGX_CONF_ERROR, || {
                // SAFETY: nginx calls a setter while parsing its directive,
                // with the conf structure of the level the command selects
                // (the table pairs each setter with that level).
                $crate::directives::args::conf_result(unsafe { body(cf, cmd, &mut *(conf as *mut $ty)) })
            })
        }
    )*};
}
use conf_setters;

/// The `conf` of a command: which level's structure its setter gets.
pub const MAIN_CONF: usize = NGX_HTTP_MAIN_CONF_OFFSET;
pub const LOC_CONF: usize = NGX_HTTP_LOC_CONF_OFFSET;

/// Where a directive may appear.
pub const HTTP: u32 = NGX_HTTP_MAIN_CONF;
/// http, server, location and `if` in location.
pub const ANY_LOC: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_HTTP_LIF_CONF;
/// location and `if` in location.
pub const LOC: u32 = NGX_HTTP_LOC_CONF | NGX_HTTP_LIF_CONF;

/// What a directive takes.
pub const TAKE1: u32 = NGX_CONF_TAKE1;
pub const TAKE2: u32 = NGX_CONF_TAKE2;
pub const ONE_OR_MORE: u32 = NGX_CONF_1MORE;
pub const TWO_OR_MORE: u32 = NGX_CONF_2MORE;
pub const FLAG: u32 = NGX_CONF_FLAG;
/// A `{ ... }` block with no argument before it.
pub const BLOCK: u32 = NGX_CONF_BLOCK | NGX_CONF_NOARGS;

type Setter = unsafe extern "C" fn(*mut ngx_conf_t, *mut ngx_command_t, *mut c_void) -> *mut c_char;

/// One command of the table.
pub const fn cmd(name: &'static CStr, ty: u32, set: Setter, conf: usize) -> ngx_command_t {
    ngx_command_t {
        name: ngx_str_t {
            len: name.to_bytes().len(),
            data: name.as_ptr() as *mut u8,
        },
        type_: ty as ngx_uint_t,
        set: Some(set),
        conf: conf as ngx_uint_t,
        offset: 0,
        post: ptr::null_mut(),
    }
}

/// Every area's directives; an area with directives of its own adds its
/// slice here.
const GROUPS: &[&[ngx_command_t]] = &[
    &by_lua::COMMANDS,
    &settings::COMMANDS,
    &set_by_lua::COMMANDS,
    &need_body::COMMANDS,
    &filter_by_lua::COMMANDS,
    &shdict::COMMANDS,
    &regex::COMMANDS,
    &vm_tuning::COMMANDS,
    &by_lua::SERVER_REWRITE,
    &socket::COMMANDS,
    &balancer::COMMANDS,
    &ssl::COMMANDS,
    &proxy_ssl::COMMANDS,
    &capture_log::COMMANDS,
];

const MISSING: usize = unimplemented::NAMES.len();
const ALL: usize = count(GROUPS) + MISSING + 1;

const fn count(groups: &[&[ngx_command_t]]) -> usize {
    let (mut n, mut i) = (0, 0);
    while i < groups.len() {
        n += groups[i].len();
        i += 1;
    }
    n
}

const fn ends_with_block(name: &CStr) -> bool {
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
// The list of missing directives may be empty (it is now).
#[allow(clippy::absurd_extreme_comparisons)]
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
        let name = unimplemented::NAMES[k];
        let block = if ends_with_block(name) { NGX_CONF_BLOCK } else { 0 };
        out[n] = cmd(
            name,
            ANY_LOC | NGX_HTTP_SIF_CONF | NGX_CONF_ANY | block,
            unimplemented::not_implemented,
            LOC_CONF,
        );
        n += 1;
        k += 1;
    }
    out
}

pub static mut COMMANDS: [ngx_command_t; ALL] = table();
