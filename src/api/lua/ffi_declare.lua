-- What every Lua face of ours gets as its first argument: declares C
-- functions for the FFI, `declare(name, declaration)` or a table of them
-- (name = declaration), each unless it is declared already: Lua code
-- written for lua-nginx-module may declare the same functions with
-- ffi.cdef, and declaring a name twice is an error.
local ffi = require "ffi"
local C, pcall, pairs = ffi.C, pcall, pairs

return function(decls, decl)
    if decl then
        decls = { [decls] = decl }
    end
    for name, decl in pairs(decls) do
        if not pcall(function() return C[name] end) then
            ffi.cdef(decl)
        end
    end
end
