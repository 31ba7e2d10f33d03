#!/usr/bin/python3
"""pidnsd client example in Python 3 with python3-dbus (Debian: apt install python3-dbus python3-gi).

    pidns_translate.py [--address ADDR] [--from NS] [--to NS] PID
        The process PID (a pid in namespace --from, default: yours) as pidnsd sees it:
        GetProcess (its NSpid/NStgid/NSpgid/NSsid chains and its 8 namespaces),
        TranslatePid (its pid in namespace --to, default: its own pid namespace) and
        its pid namespace's entry of ListNamespaces.
    pidns_translate.py [--address ADDR] --list [TYPE]
        ListNamespaces(TYPE) as a table (TYPE: pid user mnt net uts ipc cgroup time; default all).
    pidns_translate.py [--address ADDR] --monitor SECONDS
        Subscribe, then print NamespaceAdded/NamespaceRemoved/Resync for SECONDS seconds.

NS is 0 (yours), a namespace id as ListNamespaces prints it, or an nsfs inode as
`readlink /proc/PID/ns/pid` prints it. The bus is --address, else $DBUS_SYSTEM_BUS_ADDRESS,
else the system bus.

Exit status: 0 ok, 1 failure, 2 usage, 4 no such process or namespace, 5 access denied.
On a D-Bus error the example prints pidnsd's error name and its whole message.
The API reference is the doc annotations in dbus/org.pidns.Manager1.xml.
"""

import argparse
import os
import sys
import time

import dbus

BUS_NAME = "org.pidns"
OBJECT_PATH = "/org/pidns"
INTERFACE = "org.pidns.Manager1"

# Error names (dbus/org.pidns.Manager1.xml) and the exit status each one gives.
EXIT_FAILURE, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_ACCESS_DENIED = 1, 2, 4, 5
EXIT_FOR_ERROR = {
    "org.pidns.Error.NoSuchProcess": EXIT_NOT_FOUND,
    "org.pidns.Error.NoSuchNamespace": EXIT_NOT_FOUND,
    "org.freedesktop.DBus.Error.AccessDenied": EXIT_ACCESS_DENIED,
}

NS_FIELDS = ("id", "inode", "type", "parent", "owner", "level", "init_pid", "nprocs", "owner_uid")


def u32(text):
    """A pid argument: any 32-bit unsigned number (pidnsd itself refuses 0 and > 2^31-1)."""
    value = int(text, 10)
    if not 0 <= value <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError(f"{text}: not a 32-bit unsigned number")
    return value


def u64(text):
    """A namespace reference: 0, an id or an inode; `pid:[4026531836]` is accepted too."""
    if text.startswith("pid:[") and text.endswith("]"):
        text = text[5:-1]
    value = int(text, 10)
    if not 0 <= value <= 0xFFFFFFFFFFFFFFFF:
        raise argparse.ArgumentTypeError(f"{text}: not a 64-bit unsigned number")
    return value


def connect(address):
    """The system bus, or the bus at `address` (as a bus client: Hello is sent)."""
    address = address or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    if address:
        return dbus.bus.BusConnection(address)
    return dbus.SystemBus()


def namespace_entry(values):
    """One ListNamespaces/GetNamespace entry as a dict with the XML's field names."""
    entry = dict(zip(NS_FIELDS, values))
    entry["type"] = str(entry["type"])
    return {k: (v if k == "type" else int(v)) for k, v in entry.items()}


def show_process(manager, pid, ns_from, ns_to):
    # A pid in another namespace is first translated into the caller's (GetProcess takes those).
    my_pid = pid
    if ns_from != 0:
        my_pid = int(manager.TranslatePid(dbus.UInt32(pid), dbus.UInt64(ns_from), dbus.UInt64(0)))
        if my_pid == 0:
            print(f"pidns_translate: task {pid} of namespace {ns_from} has no pid in your pid namespace",
                  file=sys.stderr)
            return EXIT_NOT_FOUND

    # GetProcess returns five values: four chains (first: your view, last: the task's own
    # namespace) and the namespace id of each type.
    nspid, nstgid, nspgid, nssid, namespaces = manager.GetProcess(dbus.UInt32(my_pid))
    namespaces = {str(k): int(v) for k, v in namespaces.items()}
    own_pidns = namespaces["pid"]

    target = own_pidns if ns_to is None else ns_to
    translated = int(manager.TranslatePid(dbus.UInt32(pid), dbus.UInt64(ns_from), dbus.UInt64(target)))

    # Its pid namespace's entry (level, init, process count) from ListNamespaces("pid").
    entry = None
    for values in manager.ListNamespaces("pid"):
        e = namespace_entry(values)
        if e["id"] == own_pidns:
            entry = e
            break

    where_from = "your pid namespace" if ns_from == 0 else f"pid namespace {ns_from}"
    where_to = (f"its own pid namespace {target}" if ns_to is None else
                "your pid namespace" if target == 0 else f"pid namespace {target}")
    if translated:
        print(f"pid {pid} in {where_from} is pid {translated} in {where_to}")
    else:
        print(f"pid {pid} in {where_from} has no pid in {where_to}")
    print(f"translated: {translated}")
    for name, chain in (("NSpid", nspid), ("NStgid", nstgid), ("NSpgid", nspgid), ("NSsid", nssid)):
        print(f"{name}:\t" + "\t".join(str(int(p)) for p in chain))
    for ns_type, ns_id in namespaces.items():
        print(f"namespace {ns_type}: {ns_id}")
    if entry is not None:
        print(f"pid namespace: id {entry['id']} inode {entry['inode']} level {entry['level']} "
              f"init_pid {entry['init_pid']} nprocs {entry['nprocs']}")
    return 0


