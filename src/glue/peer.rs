//! Outgoing connections through nginx's `ngx_event_connect_peer`: socket
//! addresses, the connect itself, its completion test and the close.

use std::ffi::c_int;
use std::mem::{MaybeUninit, size_of};
use std::net::{IpAddr, SocketAddr};

use nginx_sys::{
    NGX_AGAIN, NGX_OK, ngx_close_connection, ngx_connection_t, ngx_destroy_pool, ngx_event_connect_peer,
    ngx_event_get_peer, ngx_log_t, ngx_peer_connection_t, ngx_ssl_shutdown, ngx_str_t, sockaddr, socklen_t,
};

/// A socket address of any family, owned.
#[derive(Clone)]
pub struct Addr {
    storage: libc::sockaddr_storage,
    pub len: socklen_t,
}

impl Addr {
    pub fn ip(ip: IpAddr, port: u16) -> Addr {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
        let len = match SocketAddr::new(ip, port) {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: port.to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
                size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                // SAFETY: all-zero is a valid sockaddr_in6.
                let mut sin6: libc::sockaddr_in6 = unsafe { MaybeUninit::zeroed().assume_init() };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = port.to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
                size_of::<libc::sockaddr_in6>()
            }
        };
        Addr {
            storage,
            len: len as socklen_t,
        }
    }

    /// A unix socket path; None when it does not fit sun_path.
    pub fn unix(path: &[u8]) -> Option<Addr> {
        // SAFETY: all-zero is a valid sockaddr_un.
        let mut sun: libc::sockaddr_un = unsafe { MaybeUninit::zeroed().assume_init() };
        if path.is_empty() || path.len() >= sun.sun_path.len() {
            return None;
        }
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in sun.sun_path.iter_mut().zip(path) {
            *d = *s as libc::c_char;
        }
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
        unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_un, sun) };
        Some(Addr {
            storage,
            len: size_of::<libc::sockaddr_un>() as socklen_t,
        })
    }

    /// A copy of an address nginx gave us (the resolver's), with `port`.
    ///
    /// # Safety
    /// `sa` must point to `len` valid bytes.
    pub unsafe fn from_raw(sa: *const sockaddr, len: socklen_t, port: u16) -> Addr {
        // SAFETY: sockaddr_storage is plain C data; all-zero is valid
        let mut storage: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
        let n = (len as usize).min(size_of::<libc::sockaddr_storage>());
        // SAFETY: `sa` has `len` valid bytes (caller's contract); n <= len and fits `storage`
        unsafe { std::ptr::copy_nonoverlapping(sa as *const u8, &mut storage as *mut _ as *mut u8, n) };
        let family = storage.ss_family as c_int;
        if family == libc::AF_INET {
            // SAFETY: the family says `storage` holds a sockaddr_in, which it is large and aligned enough for
            unsafe {
                (*(&mut storage as *mut _ as *mut libc::sockaddr_in)).sin_port = port.to_be();
            }
        } else if family == libc::AF_INET6 {
            // SAFETY: the family says `storage` holds a sockaddr_in6, which it is large and aligned enough for
            unsafe {
                (*(&mut storage as *mut _ as *mut libc::sockaddr_in6)).sin6_port = port.to_be();
            }
        }
        Addr {
            storage,
            len: n as socklen_t,
        }
    }

    pub fn as_ptr(&mut self) -> *mut sockaddr {
        &mut self.storage as *mut _ as *mut sockaddr
    }
}

/// How `connect` went.
pub enum Connect {
    Done(*mut ngx_connection_t),
    InProgress(*mut ngx_connection_t),
    /// The errno of the failure (0 when nginx gave none).
    Failed(c_int),
}

/// Starts a non-blocking connect of a `sock_type` socket to `addr`.
///
/// # Safety
/// `addr` and `name` must outlive the connection; `log` must be live.
pub unsafe fn connect(
    addr: &mut Addr,
    name: *mut ngx_str_t,
    log: *mut ngx_log_t,
    sock_type: c_int,
    local: *mut nginx_sys::ngx_addr_t,
) -> Connect {
    // SAFETY: ngx_peer_connection_t is plain C data; all-zero is nginx's initial state
    let mut pc: ngx_peer_connection_t = unsafe { MaybeUninit::zeroed().assume_init() };
    pc.sockaddr = addr.as_ptr();
    pc.socklen = addr.len;
    pc.name = name;
    pc.get = Some(ngx_event_get_peer);
    pc.log = log;
    pc.set_log_error(1); // NGX_ERROR_ERR
    pc.tries = 1;
    pc.type_ = sock_type;
    pc.local = local;
    // SAFETY: errno is this thread's; cleared so a failure's value is its own
    unsafe {
        *libc::__errno_location() = 0;
    }
    // SAFETY: `pc` is filled; `addr`, `name` and `log` outlive the connection (caller's contract)
    let rc = unsafe { ngx_event_connect_peer(&mut pc) };
    if rc == NGX_OK as isize && !pc.connection.is_null() {
        return Connect::Done(pc.connection);
    }
    if rc == NGX_AGAIN as isize && !pc.connection.is_null() {
        return Connect::InProgress(pc.connection);
    }
    // SAFETY: reads this thread's errno
    let err = unsafe { *libc::__errno_location() };
    if !pc.connection.is_null() {
        // SAFETY: the connection ngx_event_connect_peer made is ours and live
        unsafe { close(pc.connection) };
    }
    Connect::Failed(err)
}

/// The pending error of a connect that became writable, if any.
///
/// # Safety
/// `c` must be a live connection.
pub unsafe fn connect_error(c: *mut ngx_connection_t) -> c_int {
    let mut err: c_int = 0;
    let mut len = size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `c` is a live connection (caller's contract); `err` and `len` are live locals of the sizes given
    if unsafe {
        libc::getsockopt(
            (*c).fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut c_int as *mut libc::c_void,
            &mut len,
        )
    } == -1
    {
        // SAFETY: reads this thread's errno
        err = unsafe { *libc::__errno_location() };
    }
    err
}

/// Closes a connection (TLS shut down without waiting) and its pool.
///
/// # Safety
/// `c` must be a live connection we own; it is gone afterwards.
pub unsafe fn close(c: *mut ngx_connection_t) {
    // SAFETY: `c` is a live connection we own (caller's contract)
    if !unsafe { (*c).ssl.is_null() } {
        // SAFETY: `c` is live with a live TLS connection
        unsafe {
            (*(*c).ssl).set_no_wait_shutdown(1);
            ngx_ssl_shutdown(c);
        }
    }
    // SAFETY: `c` is a live connection we own (caller's contract)
    let pool = unsafe { (*c).pool };
    // SAFETY: `c` is a live connection we own; it is not used after this
    unsafe { ngx_close_connection(c) };
    if !pool.is_null() {
        // SAFETY: the connection's own pool, no longer used by it
        unsafe { ngx_destroy_pool(pool) };
    }
}

/// lua-nginx-module's error text for an errno: strerror, lower-cased.
pub fn errno_text(err: c_int) -> String {
    if err == 0 {
        return "error".into();
    }
    std::io::Error::from_raw_os_error(err)
        .to_string()
        .split(" (os error")
        .next()
        .unwrap_or("error")
        .to_lowercase()
}
