//! Unit tests of the test runner's parsing layers (the regex engine has its
//! own tests in regex.rs, compiled in here too).
#![allow(dead_code)]

#[path = "eval.rs"]
mod eval;
#[path = "http.rs"]
mod http;
#[path = "parse.rs"]
mod parse;
#[path = "regex.rs"]
mod regex;
#[path = "valgrind.rs"]
mod valgrind;

use eval::{Interp, Pattern, Value};
use parse::{split_blocks, SectionSrc};

fn s(x: &str) -> Value {
    Value::str(x)
}

fn interp() -> Interp {
    let mut i = Interp::default();
    i.env.insert("TEST_NGINX_SERVER_PORT".into(), "1984".into());
    i.env.insert("HOME".into(), "/root".into());
    i.vars.insert("HtmlDir".into(), s("/srv/html"));
    i.funcs.insert("html_dir".into(), s("/srv/html"));
    i
}

fn ev(code: &str) -> Value {
    interp().eval(code.as_bytes()).unwrap().first()
}

fn text(b: &parse::Block, name: &str) -> String {
    match &b.section(name).unwrap().src {
        SectionSrc::Text(t) => String::from_utf8_lossy(t).into_owned(),
        SectionSrc::Expr(_) => panic!("not text"),
    }
}

fn value(b: &parse::Block, name: &str) -> Value {
    parse::section_value(b.section(name).unwrap(), &mut interp()).unwrap()
}

const FILE: &str = r#"use Test::Nginx::Socket::Lua;

# a comment with run_tests() in it
repeat_each(3);
plan tests => repeat_each() * (blocks() * 3 + 2);
log_level("warn");
no_long_string();
no_root_location();
master_off();
workers(2);
$ENV{TEST_NGINX_FOO} ||= 'foo-default';
$ENV{TEST_NGINX_SERVER_PORT} ||= 1;
our $HttpConfig = qq{
    lua_package_path "$::HtmlDir/?.lua;;";
};
add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->request) {
        $block->set_value("request", "GET /t");
    }
});
run_tests();

__DATA__

=== TEST 1: first
description text
--- config
    location /t {
        echo hi;
    }
--- request
GET /t
--- response_body
hi

--- error_code: 200
--- no_error_log
[error]



=== TEST 2: second
--- http_config eval: $::HttpConfig
--- response_body_like chomp
^a.*b$
--- ONLY
--- SKIP
"#;

#[test]
fn block_splitting() {
    let data = FILE.split("__DATA__\n").nth(1).unwrap();
    let blocks = split_blocks(data.as_bytes(), 10);
    assert_eq!(blocks.len(), 2);
    let b = &blocks[0];
    assert_eq!(b.name, "TEST 1: first");
    assert_eq!(b.index, 1);
    assert_eq!(b.line, 11);
    let names: Vec<&str> = b.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["config", "request", "response_body", "error_code", "no_error_log"]
    );
    assert_eq!(text(b, "request"), "GET /t\n");
    assert_eq!(text(b, "error_code"), "200");
    assert_eq!(text(b, "response_body"), "hi\n\n");
    assert_eq!(value(b, "response_body"), s("hi\n"));
    assert_eq!(
        value(b, "config"),
        s("    location /t {\n        echo hi;\n    }\n")
    );
    let b2 = &blocks[1];
    assert!(b2.has("ONLY") && b2.has("SKIP"));
    assert_eq!(b2.section("http_config").unwrap().filters, ["eval"]);
    assert_eq!(text(b2, "http_config"), "$::HttpConfig");
    let (run, skipped) = parse::select_blocks(&blocks);
    assert_eq!(run.len(), 1);
    assert_eq!(run[0].index, 2);
    assert!(skipped.is_empty());
}

#[test]
fn select_skip_and_last() {
    let data = "=== A\n--- SKIP\n=== B\n--- LAST\n=== C\n";
    let blocks = split_blocks(data.as_bytes(), 1);
    let (run, skipped) = parse::select_blocks(&blocks);
    assert_eq!(run.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["B"]);
    assert_eq!(skipped.len(), 1);
}

#[test]
fn section_filters() {
    let data = "=== T\n--- a chomp\nx\n--- b chop\nxyz\n--- c\n\n\n  lead\ntrail\n  \n\n--- d eval chomp\n\"q\\n\\n\"\n--- e -trim\nraw\n\n\n--- f eval\n\"a\" . \"b\"\n--- g: one line  \n--- h eval: [1, 2]\n";
    let blocks = split_blocks(data.as_bytes(), 1);
    let b = &blocks[0];
    assert_eq!(value(b, "a"), s("x"));
    assert_eq!(value(b, "b"), s("xyz"));
    assert_eq!(value(b, "c"), s("  lead\ntrail\n"));
    assert_eq!(value(b, "d"), s("q\n"));
    assert_eq!(value(b, "e"), s("raw\n\n\n"));
    assert_eq!(value(b, "f"), s("ab"));
    assert_eq!(value(b, "g"), s("one line"));
    assert_eq!(value(b, "h"), Value::Array(vec![s("1"), s("2")]));
}