def list_namespaces(manager, ns_type):
    rows = [namespace_entry(v) for v in manager.ListNamespaces(ns_type)]
    header = ("ID", "INODE", "TYPE", "PARENT", "OWNER", "LEVEL", "INIT", "NPROCS", "OWNER-UID")
    table = [header] + [tuple(str(r[f]) for f in NS_FIELDS) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.rjust(w) if i != 2 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    print(f"{len(rows)} namespaces")
    return 0


def monitor(bus, manager, seconds):
    # The connection was made with dbus-python's GLib main loop integration (see main); GLib
    # itself comes from python3-gi.
    from gi.repository import GLib

    loop = GLib.MainLoop()

    def stamp():
        return time.strftime("%H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"

    def added(ns_id, ns_type):
        print(f"{stamp()} NamespaceAdded {int(ns_id)} {ns_type}", flush=True)

    def removed(ns_id, ns_type):
        print(f"{stamp()} NamespaceRemoved {int(ns_id)} {ns_type}", flush=True)

    def resync():
        print(f"{stamp()} Resync: changes were dropped; list again", flush=True)

    # The signals are unicast to subscribers; the match rules only route them to these handlers.
    for name, handler in (("NamespaceAdded", added), ("NamespaceRemoved", removed), ("Resync", resync)):
        bus.add_signal_receiver(handler, signal_name=name, dbus_interface=INTERFACE, path=OBJECT_PATH)
    manager.Subscribe()
    print(f"subscribed; watching for {seconds} s", flush=True)
    GLib.timeout_add(int(seconds * 1000), loop.quit)
    try:
        loop.run()
    except KeyboardInterrupt:
        pass
    return 0


def main():
    parser = argparse.ArgumentParser(description="pidnsd client example (python3-dbus)")
    parser.add_argument("--address", help="D-Bus address (default: $DBUS_SYSTEM_BUS_ADDRESS or the system bus)")
    parser.add_argument("--from", dest="ns_from", type=u64, default=0, help="namespace PID is in (default 0: yours)")
    parser.add_argument("--to", dest="ns_to", type=u64, default=None,
                        help="namespace to translate PID into (default: the process's own pid namespace)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("pid", nargs="?", type=u32, help="the process to show")
    mode.add_argument("--list", nargs="?", const="", metavar="TYPE", help="list the namespaces (of TYPE)")
    mode.add_argument("--monitor", type=float, metavar="SECONDS", help="print namespace signals for SECONDS")
    args = parser.parse_args()

    if args.monitor is not None:
        # Signals need a main loop, attached to the connection when it is made.
        from dbus.mainloop.glib import DBusGMainLoop
        DBusGMainLoop(set_as_default=True)

    try:
        bus = connect(args.address)
        manager = dbus.Interface(bus.get_object(BUS_NAME, OBJECT_PATH, introspect=False), INTERFACE)
        if args.list is not None:
            return list_namespaces(manager, args.list)
        if args.monitor is not None:
            return monitor(bus, manager, args.monitor)
        return show_process(manager, args.pid, args.ns_from, args.ns_to)
    except dbus.exceptions.DBusException as e:
        # pidnsd's messages say what went wrong and why; print them whole, with the error name.
        name = e.get_dbus_name() or "(no error name)"
        print(f"pidns_translate: {name}: {e.get_dbus_message()}", file=sys.stderr)
        return EXIT_FOR_ERROR.get(name, EXIT_FAILURE)


if __name__ == "__main__":
    sys.exit(main())
