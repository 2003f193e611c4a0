//! The wait of ngx.req.read_body: nginx reads the body and calls our post
//! handler, which resumes the thread that asked for it.

use nginx_sys::ngx_http_request_t;
use ngx::http::Request;

use super::ctx::RequestCtx;
use super::scheduler::{Wait, wake};
use crate::lua::lua_State;

/// Nothing to cancel: nginx only calls the post handler while the request
/// lives, and the handler finds no waiter once the thread is gone.
pub struct BodyWait;

impl Wait for BodyWait {}

/// Records `co` of `ctx` as waiting for the body.
pub fn arm(ctx: &mut RequestCtx, co: *mut lua_State) -> Box<BodyWait> {
    ctx.body_waiter = co;
    Box::new(BodyWait)
}

/// nginx's post handler of `ngx_http_read_client_request_body`.
pub unsafe extern "C" fn post_read(r: *mut ngx_http_request_t) {
    crate::glue::catch((), || {
        // SAFETY: nginx calls the post handler with the live request.
        unsafe {
            let Some(ctx) = RequestCtx::get(Request::from_ngx_http_request(r)) else {
                return;
            };
            let co = std::mem::replace(&mut ctx.body_waiter, std::ptr::null_mut());
            if co.is_null() {
                // Read at once: read_body returns without waiting.
                return;
            }
            let Some(wait) = ctx.take_wait(co) else {
                return;
            };
            let ctx_ptr: *mut RequestCtx = ctx;
            wake(ctx_ptr, co, 0);
            drop(wait);
        }
    })
}
