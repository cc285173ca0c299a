#!/usr/bin/env python3
"""`v6fw.exe run` end to end under Wine, with the simulated WinDivert driver.

Run by .ci/windows.sh (see there for the environment: WINEPREFIX, WINEPATH
with the bcryptprimitives shim, WINEDEBUG):

    e2e.py --exe target/.../v6fw.exe --sim target/.../WinDivert.dll \
           --real-dll target/.../windivert-sys-*/out/WinDivert.dll --work DIR

What it checks, each step bounded in time (a failure names the step):

1. The real v6fw.exe with the simulated WinDivert.dll next to it filters a
   batch of 1 packet (TCP SYN to the open 22/tcp) and a batch of 64: TCP to an
   open and a closed port, UDP to a closed port, ICMPv6 neighbour
   solicitations with hop limit 255 (accepted) and 64 (dropped), an outbound
   UDP flow and its reply (`established`), a malformed packet, echo requests;
   every verdict the driver saw (re-injected or not) is the expected one.
2. `v6fw ports open 8080/tcp --global` over the named pipe between two
   batches: a SYN to 8080 is dropped before and accepted after.
3. `v6fw stats --json` over the pipe gives the counts so far.
4. While the daemon runs, a second writer on its state directory (the
   command line's direct path, with no daemon on its --socket) is refused.
5. SIGINT to the wine process: a clean stop, exit 0, the JSON totals per
   reason exactly as expected, the driver handle shut down and closed.
6. The control pipe's name taken by another program before the daemon
   starts: the daemon logs it, filters (packets decided), and serves the
   pipe once that program has gone (`stats` over it).
7. The error path: the real WinDivert.dll (no WinDivert64.sys, and Wine has
   no such driver) and the simulated one failing with ERROR_ACCESS_DENIED:
   exit 1 and a message that says what to do. With no WinDivert.dll next to
   v6fw.exe, or a DLL of that name that is not WinDivert: `run` exits 1
   naming the file and what to put there, while `check` and `replay`, which
   never touch the driver, still work.

Prints `e2e: N checks passed` or fails with the first check that did not hold.
"""

import argparse
import faulthandler
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import uuid

LOCAL = "fd00::1"  # this host
REMOTE = "fd00::2"  # a neighbour
OUTSIDE = "2001:db8::99"  # a spoofed outsider
IFIDX = 4242  # no connection has it: judged on the global pairs alone

CHECKS = 0


def fail(what):
    """Ends the run: `what` did not hold."""
    sys.exit(f"e2e FAILED: {what}")


def check(cond, what):
    """One counted check. Polling loops call `fail` instead, so the count does
    not depend on how many times they looked."""
    global CHECKS
    if not cond:
        fail(what)
    CHECKS += 1


# --- packets -----------------------------------------------------------------


def addr(a):
    import ipaddress

    return ipaddress.IPv6Address(a).packed


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv6(src, dst, nh, payload, hlim=64):
    s, d = addr(src), addr(dst)
    pseudo = s + d + struct.pack("!IxxxB", len(payload), nh)
    if nh in (6, 17, 58):
        off = {6: 16, 17: 6, 58: 2}[nh]
        payload = payload[:off] + b"\0\0" + payload[off + 2 :]
        c = csum(pseudo + payload)
        payload = payload[:off] + struct.pack("!H", c) + payload[off + 2 :]
    return struct.pack("!IHBB", 6 << 28, len(payload), nh, hlim) + s + d + payload


def tcp(src, dst, sport, dport, flags=0x02, doff=5):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, doff << 4, flags, 65535, 0, 0)
    return ipv6(src, dst, 6, hdr)


def udp(src, dst, sport, dport, data=b"v6fw"):
    hdr = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    return ipv6(src, dst, 17, hdr)


def icmp(src, dst, typ, body=b"\0" * 4, hlim=64):
    return ipv6(src, dst, 58, struct.pack("!BBH", typ, 0, 0) + body, hlim)


def neighbour_solicitation(hlim):
    target = addr(LOCAL)
    return icmp(REMOTE, "ff02::1:ff00:1", 135, b"\0" * 4 + target, hlim)


# --- running wine ------------------------------------------------------------


def winpath(p):
    return "Z:" + os.path.abspath(p).replace("/", "\\")


