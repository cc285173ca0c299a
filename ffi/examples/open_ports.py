#!/usr/bin/env python3
"""libv6fw from Python through ctypes (no build step): the C example's checks.

    python3 ffi/examples/open_ports.py LIBV6FW SOCKET CONNECTION PHASE

LIBV6FW is the path of libv6fw.so (target/release/libv6fw.so). PHASE is one
of open (as root: opens 18090/tcp globally and 18091/udp on CONNECTION),
user (as anyone else: reads them, every change is E_ACCESSDENIED), close (as
root: closes them; an older snapshot still holds them) and nodaemon (SOCKET
has no daemon). Prints "ok: N checks" and exits 0, or each failure and 1.
"""
import ctypes
import sys
from ctypes import POINTER, byref, c_char_p, c_int, c_int16, c_int32, c_long, c_uint16, c_uint32, c_void_p

S_OK = 0
E_INVALIDARG = 0x80070057 - (1 << 32)
E_ACCESSDENIED = 0x80070005 - (1 << 32)
E_POINTER = 0x80004003 - (1 << 32)
TCP, UDP = 6, 17
VARIANT_TRUE, VARIANT_FALSE = -1, 0
GLOBAL_PORT, CONN_PORT = 18090, 18091

HRESULT = c_int32
Handle = c_void_p


