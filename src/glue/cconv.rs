//! Lua numbers to C integers the way lua-nginx-module's casts turn them
//! into integers on x86-64 (Debian's amd64 build is our reference).
//!
//! lua-nginx-module converts durations, statuses and log levels with plain
//! C casts (`(ngx_int_t) (n * 1000)`, an FFI `int` parameter, ...). Out of
//! range and NaN inputs are undefined behaviour in C; on x86-64 the
//! `cvttsd2si` instruction returns the "integer indefinite" value, the most
//! negative integer, for them. Whether a call then fails ("invalid sleep
//! duration"), times out at once (a semaphore wait) or closes the
//! connection (`ngx.exit`) follows from that value, so we reproduce it here
//! instead of Rust's saturating `as`.

const TWO_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_31: f64 = 2_147_483_648.0;

/// `(int32_t) x`: truncated toward zero; NaN and values outside the `int`
/// range give `i32::MIN`.
pub fn int32(x: f64) -> i32 {
    if x > -TWO_31 - 1.0 && x < TWO_31 {
        x as i32
    } else {
        i32::MIN
    }
}

/// `(int64_t) x` (`ngx_int_t`, `long`): truncated toward zero; NaN and
/// values outside the range give `i64::MIN`.
pub fn int64(x: f64) -> i64 {
    if (-TWO_63..TWO_63).contains(&x) {
        x as i64
    } else {
        i64::MIN
    }
}

/// `(int) luaL_checkinteger(L, n)` on LuaJIT/x86-64: the number becomes an
/// `int64` first, then keeps its low 32 bits (`ngx.log(2^32 + 4, ...)` is
/// level 4, NaN is level 0).
pub fn lua_int(x: f64) -> i32 {
    int64(x) as i32
}

/// `(ngx_msec_t) x`, gcc's double to `uint64_t` conversion: values from
/// 2^63 up are converted after subtracting 2^63; negative values wrap
/// around (-1 is 2^64 - 1). A timer that far away is, for nginx's timer
/// tree (which compares keys as signed differences), already due.
pub fn msec(x: f64) -> u64 {
    if x >= TWO_63 {
        (int64(x - TWO_63) as u64) ^ (1 << 63)
    } else {
        int64(x) as u64
    }
}

/// The farthest a timer may be armed: 2^62 ms (146 million years).
const MAX_TIMER_MS: i64 = 1 << 62;

/// A delay for `ngx_add_timer` from one of the values above read as
/// signed: a negative one is due now, a huge one is capped. nginx orders
/// its timer tree by the signed difference of keys, so two timers more
/// than 2^63 ms apart (the C module's NaN and negative delays) would put
/// it out of order and stop unrelated timers of the worker from firing.
pub fn timer_delay(ms: i64) -> u64 {
    ms.clamp(0, MAX_TIMER_MS) as u64
}
