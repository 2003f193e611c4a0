//! Unit tests of the test runner: the Perl side (t/runner/blocks.pl, run
//! for real on small .t files), the value decoding, PCRE2 matching with
//! Perl's flags, section conventions, HTTP and valgrind parsing.
#![allow(dead_code)]

#[path = "http.rs"]
mod http;
#[path = "pattern.rs"]
mod pattern;
#[path = "perl.rs"]
mod perl;
#[path = "report.rs"]
mod report;
#[path = "sections.rs"]
mod sections;
#[path = "user_files.rs"]
mod user_files;
#[path = "valgrind.rs"]
mod valgrind;
#[path = "value.rs"]
mod value;

use pattern::Regex;
use std::collections::BTreeMap;
use value::{Pattern, Value};

fn s(x: &str) -> Value {
    Value::str(x)
}

fn qr(src: &str, flags: &str) -> Value {
    Value::Regex(Pattern {
        src: src.as_bytes().to_vec(),
        flags: flags.into(),
    })
}

/// Runs blocks.pl on `src` (written to a temporary .t file) with a small
/// environment.
fn load(name: &str, src: &str, env: &[(&str, &str)]) -> Result<perl::TestFile, String> {
    let dir = std::env::temp_dir().join(format!("runner-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.t", name));
    std::fs::write(&file, src).unwrap();
    let mut e: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    e.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
    e.insert("TEST_NGINX_SERVER_PORT".into(), "1984".into());
    e.insert("TEST_NGINX_SERVER_ROOT".into(), "/srv/root".into());
    let r = perl::load(&file, &e, "1.22.1", std::path::Path::new("/usr/sbin/nginx"));
    let _ = std::fs::remove_file(&file);
    r
}

fn section<'a>(b: &'a perl::Block, name: &str) -> &'a Value {
    b.section(name)
        .unwrap_or_else(|| panic!("block {} has no --- {}: {:?}", b.name, name, b.sections))
}

/// A preamble in ordinary Perl, none of which the old Perl subset of the
/// runner could evaluate: a sub, map, sprintf, heredocs, a hash, `||=` on
/// %ENV, blocks() in plan, and strict.
const ORDINARY: &str = r#"use Test::Nginx::Socket::Lua;
use strict;
use warnings;

repeat_each(3);
plan tests => repeat_each() * (blocks() * 2 + 1);
our $Count = blocks();

$ENV{TEST_NGINX_UNIT_UNSET} ||= 'from-preamble';
$ENV{TEST_NGINX_UNIT_SET} ||= 'not-used';
log_level('warn');
workers(2);
master_off();
no_root_location();
env_to_nginx('FOO', 'BAR=1');
config_preamble("set \$x 1;");
server_name('example.test');
timeout(7);

sub upstream_block {
    my ($name, @ports) = @_;
    return "upstream $name {\n"
        . join('', map { sprintf("    server 127.0.0.1:%05d;\n", $_) } @ports)
        . "}\n";
}

our $Upstreams = upstream_block('back', 80, 8080);
our $Doc = <<"_EOC_";
root $ENV{TEST_NGINX_UNIT_UNSET};
port @{[ server_port() ]};
_EOC_
our $Raw = <<'_EOC_';
no $interpolation here
_EOC_
my @fruits = qw(apple banana);
our %Len = map { $_ => length } @fruits;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('request', 'GET /default') unless defined $block->request;
    $block->set_value('undef_section', undef);
});

run_tests();

__DATA__

=== TEST 1: values from the preamble
--- http_config eval: $::Upstreams
--- config eval
"location /doc { return 200 '$::Doc$::Raw'; }"
--- response_body eval
[main::upstream_block('x', 1), $::Len{banana}, $::Count]
--- error_log eval
[qr/a.b$/ms, "plain", qr/ x y /xi]
--- more_headers eval: +{ 'X-A' => [1, 2] }
--- raw_request eval: $ENV{TEST_NGINX_UNIT_SET}



