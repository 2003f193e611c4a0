//! The store behind `ngx.shared.DICT`, kept in an nginx shared memory zone.
//!
//! As in lua-nginx-module: a red-black tree (nginx's own `ngx_rbtree`)
//! keyed by a hash of the key, ties broken by the key bytes, and an LRU
//! queue of all items, most recently used first. Every structure lives in the
//! zone's slab pool and is guarded by the pool's mutex, so every worker (and
//! the master, for init_by_lua) sees the same data. nginx maps a zone at the
//! same address in all processes, so plain pointers inside it are fine, as in
//! nginx's own modules.

use std::mem::{offset_of, size_of};
use std::ptr::{self, addr_of_mut};

use nginx_sys::{
    ngx_cached_time, ngx_pagesize, ngx_queue_empty, ngx_queue_init, ngx_queue_insert_after,
    ngx_queue_insert_before, ngx_queue_remove, ngx_queue_t, ngx_rbtree_delete, ngx_rbtree_insert,
    ngx_rbtree_key_t, ngx_rbtree_node_t, ngx_rbtree_t, ngx_shm_zone_t, ngx_slab_alloc_locked,
    ngx_slab_free_locked, ngx_slab_pool_t,
};

// Only this module reads the tree, so its hash is ours (lua-nginx-module
// uses crc32): one that reads the key a word at a time.
pub use super::shdict_codec::{Owned, Value};
use super::shdict_codec::{T_LIST, T_NUMBER, decode, decode_num, encode};
use super::shdict_key;
use super::shmtx;

/// The zone's root, allocated once in the slab pool (`pool->data` points here).
#[repr(C)]
pub struct Shared {
    rbtree: ngx_rbtree_t,
    sentinel: ngx_rbtree_node_t,
    lru: ngx_queue_t,
}

/// One item: nginx's tree node fields up to `color`, then ours from the
/// byte where `ngx_rbtree_node_t` has its unused `data`, then the key bytes
/// followed by the value bytes (or, for a list, an aligned list head).
/// lua-nginx-module lays its items out the same way, so an item costs the
/// same 68 bytes plus key and value here, and a zone sized for the C module
/// holds as many items.
#[repr(C)]
struct Node {
    key: ngx_rbtree_key_t,
    left: *mut ngx_rbtree_node_t,
    right: *mut ngx_rbtree_node_t,
    parent: *mut ngx_rbtree_node_t,
    color: u8,
    value_type: u8,
    key_len: u16,
    /// Value bytes, or the number of elements of a list.
    value_len: u32,
    /// Milliseconds since the epoch; 0 never expires.
    expires: u64,
    queue: ngx_queue_t,
    user_flags: u32,
}

/// Where an item's key starts (the end of its fields, before padding).
const NODE_HEADER: usize = offset_of!(Node, user_flags) + size_of::<u32>();

// nginx's tree code reads and writes an item as an ngx_rbtree_node_t.
const _: () = {
    assert!(offset_of!(Node, left) == offset_of!(ngx_rbtree_node_t, left));
    assert!(offset_of!(Node, right) == offset_of!(ngx_rbtree_node_t, right));
    assert!(offset_of!(Node, parent) == offset_of!(ngx_rbtree_node_t, parent));
    assert!(offset_of!(Node, color) == offset_of!(ngx_rbtree_node_t, color));
    assert!(offset_of!(Node, value_type) == offset_of!(ngx_rbtree_node_t, data));
};

/// One element of a list value; its bytes follow `value_type`.
#[repr(C)]
struct ListNode {
    queue: ngx_queue_t,
    value_len: u32,
    value_type: u8,
}

/// Where a list element's bytes start.
const LIST_NODE_HEADER: usize = offset_of!(ListNode, value_type) + 1;

/// What `set`, `add`, `replace` and their safe forms do.
#[derive(Clone, Copy)]
pub struct StoreOp {
    pub add: bool,
    pub replace: bool,
    pub safe: bool,
}

/// The error of a push whose list exists (or was just made) but whose new
/// item found no room: lua-nginx-module returns `nil, "no memory"` for it,
/// and `false, "no memory"` when the list itself found none.
pub const NO_MEMORY_FOR_ITEM: &str = "no memory for the list item";

/// A zone's store, as seen from one process.
#[derive(Clone)]
pub struct Dict {
    sh: *mut Shared,
    pool: *mut ngx_slab_pool_t,
}

