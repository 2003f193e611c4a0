//! The cache of regexes compiled with the `o` flag: least
//! recently used entries go first once `lua_regex_cache_max_entries` is
//! reached.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use rustc_hash::FxBuildHasher;

use crate::glue::pcre2::{self, Mode, Regex};
use crate::lua::vm;

struct Entry {
    mode: Mode,
    re: Rc<Regex>,
    tick: u64,
}

/// A hit only stamps its entry with the current tick; finding the least
/// recently used entry scans them all, which only a full cache's miss
/// does (and compiling the new regex costs far more than the scan).
#[derive(Default)]
struct Lru {
    /// Pattern -> its compiled forms (one per option set, usually one), so
    /// a lookup needs no key allocation. Fx hashing: the keys are the
    /// application's own patterns, and SipHash cost more than the match.
    map: HashMap<Vec<u8>, Vec<Entry>, FxBuildHasher>,
    tick: u64,
    len: usize,
    /// The entry used last (found or inserted), with its pattern in
    /// `last_pattern`: the same regex again, as a handler that runs one
    /// regex per request asks, is found without hashing. It is the most
    /// recently used entry already, so such a hit changes no tick.
    last: Option<(Mode, Rc<Regex>)>,
    last_pattern: Vec<u8>,
}

impl Lru {
    fn hit(&mut self, pattern: &[u8], mode: Mode) -> Option<Rc<Regex>> {
        if let Some((m, re)) = &self.last
            && *m == mode
            && self.last_pattern == pattern
        {
            return Some(re.clone());
        }
        self.tick += 1;
        let tick = self.tick;
        let entry = self.map.get_mut(pattern)?.iter_mut().find(|e| e.mode == mode)?;
        entry.tick = tick;
        let re = entry.re.clone();
        self.remember(pattern, mode, &re);
        Some(re)
    }

    fn remember(&mut self, pattern: &[u8], mode: Mode, re: &Rc<Regex>) {
        self.last_pattern.clear();
        self.last_pattern.extend_from_slice(pattern);
        self.last = Some((mode, re.clone()));
    }

    fn evict_oldest(&mut self) -> bool {
        let oldest = self
            .map
            .iter()
            .flat_map(|(p, list)| list.iter().map(move |e| (e.tick, p, e.mode)))
            .min_by_key(|&(tick, _, _)| tick)
            .map(|(_, p, mode)| (p.clone(), mode));
        let Some((pattern, mode)) = oldest else {
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
        self.remember(pattern, mode, &re);
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
crate::lua::vm::vm_state!(Cache);

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
