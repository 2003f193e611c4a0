//! The per-worker cache of regexes compiled with the `o` flag: least
//! recently used entries go first once `lua_regex_cache_max_entries` is
//! reached.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::glue::pcre2::{self, Mode, Regex};

#[derive(Default)]
struct Lru {
    map: HashMap<(Vec<u8>, Mode), (Rc<Regex>, u64)>,
    /// Use tick -> key, oldest first.
    order: BTreeMap<u64, (Vec<u8>, Mode)>,
    tick: u64,
}

thread_local! {
    static CACHE: RefCell<Lru> = RefCell::new(Lru::default());
}

/// The cached regex for `pattern` and `mode`, compiling and caching it on a
/// miss. With `max == 0` nothing is cached.
pub fn get(pattern: &[u8], mode: Mode, max: usize) -> Result<Rc<Regex>, String> {
    let key = (pattern.to_vec(), mode);
    let hit = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        c.tick += 1;
        let tick = c.tick;
        let (re, old) = {
            let entry = c.map.get_mut(&key)?;
            let old = std::mem::replace(&mut entry.1, tick);
            (entry.0.clone(), old)
        };
        let k = c.order.remove(&old)?;
        c.order.insert(tick, k);
        Some(re)
    });
    if let Some(re) = hit {
        return Ok(re);
    }
    let re = Rc::new(pcre2::compile(pattern, mode)?);
    if max > 0 {
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            while c.map.len() >= max {
                let Some((_, oldest)) = c.order.pop_first() else { break };
                c.map.remove(&oldest);
            }
            c.tick += 1;
            let tick = c.tick;
            c.order.insert(tick, key.clone());
            c.map.insert(key, (re.clone(), tick));
        });
    }
    Ok(re)
}

/// How many regexes are cached.
pub fn len() -> usize {
    CACHE.with(|c| c.borrow().map.len())
}