=== TEST 2: a failing eval
--- request eval
"GET /" . no_such_function()
--- response_body: x



=== TEST 3: skipped
--- SKIP
--- request: GET /s



=== TEST 4: trim, -trim, chomp, skip_eval
--- response_body


  kept  
 

--- error_log -trim
raw

--- no_error_log chomp
one
--- skip_eval: 1: 1 + 1 == 2



=== TEST 5: last
--- LAST
--- request: GET /last



=== TEST 6: after LAST
--- request: GET /never
"#;

#[test]
fn perl_preamble_settings_and_env() {
    let f = load("ordinary", ORDINARY, &[("TEST_NGINX_UNIT_SET", "from-env")]).unwrap();
    let p = &f.preamble;
    assert_eq!(p.repeat_each, 3);
    assert_eq!(p.log_level, "warn");
    assert_eq!(p.workers, 2);
    assert!(!p.master && p.no_root_location && !p.no_long_string);
    assert_eq!(p.env_to_nginx, ["FOO", "BAR=1"]);
    assert_eq!(p.config_preamble, "set $x 1;");
    assert_eq!(p.server_name.as_deref(), Some("example.test"));
    assert_eq!(p.timeout, Some(7.0));
    assert_eq!(f.skip_all, None);
    assert_eq!(f.env["TEST_NGINX_UNIT_UNSET"], "from-preamble");
    assert_eq!(f.env["TEST_NGINX_UNIT_SET"], "from-env");
    assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    assert!(f.output.is_empty(), "{}", f.output);
}

#[test]
fn perl_blocks_chosen_as_test_base_does() {
    let f = load("choice", ORDINARY, &[]).unwrap();
    assert_eq!(f.total_blocks, 6);
    let got: Vec<(usize, bool)> = f.blocks.iter().map(|b| (b.index, b.skip)).collect();
    // SKIP reported, nothing after LAST
    assert_eq!(got, [(1, false), (2, false), (3, true), (4, false), (5, false)]);
    assert_eq!(f.blocks[0].name, "TEST 1: values from the preamble");
    let line = ORDINARY
        .lines()
        .position(|l| l.starts_with("=== TEST 4"))
        .unwrap()
        + 1;
    assert_eq!(f.blocks[3].line, line);
}

#[test]
fn perl_eval_sections_see_the_preamble() {
    let f = load("evals", ORDINARY, &[("TEST_NGINX_UNIT_SET", "from-env")]).unwrap();
    let b = &f.blocks[0];
    assert_eq!(b.error, None);
    assert_eq!(
        section(b, "http_config"),
        &s("upstream back {\n    server 127.0.0.1:00080;\n    server 127.0.0.1:08080;\n}\n")
    );
    assert_eq!(
        section(b, "config"),
        &s("location /doc { return 200 'root from-preamble;\nport 1984;\nno $interpolation here\n'; }")
    );
    // a preamble sub called from an eval section; blocks() counted the
    // blocks Test::Base runs (not the SKIP one, none after LAST)
    assert_eq!(
        section(b, "response_body"),
        &Value::Array(vec![
            s("upstream x {\n    server 127.0.0.1:00001;\n}\n"),
            s("6"),
            s("4")
        ])
    );
    assert_eq!(
        section(b, "error_log"),
        &Value::Array(vec![qr("a.b$", "ms"), s("plain"), qr(" x y ", "ix")])
    );
    assert_eq!(
        section(b, "more_headers"),
        &Value::Hash(vec![("X-A".into(), Value::Array(vec![s("1"), s("2")]))])
    );
    assert_eq!(section(b, "raw_request"), &s("from-env"));
    // set by the preprocessor; a section set to undef is absent
    assert_eq!(section(b, "request"), &s("GET /default"));
    assert!(!b.has("undef_section"));
}

#[test]
fn perl_filters_and_skip_eval() {
    let f = load("filters", ORDINARY, &[]).unwrap();
    let b = &f.blocks[3];
    assert_eq!(section(b, "response_body"), &s("  kept  \n"));
    assert_eq!(section(b, "error_log"), &s("raw\n\n"));
    assert_eq!(section(b, "no_error_log"), &s("one"));
    assert_eq!(b.skip_eval, Some(true));
    assert_eq!(f.blocks[4].skip_eval, None);
}

