//! balancer_by_lua*: the upstream's peer selection runs the Lua code.
//!
//! Our `init_upstream` sets up round robin over the block's `server` lines
//! (a placeholder such as `server 0.0.0.1;` is required, as in
//! lua-nginx-module), then installs our per-request init, which wraps the
//! round-robin peer data. Each peer selection (`get`) runs the code
//! synchronously; when it called `ngx.balancer.set_current_peer`, that peer
//! is used, else the round-robin choice.

use std::ffi::c_void;

use nginx_sys::{
    NGX_LOG_ERR, ngx_conf_t, ngx_http_request_t, ngx_http_upstream_free_round_robin_peer,
    ngx_http_upstream_get_round_robin_peer, ngx_http_upstream_init_round_robin,
    ngx_http_upstream_init_round_robin_peer, ngx_http_upstream_save_round_robin_peer_session,
    ngx_http_upstream_set_round_robin_peer_session, ngx_http_upstream_srv_conf_t, ngx_int_t, ngx_pcalloc,
    ngx_peer_connection_t, ngx_uint_t,
};
use ngx::core::Status;
use ngx::http::Request;

use super::resolve;
use crate::glue::log as nlog;
use crate::lua::vm;
use crate::runtime::balancer::PeerData;
use crate::runtime::context;
use crate::runtime::ctx::RequestCtx;
use crate::runtime::run_sync;

pub unsafe extern "C" fn init_upstream(
    cf: *mut ngx_conf_t,
    us: *mut ngx_http_upstream_srv_conf_t,
) -> ngx_int_t {
    crate::glue::catch(Status::NGX_ERROR.into(), || {
        // SAFETY: nginx calls init_upstream with a parsed upstream block.
        unsafe {
            if ngx_http_upstream_init_round_robin(cf, us) != Status::NGX_OK.0 {
                return Status::NGX_ERROR.into();
            }
            (*us).peer.init = Some(init_peer);
            Status::NGX_OK.into()
        }
    })
}

unsafe extern "C" fn init_peer(
    r: *mut ngx_http_request_t,
    us: *mut ngx_http_upstream_srv_conf_t,
) -> ngx_int_t {
    crate::glue::catch(Status::NGX_ERROR.into(), || {
        // SAFETY: nginx calls peer.init with the request being proxied.
        unsafe {
            let Some(code) = crate::conf::main_conf(r).balancer(us) else {
                return Status::NGX_ERROR.into();
            };
            let bp = ngx_pcalloc((*r).pool, std::mem::size_of::<PeerData>()) as *mut PeerData;
            if bp.is_null() {
                return Status::NGX_ERROR.into();
            }
            let u = (*r).upstream;
            (*u).peer.data = bp.cast();
            if ngx_http_upstream_init_round_robin_peer(r, us) != Status::NGX_OK.0 {
                return Status::NGX_ERROR.into();
            }
            (*u).peer.get = Some(get_peer);
            (*u).peer.free = Some(free_peer);
            (*u).peer.set_session = Some(set_session);
            (*u).peer.save_session = Some(save_session);
            (*bp).code = code;
            (*bp).r = r;
            Status::NGX_OK.into()
        }
    })
}

unsafe extern "C" fn get_peer(pc: *mut ngx_peer_connection_t, data: *mut c_void) -> ngx_int_t {
    crate::glue::catch(Status::NGX_ERROR.into(), || {
        // SAFETY: `data` is our PeerData (init_peer), `pc` the upstream's peer.
        unsafe { get_inner(pc, &mut *(data as *mut PeerData)) }
    })
}

