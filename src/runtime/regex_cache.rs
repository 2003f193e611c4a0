//! The cache of regexes compiled with the `o` flag: least
//! recently used entries go first once `lua_regex_cache_max_entries` is
//! reached.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::glue::pcre2::{self, Mode, Regex};
use crate::lua::vm;

struct Entry {
    mode: Mode,
    re: Rc<Regex>,
    tick: u64,
}

#[derive(Default)]
struct Lru {
    /// Pattern -> its compiled forms (one per option set, usually one), so
    /// a lookup needs no key allocation.
    map: HashMap<Vec<u8>, Vec<Entry>>,
    /// Last use -> (pattern, mode), oldest first.
    order: BTreeMap<u64, (Vec<u8>, Mode)>,
    tick: u64,
    len: usize,
}

impl Lru {
    fn hit(&mut self, pattern: &[u8], mode: Mode) -> Option<Rc<Regex>> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.map.get_mut(pattern)?.iter_mut().find(|e| e.mode == mode)?;
        let old = std::mem::replace(&mut entry.tick, tick);
        let re = entry.re.clone();
        if let Some(key) = self.order.remove(&old) {
            self.order.insert(tick, key);
        }
        Some(re)
    }

    fn evict_oldest(&mut self) -> bool {
        let Some((_, (pattern, mode))) = self.order.pop_first() else {
            return false;
        };
        if let Some(list) = self.map.get_mut(&pattern) {
            list.retain(|e| e.mode != mode);
            if list.is_empty() {
                self.map.remove(&pattern);
            }
        }
        self.len -= 1;
        true
    }

    fn insert(&mut self, pattern: &[u8], mode: Mode, re: Rc<Regex>, max: usize) {
        while self.len >= max && self.evict_oldest() {}
        self.tick += 1;
        let tick = self.tick;
        self.order.insert(tick, (pattern.to_vec(), mode));
        self.map
            .entry(pattern.to_vec())
            .or_default()
            .push(Entry { mode, re, tick });
        self.len += 1;
    }
}

/// The cache of a VM (its state: it goes with its cycle).
#[derive(Default)]
struct Cache(RefCell<Lru>);

/// The cached regex for `pattern` and `mode`, compiling and caching it on a
/// miss. With `max == 0` (or no VM) nothing is cached.
pub fn get(pattern: &[u8], mode: Mode, max: usize) -> Result<Rc<Regex>, String> {
    let cache = vm::current_state::<Cache>();
    if let Some(re) = cache.and_then(|c| c.0.borrow_mut().hit(pattern, mode)) {
        return Ok(re);
    }
    let re = Rc::new(pcre2::compile(pattern, mode)?);
    if let Some(c) = cache.filter(|_| max > 0) {
        c.0.borrow_mut().insert(pattern, mode, re.clone(), max);
    }
    Ok(re)
}

/// How many regexes are cached.
pub fn len() -> usize {
    vm::current_state::<Cache>().map_or(0, |c| c.0.borrow().len)
}
