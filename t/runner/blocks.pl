#!/usr/bin/perl
# The Perl half of the t/ runner: evaluates one Test::Nginx .t file the way
# Test::Nginx does and prints its blocks as JSON for the Rust half
# (t/runner/perl.rs), which drives nginx, speaks HTTP and checks.
#
#   perl t/runner/blocks.pl [--nginx-version X.Y.Z] [--nginx-binary PATH] FILE
#
# What runs, in Test::Nginx's order:
#  1. the preamble (the code before __DATA__) as Perl in package main, with
#     stand-ins for Test::Nginx::Socket's functions (repeat_each, workers,
#     add_block_preprocessor, plan, ...) that record the settings;
#  2. Test::Base (Debian's libtest-base-perl, the parser Test::Nginx is built
#     on) splits the blocks and runs their filters (eval, chomp, trim, ...);
#     `eval` code runs where Test::Base runs it (package Test::Base::Filter,
#     strict), but a failing eval fails its block instead of becoming the
#     section's value;
#  3. the add_block_preprocessor subs, then skip_eval, request_eval and
#     response_body_eval, which Test::Nginx evaluates itself.
#
# Output on stdout (anything the file's Perl prints goes to stderr):
#   { "preamble": {setting: value, ...}   only the settings the file made
#     "skip_all": reason or null,        from plan(skip_all => ...)
#     "env": {NAME: value, ...},         %ENV after all of the above
#     "warnings": [...],
#     "total_blocks": N,                 every block of the file
#     "blocks": [ { "index": 1-based position, "line": line of its ===,
#                   "name": ..., "skip": bool (--- SKIP),
#                   "error": null or why it cannot run,
#                   "skip_eval": null or bool,
#                   "sections": [ {"name", "filters", "value"}, ... ] } ] }
# Values: a string (bytes as \u00XX), null, an array, {"qr": source,
# "flags": "msix"}, {"hash": {...}}, {"code": "CODE"} or {"other": type}.
# Sections whose value is undef are left out: Test::Nginx treats them as
# absent (`defined $block->x`).  Blocks are those Test::Base would run
# (ONLY, LAST) plus the --- SKIP ones, flagged, so they can be reported.
use strict;
use warnings;

# The file's Perl is compiled here, before any lexical of this script is
# declared, so that it sees none of them; with no strict and no warnings, as
# a .t file starts.
sub Runner::eval_lax { no strict; no warnings; eval $_[0] }

# Code that Test::Nginx's own modules evaluate (skip_eval, request_eval,
# response_body_eval) runs under their pragmas.
sub Runner::eval_strict { eval $_[0] }

my $json_out;

BEGIN {
    # stdout carries the JSON alone; whatever the file's Perl or Test::More
    # prints goes to stderr (dup'ed before Test::More copies the handles).
    open($json_out, '>&', \*STDOUT) or die "cannot dup stdout: $!\n";
    open(STDOUT, '>&', \*STDERR) or die "cannot redirect stdout: $!\n";
}

use JSON::PP ();
use Test::Base ();
use Test::Base::Filter ();

# ------------------------------------------------------------------------
# Stand-ins for Test::Nginx::Util / Test::Nginx::Socket(::Lua): the same
# names, values and getter/setter behaviour; setters record what the file
# set for the runner.

package Test::Nginx::Util;

our %Set;                   # setting => value, as the file set them
our @Warnings;
our @BlockPreprocessors;
our ($RunTestsCalled, $SkipAll);
our $Spec;                  # the Test::Base object of the file's blocks
our @Chosen;                # the blocks Test::Base would run

