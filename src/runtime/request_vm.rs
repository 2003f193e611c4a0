//! A request's own Lua VM, for locations with `lua_code_cache off`: each
//! request runs its code in a fresh VM (as lua-nginx-module does), so
//! edited files and modules take effect at the next request. The request
//! holds the VM, and so does each timer it creates; the last holder to
//! go closes it.

use std::mem::ManuallyDrop;
use std::rc::Rc;

use crate::glue::log as nlog;
use crate::lua::vm::{Scope, Vm};

/// One holder's share of a request VM.
pub struct VmRef(ManuallyDrop<Rc<Vm>>);

impl VmRef {
    pub fn new(vm: Vm) -> VmRef {
        VmRef(ManuallyDrop::new(Rc::new(vm)))
    }

    pub fn vm(&self) -> &Vm {
        &self.0
    }
}

impl Clone for VmRef {
    fn clone(&self) -> VmRef {
        VmRef(ManuallyDrop::new(Rc::clone(&self.0)))
    }
}

impl Drop for VmRef {
    fn drop(&mut self) {
        let count = Rc::strong_count(&self.0);
        nlog::log_debug_http!(
            nlog::cycle_log(),
            "lua decrementing the reference count for Lua VM: {count}"
        );
        // SAFETY: taken once, here; the field is not used after.
        let rc = unsafe { ManuallyDrop::take(&mut self.0) };
        if count > 1 {
            return;
        }
        // The finalizers lua_close runs see this VM as the current one.
        let scope = Scope::enter(Some(&rc));
        drop(rc);
        drop(scope);
    }
}