#[test]
fn perl_eval_errors_fail_their_block() {
    let f = load("errors", ORDINARY, &[]).unwrap();
    let err = f.blocks[1].error.as_deref().unwrap();
    assert!(
        err.contains("--- request eval") && err.contains("no_such_function"),
        "{}",
        err
    );
    assert_eq!(f.blocks[0].error, None);
}

#[test]
fn perl_skip_all_and_broken_preambles() {
    let f = load(
        "skip_all",
        "use Test::Nginx::Socket;\nplan skip_all => 'no backend';\ndie 'not reached';\n__DATA__\n=== T\n--- request: GET /\n",
        &[],
    )
    .unwrap();
    assert_eq!(f.skip_all.as_deref(), Some("no backend"));
    assert!(f.blocks.is_empty());
    assert_eq!(f.total_blocks, 1);

    let e = load(
        "broken",
        "use Test::Nginx::Socket;\nnot_a_function(1);\n__DATA__\n",
        &[],
    )
    .err()
    .unwrap();
    assert!(e.contains("not_a_function") && e.contains("line 2"), "{}", e);

    let e = load("nodata", "use Test::Nginx::Socket;\n", &[]).err().unwrap();
    assert!(e.contains("__DATA__"), "{}", e);
}

#[test]
fn perl_only_block_and_output() {
    let src = "use Test::Nginx::Socket;\nprint \"hello\\n\"; warn \"careful\\n\";\n__DATA__\n=== A\n--- request: GET /a\n=== B\n--- ONLY\n--- request: GET /b\n";
    let f = load("only", src, &[]).unwrap();
    assert_eq!(f.blocks.len(), 1);
    assert_eq!(f.blocks[0].name, "B");
    assert!(f.warnings.iter().any(|w| w.contains("ONLY")), "{:?}", f.warnings);
    assert!(
        f.warnings.iter().any(|w| w.contains("run_tests")),
        "{:?}",
        f.warnings
    );
    // whatever the file prints stays out of the JSON
    assert_eq!(f.output, "hello\ncareful");
}

#[test]
fn value_decoding() {
    let json = br#"{"env":{"K":"caf\u00e9"},"preamble":{},"warnings":[],"total_blocks":1,"skip_all":null,
        "blocks":[{"index":1,"line":9,"name":"T","skip":false,"error":null,"skip_eval":null,"sections":[
          {"name":"a","filters":"","value":"\u00ff\u0000x"},
          {"name":"b","filters":"eval","value":[null,{"qr":"\u00e9+","flags":"i"},{"code":"CODE"},{"other":"SCALAR"}]}]}]}"#;
    let f = perl::decode(json).unwrap();
    assert_eq!(f.env["K"], "caf\u{fffd}");
    let b = &f.blocks[0];
    assert_eq!(b.section("a"), Some(&Value::Str(b"\xff\x00x".to_vec())));
    assert_eq!(
        b.section("b"),
        Some(&Value::Array(vec![
            Value::Undef,
            Value::Regex(Pattern {
                src: b"\xe9+".to_vec(),
                flags: "i".into()
            }),
            Value::Code,
            Value::Other("SCALAR".into()),
        ]))
    );
    assert!(value::bytes_of("\u{263a}").is_err());
    assert_eq!(qr("a.b", "ms").to_bytes(), b"(?^ms:a.b)");
    assert_eq!(s("0.5s").to_num(), 0.5);
    assert_eq!(s("x").to_num(), 0.0);
}

fn re(src: &str, flags: &str) -> Regex {
    Regex::new(src.as_bytes(), flags).unwrap()
}