def load(path):
    lib = ctypes.CDLL(path)
    sig = {
        "v6fw_last_error_message": (c_char_p, []),
        "v6fw_string_free": (None, [c_void_p]),
        "NetFwV6Mgr_Create": (HRESULT, [c_char_p, POINTER(Handle)]),
        "INetFwV6Mgr_Release": (c_uint32, [Handle]),
        "INetFwV6Mgr_OpenGlobalPort": (HRESULT, [Handle, c_uint16, c_int, c_char_p]),
        "INetFwV6Mgr_CloseGlobalPort": (HRESULT, [Handle, c_uint16, c_int]),
        "INetFwV6Mgr_get_GloballyOpenPorts": (HRESULT, [Handle, POINTER(Handle)]),
        "INetFwV6Mgr_GetConnection": (HRESULT, [Handle, c_char_p, POINTER(Handle)]),
        "INetFwV6Connection_Release": (c_uint32, [Handle]),
        "INetFwV6Connection_get_OpenPorts": (HRESULT, [Handle, POINTER(Handle)]),
        "INetFwV6Connection_OpenPort": (HRESULT, [Handle, c_uint16, c_int, c_char_p]),
        "INetFwV6Connection_ClosePort": (HRESULT, [Handle, c_uint16, c_int]),
        "INetFwV6Connection_IsPortOpen": (HRESULT, [Handle, c_uint16, c_int, POINTER(c_int16)]),
        "INetFwV6Connection_get_IsFirewalled": (HRESULT, [Handle, POINTER(c_int16)]),
        "INetFwV6Connection_get_Name": (HRESULT, [Handle, POINTER(c_void_p)]),
        "INetFwV6OpenPortsCollection_get_Count": (HRESULT, [Handle, POINTER(c_long)]),
        "INetFwV6OpenPortsCollection_Item": (HRESULT, [Handle, c_long, POINTER(c_uint16), POINTER(c_int)]),
        "INetFwV6OpenPortsCollection_Release": (c_uint32, [Handle]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


class Checks:
    def __init__(self, lib):
        self.lib, self.n, self.failed = lib, 0, 0

    def last(self):
        m = self.lib.v6fw_last_error_message()
        return m.decode() if m else "(none)"

    def check(self, cond, what):
        self.n += 1
        if not cond:
            self.failed += 1
            print(f"FAIL: {what} (last error: {self.last()})", file=sys.stderr)

    def hr(self, got, want, what):
        self.check(got == want, f"{what} = 0x{got & 0xFFFFFFFF:08X}, want 0x{want & 0xFFFFFFFF:08X}")


def pairs(c, coll):
    n = c_long(-1)
    c.hr(c.lib.INetFwV6OpenPortsCollection_get_Count(coll, byref(n)), S_OK, "get_Count")
    out = []
    for i in range(n.value):
        port, proto = c_uint16(), c_int()
        c.hr(c.lib.INetFwV6OpenPortsCollection_Item(coll, i, byref(port), byref(proto)), S_OK, "Item")
        out.append((port.value, proto.value))
    return out


def snapshot(c, getter, handle):
    coll = Handle()
    c.hr(getter(handle, byref(coll)), S_OK, getter.__name__)
    got = pairs(c, coll)
    c.check(c.lib.INetFwV6OpenPortsCollection_Release(coll) == 0, "Release frees the collection")
    return got, coll


def main():
    if len(sys.argv) != 5:
        sys.exit(f"usage: {sys.argv[0]} LIBV6FW SOCKET CONNECTION open|user|close|nodaemon")
    lib = load(sys.argv[1])
    sock, conn_id, phase = (a.encode() for a in sys.argv[2:])
    c = Checks(lib)
    mgr = Handle(1)  # not NULL: a failure must write NULL
    if phase == b"nodaemon":
        hr = lib.NetFwV6Mgr_Create(sock, byref(mgr))
        c.check(hr < 0, "no daemon is a failure")
        c.check(mgr.value is None, "and writes NULL")
        c.check("no v6fw daemon is running" in c.last(), "with a clear message")
        print("message:", c.last())
        return finish(c)
    c.hr(lib.NetFwV6Mgr_Create(sock, byref(mgr)), S_OK, "NetFwV6Mgr_Create")
    if c.failed:
        return finish(c)
    conn = Handle(1)
    c.hr(lib.INetFwV6Mgr_GetConnection(mgr, b"no-such-connection", byref(conn)), E_INVALIDARG, "unknown id")
    c.check(conn.value is None, "an unknown connection writes NULL")
    c.hr(lib.INetFwV6Mgr_GetConnection(mgr, conn_id, None), E_POINTER, "NULL out-pointer")
    c.hr(lib.INetFwV6Mgr_GetConnection(mgr, conn_id, byref(conn)), S_OK, "GetConnection")
    name = c_void_p()
    c.hr(lib.INetFwV6Connection_get_Name(conn, byref(name)), S_OK, "get_Name")
    lib.v6fw_string_free(name)
    glob = lib.INetFwV6Mgr_get_GloballyOpenPorts
    own = lib.INetFwV6Connection_get_OpenPorts
    vb = c_int16(0)

    if phase == b"open":
        before, _ = snapshot(c, glob, mgr)
        conn_before, _ = snapshot(c, own, conn)
        c.hr(lib.INetFwV6Mgr_OpenGlobalPort(mgr, GLOBAL_PORT, TCP, b"python example"), S_OK, "OpenGlobalPort")
        c.hr(lib.INetFwV6Mgr_OpenGlobalPort(mgr, 0, TCP, None), E_INVALIDARG, "port 0")
        c.hr(lib.INetFwV6Mgr_OpenGlobalPort(mgr, 80, 1, None), E_INVALIDARG, "protocol 1")
        c.hr(lib.INetFwV6Connection_OpenPort(conn, CONN_PORT, UDP, "python udp".encode()), S_OK, "OpenPort")
        after, _ = snapshot(c, glob, mgr)
        conn_after, _ = snapshot(c, own, conn)
        c.check((GLOBAL_PORT, TCP) not in before, "a snapshot taken before the open lacks it")
        c.check((GLOBAL_PORT, TCP) in after, "a snapshot taken after holds it")
        c.check((CONN_PORT, UDP) not in conn_before and (CONN_PORT, UDP) in conn_after, "per connection too")
        c.check((GLOBAL_PORT, TCP) in conn_after, "the connection's set holds the global pair")
        coll = Handle()
        c.hr(glob(mgr, byref(coll)), S_OK, "get_GloballyOpenPorts")
        port, proto = c_uint16(7), c_int(7)
        c.hr(lib.INetFwV6OpenPortsCollection_Item(coll, len(after), byref(port), byref(proto)), E_INVALIDARG, "index Count")
        c.hr(lib.INetFwV6OpenPortsCollection_Item(coll, -1, byref(port), byref(proto)), E_INVALIDARG, "index -1")
        c.check((port.value, proto.value) == (7, 7), "a failed Item writes nothing")
        lib.INetFwV6OpenPortsCollection_Release(coll)
        c.hr(lib.INetFwV6Connection_IsPortOpen(conn, CONN_PORT, UDP, byref(vb)), S_OK, "IsPortOpen")
        c.check(vb.value == VARIANT_TRUE, "IsPortOpen sees the own pair")
    elif phase == b"user":
        g, _ = snapshot(c, glob, mgr)
        c.check((GLOBAL_PORT, TCP) in g, "anyone reads the global pairs")
        c.hr(lib.INetFwV6Connection_IsPortOpen(conn, CONN_PORT, UDP, byref(vb)), S_OK, "IsPortOpen")
        c.check(vb.value == VARIANT_TRUE, "anyone reads a connection's pairs")
        c.hr(lib.INetFwV6Connection_get_IsFirewalled(conn, byref(vb)), S_OK, "get_IsFirewalled")
        c.hr(lib.INetFwV6Mgr_OpenGlobalPort(mgr, 18092, TCP, None), E_ACCESSDENIED, "OpenGlobalPort as a user")
        c.check("E_ACCESSDENIED 0x80070005" in c.last(), "the message says so")
        c.hr(lib.INetFwV6Mgr_CloseGlobalPort(mgr, GLOBAL_PORT, TCP), E_ACCESSDENIED, "CloseGlobalPort as a user")
        c.hr(lib.INetFwV6Connection_OpenPort(conn, 18093, UDP, None), E_ACCESSDENIED, "OpenPort as a user")
        c.hr(lib.INetFwV6Connection_ClosePort(conn, CONN_PORT, UDP), E_ACCESSDENIED, "ClosePort as a user")
        g, _ = snapshot(c, glob, mgr)
        c.check((GLOBAL_PORT, TCP) in g and (18092, TCP) not in g, "the refused changes changed nothing")
    elif phase == b"close":
        before, _ = snapshot(c, glob, mgr)
        c.hr(lib.INetFwV6Mgr_CloseGlobalPort(mgr, GLOBAL_PORT, TCP), S_OK, "CloseGlobalPort")
        c.hr(lib.INetFwV6Mgr_CloseGlobalPort(mgr, GLOBAL_PORT, TCP), S_OK, "CloseGlobalPort again")
        c.hr(lib.INetFwV6Connection_ClosePort(conn, CONN_PORT, UDP), S_OK, "ClosePort")
        after, _ = snapshot(c, glob, mgr)
        conn_after, _ = snapshot(c, own, conn)
        c.check((GLOBAL_PORT, TCP) in before, "a pair closed later is still in the older snapshot")
        c.check((GLOBAL_PORT, TCP) not in after, "and not in a new one")
        c.check((CONN_PORT, UDP) not in conn_after, "the connection's pair is closed")
    else:
        c.check(False, "a known phase")
    c.check(lib.INetFwV6Connection_Release(conn) == 0, "the connection's Release frees")
    c.check(lib.INetFwV6Mgr_Release(mgr) == 0, "the manager's Release frees")
    return finish(c)


def finish(c):
    c.check(c.lib.INetFwV6Mgr_Release(None) == 0, "Release of NULL is harmless")
    if c.failed:
        print(f"{c.failed} of {c.n} checks failed", file=sys.stderr)
        return 1
    print(f"ok: {c.n} checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
