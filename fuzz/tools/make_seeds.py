#!/usr/bin/env python3
"""Writes the seed corpora of the targets whose inputs are not files of this machine:
fuzz/corpus/options (pidnsd command lines: arguments separated by NUL bytes, as in
/proc/PID/cmdline), fuzz/corpus/dbus_args and fuzz/corpus/caller_view (the byte formats described
at the top of fuzz_dbus_args.cpp and fuzz_caller_view.cpp). Deterministic: same files every run.

    python3 fuzz/tools/make_seeds.py
"""
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")


def reset(name):
    """Empties corpus/NAME, but keeps the inputs of past crashes (regress-*)."""
    d = os.path.join(CORPUS, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if not f.startswith("regress-"):
            os.remove(os.path.join(d, f))
    return d


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- options: real command lines (tests/dbus, systemd/pidnsd.service.in, the README) and bad ones.
COMMAND_LINES = {
    "empty": [],
    "help": ["--help"],
    "help-short": ["-h"],
    "version": ["--version"],
    "test-daemon": ["--bus=unix:path=/tmp/pidns-bus.XXXX/system_bus_socket", "--log-level=debug"],
    "polling": ["--no-proc-connector", "--poll-interval=3600s"],
    "polling-fast": ["--no-proc-connector", "--poll-interval=200ms"],
    "verify": ["--verify-interval=200ms"],
    "verify-off": ["--verify-interval=off"],
    "verify-words": ["--verify-interval", "1s"],
    "netlink-small": ["--netlink-buffer=4K"],
    "netlink-words": ["--netlink-buffer", "64M", "--netlink-buffer=0"],
    "session": ["--bus", "session", "--polkit", "no"],
    "all-options": ["--bus=system", "--log-level", "info", "--polkit=auto", "--poll-interval", "1.5s",
                    "--verify-interval=5s", "--netlink-buffer=8M", "--no-proc-connector"],
    "bad-bus": ["--bus=tcp"],
    "bad-interval": ["--poll-interval=1e9"],
    "nan-interval": ["--poll-interval=nan"],
    "bad-size": ["--netlink-buffer=2G"],
    "missing-value": ["--log-level"],
    "value-on-flag": ["--help=yes"],
    "assume-kernel": ["--assume-kernel=5.14"],
    "assume-kernel-words": ["--assume-kernel", "6.1.0-28-amd64", "--no-proc-connector"],
    "unknown": ["--kernel=6.18"],
}


def options():
    d = reset("options")
    for name, argv in COMMAND_LINES.items():
        write(d, name, b"".join(a.encode() + b"\0" for a in argv))


# --- dbus_args: namespaces, processes, then operations (see fuzz_dbus_args.cpp).
def u8(v): return struct.pack("<B", v & 0xff)
def u16(v): return struct.pack("<H", v & 0xffff)
def u32(v): return struct.pack("<I", v & 0xffffffff)
def u64(v): return struct.pack("<Q", v & 0xffffffffffffffff)

TYPES = ["pid", "user", "mnt", "net", "uts", "ipc", "cgroup", "time"]


def namespace(rng, type_index, id_kind=None, inode_kind=None, rel=None):
    out = u8(type_index)
    id_kind = rng.randrange(4) if id_kind is None else id_kind
    out += u8(id_kind)
    out += [lambda: u8(rng.randrange(256)), lambda: u8(rng.randrange(256)),
            lambda: u64(rng.getrandbits(64)), lambda: u16(rng.randrange(65536))][id_kind]()
    inode_kind = rng.randrange(4) if inode_kind is None else inode_kind
    out += u8(inode_kind)
    out += [lambda: u16(rng.randrange(65536)), lambda: u8(rng.randrange(256)),
            lambda: u64(rng.getrandbits(64)), lambda: u8(rng.randrange(256))][inode_kind]()
    out += u8(rng.choice([1, 2, 3, 0x80]))   # dev: mostly the nsfs device
    out += u8(rng.randrange(256) if rel is None else rel)
    out += u32(rng.choice([0, 1000, 65534, rng.getrandbits(32)]))
    return out


def process(rng, depth_hint):
    out = u16(rng.randrange(4096))
    for _ in range(8):
        out += u8(rng.randrange(256))
    for _ in range(depth_hint):
        out += u16(rng.randrange(64))
    out += u8(rng.randrange(256))
    for _ in range(depth_hint * (rng.randrange(3))):
        out += u16(rng.randrange(64))
    return out


def dbus_op(rng, op):
    out = u8(op)
    if op == 0:      # resolve: ref, dev, visibility mask
        out += u8(rng.randrange(256)) + u8(rng.randrange(256)) + u8(rng.randrange(5)) + u64(rng.choice([0, rng.getrandbits(64)]))
    elif op == 1:    # type filter
        s = rng.choice(TYPES + ["", "PID", "pid ", "all", "\0pid", "network"]).encode()
        out += u8(len(s)) + s
    elif op == 2:    # translate: pid, from, to
        out += u8(rng.randrange(256)) + u32(rng.getrandbits(32)) + u8(rng.randrange(256)) + u8(rng.randrange(256))
    elif op == 3:    # batch: declared size, from, to, pids
        out += u32(rng.choice([0, 1, 7, 64, 65536, 65537, 131072])) + u8(rng.randrange(8)) + u8(rng.randrange(8))
        out += b"".join(u8(rng.randrange(256)) for _ in range(16))
    else:            # access: process, flags, caller pid, pidns, userns, caps
        out += u8(rng.randrange(256)) + u8(rng.randrange(256)) + u16(rng.randrange(4096))
        out += u8(rng.randrange(256)) + u8(rng.randrange(256)) + u64(rng.getrandbits(64))
    return out


def dbus_args():
    d = reset("dbus_args")
    write(d, "observer-only", b"")
    rng = random.Random(12)
    # A pid namespace chain 3 deep, a user namespace under the observer's, a net namespace whose id
    # is the inode of the observer's pid namespace (references to it are ambiguous).
    nested = (u8(6) + namespace(rng, 0, 0, 0, 0) + namespace(rng, 0, 0, 0, 8) + namespace(rng, 0, 0, 0, 9)
              + namespace(rng, 1, 0, 0, 0) + namespace(rng, 3, 1, 0, 0) + namespace(rng, 2, 3, 2, 0))
    procs = u8(4) + process(rng, 1) + process(rng, 2) + process(rng, 3) + process(rng, 4)
    for op in range(5):
        write(d, "nested-op%d" % op, nested + procs + b"".join(dbus_op(rng, op) for _ in range(6)))
    write(d, "nested-all-ops", nested + procs + b"".join(dbus_op(rng, op % 5) for op in range(40)))
    for i in range(10):
        n = rng.randrange(1, 20)
        body = u8(n) + b"".join(namespace(rng, rng.randrange(8)) for _ in range(n))
        body += u8(rng.randrange(1, 10)) + b"".join(process(rng, rng.randrange(1, 4)) for _ in range(6))
        body += b"".join(dbus_op(rng, rng.randrange(5)) for _ in range(rng.randrange(4, 30)))
        write(d, "random-%02d" % i, body)


# --- caller_view: a caller, then operations (see fuzz_caller_view.cpp).
def view_op(rng, op):
    out = u8(op)
    ref = lambda: u8(rng.randrange(256)) + u8(rng.randrange(256)) + u64(rng.getrandbits(64))
    pid = lambda: u8(rng.randrange(256)) + u8(rng.randrange(256)) + u32(rng.getrandbits(32))
    if op == 0:
        out += pid() + ref() + ref()
    elif op == 1:
        k = rng.choice([0, 16, 5, 33, 47])
        out += u8(k) + b"".join(pid() for _ in range(k % 48 if k % 16 else 0)) + ref() + ref()
    elif op == 2:
        out += u8(rng.randrange(256)) + b"pid"
    elif op in (3, 5, 7):
        out += ref()
    elif op == 4:
        out += pid()
    return out


def caller_view():
    d = reset("caller_view")
    rng = random.Random(34)
    callers = {
        "root": u8(0) + u8(1 | 2 | 4 | 16) + u64(0),
        "root-in-nested": u8(0) + u8(4 | 16) + u8(1) + u8(1) + u64(0),
        "user-1000": u8(5) + u8(1 | 2 | 128) + u64(0),
        "nobody-ptrace": u8(9) + u8(1 | 2 | 8 | 32) + u64(0),
        "nested-user": u8(13) + u8(64) + u8(2) + u8(1) + u64(rng.getrandbits(64)),
    }
    for cname, caller in callers.items():
        for op in range(9):
            write(d, "%s-op%d" % (cname, op), caller + u8(0) + b"".join(view_op(rng, op) for _ in range(3)))
    write(d, "root-all-ops", callers["root"] + u8(1) + b"".join(view_op(rng, op % 9) for op in range(24)))


if __name__ == "__main__":
    options()
    dbus_args()
    caller_view()
    for name in ("options", "dbus_args", "caller_view"):
        print("%d files: fuzz/corpus/%s" % (len(os.listdir(os.path.join(CORPUS, name))), name))