#[test]
fn patterns_keep_perl_flags() {
    assert!(!re("a.b", "").is_match(b"a\nb").unwrap());
    assert!(re("a.b", "s").is_match(b"a\nb").unwrap());
    assert!(!re("^b$", "").is_match(b"a\nb\nc").unwrap());
    assert!(re("^b$", "m").is_match(b"a\nb\nc").unwrap());
    assert!(re("ABC", "i").is_match(b"xabcx").unwrap());
    assert!(!re("ABC", "").is_match(b"xabcx").unwrap());
    assert!(re(" a b  # spaced out", "x").is_match(b"ab").unwrap());
    // a qr// interpolated into another pattern keeps its flags
    assert!(re("x(?^i:abc)", "").is_match(b"xABC").unwrap());
    assert!(!re("X(?^i:abc)", "").is_match(b"xABC").unwrap());
    // Perl's $ also matches before a final newline
    assert!(re("b$", "").is_match(b"ab\n").unwrap());
    assert!(
        re(r"\bAssertion .*? failed\b", "")
            .is_match(b"x: Assertion `a' failed.")
            .unwrap()
    );
    assert_eq!(re(r"\d+", "").find(b"ab123c").unwrap(), Some((2, 5)));
    assert_eq!(re("z", "").find(b"abc").unwrap(), None);
}

#[test]
fn patterns_match_bytes() {
    let cafe = Regex::new(b"caf\xc3\xa9$", "").unwrap();
    assert!(cafe.is_match("un café".as_bytes()).unwrap());
    assert!(!cafe.is_match(b"un cafe").unwrap());
    // quotemeta leaves a backslash before high bytes
    assert!(Regex::new(b"a\\\xff", "").unwrap().is_match(b"xa\xff").unwrap());
    assert!(Regex::new(b"[\x80-\xff]", "").unwrap().is_match(b"\x90").unwrap());
    assert!(
        !Regex::new(b"[\x80-\xff]", "")
            .unwrap()
            .is_match(b"plain")
            .unwrap()
    );
    assert!(Regex::new(b"(", "").is_err());
    assert!(Regex::new(b"a", "e").is_err());
    assert_eq!(re("a(b)", "").as_str(), "a(b)");
}

#[test]
fn env_expansion() {
    let lookup = |k: &str| match k {
        "TEST_NGINX_SERVER_PORT" => Some("1984".to_string()),
        "TEST_NGINX_X" => Some("x".to_string()),
        _ => None,
    };
    let mut missing = Vec::new();
    let out = sections::expand_env(
        b"listen $TEST_NGINX_SERVER_PORT; ${TEST_NGINX_X}y $TEST_NGINX_XY $TEST_NGINX_NOPE $other",
        &lookup,
        &mut missing,
    );
    assert_eq!(out, b"listen 1984; xy $TEST_NGINX_XY $TEST_NGINX_NOPE $other");
    assert_eq!(missing, ["TEST_NGINX_XY", "TEST_NGINX_NOPE"]);
    let v = sections::expand_value(
        Value::Array(vec![s("$TEST_NGINX_X"), qr("a$TEST_NGINX_X", "i")]),
        &lookup,
        &mut missing,
    );
    assert_eq!(v, Value::Array(vec![s("x"), qr("ax", "i")]));
}

#[test]
fn user_files_and_times() {
    let f = user_files::parse(b">>> a.txt\nhello\n>>> d/b.txt 199801171935.33\nx\ny\n");
    assert_eq!(f.len(), 2);
    assert_eq!(f[0], ("a.txt".to_string(), b"hello\n".to_vec(), None));
    assert_eq!(f[1].0, "d/b.txt");
    assert_eq!(f[1].1, b"x\ny\n");
    assert_eq!(f[1].2.as_deref(), Some("199801171935.33"));
    let t = user_files::touch_time("199801171935.33").unwrap();
    assert_eq!(
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        885065733
    );
    assert!(user_files::touch_time("1998").is_none());
    assert_eq!(sections::parse_time("1.5"), Some(1.5));
    assert_eq!(sections::parse_time("100ms"), Some(0.1));
    assert_eq!(sections::parse_time("2s"), Some(2.0));
    assert_eq!(sections::parse_time("soon"), None);
}

