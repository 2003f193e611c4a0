//! ngx_http_lua_module: a drop-in replacement for OpenResty's
//! lua-nginx-module, as one nginx dynamic module. See DESIGN.md for the layers.

mod api;
mod c_api;
mod conf;
mod directives;
mod exports;
mod glue;
mod lua;
mod module;
mod phase;
mod runtime;

pub use module::ngx_http_lua_module;
