-- ngx.ssl, ngx.ssl.session and ngx.ssl.clienthello: the Lua face of the
-- TLS handshake API, over the ngx_http_lua_ffi_* functions this module
-- exports (src/api/ssl*.rs), called through LuaJIT's FFI. Built on first
-- `require` (package.preload).

local preload = package.preload

-- Scratch buffers of these modules' own: resty.core.base's shared buffer
-- can be resized by any code (set_string_buf_size), and a huge one would
-- make every handshake allocate it.
local SCRATCH = 4096
local scratch

local function buffer(n)
    local ffi = require "ffi"
    if n > SCRATCH then
        return ffi.new("char[?]", n)
    end
    if not scratch then
        scratch = ffi.new("char[?]", SCRATCH)
    end
    return scratch
end

local function common()
    local ffi = require "ffi"
    local base = require "resty.core.base"
    return ffi, base
end

-- Every certificate chain and key the parse_* functions made, by kind
-- ("cert", "key"), weakly: the functions taking them (here and the
-- cosocket's setclientcert) accept only these, since any other cdata would
-- reach OpenSSL as a wild pointer and crash the worker.
local parsed = debug.getregistry()["ngx_lua parsed ssl objects"]
if not parsed then
    parsed = setmetatable({}, { __mode = "k" })
    debug.getregistry()["ngx_lua parsed ssl objects"] = parsed
end

local function is_parsed(v, kind)
    return v ~= nil and parsed[v] == kind
end

local BAD_CERT = "bad cert arg: not a certificate chain from parse_pem_cert or parse_der_cert"
local BAD_KEY = "bad pkey arg: not a private key from parse_pem_priv_key or parse_der_priv_key"

-- The cosocket's setclientcert (lua/socket_tls.lua) checks its arguments
-- with this, so both refuse the same things with the same words.
debug.getregistry()["ngx_lua check parsed ssl cert and key"] = function(cert, key)
    if not is_parsed(cert, "cert") then
        return nil, BAD_CERT
    end
    if not is_parsed(key, "key") then
        return nil, BAD_KEY
    end
    return true
end

preload["ngx.ssl"] = function()
    local ffi, base = common()
    local C = ffi.C
    local ffi_str, ffi_gc = ffi.string, ffi.gc
    local get_request = base.get_request
    local errmsg = base.get_errmsg_ptr()
    local error, tonumber = error, tonumber

    ffi.cdef [[
    int ngx_http_lua_ffi_ssl_set_der_certificate(ngx_http_request_t *r,
        const char *data, size_t len, char **err);
    int ngx_http_lua_ffi_ssl_clear_certs(ngx_http_request_t *r, char **err);
    int ngx_http_lua_ffi_ssl_set_der_private_key(ngx_http_request_t *r,
        const char *data, size_t len, char **err);
    int ngx_http_lua_ffi_ssl_raw_server_addr(ngx_http_request_t *r, char **addr,
        size_t *addrlen, int *addrtype, char **err);
    int ngx_http_lua_ffi_ssl_server_port(ngx_http_request_t *r,
        unsigned short *server_port, char **err);
    int ngx_http_lua_ffi_ssl_server_name(ngx_http_request_t *r, char **name,
        size_t *namelen, char **err);
    int ngx_http_lua_ffi_ssl_raw_client_addr(ngx_http_request_t *r, char **addr,
        size_t *addrlen, int *addrtype, char **err);
    int ngx_http_lua_ffi_cert_pem_to_der(const unsigned char *pem,
        size_t pem_len, unsigned char *der, char **err);
    int ngx_http_lua_ffi_priv_key_pem_to_der(const unsigned char *pem,
        size_t pem_len, const unsigned char *passphrase,
        unsigned char *der, char **err);
    int ngx_http_lua_ffi_ssl_get_tls1_version(ngx_http_request_t *r,
        char **err);
    void *ngx_http_lua_ffi_parse_pem_cert(const unsigned char *pem,
        size_t pem_len, char **err);
    void *ngx_http_lua_ffi_parse_pem_priv_key(const unsigned char *pem,
        size_t pem_len, char **err);
    int ngx_http_lua_ffi_set_cert(void *r, void *cdata, char **err);
    int ngx_http_lua_ffi_set_priv_key(void *r, void *cdata, char **err);
    void ngx_http_lua_ffi_free_cert(void *cdata);
    void ngx_http_lua_ffi_free_priv_key(void *cdata);
    int ngx_http_lua_ffi_ssl_verify_client(void *r,
        void *cdata, int depth, char **err);
    void *ngx_http_lua_ffi_parse_der_cert(const char *data,
        size_t len, char **err);
    void *ngx_http_lua_ffi_parse_der_priv_key(const char *data, size_t len,
        char **err);
    void *ngx_http_lua_ffi_get_req_ssl_pointer(ngx_http_request_t *r);
    int ngx_http_lua_ffi_ssl_verify_client_trusted(void *r,
        void *client_certs, void *trusted_certs, int depth, char **err);
    void *ngx_http_lua_ffi_get_upstream_ssl_pointer(ngx_http_request_t *r,
        char **err);
    int ngx_http_lua_ffi_ssl_session_reused(ngx_http_request_t *r, void *ssl);
    int ngx_http_lua_ffi_req_shared_ssl_ciphers(ngx_http_request_t *r,
        unsigned short *ciphers, unsigned short *nciphers,
        int filter_grease, char **err);
    int ngx_http_lua_ffi_ssl_client_random(ngx_http_request_t *r,
        unsigned char *out, size_t *outlen, char **err);
    int ngx_http_lua_ffi_ssl_server_random(ngx_http_request_t *r,
        unsigned char *out, size_t *outlen, char **err);
    int ngx_http_lua_ffi_ssl_session_master_key(ngx_http_request_t *r,
        unsigned char *out, size_t *outlen, char **err);
    int ngx_http_lua_ffi_ssl_export_keying_material(void *r,
        unsigned char *out, size_t out_size,
        const char *label, size_t llen,
        const unsigned char *ctx, size_t ctxlen, int use_ctx, char **err);
    int ngx_http_lua_ffi_ssl_export_keying_material_early(void *r,
        unsigned char *out, size_t out_size,
        const char *label, size_t llen,
        const unsigned char *ctx, size_t ctxlen, char **err);
    ]]

    local M = { version = base.version }
    local charpp = ffi.new("char*[1]")
    local intp = ffi.new("int[1]")
    local ushortp = ffi.new("unsigned short[1]")

    local function req()
        local r = get_request()
        if not r then
            error("no request found", 3)
        end
        return r
    end

    -- true, or nil and the C side's message.
    local function ok_or_err(rc)
        if rc == 0 then
            return true
        end
        return nil, ffi_str(errmsg[0])
    end

    -- A parsed certificate chain or key, freed with `free` by the GC; or
    -- nil and the C side's message.
    local function gc_or_err(p, free, kind)
        if p ~= nil then
            local obj = ffi_gc(p, free)
            parsed[obj] = kind
            return obj
        end
        return nil, ffi_str(errmsg[0])
    end

    function M.clear_certs()
        return ok_or_err(C.ngx_http_lua_ffi_ssl_clear_certs(req(), errmsg))
    end

    function M.set_der_cert(data)
        return ok_or_err(C.ngx_http_lua_ffi_ssl_set_der_certificate(req(), data, #data, errmsg))
    end

    function M.set_der_priv_key(data)
        return ok_or_err(C.ngx_http_lua_ffi_ssl_set_der_private_key(req(), data, #data, errmsg))
    end

    local addr_types = { [0] = "unix", [1] = "inet", [2] = "inet6" }

    local function raw_addr(f)
        local sizep = base.get_size_ptr()
        local rc = f(req(), charpp, sizep, intp, errmsg)
        if rc == 0 then
            local typ = addr_types[intp[0]]
            if not typ then
                return nil, nil, "unknown address type: " .. intp[0]
            end
            return ffi_str(charpp[0], sizep[0]), typ
        end
        return nil, nil, ffi_str(errmsg[0])
    end

    function M.raw_server_addr()
        return raw_addr(C.ngx_http_lua_ffi_ssl_raw_server_addr)
    end

    function M.raw_client_addr()
        return raw_addr(C.ngx_http_lua_ffi_ssl_raw_client_addr)
    end

    function M.server_port()
        local rc = C.ngx_http_lua_ffi_ssl_server_port(req(), ushortp, errmsg)
        if rc == 0 then
            return ushortp[0]
        end
        return nil, ffi_str(errmsg[0])
    end

    function M.server_name()
        local sizep = base.get_size_ptr()
        local rc = C.ngx_http_lua_ffi_ssl_server_name(req(), charpp, sizep, errmsg)
        if rc == 0 then
            return ffi_str(charpp[0], sizep[0])
        end
        if rc == base.FFI_DECLINED then
            return nil
        end
        return nil, ffi_str(errmsg[0])
    end

    function M.cert_pem_to_der(pem)
        local out = buffer(#pem)
        local n = C.ngx_http_lua_ffi_cert_pem_to_der(pem, #pem, out, errmsg)
        if n > 0 then
            return ffi_str(out, n)
        end
        return nil, ffi_str(errmsg[0])
    end

    function M.priv_key_pem_to_der(pem, passphrase)
        local out = buffer(#pem)
        local n = C.ngx_http_lua_ffi_priv_key_pem_to_der(pem, #pem, passphrase, out, errmsg)
        if n > 0 then
            return ffi_str(out, n)
        end
        return nil, ffi_str(errmsg[0])
    end

    local function get_tls1_version()
        local v = tonumber(C.ngx_http_lua_ffi_ssl_get_tls1_version(req(), errmsg))
        if v >= 0 then
            return v
        end
        return nil, ffi_str(errmsg[0])
    end
    M.get_tls1_version = get_tls1_version

    function M.parse_pem_cert(pem)
        return gc_or_err(C.ngx_http_lua_ffi_parse_pem_cert(pem, #pem, errmsg), C.ngx_http_lua_ffi_free_cert, "cert")
    end

    function M.parse_pem_priv_key(pem)
        return gc_or_err(C.ngx_http_lua_ffi_parse_pem_priv_key(pem, #pem, errmsg),
            C.ngx_http_lua_ffi_free_priv_key, "key")
    end

    function M.set_cert(cert)
        if cert ~= nil and not is_parsed(cert, "cert") then
            return nil, BAD_CERT
        end
        return ok_or_err(C.ngx_http_lua_ffi_set_cert(req(), cert, errmsg))
    end

    function M.set_priv_key(key)
        if key ~= nil and not is_parsed(key, "key") then
            return nil, BAD_KEY
        end
        return ok_or_err(C.ngx_http_lua_ffi_set_priv_key(req(), key, errmsg))
    end

    -- master's third argument: certificates trusted for the client's
    -- chain without being named to the client as acceptable CAs.
    function M.verify_client(client_certs, depth, trusted_certs)
        if (client_certs ~= nil and not is_parsed(client_certs, "cert"))
            or (trusted_certs ~= nil and not is_parsed(trusted_certs, "cert"))
        then
            return nil, BAD_CERT
        end
        return ok_or_err(C.ngx_http_lua_ffi_ssl_verify_client_trusted(req(), client_certs, trusted_certs,
            depth or -1, errmsg))
    end

    -- lua-nginx-module master's additions (newer lua-resty-core).

    function M.parse_der_cert(der)
        return gc_or_err(C.ngx_http_lua_ffi_parse_der_cert(der, #der, errmsg), C.ngx_http_lua_ffi_free_cert, "cert")
    end

    function M.parse_der_priv_key(der)
        return gc_or_err(C.ngx_http_lua_ffi_parse_der_priv_key(der, #der, errmsg),
            C.ngx_http_lua_ffi_free_priv_key, "key")
    end

    function M.get_upstream_ssl_pointer()
        local ssl = C.ngx_http_lua_ffi_get_upstream_ssl_pointer(req(), errmsg)
        if ssl == nil then
            return nil, ffi_str(errmsg[0])
        end
        return ssl
    end

    -- Only the request's own SSL objects (see ssl_proxy.rs): a null or
    -- stale pointer would crash OpenSSL's SSL_session_reused.
    function M.ssl_session_reused(ssl)
        if not ssl or type(ssl) ~= "cdata" or ssl == nil then
            return nil, "bad ssl"
        end
        local r = get_request()
        local rc = r and C.ngx_http_lua_ffi_ssl_session_reused(r, ssl) or -1
        if rc < 0 then
            return nil, "bad ssl"
        end
        return rc == 1
    end

    do
        -- Room for 255 ciphers, as lua-resty-core's buffer.
        local ciphers = ffi.new("unsigned short[?]", 256)

        function M.get_req_shared_ssl_ciphers(filter_grease)
            local r = req()
            if filter_grease == nil then
                filter_grease = true
            end
            ciphers[0] = 255
            local rc = C.ngx_http_lua_ffi_req_shared_ssl_ciphers(r, ciphers + 1, ciphers,
                filter_grease and 1 or 0, errmsg)
            if rc ~= 0 then
                return nil, ffi_str(errmsg[0])
            end
            local out = {}
            for i = 1, ciphers[0] do
                out[i] = tonumber(ciphers[i])
            end
            return out
        end
    end

    function M.get_req_ssl_pointer()
        local ssl = C.ngx_http_lua_ffi_get_req_ssl_pointer(req())
        if ssl == nil then
            return nil, "no ssl connection"
        end
        return ssl
    end

    -- Up to `outlen` bytes (the default when nil); 0 asks for the size.
    -- These values are at most 48 bytes: a larger `outlen` allocates no
    -- more than that.
    local function handshake_bytes(f, outlen, default)
        local r = req()
        outlen = outlen or default
        if type(outlen) ~= "number" or not (outlen >= 0) then
            error("bad outlen", 3)
        end
        outlen = math.min(math.floor(outlen), 64)
        local out = buffer(outlen)
        local sizep = base.get_size_ptr()
        sizep[0] = outlen
        if f(r, out, sizep, errmsg) ~= 0 then
            return nil, ffi_str(errmsg[0])
        end
        if outlen == 0 then
            return tonumber(sizep[0])
        end
        return ffi_str(out, sizep[0])
    end

    function M.get_client_random(outlen)
        return handshake_bytes(C.ngx_http_lua_ffi_ssl_client_random, outlen, 32)
    end

    function M.get_server_random(outlen)
        return handshake_bytes(C.ngx_http_lua_ffi_ssl_server_random, outlen, 32)
    end

    function M.get_session_master_key(outlen)
        return handshake_bytes(C.ngx_http_lua_ffi_ssl_session_master_key, outlen, 48)
    end

    function M.export_keying_material(length, label, context)
        local r = req()
        if type(length) ~= "number" or not (length >= 0 and length <= 1048576) then
            return nil, "bad length"
        end
        local out = buffer(length)
        local rc = C.ngx_http_lua_ffi_ssl_export_keying_material(r, out, length, label, #label,
            context, context and #context or 0, context and 1 or 0, errmsg)
        if rc == 0 then
            return ffi_str(out, length)
        end
        return nil, ffi_str(errmsg[0])
    end

    function M.export_keying_material_early(length, label, context)
        local r = req()
        if type(length) ~= "number" or not (length >= 0 and length <= 1048576) then
            return nil, "bad length"
        end
        local out = buffer(length)
        local rc = C.ngx_http_lua_ffi_ssl_export_keying_material_early(r, out, length, label, #label,
            context, context and #context or 0, errmsg)
        if rc == 0 then
            return ffi_str(out, length)
        end
        return nil, ffi_str(errmsg[0])
    end

    M.SSL3_VERSION = 0x0300
    M.TLS1_VERSION = 0x0301
    M.TLS1_1_VERSION = 0x0302
    M.TLS1_2_VERSION = 0x0303
    M.TLS1_3_VERSION = 0x0304

    local names = {
        [0x0300] = "SSLv3", [0x0301] = "TLSv1", [0x0302] = "TLSv1.1",
        [0x0303] = "TLSv1.2", [0x0304] = "TLSv1.3",
    }

    function M.get_tls1_version_str()
        local v, err = get_tls1_version()
        if not v then
            return nil, err
        end
        local s = names[v]
        if not s then
            return nil, "unknown version"
        end
        return s
    end

    return M
end

-- lua-nginx-module master's upstream TLS hooks: the certificate the proxy
-- presents (proxy_ssl_certificate_by_lua*) and the check of the upstream's
-- (proxy_ssl_verify_by_lua*), over its ngx_http_lua_ffi_proxy_ssl_*.
preload["ngx.ssl.proxysslcert"] = function()
    local ffi, base = common()
    local C = ffi.C
    local ffi_str = ffi.string
    local get_request = base.get_request
    local errmsg = base.get_errmsg_ptr()
    local error = error

    ffi.cdef [[
    int ngx_http_lua_ffi_proxy_ssl_clear_certs(ngx_http_request_t *r,
        char **err);
    int ngx_http_lua_ffi_proxy_ssl_set_der_certificate(ngx_http_request_t *r,
        const char *data, size_t len, char **err);
    int ngx_http_lua_ffi_proxy_ssl_set_der_private_key(ngx_http_request_t *r,
        const char *data, size_t len, char **err);
    int ngx_http_lua_ffi_proxy_ssl_set_cert(void *r, void *cdata, char **err);
    int ngx_http_lua_ffi_proxy_ssl_set_priv_key(void *r, void *cdata,
        char **err);
    ]]

    local M = { version = base.version }

    local function call(f, ...)
        local r = get_request()
        if not r then
            error("no request found", 3)
        end
        if f(r, ...) == 0 then
            return true
        end
        return nil, ffi_str(errmsg[0])
    end

    function M.clear_certs()
        return call(C.ngx_http_lua_ffi_proxy_ssl_clear_certs, errmsg)
    end

    function M.set_der_cert(data)
        return call(C.ngx_http_lua_ffi_proxy_ssl_set_der_certificate, data, #data, errmsg)
    end

    function M.set_der_priv_key(data)
        return call(C.ngx_http_lua_ffi_proxy_ssl_set_der_private_key, data, #data, errmsg)
    end

    function M.set_cert(cert)
        if cert ~= nil and not is_parsed(cert, "cert") then
            return nil, BAD_CERT
        end
        return call(C.ngx_http_lua_ffi_proxy_ssl_set_cert, cert, errmsg)
    end

    function M.set_priv_key(priv_key)
        if priv_key ~= nil and not is_parsed(priv_key, "key") then
            return nil, BAD_KEY
        end
        return call(C.ngx_http_lua_ffi_proxy_ssl_set_priv_key, priv_key, errmsg)
    end

    return M
end

preload["ngx.ssl.proxysslverify"] = function()
    local ffi, base = common()
    local C = ffi.C
    local ffi_str, ffi_gc = ffi.string, ffi.gc
    local get_request = base.get_request
    local errmsg = base.get_errmsg_ptr()
    local error = error
    local get_phase = ngx.get_phase

    ffi.cdef [[
    int ngx_http_lua_ffi_proxy_ssl_set_verify_result(ngx_http_request_t *r,
        int verify_result, char **err);
    int ngx_http_lua_ffi_proxy_ssl_get_verify_result(ngx_http_request_t *r,
        char **err);
    void *ngx_http_lua_ffi_proxy_ssl_get_verify_cert(ngx_http_request_t *r,
        char **err);
    void ngx_http_lua_ffi_proxy_ssl_free_verify_cert(void *cdata);
    ]]

    local M = { version = base.version }

    local function req()
        local r = get_request()
        if not r then
            error("no request found", 3)
        end
        if get_phase() ~= "proxy_ssl_verify" then
            error("API disabled in the current context", 3)
        end
        return r
    end

    function M.set_verify_result(verify_result)
        if C.ngx_http_lua_ffi_proxy_ssl_set_verify_result(req(), verify_result, errmsg) == 0 then
            return true
        end
        return nil, ffi_str(errmsg[0])
    end

    function M.get_verify_result()
        local rc = C.ngx_http_lua_ffi_proxy_ssl_get_verify_result(req(), errmsg)
        if rc == -1 then
            return nil, ffi_str(errmsg[0])
        end
        return rc
    end

    function M.get_verify_cert()
        local cert = C.ngx_http_lua_ffi_proxy_ssl_get_verify_cert(req(), errmsg)
        if cert ~= nil then
            return ffi_gc(cert, C.ngx_http_lua_ffi_proxy_ssl_free_verify_cert)
        end
        return nil, ffi_str(errmsg[0])
    end

    return M
end

preload["ngx.ssl.session"] = function()
    local ffi, base = common()
    local C = ffi.C
    local ffi_str = ffi.string
    local get_request = base.get_request
    local errmsg = base.get_errmsg_ptr()
    local error = error

    ffi.cdef [[
    int ngx_http_lua_ffi_ssl_set_serialized_session(ngx_http_request_t *r,
        const unsigned char *buf, int len, char **err);
    int ngx_http_lua_ffi_ssl_get_serialized_session(ngx_http_request_t *r,
        char *buf, char **err);
    int ngx_http_lua_ffi_ssl_get_session_id(ngx_http_request_t *r,
        char *buf, char **err);
    int ngx_http_lua_ffi_ssl_get_serialized_session_size(ngx_http_request_t *r,
        char **err);
    int ngx_http_lua_ffi_ssl_get_session_id_size(ngx_http_request_t *r,
        char **err);
    ]]

    local M = { version = base.version }

    local function req()
        local r = get_request()
        if not r then
            error("no request found", 3)
        end
        return r
    end

    -- The bytes the C side writes after telling their size.
    local function sized(size_fn, fill_fn, max)
        local r = req()
        local len = size_fn(r, errmsg)
        if len < 0 then
            return nil, ffi_str(errmsg[0])
        end
        if max and len > max then
            return nil, "session too big to serialize"
        end
        local buf = buffer(len)
        if fill_fn(r, buf, errmsg) ~= 0 then
            return nil, ffi_str(errmsg[0])
        end
        return ffi_str(buf, len)
    end

    function M.get_serialized_session()
        return sized(C.ngx_http_lua_ffi_ssl_get_serialized_session_size,
                     C.ngx_http_lua_ffi_ssl_get_serialized_session, 4096)
    end

    function M.get_session_id()
        return sized(C.ngx_http_lua_ffi_ssl_get_session_id_size,
                     C.ngx_http_lua_ffi_ssl_get_session_id)
    end

    function M.set_serialized_session(sess)
        local rc = C.ngx_http_lua_ffi_ssl_set_serialized_session(req(), sess, #sess, errmsg)
        if rc ~= 0 then
            return nil, ffi_str(errmsg[0])
        end
        return true
    end

    return M
end

preload["ngx.ssl.clienthello"] = function()
    local ffi, base = common()
    local C = ffi.C
    local ffi_str = ffi.string
    local get_request = base.get_request
    local errmsg = base.get_errmsg_ptr()
    local error, ipairs, byte = error, ipairs, string.byte
    local bor = require("bit").bor

    ffi.cdef [[
    int ngx_http_lua_ffi_ssl_get_client_hello_server_name(ngx_http_request_t *r,
        const char **name, size_t *namelen, char **err);
    int ngx_http_lua_ffi_ssl_get_client_hello_ext(ngx_http_request_t *r,
        unsigned int type, const unsigned char **out, size_t *outlen,
        char **err);
    int ngx_http_lua_ffi_ssl_set_protocols(ngx_http_request_t *r,
        int protocols, char **err);
    ]]

    local M = { version = base.version }
    local ccharpp = ffi.new("const char*[1]")
    local cucharpp = ffi.new("const unsigned char*[1]")

    -- Only ssl_client_hello_by_lua* has a ClientHello to look at.
    local function req()
        local r = get_request()
        if not r then
            error("no request found", 3)
        end
        if ngx.get_phase() ~= "ssl_client_hello" then
            error("API disabled in the current context", 3)
        end
        return r
    end

    function M.get_client_hello_server_name()
        local sizep = base.get_size_ptr()
        local rc = C.ngx_http_lua_ffi_ssl_get_client_hello_server_name(req(), ccharpp, sizep, errmsg)
        if rc == 0 then
            return ffi_str(ccharpp[0], sizep[0])
        end
        if rc == base.FFI_DECLINED then
            return nil
        end
        return nil, ffi_str(errmsg[0])
    end

    local function ext(r, ext_type)
        local sizep = base.get_size_ptr()
        local rc = C.ngx_http_lua_ffi_ssl_get_client_hello_ext(r, ext_type, cucharpp, sizep, errmsg)
        if rc == 0 then
            return ffi_str(cucharpp[0], sizep[0])
        end
        if rc == base.FFI_DECLINED then
            return nil
        end
        return nil, ffi_str(errmsg[0])
    end

    function M.get_client_hello_ext(ext_type)
        return ext(req(), ext_type)
    end

    local version_names = {
        [0x0002] = "SSLv2", [0x0300] = "SSLv3", [0x0301] = "TLSv1",
        [0x0302] = "TLSv1.1", [0x0303] = "TLSv1.2", [0x0304] = "TLSv1.3",
    }

    -- The supported_versions extension (43): a length byte, then 2-byte
    -- versions; listed from the last, as lua-resty-core lists them.
    function M.get_supported_versions()
        local body, err = ext(req(), 43)
        if not body then
            return nil, err
        end
        local n = #body
        if n == 0 or byte(body, 1) ~= n - 1 then
            return nil
        end
        local out = {}
        local i = n - 1
        while i >= 2 do
            local hi, lo = byte(body, i, i + 1)
            local name = version_names[hi * 256 + lo]
            if name then
                out[#out + 1] = name
            end
            i = i - 2
        end
        return out
    end

    local protocol_bits = {
        SSLv2 = 0x0002, SSLv3 = 0x0004, TLSv1 = 0x0008,
        ["TLSv1.1"] = 0x0010, ["TLSv1.2"] = 0x0020, ["TLSv1.3"] = 0x0040,
    }

    function M.set_protocols(protocols)
        local r = req()
        local bits = 0
        for _, name in ipairs(protocols) do
            local b = protocol_bits[name]
            if not b then
                return nil, "invalid protocols failed"
            end
            bits = bor(bits, b)
        end
        if C.ngx_http_lua_ffi_ssl_set_protocols(r, bits, errmsg) == 0 then
            return true
        end
        return nil, ffi_str(errmsg[0])
    end

    return M
end

preload["ngx.ocsp"] = function()
    local ffi, base = common()
    local C = ffi.C
    local ffi_str = ffi.string
    local get_request = base.get_request
    local errmsg = base.get_errmsg_ptr()
    local error, tonumber = error, tonumber

    ffi.cdef [[
    int ngx_http_lua_ffi_ssl_get_ocsp_responder_from_der_chain(
        const char *chain_data, size_t chain_len, char *out, size_t *out_size,
        char **err);
    int ngx_http_lua_ffi_ssl_create_ocsp_request(const char *chain_data,
        size_t chain_len, unsigned char *out, size_t *out_size, char **err);
    int ngx_http_lua_ffi_ssl_validate_ocsp_response(const unsigned char *resp,
        size_t resp_len, const char *chain_data, size_t chain_len,
        unsigned char *errbuf, size_t *errbuf_size);
    int ngx_http_lua_ffi_ssl_set_ocsp_status_resp(ngx_http_request_t *r,
        const unsigned char *resp, size_t resp_len, char **err);
    ]]

    local M = { version = base.version }

    -- A scratch buffer of `maxlen` bytes (default: the shared one's size),
    -- and the size pointer set to it.
    local function out_buf(maxlen)
        local size = maxlen or SCRATCH
        if type(size) ~= "number" or not (size >= 0) then
            error("bad buffer size", 3)
        end
        -- Responders, requests and messages are small: a larger limit
        -- allocates no more than 1 MiB.
        size = math.min(math.floor(size), 1048576)
        local sizep = base.get_size_ptr()
        sizep[0] = size
        return buffer(size), sizep, size
    end

    function M.get_ocsp_responder_from_der_chain(certs, maxlen)
        local buf, sizep = out_buf(maxlen)
        local rc = C.ngx_http_lua_ffi_ssl_get_ocsp_responder_from_der_chain(certs, #certs, buf, sizep, errmsg)
        if rc == base.FFI_DECLINED then
            return nil
        end
        if rc == 0 then
            return ffi_str(buf, sizep[0])
        end
        if rc == base.FFI_BUSY then
            return ffi_str(buf, sizep[0]), "truncated"
        end
        return nil, ffi_str(errmsg[0])
    end

    function M.create_ocsp_request(certs, maxlen)
        local buf, sizep, size = out_buf(maxlen)
        local rc = C.ngx_http_lua_ffi_ssl_create_ocsp_request(certs, #certs, buf, sizep, errmsg)
        if rc == 0 then
            return ffi_str(buf, sizep[0])
        end
        if rc == base.FFI_BUSY then
            return nil, ffi_str(errmsg[0]) .. ": " .. tonumber(sizep[0]) .. " > " .. size
        end
        return nil, ffi_str(errmsg[0])
    end

    function M.validate_ocsp_response(resp, chain, max_errmsg_len)
        local buf, sizep = out_buf(max_errmsg_len)
        local rc = C.ngx_http_lua_ffi_ssl_validate_ocsp_response(resp, #resp, chain, #chain, buf, sizep)
        if rc == 0 then
            return true
        end
        return nil, ffi_str(buf, sizep[0])
    end

    function M.set_ocsp_status_resp(ocsp_resp)
        local r = get_request()
        if not r then
            error("no request found", 2)
        end
        local rc = C.ngx_http_lua_ffi_ssl_set_ocsp_status_resp(r, ocsp_resp, #ocsp_resp, errmsg)
        if rc == base.FFI_DECLINED then
            return true, "no status req"
        end
        if rc == 0 then
            return true
        end
        return nil, ffi_str(errmsg[0])
    end

    return M
end