unsafe fn get_inner(pc: *mut ngx_peer_connection_t, bp: &mut PeerData) -> ngx_int_t {
    let r = bp.r;
    bp.sockaddr = std::ptr::null_mut();
    bp.socklen = 0;
    bp.more_tries = 0;
    bp.total_tries += 1;
    // SAFETY: `r` is a live request (callers' duty)
    match unsafe { run_code(r, bp) } {
        Err(e) => {
            // SAFETY: `r` is a live request (callers' duty)
            let log = unsafe { (*(*r).connection).log };
            nlog::log_error!(log, NGX_LOG_ERR, "failed to run balancer_by_lua*: {e}");
            return Status::NGX_ERROR.into();
        }
        // ngx.exit: NGX_ERROR, NGX_BUSY ("no live upstreams") and
        // NGX_DECLINED (try the next peer) go to nginx as they are; a
        // status fails the attempt (a stock nginx cannot take a status here).
        Ok(Some(rc)) if rc != Status::NGX_OK.0 => {
            let passed = [Status::NGX_ERROR.0, Status::NGX_BUSY.0, Status::NGX_DECLINED.0];
            return if passed.contains(&rc) {
                rc
            } else {
                Status::NGX_ERROR.into()
            };
        }
        Ok(_) => {}
    }
    if bp.sockaddr.is_null() {
        // SAFETY: `pc` is the upstream's live peer connection; `bp` embeds the round-robin data first
        return unsafe { ngx_http_upstream_get_round_robin_peer(pc, (bp as *mut PeerData).cast()) };
    }
    // SAFETY: `pc` is the upstream's live peer connection; `rrp.peers` is the live round-robin peer list
    unsafe {
        (*pc).sockaddr = bp.sockaddr;
        (*pc).socklen = bp.socklen;
        (*pc).set_cached(0);
        (*pc).connection = std::ptr::null_mut();
        (*pc).name = bp.host;
        (*bp.rrp.peers).set_single(0);
    }
    if bp.more_tries > 0 {
        // SAFETY: `r` is a live request (callers' duty)
        unsafe {
            (*(*r).upstream).peer.tries += bp.more_tries;
        }
    }
    Status::NGX_OK.into()
}

/// Runs the upstream's code with `bp` as the current peer data; returns the
/// status it passed to `ngx.exit`, if any.
unsafe fn run_code(r: *mut ngx_http_request_t, bp: &mut PeerData) -> Result<Option<ngx_int_t>, String> {
    // SAFETY: `r` is a live request (callers' duty)
    let ctx = RequestCtx::get_or_create(unsafe { Request::from_ngx_http_request(r) }).ok_or("no memory")?;
    let _vm = ctx.enter_vm();
    // SAFETY: `r` is a live request (callers' duty); `bp.code` points at the
    // upstream's LuaCode in the main conf, which outlives requests
    let (func, owned) = unsafe { resolve(r, &*bp.code) }?;
    let saved_context = ctx.context;
    ctx.context = context::BALANCER;
    let prev = std::mem::replace(&mut ctx.balancer_peer, bp);
    let outer = ctx.exit_code.take();
    // SAFETY: the request's VM is current; `func` is the resolved balancer code
    let res = unsafe { run_sync::in_request(ctx, context::BALANCER, func, 0, 0) }.map(|_| ());
    let exited = std::mem::replace(&mut ctx.exit_code, outer);
    ctx.balancer_peer = prev;
    ctx.context = saved_context;
    if owned && let Some(vm) = vm::current() {
        vm.unref(func);
    }
    res.map(|_| exited)
}

unsafe extern "C" fn free_peer(pc: *mut ngx_peer_connection_t, data: *mut c_void, state: ngx_uint_t) {
    crate::glue::catch((), || {
        // SAFETY: `data` is our PeerData, `pc` the upstream's peer.
        unsafe {
            let bp = &mut *(data as *mut PeerData);
            if bp.sockaddr.is_null() {
                ngx_http_upstream_free_round_robin_peer(pc, data, state);
                return;
            }
            bp.last_state = state;
            if (*pc).tries > 0 {
                (*pc).tries -= 1;
            }
        }
    })
}

unsafe extern "C" fn set_session(pc: *mut ngx_peer_connection_t, data: *mut c_void) -> ngx_int_t {
    crate::glue::catch(Status::NGX_ERROR.into(), || {
        // SAFETY: `data` is our PeerData; round robin's session functions
        // need its current peer, which only a round-robin choice has.
        unsafe {
            if (*(data as *mut PeerData)).sockaddr.is_null() {
                ngx_http_upstream_set_round_robin_peer_session(pc, data)
            } else {
                Status::NGX_OK.into()
            }
        }
    })
}

unsafe extern "C" fn save_session(pc: *mut ngx_peer_connection_t, data: *mut c_void) {
    crate::glue::catch((), || {
        // SAFETY: as in set_session.
        unsafe {
            if (*(data as *mut PeerData)).sockaddr.is_null() {
                ngx_http_upstream_save_round_robin_peer_session(pc, data);
            }
        }
    })
}
