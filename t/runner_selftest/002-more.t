use Test::Nginx::Socket 'no_plan';

repeat_each(2);
master_off();
no_root_location();

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->request) {
        $block->set_value("request", "GET /t");
    }

    if (!defined $block->error_log) {
        $block->set_value("no_error_log", "[error]");
    }
});

our $MainConfig = <<_EOC_;
env TEST_NGINX_SOMETHING;
_EOC_

run_tests();

__DATA__

=== TEST 1: default request from add_block_preprocessor, main/http config
--- main_config eval: $::MainConfig
--- http_config
    map $uri $unused { default "unused"; }
--- config
    location /t { set $mapped "mapped"; return 200 "$mapped\n"; }
--- response_body
mapped



=== TEST 2: config reused from the previous block
--- response_body_unlike: ^unmapped
--- response_body_like: ^mapped$



=== TEST 3: error_code_like, raw headers unlike, body filters
--- config
    location /t { return 201 "Hello\n"; }
--- error_code_like: ^20[01]$
--- raw_response_headers_unlike: X-Nope
--- response_body_filters
uc
--- response_body
HELLO



=== TEST 4: per-request more_headers, request comments
--- config
    location /h { return 200 "[$http_x_a]\n"; }
--- more_headers eval
["X-A: one", "X-A: two"]
--- request eval
["GET /h", "# a comment\n  GET /h"]
--- response_body eval
["[one]\n", "[two]\n"]



=== TEST 5: user_files eval, server_name
--- config
    location / { root $TEST_NGINX_HTML_DIR; }
    location /sn { return 200 "$server_name\n"; }
--- server_name: example.org
--- user_files eval
[["a/b.txt", "from eval\n"]]
--- request eval
["GET /a/b.txt", "GET /sn"]
--- response_body eval
["from eval\n", "example.org\n"]



=== TEST 6: skip_eval true
--- skip_eval: 2: $^O eq 'linux'
--- config
--- response_body
never



=== TEST 7: skip_eval false
--- skip_eval: 2: $^O ne 'linux'
--- config
    location /t { return 200 "ran\n"; }
--- response_body
ran



=== TEST 8: error_log replaces the default no_error_log
--- config
    location /t { return 200 "x\n"; }
--- request
GET /missing
--- error_code: 404
--- error_log
No such file or directory



=== TEST 9: shutdown error log
--- config
    location /t { return 200 "x\n"; }
--- log_level: notice
--- response_body
x
--- shutdown_error_log
(SIGQUIT) received
--- no_shutdown_error_log
[alert]



=== TEST 10: grep_error_log with a plain string
--- config
    location /t { return 200 "x\n"; }
--- log_level: info
--- grep_error_log chop
event method
--- grep_error_log_out eval
["event method\n", ""]
--- response_body
x



=== TEST 11: timeout with ms unit and abort but an explicit status check
--- config
    location /t { return 204; }
--- timeout: 500ms
--- abort
--- error_code: 204
--- response_body



=== TEST 12: byte strings and escapes
--- config
    location /t { return 200 "café\n"; }
--- response_body eval
"caf\x{e9}" eq "caf\xe9" ? "caf\xc3\xa9\n" : "wrong"



=== TEST 13: keep-alive header from more_headers
--- config
    location /t { return 200 "ka\n"; }
--- more_headers
Connection: keep-alive
--- timeout: 0.3
--- abort
--- response_body
ka