our $ServerAddr          = '127.0.0.1';
our $ServerName          = 'localhost';
our $ServerPort          = $ENV{TEST_NGINX_SERVER_PORT} || 1984;
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our $ServRoot            = $ENV{TEST_NGINX_SERVER_ROOT} || 't/servroot';
our $HtmlDir             = "$ServRoot/html";
our $LogDir              = "$ServRoot/logs";
our $ErrLogFile          = "$LogDir/error.log";
our $AccLogFile          = "$LogDir/access.log";
our $ConfDir             = "$ServRoot/conf";
our $ConfFile            = "$ConfDir/nginx.conf";
our $PidFile             = "$LogDir/nginx.pid";
our $CacheDir            = "$ServRoot/cache";
our $NginxBinary         = $ENV{TEST_NGINX_BINARY} || 'nginx';
our ($NginxVersion, $NginxRawVersion, $PcreVersion, $OpenSSLVersion);
our $RepeatEach          = 1;
our $Workers             = 1;
our $WorkerConnections   = 1024;
our $LogLevel            = 'debug';
our $MasterProcessEnabled = 'on';
our $Timeout             = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $NoLongString;
our $NoRootLocation      = 0;
our $NoShuffle           = 0;
our $CheckAccumErrLog;
our $ConfigPreamble      = '';
our @EnvToNginx;
our ($UseStap, $CheckLeak, $Benchmark, $BenchmarkWarmup, $NoNginxManager) = (0) x 5;
our $UseValgrind         = $ENV{TEST_NGINX_USE_VALGRIND};

# getter when called without arguments, setter otherwise (Util.pm's shape)
sub _accessor {
    my ($name, $var) = @_;
    no strict 'refs';
    *{$name} = sub {
        if (@_) {
            $$var = shift;
            $Set{$name} = $$var;
        }
        return $$var;
    };
}

_accessor($_->[0], $_->[1]) for (
    [repeat_each            => \$RepeatEach],
    [workers                => \$Workers],
    [worker_connections     => \$WorkerConnections],
    [log_level              => \$LogLevel],
    [timeout                => \$Timeout],
    [server_name            => \$ServerName],
    [server_addr            => \$ServerAddr],
    [server_port            => \$ServerPort],
    [server_port_for_client => \$ServerPortForClient],
);

sub master_on ()  { $MasterProcessEnabled = $Set{master} = 'on' }
sub master_off () { $MasterProcessEnabled = $Set{master} = 'off' }

sub master_process_enabled (@) {
    return $MasterProcessEnabled unless @_;
    $MasterProcessEnabled = $Set{master} = shift() ? 'on' : 'off';
}

sub no_long_string ()        { $NoLongString = $Set{no_long_string} = 1 }
sub no_root_location ()      { $NoRootLocation = $Set{no_root_location} = 1 }
sub check_accum_error_log () { $CheckAccumErrLog = $Set{check_accum_error_log} = 1 }
sub config_preamble ($)      { $ConfigPreamble = $Set{config_preamble} = shift }
sub no_shuffle ()            { $NoShuffle = 1 }   # blocks always run in file order

sub env_to_nginx (@) {
    Carp::croak("env_to_nginx: no arguments specified") unless @_;
    for my $v (@_) {
        Carp::croak("env_to_nginx: bad argument value: $v\n")
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
    $Set{env_to_nginx} = [@EnvToNginx];
}

sub html_dir ()    { $HtmlDir }
sub server_root () { $ServRoot }

sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }

sub run_tests () { $RunTestsCalled = 1 }

sub plan {
    my ($what, $arg) = @_;
    if (defined $what && $what eq 'skip_all') {
        $SkipAll = defined $arg ? $arg : 'plan skip_all';
        # as Test::More's plan(skip_all) exits: nothing after it runs
        die bless {}, 'Runner::SkipAll';
    }
    # tests => N and no_plan: the runner counts blocks itself
}

sub bail_out (@) { die "bail_out: @_\n" }
use Carp qw(croak carp confess cluck);

sub diag { print STDERR map { "# $_\n" } split /\n/, join '', @_ }

sub _unsupported {
    my ($name) = @_;
    no strict 'refs';
    *{$name} = sub { push @Warnings, "$name() is not supported by this runner and was ignored" };
}

# Perl code Test::Nginx would call later (while or after the blocks run):
# the runner cannot, so it says so
_unsupported($_) for qw(
    run_test add_cleanup_handler add_test_cleanup_handler add_response_body_check
);

# ways of managing nginx that make no difference to the runner
sub use_hup ()          { }
sub no_nginx_manager () { }

sub no_diff { $ENV{TEST_SHOW_NO_DIFFS} = 1 }

