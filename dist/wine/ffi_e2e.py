#!/usr/bin/env python3
"""libv6fw on Windows: the C example (ffi/examples/open_ports.c, built with
mingw-w64 against v6fw.dll) under Wine, against `v6fw.exe run` with the
simulated WinDivert driver.

Run by .ci/windows.sh after e2e.py, in the same environment:

    ffi_e2e.py --exe target/.../v6fw.exe --sim target/.../WinDivert.dll \
               --dll target/.../v6fw.dll --example open_ports.exe --work DIR

1. With no daemon on its pipe, the example's `nodaemon` phase: NetFwV6Mgr_Create
   fails, writes NULL and says why.
2. Its `open` phase as the (elevated, under Wine) caller: 18080/tcp globally and
   18081/udp on the first connection, with its HRESULT and snapshot checks;
   `v6fw ports list --json` over the pipe sees both, and a SYN to 18080 that
   was dropped before is accepted.
3. Its `close` phase: both closed, an older snapshot still holds them; the CLI
   no longer lists them and the SYN is dropped again.
(The `user` phase needs a caller who is not an administrator, which Wine
does not have: ffi/tests/examples.rs runs it on Linux.)

Prints `ffi e2e: N checks passed` or fails with the first check that did not hold.
"""

import argparse
import faulthandler
import json
import os
import shutil
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402  (its helpers: the driver, wine, packets, checks)
from e2e import LOCAL, OUTSIDE, Driver, bin_dir, check, expect, tcp, wait_open, wine, winpath  # noqa: E402


def example(prog, env, *args):
    r = wine(prog, *args, env=env, timeout=120)
    check(r.returncode == 0 and "ok: " in r.stdout,
          f"open_ports.exe {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def listed(exe, env, pipe, conn):
    r = wine(exe, "ports", "list", "--json", "--socket", pipe, env=env)
    check(r.returncode == 0, f"ports list over the pipe: {r.returncode} {r.stderr}")
    v = json.loads(r.stdout.splitlines()[0])
    pairs = lambda ps: {(p["port"], p["protocol"]) for p in ps}  # noqa: E731
    return pairs(v.get("global", [])), pairs(v.get("connections", {}).get(conn, []))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--sim", required=True)
    ap.add_argument("--dll", required=True, help="v6fw.dll")
    ap.add_argument("--example", required=True, help="open_ports.exe")
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    faulthandler.dump_traceback_later(400, exit=True)

    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    exe = bin_dir(a.work, "bin", a.exe, a.sim)
    bin_path = os.path.dirname(exe)
    shutil.copy2(a.dll, os.path.join(bin_path, "v6fw.dll"))
    prog = os.path.join(bin_path, "open_ports.exe")
    shutil.copy2(a.example, prog)
    driver = Driver(os.path.join(a.work, "driver"))
    state = os.path.join(a.work, "state")
    pipe = f"\\\\.\\pipe\\v6fw-ffi-{uuid.uuid4().hex[:12]}"
    env = dict(os.environ, V6FW_WINDIVERT_SIM=winpath(driver.path))
    env.pop("V6FW_WINDIVERT_SIM_FAIL", None)

    example(prog, env, f"\\\\.\\pipe\\v6fw-ffi-none-{uuid.uuid4().hex[:8]}", "x", "nodaemon")

    daemon = subprocess.Popen(
        ["wine", exe, "run", "--state-dir", winpath(state), "--socket", pipe,
         "--stats-interval", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_open(driver, daemon, "v6fw run")
        r = wine(exe, "connections", "--json", "--socket", pipe, env=env)
        check(r.returncode == 0, f"connections over the pipe: {r.returncode} {r.stderr}")
        conns = json.loads(r.stdout.splitlines()[0])["connections"]
        check(len(conns) > 0, f"the daemon has a connection: {r.stdout}")
        conn = conns[0]["id"]

        syn = [("in", tcp(OUTSIDE, LOCAL, 40005, 18080))]
        expect(driver.send(syn), ["port_closed"])
        example(prog, env, pipe, conn, "open")
        g, c = listed(exe, env, pipe, conn)
        check((18080, "tcp") in g, f"the CLI sees the global pair: {g}")
        check((18081, "udp") in c, f"and the connection's: {c}")
        expect(driver.send(syn), ["global_port"])

        example(prog, env, pipe, conn, "close")
        g, c = listed(exe, env, pipe, conn)
        check((18080, "tcp") not in g and (18081, "udp") not in c, f"both closed: {g} {c}")
        expect(driver.send(syn), ["port_closed"])
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
    print(f"ffi e2e: {e2e.CHECKS} checks passed")


if __name__ == "__main__":
    main()
