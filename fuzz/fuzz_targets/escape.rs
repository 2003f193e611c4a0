#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ngx_lua_fuzz::escape::run(data));