# Test::Base's blocks(): the number of blocks to run in scalar context
# (plan tests => repeat_each() * blocks() * 3), the filtered blocks in list
# context.
sub blocks {
    return scalar @Chosen unless wantarray;
    for my $b (@Chosen) {
        $b->run_filters unless $b->is_filtered;
    }
    return @Chosen;
}

sub filters {
    if (ref $_[0] eq 'HASH') {
        $Spec->_filters_map(shift);
    } else {
        push @{$Spec->_filters}, @_;
    }
}

sub trim ($) {
    my $s = shift;
    return undef unless defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /gs;
    return $s;
}

sub get_canon_version (@) { sprintf "%d.%03d%03d", $_[0], $_[1], $_[2] }

sub parse_time ($) {
    my $tm = shift;
    if (defined $tm) {
        if ($tm =~ s/([^_a-zA-Z])ms$/$1/) {
            $tm = $tm / 1000;
        } else {
            $tm =~ s/([^_a-zA-Z])s$/$1/;
        }
    }
    return $tm;
}

# What `use Test::Nginx::Socket;` exports: its own functions and Test::Base's
# (Spiffy exports a base class's too) that a preamble may call.
our @ExportFunctions = qw(
    env_to_nginx plan run_tests run_test repeat_each config_preamble
    worker_connections master_process_enabled no_long_string workers
    master_on master_off log_level no_shuffle no_root_location use_hup
    server_name server_addr server_root html_dir server_port
    server_port_for_client timeout no_nginx_manager check_accum_error_log
    add_block_preprocessor bail_out add_test_cleanup_handler
    add_cleanup_handler add_response_body_check
    blocks filters diag no_diff croak carp confess cluck
);
# Test::Nginx::Util's, reachable by their full names
our @UtilScalars = qw(
    ServerAddr ServerName ServerPort ServerPortForClient ServRoot HtmlDir
    LogDir ErrLogFile AccLogFile PidFile ConfDir ConfFile NginxBinary
    NginxVersion NginxRawVersion PcreVersion RepeatEach NoLongString UseStap
    CheckLeak Benchmark BenchmarkWarmup NoNginxManager
);

sub import {
    my ($class, @args) = @_;
    my $caller = caller;
    no strict 'refs';
    # `use Test::Nginx::Socket::Lua -Base;` in a helper module: inherit
    push @{"${caller}::ISA"}, $class if grep { /^-base$/i } @args;
    *{"${caller}::$_"} = \&{"Test::Nginx::Util::$_"} for @ExportFunctions;
    # plan arguments (`'no_plan'`, `tests => N`) need nothing
}

# `use Test::Nginx::Socket::Lua;` finds these, and fully qualified names
# (Test::Nginx::Socket::Lua::workers) work as well
for my $m (qw(Test::Nginx::Socket Test::Nginx::Socket::Lua)) {
    no strict 'refs';
    *{"${m}::$_"} = \&{"Test::Nginx::Util::$_"} for @ExportFunctions, 'import';
    *{"${m}::$_"} = \${"Test::Nginx::Util::$_"} for @UtilScalars;
}
for my $m (qw(Test::Nginx::Util Test::Nginx::Socket Test::Nginx::Socket::Lua)) {
    (my $path = "$m.pm") =~ s{::}{/}g;
    $INC{$path} = __FILE__;
}

# ------------------------------------------------------------------------

package Runner;