#[test]
fn chunked_decoding() {
    let (body, left) = http::dechunk(b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nNEXT").unwrap();
    assert_eq!(body, b"hello world");
    assert_eq!(left, b"NEXT");
    let (body, _) = http::dechunk(b"a\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n").unwrap();
    assert_eq!(body, b"0123456789");
    assert!(http::dechunk(b"5\r\nhel").is_err());
    assert!(http::dechunk(b"5\r\nhello\r\n").is_err());
    assert!(http::dechunk(b"zz\r\n").is_err());
}

#[test]
fn response_parsing() {
    let raw = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let (r, left) = http::parse_response(raw, false).unwrap();
    assert_eq!(r.status, Some(200));
    assert_eq!(r.body, b"abc");
    assert!(left.is_empty());
    assert_eq!(r.header("SET-COOKIE").unwrap(), b"a=1, b=2");
    assert!(r.raw_headers.ends_with(b"set-cookie: b=2\r\n"));

    let raw = b"HTTP/1.0 404 Not Found\r\nContent-Length: 2\r\n\r\nnoHTTP/1.1 200 OK\r\n\r\n";
    let (r, left) = http::parse_response(raw, false).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (Some(404), &b"no"[..]));
    assert_eq!(left, b"HTTP/1.1 200 OK\r\n\r\n");

    let (r, _) = http::parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true).unwrap();
    assert!(r.body.is_empty() && r.warnings.is_empty());
    let (r, _) = http::parse_response(b"", false).unwrap();
    assert_eq!(r.status, None);
}

#[test]
fn request_building() {
    let (h, chunked) = http::format_more_headers(b"X-A: 1\n# comment\nX-B:2\n\nHost: foo\n");
    assert_eq!(h, b"X-A: 1\r\nX-B: 2\r\nHost: foo\r\n");
    assert!(!chunked);
    let pk = |d: &str| http::Packet::new(d.as_bytes().to_vec());
    let (p, head) =
        http::build_request(&[pk("POST /t\n hello \n")], b"", false, "close", "localhost").unwrap();
    assert!(!head);
    assert_eq!(
        String::from_utf8(p[0].data.clone()).unwrap(),
        "POST /t HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"
    );
    let (p, head) = http::build_request(&[pk("HEAD")], &h, false, "keep-alive", "localhost").unwrap();
    assert!(head);
    assert_eq!(
        String::from_utf8(p[0].data.clone()).unwrap(),
        "HEAD / HTTP/1.1\r\nConnection: keep-alive\r\nX-A: 1\r\nX-B: 2\r\nHost: foo\r\n\r\n"
    );
    // packet boundaries survive the rewrite
    let (p, _) =
        http::build_request(&[pk("GET /x\nab"), pk("cd")], b"", false, "close", "localhost").unwrap();
    assert_eq!(p.len(), 2);
    assert!(p[0].data.ends_with(b"\r\n\r\nab"));
    assert_eq!(p[1].data, b"cd");
    assert!(http::build_request(&[pk("GET / HTTP/1.1 extra")], b"", false, "close", "x").is_err());
    assert_eq!(http::strip_request_comments(b"  # c1\n# c2\n  GET /"), b"GET /");
}

/// One valgrind XML `<frame>`.
fn vg_frame(obj: &str, func: &str) -> String {
    format!("<frame><ip>0x1</ip><obj>{obj}</obj><fn>{func}</fn></frame>")
}