fn now_ms() -> u64 {
    // SAFETY: nginx keeps ngx_cached_time pointing at a valid time slot.
    let t = unsafe { *ngx_cached_time };
    t.sec as u64 * 1000 + t.msec as u64
}

unsafe fn node_of_lru(q: *mut ngx_queue_t) -> *mut Node {
    // SAFETY: `q` is the `queue` field of a Node (callers pass LRU links only)
    (unsafe { q.byte_sub(offset_of!(Node, queue)) }).cast()
}

/// Copies `src` to `dst`: a number's 8 bytes (the usual value) as one
/// word, not through a call to memcpy.
///
/// # Safety
/// `dst` has room for `src.len()` bytes.
#[inline(always)]
unsafe fn copy_bytes(src: &[u8], dst: *mut u8) {
    if let Ok(w) = <[u8; 8]>::try_from(src) {
        // SAFETY: `dst` has room for the 8 bytes (caller's contract)
        unsafe { dst.cast::<[u8; 8]>().write_unaligned(w) };
    } else {
        // SAFETY: `dst` has room for `src` (caller's contract)
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
    }
}

unsafe fn key_ptr(n: *mut Node) -> *mut u8 {
    // SAFETY: `n` is a Node whose allocation holds the key right after the header
    unsafe { n.cast::<u8>().add(NODE_HEADER) }
}

unsafe fn key_of<'a>(n: *mut Node) -> &'a [u8] {
    // SAFETY: `n` is a live Node; its key_len key bytes follow the header
    unsafe { std::slice::from_raw_parts(key_ptr(n), (*n).key_len as usize) }
}

unsafe fn value_of<'a>(n: *mut Node) -> &'a [u8] {
    // SAFETY: `n` is a live Node; value_len value bytes follow its key
    unsafe { std::slice::from_raw_parts(key_ptr(n).add((*n).key_len as usize), (*n).value_len as usize) }
}

/// Where a list's head sits after the key, aligned for pointers.
fn list_head_offset(key_len: usize) -> usize {
    let a = std::mem::align_of::<ngx_queue_t>();
    (NODE_HEADER + key_len).div_ceil(a) * a
}

unsafe fn list_head(n: *mut Node) -> *mut ngx_queue_t {
    // SAFETY: `n` is a live list Node: its head sits at this aligned offset
    (unsafe { n.cast::<u8>().add(list_head_offset((*n).key_len as usize)) }).cast()
}

/// Found, found but expired, or absent (lua-nginx-module's OK/DONE/DECLINED).
enum Lookup {
    Live(*mut Node),
    Expired(*mut Node),
    Absent,
}

/// The tree's insert callback: order by hash, then by key bytes.
unsafe extern "C" fn insert_value(
    mut temp: *mut ngx_rbtree_node_t,
    node: *mut ngx_rbtree_node_t,
    sentinel: *mut ngx_rbtree_node_t,
) {
    // SAFETY: nginx calls this with nodes of our tree, all of them `Node`s.
    let mut p;
    loop {
        // SAFETY: nginx calls this with nodes of our tree, all of them `Node`s
        p = if unsafe { (*node).key } < unsafe { (*temp).key } {
            // SAFETY: nginx calls this with nodes of our tree, all of them `Node`s
            unsafe { addr_of_mut!((*temp).left) }
        // SAFETY: nginx calls this with nodes of our tree, all of them `Node`s
        } else if unsafe { (*node).key } > unsafe { (*temp).key } {
            // SAFETY: nginx calls this with nodes of our tree, all of them `Node`s
            unsafe { addr_of_mut!((*temp).right) }
        // SAFETY: nginx calls this with nodes of our tree, all of them `Node`s
        } else if unsafe { key_of(node.cast()) } < unsafe { key_of(temp.cast()) } {
            // SAFETY: nginx calls this with nodes of our tree, all of them `Node`s
            unsafe { addr_of_mut!((*temp).left) }
        } else {
            // SAFETY: nginx calls this with nodes of our tree, all of them `Node`s
            unsafe { addr_of_mut!((*temp).right) }
        };
        // SAFETY: nginx calls this with nodes of our tree, all of them `Node`s
        if unsafe { *p } == sentinel {
            break;
        }
        // SAFETY: nginx calls this with nodes of our tree, all of them `Node`s
        temp = unsafe { *p };
    }
    // SAFETY: nginx calls this with nodes of our tree, all of them `Node`s
    unsafe {
        *p = node;
        (*node).parent = temp;
        (*node).left = sentinel;
        (*node).right = sentinel;
        (*node).color = 1;
    }
}

