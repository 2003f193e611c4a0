-- The TLS methods of ngx.socket.tcp objects that exchange OpenSSL objects
-- with Lua as FFI pointers (cdata), as lua-resty-core's do. A C function
-- can neither make nor read cdata, so the Lua side here turns cdata into
-- addresses (numbers) for the C functions in `raw`, and the pointers they
-- return (light userdata) into cdata.
local raw, free_session = ...
local ffi = require "ffi"
local cast, gc = ffi.cast, ffi.gc
local tonumber, type, error, pcall, rawget, rawset = tonumber, type, error, pcall, rawget, rawset

-- lua-nginx-module's slots of the socket object for the client certificate,
-- its key and the trusted store: holding them there keeps the cdata (and
-- so the OpenSSL objects) alive until the handshake uses them.
local CERT, PKEY, STORE = 6, 7, 10

local function address(v)
    if type(v) == "cdata" then
        return tonumber(cast("uintptr_t", v))
    end
    return nil
end

local function release(p)
    free_session(tonumber(cast("uintptr_t", p)))
end

local function session_cdata(p)
    return gc(cast("void *", p), release)
end

local m = {}

-- An error of a C function below is raised again where the method was
-- called: `level` counts from the function calling this.
local function raise(e, level)
    if type(e) == "string" then
        e = e:gsub("^socket_tls:%d+: ", "")
    end
    error(e, level + 1)
end

-- The results of a C function called through pcall: its errors raised
-- again, its values as they are.
local function checked(ok, ...)
    if not ok then
        -- this, then the wrapper calling this, then its caller
        raise((...), 3)
    end
    return ...
end

local function results(sess, ok, r1, ...)
    if not ok then
        -- a tail call: the wrapper's caller is next
        raise(r1, 2)
    end
    local t = type(r1)
    if t == "userdata" then
        return session_cdata(r1)
    elseif t == "number" then
        -- the session given was resumed: the same cdata
        return sess
    end
    return r1, ...
end

function m.sslhandshake(self, sess, ...)
    local arg = sess
    if type(sess) == "cdata" then
        arg = address(sess)
    end
    local cert, pkey
    if type(self) == "table" then
        cert, pkey = address(rawget(self, CERT)), address(rawget(self, PKEY))
    end
    return results(sess, pcall(raw.sslhandshake, self, cert, pkey, arg, ...))
end

function m.setclientcert(self, cert, pkey)
    if not cert and not pkey then
        rawset(self, CERT, nil)
        rawset(self, PKEY, nil)
        return true
    end
    if not cert or not pkey then
        return nil, "client certificate must be supplied with corresponding private key"
    end
    if type(cert) ~= "cdata" then
        return nil, "bad cert arg: cdata expected, got " .. type(cert)
    end
    if type(pkey) ~= "cdata" then
        return nil, "bad pkey arg: cdata expected, got " .. type(pkey)
    end
    -- only what ngx.ssl's parse_* functions made (see lua/ssl.lua): other
    -- cdata would reach OpenSSL as a wild pointer
    local ok, err = debug.getregistry()["ngx_lua check parsed ssl cert and key"](cert, pkey)
    if not ok then
        return nil, err
    end
    rawset(self, CERT, cert)
    rawset(self, PKEY, pkey)
    return true
end

function m.settrustedstore(self, store)
    if store ~= nil and type(store) ~= "cdata" then
        return nil, "bad store arg: cdata expected, got " .. type(store)
    end
    -- an X509_STORE pointer (lua-resty-openssl's store.ctx): other cdata
    -- would reach OpenSSL as a wild pointer
    if store ~= nil and tostring(ffi.typeof(store)) ~= "ctype<struct x509_store_st *>" then
        return nil, "bad store arg: X509_STORE * expected, got " .. tostring(ffi.typeof(store))
    end
    local ok, err = checked(pcall(raw.settrustedstore, self, address(store)))
    if not ok then
        return nil, err
    end
    rawset(self, STORE, store)
    return true
end

function m.getsslpointer(self)
    local p, err = checked(pcall(raw.getsslpointer, self))
    if p == nil then
        return nil, err
    end
    return cast("void *", p)
end

function m.getsslctx(self)
    local p, err = checked(pcall(raw.getsslctx, self))
    if p == nil then
        return nil, err
    end
    return cast("void *", p)
end

function m.getsslsession(self)
    local p, err = checked(pcall(raw.getsslsession, self))
    if p == nil then
        return nil, err
    end
    return session_cdata(p)
end

return m