# Test::Base's eval filter returns the error text as the section's value;
# here the block fails with it instead, naming the section.
{
    my $eval_filter = \&Test::Base::Filter::eval;
    no warnings 'redefine';
    *Test::Base::Filter::eval = sub {
        my ($filter, $code) = @_;
        my @ret = $eval_filter->(@_);
        if ($@) {
            my $block = $filter->current_block;
            my ($section) = grep {
                my @v = $block->$_;
                @v == 1 && defined $v[0] && $v[0] eq $code
            } @{ $block->_section_order };
            die '--- ' . ($section // '?') . " eval: $@";
        }
        return @ret;
    };
}

sub error_text {
    my ($err) = @_;
    return ref $err ? "died with a " . ref($err) . " object" : "$err" =~ s/\s+\z//r;
}

# A Perl value as JSON-able data (see the header for the shapes).
sub export_value {
    my ($v, $depth) = @_;
    die "a value nested more than 64 levels deep\n" if ++$depth > 64;
    return undef unless defined $v;
    my $ref = ref $v;
    if (!$ref) {
        my $s = "$v";
        utf8::encode($s) if utf8::is_utf8($s);   # wide characters go out as UTF-8
        return $s;
    }
    if (re::is_regexp($v)) {
        my ($pat, $flags) = re::regexp_pattern($v);
        utf8::encode($pat) if utf8::is_utf8($pat);
        return { qr => $pat, flags => $flags };
    }
    return [ map { export_value($_, $depth) } @$v ] if $ref eq 'ARRAY';
    if ($ref eq 'HASH') {
        my %h;
        for my $k (keys %$v) {
            my $key = $k;
            utf8::encode($key) if utf8::is_utf8($key);
            $h{$key} = export_value($v->{$k}, $depth);
        }
        return { hash => \%h };
    }
    return { code => 'CODE' } if $ref eq 'CODE';
    return { other => $ref };
}

# Block fields of Test::Base::Block that are not sections.
my %not_sections = map { $_ => 1 }
    qw(name description seq_num is_filtered blocks_object original_values);

sub export_block {
    my ($block, $info, $skipped) = @_;
    my %out = (
        index => $info->{index}, line => $info->{line}, name => scalar $block->name,
        skip => $skipped ? JSON::PP::true : JSON::PP::false,
        error => $info->{error}, skip_eval => $info->{skip_eval}, sections => [],
    );
    return \%out if $skipped || defined $info->{error};
    my $map = $block->_section_map || {};
    my @order = @{ $block->_section_order || [] };
    my %seen = map { $_ => 1 } @order;
    push @order, sort grep { !$seen{$_} && !/^_/ && !$not_sections{$_} } keys %$block;
    for my $name (@order) {
        next unless exists $block->{$name};
        my $value = $block->{$name}[0];   # what the accessor gives in scalar context
        next unless defined $value;
        push @{ $out{sections} }, {
            name => $name,
            filters => ($map->{$name} ? $map->{$name}{filters} // '' : ''),
            value => export_value($value, 0),
        };
    }
    return \%out;
}

# What Test::Nginx evaluates itself, after the preprocessors.
sub nginx_evals {
    my ($block, $info) = @_;
    if (defined(my $se = $block->skip_eval)) {
        $se =~ /^\s*(\d+)\s*:\s*(.*)/s or die "invalid --- skip_eval: $se\n";
        my $r = eval_strict("package Test::Nginx::Util; $2");
        die "--- skip_eval: $@" if $@;
        $info->{skip_eval} = $r ? JSON::PP::true : JSON::PP::false;
    }
    for (['request_eval', 'request'], ['response_body_eval', 'response_body']) {
        my ($from, $to) = @$_;
        my $code = $block->$from;
        next unless defined $code;
        my @code = ref $code eq 'ARRAY' ? @$code : ($code);
        my @v = map {
            my $r = eval_strict("package Test::Nginx::Socket; $_");
            die "--- $from: $@" if $@;
            $r;
        } @code;
        $block->set_value($to, ref $code eq 'ARRAY' ? \@v : $v[0]);
        delete $block->{$from};
    }
}

sub main {
    my %opt;
    while (@ARGV && $ARGV[0] =~ /^--(nginx-version|nginx-binary)$/) {
        shift @ARGV;
        $opt{$1} = shift @ARGV;
    }
    die "usage: blocks.pl [--nginx-version X.Y.Z] [--nginx-binary PATH] FILE\n" unless @ARGV == 1;
    my $file = $ARGV[0];
    open my $fh, '<:raw', $file or die "cannot read $file: $!\n";
    my $content = do { local $/; <$fh> };
    close $fh;

    if (defined(my $v = $opt{'nginx-version'})) {
        $Test::Nginx::Util::NginxRawVersion = $v;
        my @n = (split(/\./, $v), 0, 0, 0);
        $Test::Nginx::Util::NginxVersion = Test::Nginx::Util::get_canon_version(@n[0 .. 2]);
    }
    $Test::Nginx::Util::NginxBinary = $opt{'nginx-binary'} if defined $opt{'nginx-binary'};

    # the preamble and the spec, split where Perl's DATA handle starts
    $content =~ /^__(?:DATA|END)__[ \t\r]*(?:\n|\z)/mg or die "$file: no __DATA__ line found\n";
    my $preamble = substr($content, 0, $-[0]);
    my $spec = substr($content, $+[0]);
    my $spec_line = 1 + ($preamble =~ tr/\n//) + 1;

    # Test::Base's parsing of every block, as _block_list_init does, keeping
    # each block's position and line
    my $t = Test::Base->new;
    $Test::Nginx::Util::Spec = $t;
    my $full = $spec;
    $spec = $t->_pre_eval($spec);
    $spec_line += ($full =~ tr/\n//) - ($spec =~ tr/\n//);
    my $cd = $t->block_delim;
    my @all;
    while ($spec =~ /^(\Q${cd}\E.*?(?=^\Q${cd}\E|\z))/msg) {
        my ($hunk, $start) = ($1, $-[0]);
        my $line = $spec_line + (substr($spec, 0, $start) =~ tr/\n//);
        my $block = $t->_make_block($hunk);
        $block->blocks_object($t);
        $block->seq_num(scalar(@all) + 1);
        push @all, [$block, { index => scalar(@all) + 1, line => $line }];
    }

    # Test::Base's choice (_choose_blocks), with the SKIP ones kept aside
    my (@chosen, @skipped);
    for my $b (@all) {
        if (exists $b->[0]{ONLY}) {
            @chosen = ($b);
            @skipped = ();
            push @Test::Nginx::Util::Warnings, "a block has --- ONLY; the other blocks are not run";
            last;
        }
        if (exists $b->[0]{SKIP}) {
            push @skipped, $b;
            next;
        }
        push @chosen, $b;
        last if exists $b->[0]{LAST};
    }
    $t->block_list([map { $_->[0] } @chosen]);
    @Test::Nginx::Util::Chosen = map { $_->[0] } @chosen;

    # 1. the preamble
    $0 = $file;
    my $ok = eval_lax(qq{package main;\n#line 1 "$file"\n$preamble\n;1});
    if (!$ok) {
        die "$file: the preamble failed: " . error_text($@) . "\n"
            unless ref $@ eq 'Runner::SkipAll';
    }
    push @Test::Nginx::Util::Warnings, "the preamble does not call run_tests()"
        unless $ok ? $Test::Nginx::Util::RunTestsCalled : 1;

    my @blocks;
    if (!defined $Test::Nginx::Util::SkipAll) {
        # 2. filters of every block, then 3. per block: preprocessors and
        # Test::Nginx's own evals
        for my $b (@chosen) {
            my ($block, $info) = @$b;
            eval { $block->run_filters unless $block->is_filtered; 1 }
                or $info->{error} = error_text($@);
        }
        for my $b (@chosen) {
            my ($block, $info) = @$b;
            next if $info->{error};
            eval {
                for my $hdl (@Test::Nginx::Util::BlockPreprocessors) {
                    $hdl->($block);
                }
                nginx_evals($block, $info);
                1;
            } or $info->{error} = error_text($@);
        }
        my %skipped = map { $_->[1]{index} => 1 } @skipped;
        for my $b (sort { $a->[1]{index} <=> $b->[1]{index} } @chosen, @skipped) {
            push @blocks, export_block(@$b, $skipped{ $b->[1]{index} });
        }
    }

    my %set;
    while (my ($k, $v) = each %Test::Nginx::Util::Set) {
        $set{$k} = export_value($v, 0);
    }
    my %env;
    while (my ($k, $v) = each %ENV) {
        $env{export_value($k, 0)} = export_value($v, 0);
    }
    my $doc = {
        preamble => \%set,
        skip_all => export_value($Test::Nginx::Util::SkipAll, 0),
        env => \%env,
        warnings => \@Test::Nginx::Util::Warnings,
        total_blocks => scalar @all,
        blocks => \@blocks,
    };
    print {$json_out} JSON::PP->new->ascii->canonical->encode($doc), "\n";
    close $json_out or die "cannot write the output: $!\n";
}

main();
