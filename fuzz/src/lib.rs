//! Properties of the module's parsers of untrusted bytes, checked by the
//! libFuzzer targets in `fuzz_targets/` (one per parser). Each `run` takes
//! the fuzzer's bytes twice: as raw input of the parser (it must not panic,
//! and must agree with simple invariants or a reference model), and as a
//! recipe for well-formed input (random chunks, Lua tokens, query pairs...)
//! whose decoding must give back exactly what was encoded. A failed property
//! panics, which libFuzzer reports as a crash with the input that caused it.

// The parsers, compiled from the module's own sources (public here, so
// clippy sees API lints that do not apply to the module's private ones).
#[allow(clippy::result_unit_err)]
#[path = "../../src/runtime/chunked.rs"]
pub mod chunked_impl;
#[path = "../../src/glue/escape.rs"]
pub mod escape_impl;
#[path = "../../src/directives/lua_lexer.rs"]
pub mod lua_lexer;
#[path = "../../src/glue/shdict_codec.rs"]
pub mod shdict_codec_impl;
#[path = "../../src/glue/shdict_key.rs"]
pub mod shdict_key_impl;

pub mod args;
pub mod chunked;
pub mod escape;
pub mod input_gen;
pub mod lua_block;
pub mod shdict_codec;
