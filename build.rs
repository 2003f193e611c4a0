//! Passes the nginx configuration that nginx-sys detected on to this crate as
//! `cfg` values (`ngx_feature = "http_ssl"`, `ngx_os = "linux"`), so code can
//! follow the struct layout of the nginx it is built for.
fn main() {
    println!("cargo::rerun-if-env-changed=DEP_NGINX_FEATURES_CHECK");
    println!(
        "cargo::rustc-check-cfg=cfg(ngx_feature, values({}))",
        std::env::var("DEP_NGINX_FEATURES_CHECK").unwrap_or("any()".to_string())
    );
    println!("cargo::rerun-if-env-changed=DEP_NGINX_FEATURES");
    if let Ok(features) = std::env::var("DEP_NGINX_FEATURES") {
        for feature in features.split(',').map(str::trim) {
            println!("cargo::rustc-cfg=ngx_feature=\"{feature}\"");
        }
    }
    println!("cargo::rerun-if-env-changed=DEP_NGINX_OS_CHECK");
    println!(
        "cargo::rustc-check-cfg=cfg(ngx_os, values({}))",
        std::env::var("DEP_NGINX_OS_CHECK").unwrap_or("any()".to_string())
    );
    // ngx.config.nginx_configure() returns the configure arguments of the
    // nginx this module is built for: NGX_CONFIGURE of the source tree that
    // nginx-sys was pointed at (scripts/build.sh configures it with the
    // binary's own `nginx -V` arguments), whatever nginx version it is.
    println!("cargo::rerun-if-env-changed=DEP_NGINX_BUILD_DIR");
    let configure = std::env::var("DEP_NGINX_BUILD_DIR")
        .ok()
        .map(|dir| std::path::Path::new(&dir).join("ngx_auto_config.h"))
        .and_then(|header| {
            println!("cargo::rerun-if-changed={}", header.display());
            std::fs::read_to_string(header).ok()
        })
        .and_then(|text| ngx_configure(&text))
        .unwrap_or_default();
    println!("cargo::rustc-env=NGX_LUA_CONFIGURE={configure}");
    // The nginx API differences between the versions we build for are
    // handled in src/glue/ngx_version.rs, keyed on these cfgs.
    println!("cargo::rustc-check-cfg=cfg(ngx_header_chains)");
    println!("cargo::rerun-if-env-changed=DEP_NGINX_VERSION_NUMBER");
    let version: u64 = std::env::var("DEP_NGINX_VERSION_NUMBER")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if version >= 1_023_000 {
        println!("cargo::rustc-cfg=ngx_header_chains");
    }
    // nginx 1.27 dropped ngx_ssl_certificate_index (the variables read the
    // connection's certificate from OpenSSL itself).
    println!("cargo::rustc-check-cfg=cfg(ngx_ssl_certificate_index)");
    if version < 1_027_000 {
        println!("cargo::rustc-cfg=ngx_ssl_certificate_index");
    }
    println!("cargo::rerun-if-env-changed=DEP_NGINX_OS");
    if let Ok(os) = std::env::var("DEP_NGINX_OS") {
        println!("cargo::rustc-cfg=ngx_os=\"{os}\"");
    }
    link_pcre2();
    order_hot_code();
}

/// The functions the workers run go first in .text, listed by
/// src/link/hot_code.ld (scripts/hot-code.sh writes it; why: the "Code
/// layout" section of docs/internals.md). The script is written for GNU ld,
/// the default linker here; a build that picks another linker through
/// RUSTFLAGS links without it.
fn order_hot_code() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/link/hot_code.ld");
    println!("cargo::rerun-if-changed={}", script.display());
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if script.exists() && !flags.contains("fuse-ld") && !flags.contains("linker=") {
        println!("cargo::rustc-cdylib-link-arg=-Wl,-T,{}", script.display());
    }
}

/// The C string of `#define NGX_CONFIGURE "..."` in ngx_auto_config.h,
/// unescaped (configure writes `\\` and `\"` for backslashes and quotes).
fn ngx_configure(header: &str) -> Option<String> {
    let line = header.lines().find(|l| l.starts_with("#define NGX_CONFIGURE "))?;
    let quoted = line["#define NGX_CONFIGURE ".len()..].trim();
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    Some(out)
}

/// ngx.re.* links the system libpcre2-8, the library nginx itself uses;
/// pkg-config says where it lives (src/glue/pcre2.rs names the library).
fn link_pcre2() {
    let out = std::process::Command::new("pkg-config")
        .args(["--libs-only-L", "libpcre2-8"])
        .output();
    if let Ok(out) = out {
        for dir in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Some(d) = dir.strip_prefix("-L") {
                println!("cargo::rustc-link-search=native={d}");
            }
        }
    }
}