#[test]
fn norm_and_trim() {
    assert_eq!(parse::norm_filter(b"a\r\nb\rc"), b"a\nb\nc");
    assert_eq!(parse::trim_filter(b"\n \n\tx\n\n  \n"), b"\tx\n");
    assert_eq!(parse::trim_filter(b"x"), b"x");
    assert_eq!(parse::trim_filter(b""), b"");
}

#[test]
fn eval_strings() {
    assert_eq!(
        ev(r#""a\tb\n\x41\x{263A}\0\101\$x\@y\"""#),
        Value::Str(b"a\tb\nA\xe2\x98\xba\0A$x@y\"".to_vec())
    );
    assert_eq!(ev(r"'a\nb\'c\\d'"), s("a\\nb'c\\d"));
    assert_eq!(ev(r#"q{a {b} c}"#), s("a {b} c"));
    assert_eq!(ev(r#"qq/x$::HtmlDir/"#), s("x/srv/html"));
    assert_eq!(
        ev(r#""${HtmlDir}/a $ENV{TEST_NGINX_SERVER_PORT} $ENV{'HOME'}""#),
        s("/srv/html/a 1984 /root")
    );
    assert_eq!(
        ev(r#""port $TEST_NGINX_SERVER_PORT""#),
        s("port $TEST_NGINX_SERVER_PORT")
    );
    assert_eq!(ev(r#""@{[ 'x' x 3 ]}!""#), s("xxx!"));
    assert_eq!(ev("\"a\nb\""), s("a\nb"));
    assert!(interp().eval(br#""$undefined_thing""#).is_err());
}

#[test]
fn eval_operators() {
    assert_eq!(ev(r#""a" . "b" . 'c'"#), s("abc"));
    assert_eq!(ev(r#""ab" x 3"#), s("ababab"));
    assert_eq!(ev(r#""-" x 2 . "+""#), s("--+"));
    assert_eq!(ev(r#""a"x3"#), s("aaa"));
    assert_eq!(ev("1024 * 2 + 1"), s("2049"));
    assert_eq!(ev("(1 + 2) * 3"), s("9"));
    assert_eq!(ev("0.5 + 0.25"), s("0.75"));
    assert_eq!(ev(r#"join(",", "a", "b")"#), s("a,b"));
    assert_eq!(ev(r#"join "", ("ab") x 2"#), s("abab"));
    assert_eq!(ev(r#"length("abc")"#), s("3"));
    assert_eq!(ev(r#"$ENV{NOPE} || "dflt""#), s("dflt"));
    assert_eq!(ev(r#"defined $ENV{HOME} ? "y" : "n""#), s("y"));
    assert_eq!(ev(r#"$^O eq 'linux'"#), s("1"));
    assert_eq!(ev("my $x = 'v'; \"[$x]\""), s("[v]"));
    assert_eq!(ev("chr(65) . uc 'b'"), s("AB"));
    assert_eq!(ev(r#"sprintf("%03d-%s", 7, "x")"#), s("007-x"));
    assert_eq!(ev("html_dir() . '/x'"), s("/srv/html/x"));
}

#[test]
fn eval_heredoc() {
    let v = ev("my $c = <<_EOC_;\nline $::HtmlDir\n_EOC_\n$c . 'end'");
    assert_eq!(v, s("line /srv/html\nend"));
    let v = ev("<<'EOF' . 'x'\nno $interp\nEOF\n");
    assert_eq!(v, s("no $interp\nx"));
    let v = ev("<<~EOT\n    a\n      b\n    EOT\n");
    assert_eq!(v, s("a\n  b\n"));
}

#[test]
fn eval_qr_and_arrays() {
    let p = |src: &str, flags: &str| {
        Value::Regex(Pattern {
            src: src.as_bytes().to_vec(),
            flags: flags.into(),
        })
    };
    assert_eq!(ev(r"qr/a\d+$/"), p(r"a\d+$", ""));
    assert_eq!(ev(r"qr{x/y}ms"), p("x/y", "ms"));
    assert_eq!(ev(r"qr/$::HtmlDir|$|z/i"), p("/srv/html|$|z", "i"));
    assert_eq!(ev(r"qr!a!"), p("a", ""));
    assert_eq!(
        ev(r#"["a", qr/b/, ["c", {value => "d", delay_before => 0.5}],]"#),
        Value::Array(vec![
            s("a"),
            p("b", ""),
            Value::Array(vec![
                s("c"),
                Value::Hash(vec![("value".into(), s("d")), ("delay_before".into(), s("0.5"))])
            ]),
        ])
    );
    assert_eq!(
        ev(r#"[("x") x 2, qw(a b)]"#),
        Value::Array(vec![s("x"), s("x"), s("a"), s("b")])
    );
    assert_eq!(ev("['a'] -> [0]"), s("a"));
}

#[test]
fn eval_errors_are_reported() {
    let mut i = interp();
    for bad in [
        "uri_escape('x')",
        "foo->bar",
        "\"unterminated",
        "for (1) {}",
        "\\&CORE::uc",
    ] {
        assert!(i.eval(bad.as_bytes()).is_err(), "{} should fail", bad);
    }
}

#[test]
fn preamble_directives() {
    let f = parse::parse_file(FILE.as_bytes(), interp()).unwrap();
    let p = &f.preamble;
    assert_eq!(p.repeat_each, 3);
    assert_eq!(p.log_level, "warn");
    assert!(p.no_long_string && p.no_root_location && !p.master);
    assert_eq!(p.workers, 2);
    assert_eq!(f.interp.env["TEST_NGINX_FOO"], "foo-default");
    assert_eq!(f.interp.env["TEST_NGINX_SERVER_PORT"], "1984");
    assert_eq!(
        f.interp.vars["HttpConfig"],
        s("\n    lua_package_path \"/srv/html/?.lua;;\";\n")
    );
    assert_eq!(p.defaults.len(), 1);
    assert_eq!(p.defaults[0].name, "request");
    assert_eq!(p.defaults[0].unless_defined, ["request"]);
    assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    let mut i = f.interp.clone();
    let b2 = &f.blocks[1];
    assert_eq!(
        parse::section_value(b2.section("http_config").unwrap(), &mut i).unwrap(),
        s("\n    lua_package_path \"/srv/html/?.lua;;\";\n")
    );
    assert_eq!(i.eval_tokens(&p.defaults[0].expr).unwrap(), s("GET /t"));
}

#[test]
fn preamble_tolerates_unknown_statements() {
    let src = b"use strict;\nsub foo { 1 }\nsome_unknown_call(1);\nfor my $x (1..2) { }\nrepeat_each(2);\nplan skip_all => 'no redis';\n__DATA__\n=== T\n";
    let f = parse::parse_file(src, interp()).unwrap();
    assert_eq!(f.preamble.repeat_each, 2);
    assert_eq!(f.preamble.skip_all.as_deref(), Some("no redis"));
    assert_eq!(f.warnings.len(), 2, "{:?}", f.warnings);
    assert!(
        f.warnings.iter().any(|w| w.contains("some_unknown_call")),
        "{:?}",
        f.warnings
    );
}

#[test]
fn env_expansion() {
    let lookup = |k: &str| match k {
        "TEST_NGINX_SERVER_PORT" => Some("1984".to_string()),
        "TEST_NGINX_X" => Some("x".to_string()),
        _ => None,
    };
    let mut missing = Vec::new();
    let out = parse::expand_env(
        b"listen $TEST_NGINX_SERVER_PORT; ${TEST_NGINX_X}y $TEST_NGINX_XY $TEST_NGINX_NOPE $other",
        &lookup,
        &mut missing,
    );
    assert_eq!(out, b"listen 1984; xy $TEST_NGINX_XY $TEST_NGINX_NOPE $other");
    assert_eq!(missing, ["TEST_NGINX_XY", "TEST_NGINX_NOPE"]);
}

#[test]
fn user_files_and_times() {
    let f = parse::parse_user_files(b">>> a.txt\nhello\n>>> d/b.txt 199801171935.33\nx\ny\n");
    assert_eq!(f.len(), 2);
    assert_eq!(f[0], ("a.txt".to_string(), b"hello\n".to_vec(), None));
    assert_eq!(f[1].0, "d/b.txt");
    assert_eq!(f[1].1, b"x\ny\n");
    assert_eq!(f[1].2.as_deref(), Some("199801171935.33"));
    assert_eq!(parse::parse_time("1.5"), Some(1.5));
    assert_eq!(parse::parse_time("100ms"), Some(0.1));
    assert_eq!(parse::parse_time("2s"), Some(2.0));
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
        vg_frame("/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so", "memcpy"),
        vg_frame(so, "ngx_http_lua_module::api::x"),
        vg_frame("/usr/sbin/nginx", "ngx_http_core_content_phase"),
        vg_frame("/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so", "malloc"),
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
        vg_frame("/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so", "malloc"),
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
