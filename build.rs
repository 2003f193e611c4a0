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
    // ngx.config.nginx_configure() returns the configure flags of the
    // nginx this module is built for.
    let flags = std::fs::read_to_string("/usr/share/nginx/src/conf_flags").unwrap_or_default();
    let configure = flags
        .split_once('(')
        .and_then(|(_, rest)| rest.rsplit_once(')'))
        .map(|(inner, _)| inner.trim().to_string())
        .unwrap_or_default();
    println!("cargo::rerun-if-changed=/usr/share/nginx/src/conf_flags");
    println!("cargo::rustc-env=NGX_LUA_CONFIGURE= {configure}");
    println!("cargo::rerun-if-env-changed=DEP_NGINX_OS");
    if let Ok(os) = std::env::var("DEP_NGINX_OS") {
        println!("cargo::rustc-cfg=ngx_os=\"{os}\"");
    }
    link_pcre2();
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
