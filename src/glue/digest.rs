//! MD5 and SHA-1 through nginx's own implementations (`ngx_md5_*`,
//! `ngx_sha1_*`, part of every nginx core), as lua-nginx-module computes
//! `ngx.md5` and `ngx.sha1_bin`. OpenSSL 3's one-shot `MD5()`/`SHA1()` go
//! through its provider lookup on every call: about 2,000 instructions more
//! per digest and some 190 KB more of libcrypto resident in each worker.

/// nginx's `ngx_md5_t` (src/core/ngx_md5.h, unchanged since 1.11).
#[repr(C)]
struct NgxMd5 {
    bytes: u64,
    abcd: [u32; 4],
    buffer: [u8; 64],
}

/// nginx's `ngx_sha1_t` (src/core/ngx_sha1.h).
#[repr(C)]
struct NgxSha1 {
    bytes: u64,
    abcdef: [u32; 6],
    buffer: [u8; 64],
}

unsafe extern "C" {
    fn ngx_md5_init(ctx: *mut NgxMd5);
    fn ngx_md5_update(ctx: *mut NgxMd5, data: *const u8, size: usize);
    fn ngx_md5_final(result: *mut u8, ctx: *mut NgxMd5);
    fn ngx_sha1_init(ctx: *mut NgxSha1);
    fn ngx_sha1_update(ctx: *mut NgxSha1, data: *const u8, size: usize);
    fn ngx_sha1_final(result: *mut u8, ctx: *mut NgxSha1);
}

pub fn md5(data: &[u8]) -> [u8; 16] {
    let mut ctx = NgxMd5 {
        bytes: 0,
        abcd: [0; 4],
        buffer: [0; 64],
    };
    let mut out = [0u8; 16];
    // SAFETY: ctx is a live ngx_md5_t, data is readable for its length and
    // ngx_md5_final writes exactly 16 bytes to out.
    unsafe {
        ngx_md5_init(&mut ctx);
        ngx_md5_update(&mut ctx, data.as_ptr(), data.len());
        ngx_md5_final(out.as_mut_ptr(), &mut ctx);
    }
    out
}

pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut ctx = NgxSha1 {
        bytes: 0,
        abcdef: [0; 6],
        buffer: [0; 64],
    };
    let mut out = [0u8; 20];
    // SAFETY: ctx is a live ngx_sha1_t, data is readable for its length and
    // ngx_sha1_final writes exactly 20 bytes to out.
    unsafe {
        ngx_sha1_init(&mut ctx);
        ngx_sha1_update(&mut ctx, data.as_ptr(), data.len());
        ngx_sha1_final(out.as_mut_ptr(), &mut ctx);
    }
    out
}

/// Lower-case hex of a 16-byte digest, on the stack.
pub fn hex16(d: &[u8; 16]) -> [u8; 32] {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (i, &c) in d.iter().enumerate() {
        out[2 * i] = H[(c >> 4) as usize];
        out[2 * i + 1] = H[(c & 15) as usize];
    }
    out
}
