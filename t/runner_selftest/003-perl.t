# Preambles in ordinary Perl, as standard Test::Nginx files have them: a
# sub, map, sprintf, heredocs, a hash, `||=` on %ENV, strict.  The runner
# evaluates them with real Perl (t/runner/blocks.pl); each block's expected
# values are written out literally, so a block fails when the Perl was not
# evaluated as Perl.  Also: Perl regex flags kept by PCRE2 matching.
use Test::Nginx::Socket;
use strict;
use warnings;

repeat_each(2);
plan tests => repeat_each() * blocks() * 2;

$ENV{TEST_NGINX_SELFTEST_WORD} ||= 'fallback';

# exact-match locations answering "NAME-LEN" (LEN as 3 digits)
sub locations {
    my ($prefix, @names) = @_;
    return join "\n", map {
        sprintf('location = /%s/%s { return 200 "%s-%03d\n"; }', $prefix, $_, $_, length)
    } @names;
}

our $Locations = locations('gen', qw(alpha beta gamma));

our $HttpConfig = <<"_EOC_";
    map \$uri \$tag {
        default "tag-$ENV{TEST_NGINX_SELFTEST_WORD}";
    }
_EOC_

my %status = (ok => 200, created => 201);
our @Requests = map { "GET /code/$_" } sort keys %status;
our @Codes = @status{sort keys %status};

add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->error_log && !defined $block->no_error_log) {
        $block->set_value("no_error_log", "[error]");
    }
});

run_tests();

__DATA__

=== TEST 1: locations built by a preamble sub with map and sprintf
--- config eval: $::Locations
--- request eval
["GET /gen/alpha", "GET /gen/beta", "GET /gen/gamma"]
--- response_body eval
["alpha-005\n", "beta-004\n", "gamma-005\n"]



=== TEST 2: a heredoc and an %ENV default in http_config and config
--- http_config eval: $::HttpConfig
--- config
    location = /t { return 200 "$tag $TEST_NGINX_SELFTEST_WORD\n"; }
--- request
GET /t
--- response_body
tag-fallback fallback



=== TEST 3: requests and statuses from a hash
--- config
    location = /code/ok { return 200 "ok\n"; }
    location = /code/created { return 201 "created\n"; }
--- request eval: [@::Requests]
--- error_code eval: [@::Codes]
--- response_body eval
["created\n", "ok\n"]



=== TEST 4: a preamble sub called in an eval section
--- config eval
main::locations('called', 'delta')
--- request
GET /called/delta
--- response_body
delta-005



=== TEST 5: qr// flags are kept: m and i
--- config
    location = /t { return 200 "first\nsecond\nthird\n"; }
--- request
GET /t
--- response_body_like eval
qr/^SECOND$/mi



=== TEST 6: a plain _like section is matched with /s only
--- config
    location = /t { return 200 "first\nsecond\nthird\n"; }
--- request
GET /t
--- response_body_unlike: ^second$



=== TEST 7: /s applies to a plain _like section; x to its qr
--- config
    location = /t { return 200 "first\nsecond\nthird\n"; }
--- request eval
["GET /t", "GET /t"]
--- response_body_like eval
["first.second.third", qr/ s e c o n d \n t /x]



=== TEST 8: error_log mixing qr// and plain strings
--- config
--- request
GET /missing.html
--- error_code: 404
--- error_log eval
[qr{open\(\) ".*?/html/missing\.html" failed}, "No such file or directory"]
