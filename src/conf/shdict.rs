//! A `lua_shared_dict` zone as this process sees it.

use nginx_sys::ngx_shm_zone_t;

use super::MainConf;
use crate::glue::shdict_store::Dict;

/// One dictionary as this process sees it; `shm_zone->data` points here.
/// Owned by the main conf, so it lives as long as its cycle (and the Lua VM
/// holding a pointer to it).
pub struct Zone {
    pub name: Vec<u8>,
    pub shm_zone: *mut ngx_shm_zone_t,
    /// Set by the zone's init callback.
    pub dict: Option<Dict>,
    /// The main conf owning the zone, which counts the zones initialised.
    pub main: *mut MainConf,
}

impl Zone {
    pub fn capacity(&self) -> usize {
        // SAFETY: the zone belongs to the live cycle that owns `self`.
        unsafe { (*self.shm_zone).shm.size }
    }
}
