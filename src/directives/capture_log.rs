//! `lua_capture_error_log <size>`: keep this worker's error-log lines in a
//! ring buffer of `size` bytes for `ngx.errlog.get_logs()`. The buffer is
//! allocated here from the cycle's pool, as lua-nginx-module does; the log
//! writer that fills it is installed in each worker (glue/log_hook.rs).

use std::ptr::NonNull;

use nginx_sys::{ngx_command_t, ngx_palloc, ngx_parse_size, ngx_str_t};

use super::args::{ConfErr, conf_error};
use super::{HTTP, MAIN_CONF, TAKE1, cmd, conf_setters};
use crate::conf::MainConf;
use crate::glue::log_ring::LogRing;

pub const COMMANDS: [ngx_command_t; 1] = [cmd(
    c"lua_capture_error_log",
    HTTP | TAKE1,
    set_capture_error_log,
    MAIN_CONF,
)];

/// OpenResty's nginx has NGX_MAX_ERROR_STR 4096 (one whole line must fit);
/// lua-nginx-module's documented minimum is that.
const MIN_SIZE: isize = 4096;

conf_setters! {
    fn set_capture_error_log(cf, _, lmcf: MainConf) {
        if lmcf.capture_log.is_some() {
            return Err(ConfErr::Says(c"is duplicate"));
        }
        // SAFETY: lua_capture_error_log takes one argument, which nginx checked
        let mut value: ngx_str_t = unsafe { (*(*cf).args).as_slice::<ngx_str_t>()[1] };
        let shown = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if value.len == 0 {
            // SAFETY: `cf` is the configuration being parsed
            return Err(unsafe { conf_error(cf, &format!("invalid capture error log size \"{shown}\"")) });
        }
        // SAFETY: `value` is a live ngx_str_t of the directive's argument
        let size = unsafe { ngx_parse_size(&mut value) };
        if size < MIN_SIZE {
            let msg = format!("invalid capture error log size \"{shown}\", minimum size is {MIN_SIZE}");
            // SAFETY: `cf` is the configuration being parsed
            return Err(unsafe { conf_error(cf, &msg) });
        }
        // SAFETY: the conf pool lives as long as the cycle
        let data = unsafe { ngx_palloc((*cf).pool, size as usize) } as *mut u8;
        // SAFETY: the conf pool lives as long as the cycle
        let ring = unsafe { ngx_palloc((*cf).pool, size_of::<LogRing>()) } as *mut LogRing;
        if data.is_null() || ring.is_null() {
            return Err(ConfErr::Logged);
        }
        // SAFETY: `ring` is a fresh, non-null, aligned allocation for one LogRing
        unsafe { ring.write(LogRing::new(data, size as usize)) };
        lmcf.capture_log = NonNull::new(ring);
        Ok(())
    }
}
