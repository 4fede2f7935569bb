#!/usr/bin/env python3
"""Removes custom sections (debug info, names, producers) from WebAssembly binaries in place.

Usage: strip.py FILE.wasm...

Works on core modules and on components; in a component it also strips the core modules
(section 1) and nested components (section 4) it holds. Everything else is copied byte for
byte, so the code that runs is unchanged: only the sections a runtime ignores are dropped.
"""
import sys

MAGIC = b"\0asm"
CUSTOM = 0
COMPONENT_CORE_MODULE = 1
COMPONENT_NESTED = 4


def read_leb(buf, pos):
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def write_leb(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def strip(buf):
    if buf[:4] != MAGIC:
        raise ValueError("not a WebAssembly binary")
    is_component = buf[6:8] == b"\x01\x00"
    out = bytearray(buf[:8])
    pos = 8
    while pos < len(buf):
        section = buf[pos]
        size, body = read_leb(buf, pos + 1)
        payload = buf[body : body + size]
        pos = body + size
        if section == CUSTOM:
            continue
        if is_component and section in (COMPONENT_CORE_MODULE, COMPONENT_NESTED):
            payload = strip(payload)
        out.append(section)
        out += write_leb(len(payload))
        out += payload
    return bytes(out)


def main(paths):
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        stripped = strip(data)
        with open(path, "wb") as f:
            f.write(stripped)


if __name__ == "__main__":
    main(sys.argv[1:])
