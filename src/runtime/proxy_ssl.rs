//! The certificate check proxy_ssl_verify_by_lua* runs in: OpenSSL hands
//! the X509_STORE_CTX to the callback only, and the code runs to its end
//! inside it, so the API finds it here while it runs (for the upstream SSL
//! object it belongs to).

use std::cell::Cell;
use std::ptr;

use nginx_sys::{SSL, X509_STORE_CTX};

thread_local! {
    static CURRENT: Cell<(*mut SSL, *mut X509_STORE_CTX)> = const { Cell::new((ptr::null_mut(), ptr::null_mut())) };
}

/// Makes `store` the check of `ssl` until the guard drops.
pub struct StoreGuard((*mut SSL, *mut X509_STORE_CTX));

impl StoreGuard {
    pub fn enter(ssl: *mut SSL, store: *mut X509_STORE_CTX) -> StoreGuard {
        StoreGuard(CURRENT.with(|c| c.replace((ssl, store))))
    }
}

impl Drop for StoreGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// The certificate check under way for the upstream SSL object `ssl`.
pub fn store_of(ssl: *mut SSL) -> Option<*mut X509_STORE_CTX> {
    let (s, store) = CURRENT.with(|c| c.get());
    (!ssl.is_null() && s == ssl && !store.is_null()).then_some(store)
}
