//! Directives of lua-nginx-module this module does not implement yet. They
//! are known names, so `nginx -t` says clearly what is missing instead of
//! "unknown directive".

use super::args::{ConfErr, conf_error};
use super::conf_setters;
use crate::conf::LocConf;

conf_setters! {
    pub fn not_implemented(cf, cmd, _: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let name = String::from_utf8_lossy(unsafe { (*cmd).name.as_bytes() }).into_owned();
        let msg = format!("\"{name}\" is not implemented yet by this ngx_http_lua_module");
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        Err::<(), ConfErr>(unsafe { conf_error(cf, &msg) })
    }
}

/// lua-nginx-module's directives that are still missing here.
pub const NAMES: &[&std::ffi::CStr] = &[];
