#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ngx_lua_fuzz::shdict_codec::run(data));