/// The store with the pool's mutex held, for as long as this lives.
struct Locked {
    sh: *mut Shared,
    pool: *mut ngx_slab_pool_t,
    _mutex: shmtx::Held,
}

impl Dict {
    /// The store of a zone that exists already (nginx kept its memory).
    ///
    /// # Safety
    /// `zone` must be initialised, holding a store built by `create`.
    pub unsafe fn attach(zone: &ngx_shm_zone_t) -> Option<Dict> {
        let pool = zone.shm.addr as *mut ngx_slab_pool_t;
        if pool.is_null() {
            return None;
        }
        Some(Dict {
            // SAFETY: `zone` holds a store built by `create` (caller's contract): its slab pool's data
            sh: unsafe { (*pool).data.cast() },
            pool,
        })
    }

    /// Builds an empty store in a freshly created zone.
    ///
    /// # Safety
    /// `zone` must be initialised, its slab pool used by nobody else yet.
    pub unsafe fn create(zone: &ngx_shm_zone_t, zone_name: &[u8]) -> Option<Dict> {
        let pool = zone.shm.addr as *mut ngx_slab_pool_t;
        if pool.is_null() {
            return None;
        }
        // SAFETY: `pool` is the zone's slab pool, used by nobody else yet (caller's contract)
        let sh = unsafe { nginx_sys::ngx_slab_alloc(pool, size_of::<Shared>()) } as *mut Shared;
        if sh.is_null() {
            return None;
        }
        // SAFETY: `pool` is the live slab pool, `sh` just allocated in it
        unsafe {
            (*pool).data = sh.cast();
        }
        // SAFETY: `sh` was just allocated and checked non-null
        let sentinel = unsafe { addr_of_mut!((*sh).sentinel) };
        // SAFETY: `sh` is ours alone yet; the tree and queue are set up before any use
        unsafe {
            (*sentinel).color = 0;
            (*sh).rbtree.root = sentinel;
            (*sh).rbtree.sentinel = sentinel;
            (*sh).rbtree.insert = Some(insert_value);
            ngx_queue_init(addr_of_mut!((*sh).lru));
        }
        // nginx appends log_ctx to its "ngx_slab_alloc() failed" messages.
        let ctx = format!(
            " in lua_shared_dict zone \"{}\"\0",
            String::from_utf8_lossy(zone_name)
        );
        // SAFETY: `pool` is the zone's slab pool, used by nobody else yet (caller's contract)
        let p = unsafe { nginx_sys::ngx_slab_alloc(pool, ctx.len()) } as *mut u8;
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` has ctx.len() fresh bytes; `pool` is live
        unsafe {
            ptr::copy_nonoverlapping(ctx.as_ptr(), p, ctx.len());
            (*pool).log_ctx = p;
        }
        // A full zone is normal (LRU eviction follows), not worth a log line.
        // SAFETY: `pool` is the zone's live slab pool
        unsafe { (*pool).set_log_nomem(0) };
        Some(Dict { sh, pool })
    }

    fn lock(&self) -> Locked {
        Locked {
            sh: self.sh,
            pool: self.pool,
            // SAFETY: the pool's mutex, created with the zone; no
            // operation of the store takes it twice
            _mutex: unsafe { shmtx::lock(addr_of_mut!((*self.pool).mutex)) },
        }
    }

    /// Free pages of the zone, in bytes.
    pub fn free_space(&self) -> usize {
        let _g = self.lock();
        // SAFETY: read under the pool's mutex.
        unsafe { (*self.pool).pfree * ngx_pagesize }
    }

    pub fn get(&self, key: &[u8], stale: bool) -> Result<Option<(Owned, u32, bool)>, &'static str> {
        self.get_with(key, stale, |ty, bytes, flags, expired| {
            Ok((decode(ty, bytes)?, flags, expired))
        })?
        .transpose()
    }

    /// Looks `key` up and hands its type tag, value bytes, user flags and
    /// staleness to `f` while the zone is locked, so the caller can copy
    /// the bytes where they are needed without an allocation of ours.
    /// Inlined into its one caller, the FFI get (a call per dictionary read).
    #[inline]
    pub fn get_with<R>(
        &self,
        key: &[u8],
        stale: bool,
        f: impl FnOnce(u8, &[u8], u32, bool) -> R,
    ) -> Result<Option<R>, &'static str> {
        let g = self.lock();
        // SAFETY: every access below is under the mutex held by `g`.
        unsafe {
            if !stale {
                g.expire(1);
            }
            let (n, expired) = match g.lookup(key) {
                Lookup::Live(n) => (n, false),
                Lookup::Expired(n) if stale => (n, true),
                _ => return Ok(None),
            };
            if (*n).value_type == T_LIST {
                return Err("value is a list");
            }
            Ok(Some(f((*n).value_type, value_of(n), (*n).user_flags, expired)))
        }
    }

    /// set/add/replace. Ok(forcible) or Err((message, forcible)).
    /// Inlined into its one caller, the FFI store.
    #[inline]
    pub fn store(
        &self,
        op: StoreOp,
        key: &[u8],
        value: Value,
        exptime_ms: u64,
        flags: u32,
    ) -> Result<bool, (&'static str, bool)> {
        if matches!(value, Value::Nil) && (op.add || op.replace) {
            return Err(("attempt to add or replace nil values", false));
        }
        let mut scratch = [0u8; 8];
        let (ty, bytes) = encode(&value, &mut scratch);
        let g = self.lock();
        // SAFETY: every access below is under the mutex held by `g`.
        unsafe {
            g.expire(1);
            let found = g.lookup(key);
            let old = match found {
                Lookup::Live(_) if op.add => return Err(("exists", false)),
                Lookup::Expired(_) | Lookup::Absent if op.replace => return Err(("not found", false)),
                Lookup::Live(n) | Lookup::Expired(n) => Some(n),
                Lookup::Absent => None,
            };
            if let Some(n) = old {
                if ty != 0 && bytes.len() == (*n).value_len as usize && (*n).value_type != T_LIST {
                    // (lookup moved it to the front of the LRU queue)
                    g.fill(n, ty, bytes, exptime_ms, flags);
                    return Ok(false);
                }
                g.remove(n);
            }
            if ty == 0 {
                return Ok(false);
            }
            let (n, forcible) = g.alloc_node(key.len() + bytes.len(), !op.safe);
            if n.is_null() {
                return Err(("no memory", forcible));
            }
            g.link(n, key);
            g.fill(n, ty, bytes, exptime_ms, flags);
            Ok(forcible)
        }
    }

    /// `incr`: Ok((new value, forcible)) or Err(message).
    pub fn incr(
        &self,
        key: &[u8],
        delta: f64,
        init: Option<f64>,
        init_ttl_ms: u64,
    ) -> Result<(f64, bool), &'static str> {
        let g = self.lock();
        // SAFETY: every access below is under the mutex held by `g`.
        unsafe {
            g.expire(1);
            let old = match g.lookup(key) {
                Lookup::Live(n) => {
                    let Some(v) = decode_num((*n).value_type, value_of(n)) else {
                        return Err("not a number");
                    };
                    g.touch(n);
                    let v = v + delta;
                    // Expiry and flags stay as they were.
                    let dst = key_ptr(n).add((*n).key_len as usize);
                    ptr::copy_nonoverlapping(v.to_ne_bytes().as_ptr(), dst, 8);
                    return Ok((v, false));
                }
                Lookup::Expired(n) => Some(n),
                Lookup::Absent => None,
            };
            let Some(init) = init else {
                return Err("not found");
            };
            let v = init + delta;
            let bytes = v.to_ne_bytes();
            if let Some(n) = old {
                if (*n).value_len == 8 && (*n).value_type != T_LIST {
                    g.touch(n);
                    g.fill(n, T_NUMBER, &bytes, init_ttl_ms, 0);
                    return Ok((v, false));
                }
                g.remove(n);
            }
            let (n, forcible) = g.alloc_node(key.len() + 8, true);
            if n.is_null() {
                return Err("no memory");
            }
            g.link(n, key);
            g.fill(n, T_NUMBER, &bytes, init_ttl_ms, 0);
            Ok((v, forcible))
        }
    }

    /// lpush/rpush: Ok(new length) or Err(message): "no memory" when the
    /// list itself could not be made, [`NO_MEMORY_FOR_ITEM`] when its new
    /// item could not.
    pub fn push(&self, key: &[u8], left: bool, value: Value) -> Result<u32, &'static str> {
        let mut scratch = [0u8; 8];
        let (ty, bytes) = encode(&value, &mut scratch);
        let g = self.lock();
        // SAFETY: every access below is under the mutex held by `g`.
        unsafe {
            g.expire(1);
            let n = match g.lookup(key) {
                Lookup::Live(n) if (*n).value_type != T_LIST => return Err("value not a list"),
                Lookup::Live(n) => {
                    g.touch(n);
                    n
                }
                Lookup::Expired(n) if (*n).value_type == T_LIST => {
                    g.free_list(n);
                    (*n).expires = 0;
                    g.touch(n);
                    n
                }
                found => {
                    if let Lookup::Expired(n) = found {
                        g.remove(n);
                    }
                    let (n, _) = g.alloc_raw(list_head_offset(key.len()) + size_of::<ngx_queue_t>(), false);
                    if n.is_null() {
                        return Err("no memory");
                    }
                    let n: *mut Node = n.cast();
                    g.link(n, key);
                    (*n).expires = 0;
                    (*n).value_len = 0;
                    (*n).user_flags = 0;
                    (*n).value_type = T_LIST;
                    ngx_queue_init(list_head(n));
                    n
                }
            };
            let e = ngx_slab_alloc_locked(g.pool, LIST_NODE_HEADER + bytes.len()) as *mut ListNode;
            if e.is_null() {
                if (*n).value_len == 0 {
                    g.remove(n);
                }
                return Err(NO_MEMORY_FOR_ITEM);
            }
            (*e).value_len = bytes.len() as u32;
            (*e).value_type = ty;
            ptr::copy_nonoverlapping(bytes.as_ptr(), e.cast::<u8>().add(LIST_NODE_HEADER), bytes.len());
            if left {
                ngx_queue_insert_after(list_head(n), addr_of_mut!((*e).queue));
            } else {
                ngx_queue_insert_before(list_head(n), addr_of_mut!((*e).queue));
            }
            (*n).value_len += 1;
            Ok((*n).value_len)
        }
    }

    /// lpop/rpop: Ok(None) when the key is absent.
    pub fn pop(&self, key: &[u8], left: bool) -> Result<Option<Owned>, &'static str> {
        let g = self.lock();
        // SAFETY: every access below is under the mutex held by `g`.
        unsafe {
            g.expire(1);
            let Lookup::Live(n) = g.lookup(key) else {
                return Ok(None);
            };
            if (*n).value_type != T_LIST {
                return Err("value not a list");
            }
            let h = list_head(n);
            if ngx_queue_empty(h) {
                return Ok(None);
            }
            let q = if left { (*h).next } else { (*h).prev };
            let e: *mut ListNode = q.cast();
            let data =
                std::slice::from_raw_parts(e.cast::<u8>().add(LIST_NODE_HEADER), (*e).value_len as usize);
            // A bad element is still removed, so the list cannot jam.
            let v = decode((*e).value_type, data);
            ngx_queue_remove(q);
            ngx_slab_free_locked(g.pool, e.cast());
            (*n).value_len -= 1;
            if (*n).value_len == 0 {
                g.remove(n);
            } else {
                g.touch(n);
            }
            v.map(Some)
        }
    }

    pub fn llen(&self, key: &[u8]) -> Result<u32, &'static str> {
        let g = self.lock();
        // SAFETY: every access below is under the mutex held by `g`.
        unsafe {
            g.expire(1);
            match g.lookup(key) {
                Lookup::Live(n) if (*n).value_type != T_LIST => Err("value not a list"),
                Lookup::Live(n) => Ok((*n).value_len),
                _ => Ok(0),
            }
        }
    }

    /// Milliseconds left (may be negative for an expired item not yet
    /// removed), 0 for no expiry, None when absent.
    pub fn ttl(&self, key: &[u8]) -> Option<i64> {
        let g = self.lock();
        // SAFETY: under the mutex held by `g`.
        let expires = unsafe {
            match g.peek(key) {
                Some(n) => (*n).expires,
                None => return None,
            }
        };
        drop(g);
        Some(if expires == 0 {
            0
        } else {
            expires as i64 - now_ms() as i64
        })
    }

    /// Sets a new expiry (0 = never); false when absent.
    pub fn set_expire(&self, key: &[u8], exptime_ms: u64) -> bool {
        let g = self.lock();
        // SAFETY: under the mutex held by `g`.
        unsafe {
            match g.peek(key) {
                Some(n) => {
                    (*n).expires = if exptime_ms > 0 { now_ms() + exptime_ms } else { 0 };
                    true
                }
                None => false,
            }
        }
    }

    /// Marks everything expired (memory is reclaimed as items are reused).
    pub fn flush_all(&self) {
        let g = self.lock();
        // SAFETY: under the mutex held by `g`.
        unsafe {
            let h = addr_of_mut!((*g.sh).lru);
            let mut q = (*h).next;
            while q != h {
                (*node_of_lru(q)).expires = 1;
                q = (*q).next;
            }
            g.expire(0);
        }
    }

    /// Removes expired items, at most `max` of them (0 = all).
    pub fn flush_expired(&self, max: usize) -> usize {
        let g = self.lock();
        let now = now_ms();
        let mut freed = 0;
        // SAFETY: under the mutex held by `g`.
        unsafe {
            let h = addr_of_mut!((*g.sh).lru);
            let mut q = (*h).prev;
            while q != h {
                let prev = (*q).prev;
                let n = node_of_lru(q);
                if (*n).expires != 0 && (*n).expires <= now {
                    g.remove(n);
                    freed += 1;
                    if max != 0 && freed == max {
                        break;
                    }
                }
                q = prev;
            }
        }
        freed
    }

    /// Keys of live items, least recently used first, at most `max` (0 = all).
    pub fn keys(&self, max: usize) -> Vec<Vec<u8>> {
        let g = self.lock();
        let now = now_ms();
        let mut out = Vec::new();
        // SAFETY: under the mutex held by `g`.
        unsafe {
            let h = addr_of_mut!((*g.sh).lru);
            let mut q = (*h).prev;
            while q != h && (max == 0 || out.len() < max) {
                let n = node_of_lru(q);
                if (*n).expires == 0 || (*n).expires > now {
                    out.push(key_of(n).to_vec());
                }
                q = (*q).prev;
            }
        }
        out
    }
}

/// The general tree walk from `node` down (any key length, ties of the
/// hash ordered by the key bytes, as `insert_value` orders them).
///
/// # Safety
/// The zone's mutex is held; `node` is `sentinel` or a node of the tree.
#[inline(never)]
unsafe fn walk(
    mut node: *mut ngx_rbtree_node_t,
    sentinel: *mut ngx_rbtree_node_t,
    key: &[u8],
    hash: u64,
) -> Option<*mut Node> {
    let hash = hash as nginx_sys::ngx_rbtree_key_t;
    while node != sentinel {
        // SAFETY: the mutex is held; nodes reached from a tree node are live tree nodes
        let nk = unsafe { (*node).key };
        let less = if hash != nk {
            hash < nk
        } else {
            // SAFETY: the mutex is held; `node` is a live tree node, a `Node`
            let k = unsafe { key_of(node.cast()) };
            match key.cmp(k) {
                std::cmp::Ordering::Equal => return Some(node.cast()),
                o => o == std::cmp::Ordering::Less,
            }
        };
        // SAFETY: the mutex is held; nodes reached from a tree node are live tree nodes
        node = unsafe { if less { (*node).left } else { (*node).right } };
    }
    None
}

/// The walk for a key of up to 16 bytes (`shdict_key::Short`), the usual
/// case: a leaf function (no call, so no register to save) that compares
/// words. Returns the node found, null when absent, or, tagged with its
/// low bit (nodes are aligned), a node of the same hash but another key,
/// where `walk` goes on by the key bytes.
///
/// # Safety
/// The zone's mutex is held; `node` is `sentinel` or a node of the tree;
/// `key` is at most 16 bytes.
#[inline(never)]
unsafe fn find_short(
    mut node: *mut ngx_rbtree_node_t,
    sentinel: *mut ngx_rbtree_node_t,
    key: &[u8],
) -> *mut ngx_rbtree_node_t {
    let Some(k) = shdict_key::Short::new(key) else {
        return ptr::null_mut();
    };
    let hash = k.hash as nginx_sys::ngx_rbtree_key_t;
    while node != sentinel {
        // SAFETY: the mutex is held; nodes reached from a tree node are live tree nodes
        let nk = unsafe { (*node).key };
        if hash == nk {
            // SAFETY: the mutex is held; `node` is a live tree node, a `Node`
            if shdict_key::is_short(unsafe { key_of(node.cast()) }, k.len, k.words) {
                return node;
            }
            return node.map_addr(|a| a | 1);
        }
        // SAFETY: the mutex is held; nodes reached from a tree node are live tree nodes
        node = unsafe { if hash < nk { (*node).left } else { (*node).right } };
    }
    ptr::null_mut()
}

impl Locked {
    /// Finds `key`, moving it to the front of the LRU queue.
    #[inline(always)]
    unsafe fn lookup(&self, key: &[u8]) -> Lookup {
        // SAFETY: the mutex is held while `self` lives; nodes of the tree are live Nodes
        let Some(n) = (unsafe { self.peek(key) }) else {
            return Lookup::Absent;
        };
        // SAFETY: the mutex is held while `self` lives; nodes of the tree are live Nodes
        unsafe { self.touch(n) };
        // SAFETY: the mutex is held while `self` lives; nodes of the tree are live Nodes
        if unsafe { (*n).expires } != 0 && unsafe { (*n).expires } < now_ms() {
            Lookup::Expired(n)
        } else {
            Lookup::Live(n)
        }
    }

    /// Finds `key` without touching the LRU queue or looking at expiry.
    #[inline(always)]
    unsafe fn peek(&self, key: &[u8]) -> Option<*mut Node> {
        // SAFETY: the mutex is held while `self` lives
        let (root, sentinel) = unsafe { ((*self.sh).rbtree.root, (*self.sh).rbtree.sentinel) };
        if key.len() > 16 {
            // SAFETY: the mutex is held; `root` is the tree's root
            return unsafe { walk(root, sentinel, key, shdict_key::hash_long(key)) };
        }
        // SAFETY: the mutex is held; `root` is the tree's root; the key is short
        let n = unsafe { find_short(root, sentinel, key) };
        if n.addr() & 1 == 0 {
            return (!n.is_null()).then_some(n.cast());
        }
        // SAFETY: the mutex is held; `n` untagged is a node of the tree
        unsafe { walk(n.map_addr(|a| a & !1), sentinel, key, shdict_key::hash(key)) }
    }

    #[inline]
    unsafe fn touch(&self, n: *mut Node) {
        // SAFETY: the mutex is held while `self` lives; `n` is a live linked Node (callers' duty)
        unsafe {
            ngx_queue_remove(addr_of_mut!((*n).queue));
            ngx_queue_insert_after(addr_of_mut!((*self.sh).lru), addr_of_mut!((*n).queue));
        }
    }

    /// Writes value, type, flags and expiry (relative, in ms; 0 = never).
    unsafe fn fill(&self, n: *mut Node, ty: u8, bytes: &[u8], exptime_ms: u64, flags: u32) {
        // SAFETY: the mutex is held; `n` is a live Node allocated with room for `bytes` after its key (callers' duty)
        unsafe {
            (*n).expires = if exptime_ms > 0 { now_ms() + exptime_ms } else { 0 };
            (*n).user_flags = flags;
            (*n).value_len = bytes.len() as u32;
            (*n).value_type = ty;
        }
        // SAFETY: the mutex is held; `n` is a live Node allocated with room for `bytes` after its key (callers' duty)
        let dst = unsafe { key_ptr(n).add((*n).key_len as usize) };
        // SAFETY: the mutex is held; `n` is a live Node allocated with room for `bytes` after its key (callers' duty)
        unsafe { copy_bytes(bytes, dst) };
    }

    /// Sets the key of a freshly allocated node and links it in.
    unsafe fn link(&self, n: *mut Node, key: &[u8]) {
        // SAFETY: the mutex is held; `n` is a fresh Node with room for `key` (callers' duty)
        unsafe {
            (*n).key = shdict_key::hash(key) as nginx_sys::ngx_rbtree_key_t;
            (*n).key_len = key.len() as u16;
            ptr::copy_nonoverlapping(key.as_ptr(), key_ptr(n), key.len());
            ngx_rbtree_insert(addr_of_mut!((*self.sh).rbtree), n.cast::<ngx_rbtree_node_t>());
            ngx_queue_insert_after(addr_of_mut!((*self.sh).lru), addr_of_mut!((*n).queue));
        }
    }

    /// A node with room for `extra` bytes after its header, evicting least
    /// recently used items when `evict` and memory is short. Returns the node
    /// (null when out of memory) and whether live items were evicted.
    unsafe fn alloc_node(&self, extra: usize, evict: bool) -> (*mut Node, bool) {
        // SAFETY: the mutex is held while `self` lives
        let (p, forcible) = unsafe { self.alloc_raw(NODE_HEADER + extra, evict) };
        (p.cast(), forcible)
    }

    unsafe fn alloc_raw(&self, size: usize, evict: bool) -> (*mut u8, bool) {
        // SAFETY: the mutex is held while `self` lives; `pool` is the zone's slab pool
        let p = unsafe { ngx_slab_alloc_locked(self.pool, size) } as *mut u8;
        if !p.is_null() || !evict {
            return (p, false);
        }
        let mut forcible = false;
        for _ in 0..30 {
            // SAFETY: the mutex is held while `self` lives; `pool` is the zone's slab pool
            if unsafe { self.expire(0) } == 0 {
                break;
            }
            forcible = true;
            // SAFETY: the mutex is held while `self` lives; `pool` is the zone's slab pool
            let p = unsafe { ngx_slab_alloc_locked(self.pool, size) } as *mut u8;
            if !p.is_null() {
                return (p, true);
            }
        }
        (ptr::null_mut(), forcible)
    }

    /// lua-nginx-module's expiry sweep from the LRU tail: with `n == 1` it
    /// removes up to two expired items; with `n == 0` it first removes the
    /// least recently used item whatever its expiry.
    #[inline]
    unsafe fn expire(&self, mut n: u32) -> usize {
        let now = now_ms();
        // SAFETY: the mutex is held while `self` lives; the LRU queue links live Nodes
        let h = unsafe { addr_of_mut!((*self.sh).lru) };
        let mut freed = 0;
        while n < 3 {
            // SAFETY: the mutex is held while `self` lives; the LRU queue links live Nodes
            if unsafe { ngx_queue_empty(h) } {
                break;
            }
            // SAFETY: the mutex is held while `self` lives; the LRU queue links live Nodes
            let node = unsafe { node_of_lru((*h).prev) };
            let first = n == 0;
            n += 1;
            // SAFETY: the mutex is held while `self` lives; the LRU queue links live Nodes
            if !first && (unsafe { (*node).expires } == 0 || unsafe { (*node).expires } > now) {
                break;
            }
            // SAFETY: the mutex is held while `self` lives; the LRU queue links live Nodes
            unsafe { self.remove(node) };
            freed += 1;
        }
        freed
    }

    unsafe fn free_list(&self, n: *mut Node) {
        // SAFETY: the mutex is held; `n` is a live list Node whose items were slab-allocated (callers' duty)
        let h = unsafe { list_head(n) };
        // SAFETY: the mutex is held; `n` is a live list Node whose items were slab-allocated (callers' duty)
        let mut q = unsafe { (*h).next };
        while q != h {
            // SAFETY: the mutex is held; `n` is a live list Node whose items were slab-allocated (callers' duty)
            let next = unsafe { (*q).next };
            // SAFETY: the mutex is held; `n` is a live list Node whose items were slab-allocated (callers' duty)
            unsafe { ngx_slab_free_locked(self.pool, q.cast()) };
            q = next;
        }
        // SAFETY: the mutex is held; `n` is a live list Node whose items were slab-allocated (callers' duty)
        unsafe {
            ngx_queue_init(h);
            (*n).value_len = 0;
        }
    }

    unsafe fn remove(&self, n: *mut Node) {
        // SAFETY: the mutex is held; `n` is a live linked Node (callers' duty), freed once here
        if unsafe { (*n).value_type } == T_LIST {
            // SAFETY: the mutex is held; `n` is a live linked Node (callers' duty), freed once here
            unsafe { self.free_list(n) };
        }
        // SAFETY: the mutex is held; `n` is a live linked Node (callers' duty), freed once here
        unsafe {
            ngx_queue_remove(addr_of_mut!((*n).queue));
            ngx_rbtree_delete(addr_of_mut!((*self.sh).rbtree), n.cast::<ngx_rbtree_node_t>());
            ngx_slab_free_locked(self.pool, n.cast());
        }
    }
}