#[test]
fn valgrind_errors() {
    let so = "/w/target/release/libngx_http_lua_module.so";
    let ours = format!(
        "<error><unique>0x1</unique><tid>1</tid><kind>InvalidRead</kind><what>Invalid read of size 8</what>\
         <stack>{}{}{}</stack><auxwhat>Address 0x10 is 0 bytes after a block of size 16 alloc&apos;d</auxwhat>\
         <stack>{}</stack><suppression><sname>x</sname><rawtext>\n<![CDATA[\n{{\n   x\n   Memcheck:Addr8\n}}\n]]>\n</rawtext></suppression></error>",
        vg_frame(
            "/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so",
            "memcpy"
        ),
        vg_frame(so, "ngx_http_lua_module::api::x"),
        vg_frame("/usr/sbin/nginx", "ngx_http_core_content_phase"),
        vg_frame(
            "/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so",
            "malloc"
        ),
    );
    let luajit = format!(
        "<error><kind>UninitCondition</kind><what>Conditional jump or move depends on uninitialised value(s)</what>\
         <stack>{}{}</stack></error>",
        vg_frame("/usr/lib/x86_64-linux-gnu/libluajit-5.1.so.2.1.0", "lj_str_new"),
        vg_frame(so, "ngx_http_lua_module::runtime::lua::push_bytes"),
    );
    let leak = format!(
        "<error><kind>Leak_DefinitelyLost</kind><xwhat><text>24 bytes in 1 blocks are definitely lost &lt;here&gt;</text>\
         <leakedbytes>24</leakedbytes></xwhat><stack>{}{}</stack></error>",
        vg_frame(
            "/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so",
            "malloc"
        ),
        vg_frame("/usr/sbin/nginx", "ngx_alloc"),
    );
    // a file cut short in the middle of a fourth error
    let xml = format!(
        "<?xml version=\"1.0\"?>\n<valgrindoutput><pid>7</pid>{ours}\n{luajit}\n{leak}\n<error><kind>Leak"
    );
    let errs = valgrind::parse_xml(&xml);
    assert_eq!(errs.len(), 3);
    assert_eq!(errs[0].kind, "InvalidRead");
    assert_eq!(errs[0].frames.len(), 3);
    assert_eq!(errs[0].frames[1].func, "ngx_http_lua_module::api::x");
    assert_eq!(errs[0].aux.len(), 1);
    assert!(errs[0].aux[0].0.contains("alloc'd"));
    assert!(errs[0].suppression.as_deref().unwrap().starts_with("{"));
    assert_eq!(errs[2].what, "24 bytes in 1 blocks are definitely lost <here>");

    let vg = valgrind::Valgrind::from_env(
        "1",
        Some(std::path::Path::new(so)),
        std::path::Path::new("/nonexistent"),
    );
    // memcpy's frame (valgrind's preload) is skipped: the caller is ours
    assert!(vg.ours(&errs[0]));
    // LuaJIT's own read, even when called from our code, is LuaJIT's
    assert!(!vg.ours(&errs[1]));
    assert!(!vg.ours(&errs[2]));
    // a leak is ours when we asked for the memory, through any library
    let mut leak = errs[2].clone();
    leak.frames.push(valgrind::Frame {
        obj: so.into(),
        ..Default::default()
    });
    assert!(vg.ours(&leak));
    let r = errs[0].render(2);
    assert!(r.starts_with("InvalidRead: Invalid read of size 8\n   at memcpy"));
    assert!(r.contains("... 1 more frames"));
    // with no module loaded nothing is ours
    let none = valgrind::Valgrind::from_env("1", None, std::path::Path::new("/nonexistent"));
    assert!(!none.ours(&errs[0]));
    // options: a number means Test::Nginx's defaults, anything else is used as is
    let (prog, args) = vg.wrap(
        std::path::Path::new("/usr/sbin/nginx"),
        std::path::Path::new("/r/logs"),
    );
    assert_eq!(prog, std::path::PathBuf::from("valgrind"));
    assert!(args.contains(&"--leak-check=full".to_string()));
    assert_eq!(args.last().unwrap(), "/usr/sbin/nginx");
    let custom = valgrind::Valgrind::from_env(
        "--tool=memcheck --track-origins=yes",
        None,
        std::path::Path::new("/x"),
    );
    let (_, args) = custom.wrap(std::path::Path::new("/n"), std::path::Path::new("/l"));
    assert_eq!(&args[..2], ["--tool=memcheck", "--track-origins=yes"]);
}