def wine(exe, *args, env=None, timeout=60):
    return subprocess.run(
        ["wine", exe, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def bin_dir(work, name, exe, dll):
    d = os.path.join(work, name)
    os.makedirs(d)
    link_or_copy(exe, os.path.join(d, "v6fw.exe"))
    if dll:
        shutil.copy2(dll, os.path.join(d, "WinDivert.dll"))
    return os.path.join(d, "v6fw.exe")


class Driver:
    """The simulated driver's directory: batch files in, sim.log out."""

    def __init__(self, path):
        self.path = path
        self.batches = 0
        os.makedirs(path)

    def log(self):
        try:
            with open(os.path.join(self.path, "sim.log")) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def send(self, packets):
        """Writes the next batch ([(direction, bytes)]) and waits (at most 30 s)
        until the daemon has decided it; returns its verdicts in order."""
        self.batches += 1
        n = self.batches
        text = "".join(f"{d} {IFIDX} {p.hex()}\n" for d, p in packets)
        tmp = os.path.join(self.path, "next.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(self.path, f"batch-{n:04}.pkts"))
        prefix = f"verdict batch={n} "
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            got = [l for l in self.log() if l.startswith(prefix)]
            if len(got) == len(packets):
                return [l.rsplit(" ", 1)[1] for l in got]
            errors = [l for l in self.log() if l.startswith("error")]
            if errors:
                fail(f"the simulated driver reports: {errors}")
            time.sleep(0.02)
        fail(f"batch {n} was not decided within 30 s; sim.log:\n" + "\n".join(self.log()))


# --- the run -----------------------------------------------------------------


def expect(batch, reasons):
    """Checks the verdicts of a batch against the expected reasons."""
    drops = {"port_closed", "icmp_policy", "malformed"}
    for i, (v, r) in enumerate(zip(batch, reasons)):
        want = "drop" if r in drops else "accept"
        check(v == want, f"packet {i}: {r} should be {want}, the driver saw {v}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--sim", required=True)
    ap.add_argument("--real-dll", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--shim", required=True, help="bcryptprimitives.dll, for the service's directory")
    ap.add_argument("--squat", required=True, help="squat.exe (dist/wine/squat.c), takes a pipe's name")
    a = ap.parse_args()
    # The whole run is bounded: a hang prints where it hung and fails.
    faulthandler.dump_traceback_later(600, exit=True)

    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    exe = bin_dir(a.work, "bin-sim", a.exe, a.sim)
    real = bin_dir(a.work, "bin-real", a.exe, a.real_dll)
    no_dll = bin_dir(a.work, "bin-none", a.exe, None)
    not_windivert = bin_dir(a.work, "bin-other", a.exe, a.shim)
    driver = Driver(os.path.join(a.work, "driver"))
    state = os.path.join(a.work, "state")
    pipe = f"\\\\.\\pipe\\v6fw-e2e-{uuid.uuid4().hex[:12]}"
    env = dict(os.environ, V6FW_WINDIVERT_SIM=winpath(driver.path))
    env.pop("V6FW_WINDIVERT_SIM_FAIL", None)

    daemon = subprocess.Popen(
        ["wine", exe, "run", "--state-dir", winpath(state), "--socket", pipe,
         "--open", "22/tcp", "--json", "--stats-interval", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        run_daemon(daemon, driver, exe, env, state, pipe)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
    pipe_taken(a.work, exe, env, a.squat)
    error_paths(a.work, exe, real, env)
    dll_missing(a.work, no_dll, not_windivert, env)
    as_a_service(a.work, a.exe, a.sim, a.shim)
    print(f"e2e: {CHECKS} checks passed")


def wait_open(driver, daemon, what):
    """Waits (at most 60 s) until `daemon` has opened the driver; fails if it exits first."""
    deadline = time.monotonic() + 60
    while not any(l.startswith("open ") for l in driver.log()):
        if daemon.poll() is not None:
            fail(f"{what} exited early: {daemon.communicate(timeout=10)}")
        if time.monotonic() >= deadline:
            fail(f"{what} did not open the driver within 60 s")
        time.sleep(0.05)


def interrupt(daemon, what):
    """SIGINT to `daemon`: it must exit 0 within 30 s; its (stdout, stderr)."""
    daemon.send_signal(signal.SIGINT)
    try:
        out, err = daemon.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        fail(f"{what} did not stop within 30 s of SIGINT")
    check(daemon.returncode == 0, f"{what} exits 0 on SIGINT: {daemon.returncode}\n{err}")
    return out, err


def run_daemon(daemon, driver, exe, env, state, pipe):
    # Batch of 1: the daemon is up once the driver has been opened.
    wait_open(driver, daemon, "v6fw run")
    log = driver.log()
    check(log[0] == 'open filter="ipv6 and not loopback" layer=0 priority=0 flags=0', log[0])
    check("param 0 4096" in log, f"queue length set: {log}")
    expect(driver.send([("in", tcp(REMOTE, LOCAL, 40000, 22))]), ["global_port"])
    # A packet cut short (its payload length says more than there is) can
    # only be the last of a batch: WinDivert's batch buffer is split by the
    # payload lengths (see capture/src/windivert.rs).
    expect(driver.send([("in", tcp(REMOTE, LOCAL, 40000, 22)[:30])]), ["malformed"])

    # Batch of 64.
    batch = [
        ("in", tcp(REMOTE, LOCAL, 40001, 22), "global_port"),
        ("in", tcp(REMOTE, LOCAL, 40002, 23), "port_closed"),
        ("in", tcp(OUTSIDE, LOCAL, 40003, 8080), "port_closed"),
        ("in", udp(REMOTE, LOCAL, 5353, 53), "port_closed"),
        ("in", neighbour_solicitation(255), "icmp_allowed"),
        ("in", neighbour_solicitation(64), "icmp_policy"),
        ("out", udp(LOCAL, REMOTE, 5000, 53), "outbound"),
        ("in", udp(REMOTE, LOCAL, 53, 5000), "established"),
        ("out", tcp(LOCAL, REMOTE, 41000, 443), "outbound"),
        ("in", tcp(REMOTE, LOCAL, 443, 41000, 0x12), "established"),
        ("in", tcp(REMOTE, LOCAL, 40004, 22, doff=4), "malformed"),
    ]
    while len(batch) < 64:
        batch.append(("in", icmp(REMOTE, LOCAL, 128), "icmp_allowed"))
    got = driver.send([(d, p) for d, p, _ in batch])
    one_recv = f"recv batch={driver.batches} packets=64"
    check(one_recv in driver.log(), "the 64 packets came in one receive")
    expect(got, [r for _, _, r in batch])

    # A port opened over the pipe between two batches.
    syn = [("in", tcp(OUTSIDE, LOCAL, 40005, 8080))]
    expect(driver.send(syn), ["port_closed"])
    r = wine(exe, "ports", "open", "8080/tcp", "--global", "--socket", pipe, env=env)
    check(r.returncode == 0, f"ports open over the pipe: {r.returncode} {r.stdout} {r.stderr}")
    expect(driver.send(syn), ["global_port"])

    # stats over the pipe.
    r = wine(exe, "stats", "--json", "--socket", pipe, env=env)
    check(r.returncode == 0, f"stats over the pipe: {r.returncode} {r.stderr}")
    stats = json.loads(r.stdout.splitlines()[0])
    check(stats.get("packets") == 68, f"stats counts 68 packets: {stats}")

    # A second writer on the daemon's state directory is refused.
    nobody = f"\\\\.\\pipe\\v6fw-e2e-nobody-{uuid.uuid4().hex[:8]}"
    r = wine(exe, "ports", "open", "9999/tcp", "--global", "--socket", nobody,
             "--state-dir", winpath(state), env=env)
    check(r.returncode == 1, f"a second writer exits 1: {r.returncode} {r.stdout} {r.stderr}")
    check("in use by another v6fw process" in r.stderr, f"a second writer is told why: {r.stderr}")

    # Clean stop on SIGINT.
    out, err = interrupt(daemon, "v6fw run")
    totals = json.loads(out)
    want = {
        "global_port": 3, "port_closed": 4, "icmp_allowed": 1 + 53, "icmp_policy": 1,
        "outbound": 2, "established": 2, "malformed": 2,
    }
    reasons = totals.get("reasons", {})
    for reason, n in reasons.items():
        check(n == want.get(reason, 0), f"totals: {reason} = {n}, want {want.get(reason, 0)}")
    check(set(want) <= set(reasons), f"totals name every reason: {reasons}")
    check(totals.get("packets") == 68, f"totals: 68 packets: {totals}")
    check(totals.get("dropped") == 7 and totals.get("accepted") == 61, f"totals: {totals}")
    tail = driver.log()[-2:]
    check(tail == ["shutdown how=3", "close"], f"the driver was shut down and closed: {tail}")


def pipe_taken(work, exe, env, squat):
    """Another program holds the pipe's name when `v6fw run` starts."""
    pipe = f"\\\\.\\pipe\\v6fw-e2e-taken-{uuid.uuid4().hex[:12]}"
    squatter = subprocess.Popen(["wine", squat, pipe], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    daemon = None
    try:
        ready = squatter.stdout.readline().strip()
        check(ready == "ready", f"squat.exe holds {pipe}: {ready!r} {squatter.poll()}")
        driver = Driver(os.path.join(work, "driver-taken"))
        daemon = subprocess.Popen(
            ["wine", exe, "run", "--state-dir", winpath(os.path.join(work, "state-taken")),
             "--socket", pipe, "--open", "22/tcp", "--stats-interval", "0"],
            env=dict(env, V6FW_WINDIVERT_SIM=winpath(driver.path)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        wait_open(driver, daemon, "v6fw run with its pipe taken")
        got = driver.send([("in", tcp(REMOTE, LOCAL, 40000, 22)), ("in", tcp(REMOTE, LOCAL, 40000, 23))])
        expect(got, ["global_port", "port_closed"])
        squatter.stdin.close()
        squatter.wait(30)
        # The daemon tries again every 2 s: its pipe is served within 30 s.
        deadline = time.monotonic() + 30
        while True:
            r = wine(exe, "stats", "--json", "--socket", pipe, env=env)
            if r.returncode == 0:
                break
            if time.monotonic() >= deadline:
                fail(f"the daemon did not serve its pipe after squat.exe left: {r.stderr}")
            time.sleep(0.5)
        check(json.loads(r.stdout.splitlines()[0]).get("packets") == 2, f"stats after the squatter: {r.stdout}")
        _, err = interrupt(daemon, "v6fw run (pipe taken)")
        check("exists already" in err and "filtering goes on without it" in err,
              f"the daemon said its pipe was taken: {err}")
        check("is served now" in err, f"the daemon said it serves its pipe now: {err}")
    finally:
        for p in (squatter, daemon):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)


def error_paths(work, exe, real, env):
    """The real WinDivert.dll failing, and the simulated one refusing."""
    for name, binary, extra in [
        ("real WinDivert.dll", real, {}),
        ("WinDivertOpen failing with access denied", exe, {"V6FW_WINDIVERT_SIM_FAIL": "5"}),
    ]:
        st = os.path.join(work, "state-" + extra.get("V6FW_WINDIVERT_SIM_FAIL", "real"))
        r = wine(binary, "run", "--state-dir", winpath(st),
                 "--socket", f"\\\\.\\pipe\\v6fw-e2e-{uuid.uuid4().hex[:12]}",
                 env=dict(env, **extra), timeout=120)
        check(r.returncode == 1, f"{name}: exit 1, got {r.returncode}: {r.stderr}")
        check("cannot open WinDivert: run as Administrator, with WinDivert.dll and "
              "WinDivert64.sys next to v6fw.exe" in r.stderr, f"{name}: says what to do: {r.stderr}")


def dll_missing(work, no_dll, not_windivert, env):
    """No WinDivert.dll beside v6fw.exe, or one that is not WinDivert."""
    env = {k: v for k, v in env.items() if not k.startswith("V6FW_WINDIVERT_SIM")}
    for name, binary, says in [
        ("no WinDivert.dll", no_dll,
         "cannot load WinDivert.dll: it is not in "),
        ("a WinDivert.dll that is not WinDivert", not_windivert,
         "does not export WinDivertOpen: it is not WinDivert 2.x"),
    ]:
        st = os.path.join(work, "state-" + name.replace(" ", "-").replace(".", ""))
        r = wine(binary, "run", "--state-dir", winpath(st),
                 "--socket", f"\\\\.\\pipe\\v6fw-e2e-{uuid.uuid4().hex[:12]}", env=env, timeout=120)
        check(r.returncode == 1, f"{name}: run exits 1, got {r.returncode}: {r.stderr}")
        where = "\\" + os.path.basename(os.path.dirname(binary))  # the directory it looked in
        check(says in r.stderr and where in r.stderr, f"{name}: says what and where: {r.stderr}")
    sample = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "samples", "sample.pcap")
    r = wine(no_dll, "replay", winpath(sample), env=env, timeout=120)
    check(r.returncode == 0 and "packets   28" in r.stdout,
          f"replay works without WinDivert.dll: {r.returncode} {r.stdout[-300:]} {r.stderr}")
    policy = os.path.join(work, "check.toml")
    with open(policy, "w") as f:
        f.write('[globals]\n"22/tcp" = "ssh"\n')
    r = wine(no_dll, "check", winpath(policy), env=env, timeout=120)
    check(r.returncode == 0 and "22/tcp" in r.stdout, f"check works without WinDivert.dll: {r.returncode} {r.stdout} {r.stderr}")


def as_a_service(work, exe_src, sim, shim):
    """`v6fw service install|start|stop|uninstall` with Wine's service manager.

    A service does not inherit this environment, so its directory holds the
    shim and a `WinDivert.sim` naming the driver directory. Wine shuts its
    services down when no other Windows process is left, so a `ping` keeps
    the session alive meanwhile."""
    exe = bin_dir(work, "bin-svc", exe_src, sim)
    shutil.copy2(shim, os.path.join(os.path.dirname(exe), "bcryptprimitives.dll"))
    driver = Driver(os.path.join(work, "driver-svc"))
    with open(os.path.join(os.path.dirname(exe), "WinDivert.sim"), "w") as f:
        f.write(winpath(driver.path) + "\n")
    state = os.path.join(work, "state-svc")
    pipe = f"\\\\.\\pipe\\v6fw-e2e-svc-{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("V6FW_WINDIVERT_SIM")}
    keeper = subprocess.Popen(["wine", "ping", "-n", "300", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wine(exe, "service", "uninstall", env=env)  # a leftover of an earlier run
        run_args = ["--", "--state-dir", winpath(state), "--socket", pipe, "--open", "22/tcp",
                    "--stats-interval", "0"]
        # Wine reports the test's folder as owned by the Wine user, who is not
        # SYSTEM or Administrators: whoever that is could replace v6fw.exe.
        r = wine(exe, "service", "install", *run_args, env=env)
        check(r.returncode == 1 and "refusing to install" in r.stderr
              and "C:\\Program Files\\v6fw" in r.stderr,
              f"install from a folder others may write is refused: {r.returncode} {r.stderr}")
        r = wine(exe, "service", "install", "--force", *run_args, env=env)
        check(r.returncode == 0, f"service install --force: {r.returncode} {r.stdout} {r.stderr}")
        check("warning: installing anyway (--force)" in r.stderr, f"--force warns: {r.stderr}")
        r = wine(exe, "service", "install", "--", "--bogus", env=env)
        check(r.returncode == 1 and "--bogus" in r.stderr, f"bad run arguments refused: {r.returncode} {r.stdout!r} {r.stderr!r}")
        r = wine(exe, "service", "start", env=env)
        check(r.returncode == 0, f"service start: {r.returncode} {r.stdout} {r.stderr}")
        deadline = time.monotonic() + 60
        while not any(l.startswith("open ") for l in driver.log()):
            if time.monotonic() >= deadline:
                fail("the service did not open the driver within 60 s")
            time.sleep(0.05)
        got = driver.send([("in", tcp(REMOTE, LOCAL, 40000, 22)), ("in", tcp(REMOTE, LOCAL, 40000, 23))])
        expect(got, ["global_port", "port_closed"])
        r = wine(exe, "stats", "--json", "--socket", pipe, env=env)
        check(r.returncode == 0, f"stats from the service: {r.returncode} {r.stderr}")
        check(json.loads(r.stdout.splitlines()[0]).get("packets") == 2, f"the service counted 2: {r.stdout}")
        r = wine(exe, "service", "stop", env=env)
        check(r.returncode == 0, f"service stop: {r.returncode} {r.stdout} {r.stderr}")
        tail = driver.log()[-2:]
        check(tail == ["shutdown how=3", "close"], f"the service stopped as Ctrl-C stops: {tail}")
        with open(os.path.join(state, "service.log")) as f:
            log = f.read()
        check("stop requested" in log and "stopped; 2 packets decided" in log, f"service.log: {log}")
        r = wine(exe, "service", "uninstall", env=env)
        check(r.returncode == 0, f"service uninstall: {r.returncode} {r.stdout} {r.stderr}")
        r = wine(exe, "service", "start", env=env)
        check(r.returncode == 1 and "not installed" in r.stderr, f"start after uninstall: {r.stderr}")
    finally:
        wine(exe, "service", "uninstall", env=env)
        keeper.kill()
        keeper.wait(10)


if __name__ == "__main__":
    main()
