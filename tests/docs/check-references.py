#!/usr/bin/python3
"""The references agree: every method, signal, property, error name and option that one of them
names exists in the others and in the code.

  the interface XML (dbus/org.pidns.Manager1.xml): its org.gtk.GDBus.DocString annotations, and
      what gdbus-codegen renders of them (a description for every member and argument);
  the code: the generated adaptor (what pidnsd registers), dbus/client/wire.h (the error
      names pidnsd sends), `pidnsd --help`, `pidnsctl --help` and each subcommand's, and
      `pidnsctl __complete` (what the shell completions offer);
  pidnsd(8), pidnsctl(1);
  README.md, which only has to name things that exist (it may name few or none of them);
  and in each of README.md, doc/pidnsd.8, doc/pidnsctl.1, bench/README.md and fuzz/README.md: every
      repo-relative path exists in the source tree (build/ and the host's absolute paths by rule),
      every option a command is given exists in that program (--help, or a bench's source), every
      error name and method exists; and both man pages render without a groff warning.

Usage: check-references.py SOURCE_DIR PIDNSD PIDNSCTL ADAPTOR_HEADER
"""
import glob
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

SRC, PIDNSD, PIDNSCTL, ADAPTOR = sys.argv[1:5]
DOC = "org.gtk.GDBus.DocString"
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def read(path):
    with open(os.path.join(SRC, path), encoding="utf-8") as f:
        return f.read()


def run(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True, check=False).stdout


def same(what, a_name, a, b_name, b):
    for x in sorted(a - b):
        fail(f"{what} {x}: in {a_name}, not in {b_name}")
    for x in sorted(b - a):
        fail(f"{what} {x}: in {b_name}, not in {a_name}")


def within(what, a_name, a, b_name, b):
    for x in sorted(a - b):
        fail(f"{what} {x}: named in {a_name}, not in {b_name}")


def man_text(page):
    """A man page's text, troff escapes for - and the font changes taken out."""
    t = read(page).replace("\\-", "-").replace("\\(->", "->")
    return re.sub(r"\\f[BIRP]", "", t)


def man_section(text, name):
    m = re.search(r"^\.SH " + re.escape(name) + r"\n(.*?)(?=^\.SH |\Z)", text, re.S | re.M)
    return m.group(1) if m else ""


# --- The interface XML ---------------------------------------------------------------------------
xml_text = read("dbus/org.pidns.Manager1.xml")
iface = ET.fromstring(xml_text).find("interface")


def doc_of(el):
    for a in el.findall("annotation"):
        if a.get("name") == DOC:
            return a.get("value")
    return ""


if not doc_of(iface).strip():
    fail("the interface has no DocString")
xml_methods = {m.get("name") for m in iface.findall("method")}
xml_signals = {s.get("name") for s in iface.findall("signal")}
xml_props = {p.get("name") for p in iface.findall("property")}
ERROR_RE = r"org\.(?:pidns|freedesktop\.DBus)\.Error\.[A-Za-z]+"
xml_errors = set(re.findall(ERROR_RE, xml_text))
for kind in ("method", "signal", "property"):
    for el in iface.findall(kind):
        name = el.get("name")
        if not doc_of(el).strip():
            fail(f"{kind} {name} has no DocString in the XML")
        for arg in el.findall("arg"):
            if not doc_of(arg).strip():
                fail(f"argument {arg.get('name')} of {kind} {name} has no DocString in the XML")
# Every method's doc ends with the errors it may send, each a whole name; every call goes through
# the quotas and the caller's identification and may fail inside pidnsd.
for m in iface.findall("method"):
    doc = doc_of(m)
    at = doc.rfind(" Errors: ")
    if at < 0:
        fail(f"method {m.get('name')}: its doc lists no errors (Errors: ...)")
        continue
    named = set(re.findall(ERROR_RE, doc[at:]))
    for must in ("org.freedesktop.DBus.Error.AccessDenied", "org.freedesktop.DBus.Error.LimitsExceeded",
                 "org.freedesktop.DBus.Error.Failed"):
        if must not in named:
            fail(f"method {m.get('name')}: its Errors do not list {must}")

# What gdbus-codegen renders: a description for every member and argument.
with tempfile.TemporaryDirectory() as tmp:
    r = subprocess.run(["gdbus-codegen", "--generate-docbook", os.path.join(tmp, "doc"),
                        os.path.join(SRC, "dbus/org.pidns.Manager1.xml")], capture_output=True, text=True)
    if r.returncode != 0:
        fail("gdbus-codegen failed: " + r.stderr)
    else:
        book = ET.parse(os.path.join(tmp, "doc-org.pidns.Manager1.xml")).getroot()
        sections = {s.get("id"): s for s in book.iter("refsect2")}
        for kind, names in (("method", xml_methods), ("signal", xml_signals), ("property", xml_props)):
            for name in names:
                sec = sections.get(f"gdbus-{kind}-org-pidns-Manager1.{name}")
                if sec is None:
                    fail(f"gdbus-codegen rendered no section for {kind} {name}")
                    continue
                paras = [" ".join("".join(p.itertext()).split()) for p in sec.iter("para")]
                if not any(paras):
                    fail(f"gdbus-codegen rendered an empty description for {kind} {name}")
                for entry in sec.iter("varlistentry"):
                    if not " ".join("".join(entry.find("listitem").itertext()).split()):
                        fail(f"gdbus-codegen rendered an argument of {kind} {name} without a description")

# --- The code -----------------------------------------------------------------------------------
adaptor = open(ADAPTOR, encoding="utf-8").read()
same("method", "the XML", xml_methods, "pidnsd's adaptor", set(re.findall(r'registerMethod\("(\w+)"\)', adaptor)))
same("signal", "the XML", xml_signals, "pidnsd's adaptor", set(re.findall(r'registerSignal\("(\w+)"\)', adaptor)))
same("property", "the XML", xml_props, "pidnsd's adaptor", set(re.findall(r'registerProperty\("(\w+)"\)', adaptor)))
code_errors = set(re.findall(r'"(' + ERROR_RE + r')"', read("dbus/client/wire.h")))
same("error", "the XML", xml_errors, "dbus/client/wire.h", code_errors)

# --- pidnsd(8) ----------------------------------------------------------------------------------
p8 = man_text("doc/pidnsd.8")
api = man_section(p8, "API")
words = set(re.findall(r"\b[A-Z][A-Za-z]+\b", api))
within("method", "the XML", xml_methods, "pidnsd(8) API", words)
within("signal", "the XML", xml_signals, "pidnsd(8) API", words)
within("property", "the XML", xml_props, "pidnsd(8) API", words)
within("method", "pidnsd(8)", set(re.findall(r"\b([A-Z][a-z]+[A-Z][A-Za-z]+)\(", p8)), "the XML",
       xml_methods | xml_signals)
same("error", "pidnsd(8)", set(re.findall(ERROR_RE, p8)), "dbus/client/wire.h", code_errors)
pidnsd_opts = set(re.findall(r"^\s+(--[a-z-]+)", run(PIDNSD, "--help"), re.M)) | set(
    re.findall(r"^\s+-\w, (--[a-z-]+)", run(PIDNSD, "--help"), re.M))
if len(pidnsd_opts) < 8:
    fail(f"pidnsd --help gave too few options: {sorted(pidnsd_opts)}")
man_pidnsd_opts = set(re.findall(r"^\.B[IR]? (?:-\w, )?(--[a-z-]+)", man_section(p8, "OPTIONS"), re.M)) | set(
    re.findall(r"^\.BR -\w \", \" (--[a-z-]+)", man_section(p8, "OPTIONS"), re.M))
same("pidnsd option", "pidnsd --help", pidnsd_opts, "pidnsd(8) OPTIONS", man_pidnsd_opts)
within("pidnsd option", "pidnsd(8) SYNOPSIS", set(re.findall(r"(--[a-z-]+)", man_section(p8, "SYNOPSIS"))),
       "pidnsd --help", pidnsd_opts)

# --- pidnsctl --help, its subcommands, pidnsctl(1), the completions -----------------------------
top_help = run(PIDNSCTL, "--help")


def help_options(text):
    return set(re.findall(r"^\s+(?:-\w,)?(--[a-z-]+)", text, re.M))


commands = re.findall(r"^  (\w+)\s", top_help.split("Subcommands:")[1], re.M) if "Subcommands:" in top_help else []
if len(commands) < 8:
    fail(f"pidnsctl --help lists too few subcommands: {commands}")
ctl_opts = help_options(top_help)
sub_opts = {c: help_options(run(PIDNSCTL, c, "--help")) - ctl_opts for c in commands}
for form in ("container:", "unit:", "machine:", "@PID", "TYPE:[INODE]", "DBUS_SYSTEM_BUS_ADDRESS"):
    if form not in top_help:
        fail(f"pidnsctl --help does not mention {form}")
p1 = man_text("doc/pidnsctl.1")
# Each command is the first word after a .TP of the section (the list columns' are indented, .TP 12).
man_commands = set(re.findall(r"^\.TP\n\.B[IR]? \"?([a-z]+)\b", man_section(p1, "COMMANDS"), re.M))
same("pidnsctl command", "pidnsctl --help", set(commands), "pidnsctl(1) COMMANDS", man_commands)
all_ctl_opts = ctl_opts.union(*sub_opts.values())
man_ctl_words = set(re.findall(r"(--[a-z][a-z-]+)", p1))
within("pidnsctl option", "pidnsctl --help", all_ctl_opts, "pidnsctl(1)", man_ctl_words)
man_ctl_opts = set(re.findall(r"^\.B[IR]? (?:-\w \", \" )?(--[a-z-]+)", man_section(p1, "OPTIONS"), re.M))
within("pidnsctl option", "pidnsctl(1) OPTIONS", man_ctl_opts, "pidnsctl --help", all_ctl_opts)
for needed in ("DBUS_SYSTEM_BUS_ADDRESS", "container:", "unit:", "machine:"):
    if needed not in p1:
        fail(f"pidnsctl(1) does not mention {needed}")
API_NAME = (r"\b((?:Translate|List|Get|Describe|Dump)[A-Z][A-Za-z]*|Subscribe|Unsubscribe|Namespace(?:Added|Removed)"
            r"|Resync)\b")
within("method or signal", "pidnsctl(1)", set(re.findall(API_NAME, p1)), "the XML", xml_methods | xml_signals)
# list's columns: those --help names are those pidnsctl(1) describes.
m = re.search(r"comma-separated: ([A-Z,]+)", run(PIDNSCTL, "list", "--help"))
help_columns = set(m.group(1).split(",")) if m else set()
if not help_columns:
    fail("pidnsctl list --help names no columns")
man_list = man_section(p1, "COMMANDS").split(".BR list")[1].split(".BI \"translate")[0]
man_columns = set()
for head in re.findall(r"^\.TP(?: \d+)?\n(.+)$", man_list, re.M):
    man_columns |= set(re.findall(r"\b([A-Z]{2,})\b", head))
same("list column", "pidnsctl list --help", help_columns, "pidnsctl(1) list", man_columns)
# The completions offer every command and option.


def completes(*words):
    return {line.split("\t")[0] for line in run(PIDNSCTL, "__complete", "--", *words).splitlines()[1:]}


within("pidnsctl command", "pidnsctl --help", set(commands), "pidnsctl __complete", completes(""))
offered = {w.rstrip("=") for w in completes("-")}
within("pidnsctl option", "pidnsctl --help", ctl_opts, "pidnsctl __complete", offered)
for c in commands:
    offered = {w.rstrip("=") for w in completes(c, "-")}
    within(f"pidnsctl {c} option", f"pidnsctl {c} --help", sub_opts[c], "pidnsctl __complete", offered)

# --- README: what it names must exist -----------------------------------------------------------
readme = read("README.md")
within("method or signal", "README.md", set(re.findall(r"`([A-Z][a-z]+[A-Z][A-Za-z]+)\(", readme)), "the XML",
       xml_methods | xml_signals)
bus_errors = {"org.freedesktop.DBus.Error." + e for e in
              ("ServiceUnknown", "NameHasNoOwner", "NoReply", "Disconnected", "UnknownMethod", "Spawn")}
for line in re.findall(r"(?:^ {4}|`)(pidnsctl [^`\n#]*)", readme, re.M):
    words = line.split()
    sub = next((w for w in words[1:] if not w.startswith("-")), None)
    if sub and sub in commands:
        for opt in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", line):
            if opt not in ctl_opts | sub_opts[sub]:
                fail(f"README.md runs `{line.strip()}`: pidnsctl {sub} has no option {opt}")
    elif sub and re.fullmatch(r"[a-z]+", sub):
        fail(f"README.md runs `{line.strip()}`: pidnsctl has no command {sub}")
for opt in re.findall(r"^  (--[a-z-]+)", readme, re.M):  # a copy of pidnsd --help's, if README has one
    if opt not in pidnsd_opts:
        fail(f"README.md lists pidnsd option {opt}, which pidnsd --help does not have")

# --- Every document: the paths, options, errors and methods it names exist -----------------------
# Repo-relative paths (those under a top-level directory of the tree, written as such: `lib/view.cpp`
# in Markdown, \fItests/run.sh\fR or .B in roff) must exist in the source tree: as named, as a glob
# (`tests/dbus/test_hostile*.cpp`), or as the source of a program of that name (`bench/bench_dump`
# from bench/bench_dump.cpp). Paths under build/ are build products and absolute paths (/etc/,
# /usr/, /proc/, /run/ ...) the host's: both are allowed by rule. A backticked bare file name
# (`quotas.h`) must be some file of the tree.
DOCS = ("README.md", "doc/pidnsd.8", "doc/pidnsctl.1", "bench/README.md", "fuzz/README.md")
TOP = sorted(e for e in os.listdir(SRC) if os.path.isdir(os.path.join(SRC, e)) and not e.startswith(".")
             and e not in ("build", "Testing")) + [".ci"]
PATH_RE = re.compile(r"(?<![\w./$@<>{}-])(?:\./)?((?:" + "|".join(re.escape(t) for t in TOP) + r")/[\w./*@+-]*)")
FILE_RE = re.compile(r"`([\w.+-]+\.(?:cpp|h|c|py|sh))`")
tree_files = set()
for root, dirs, files in os.walk(SRC):
    dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("build", "Testing")]
    tree_files.update(files)
tree_files.update(os.listdir(SRC))


def doc_text(doc):
    return man_text(doc) if doc.startswith("doc/") else read(doc)


def path_exists(path):
    path = path.rstrip(".,:;)")
    full = os.path.join(SRC, path)
    if "*" in path:
        return bool(glob.glob(full))
    # as named, the source of a program (bench/bench_dump), or a configured file (systemd/pidnsd.service)
    return any(os.path.exists(full + ext) for ext in ("", ".cpp", ".in"))


for doc in DOCS:
    text = doc_text(doc)
    for path in sorted(set(PATH_RE.findall(text))):
        if not path_exists(path):
            fail(f"{doc} names {path.rstrip('.,:;)')}, which is not in the source tree")
    if doc.endswith(".md"):
        for name in sorted(set(FILE_RE.findall(text))):
            if name not in tree_files:
                fail(f"{doc} names the file {name}, which is nowhere in the source tree")
    within("error", doc, set(re.findall(ERROR_RE, text)), "dbus/client/wire.h or the bus's own",
           code_errors | bus_errors)
    within("method or signal", doc, set(re.findall(r"\b([A-Z][a-z]+[A-Z][A-Za-z]+)\(", text)) & set(
        re.findall(API_NAME, text)), "the XML", xml_methods | xml_signals)
    # Options: in each command a document gives (a `code span`, or a line, cut at | ; && and #),
    # pidnsd's and pidnsctl's against their --help, a bench's or a script's against its source.
    for line in text.splitlines():
        for seg in re.split(r"`|\|(?!\|)|;|&&| # ", line):
            words = [w for w in seg.split() if not re.fullmatch(r"sudo|\$|[A-Z_]+=\S*", w)]
            if not words:
                continue
            prog = os.path.basename(words[0])
            if prog not in ("pidnsd", "pidnsctl", "run.sh", "try-pidnsd.sh", "check-try-pidnsd.sh") and \
                    not prog.startswith("bench_"):
                continue
            opts = []
            for w in words[1:]:
                if w in ("lsns", "busctl", "dbus-send", "cmake", "docker", "podman", "ctr", "ip", "unshare",
                         "nsenter", "setpriv", "pidnsd", "pidnsctl") or w.startswith("bench_"):
                    break
                opts += re.findall(r"^(--[a-z][a-z0-9-]*)", w)
            for opt in opts:
                if prog == "pidnsd":
                    ok = opt in pidnsd_opts
                elif prog == "pidnsctl":
                    ok = opt in all_ctl_opts or opt == "--help"
                else:
                    if prog.startswith("bench_"):
                        srcs = [os.path.join(SRC, "bench", prog + ".cpp")] + glob.glob(os.path.join(SRC, "bench", "*.h"))
                    else:
                        srcs = [os.path.join(SRC, d, prog) for d in ("fuzz", "tests", "packaging", "tests/packaging")]
                    srcs = [f for f in srcs if os.path.exists(f)]
                    if not srcs:
                        fail(f"{doc} runs {prog}, which is not in the source tree")
                        break
                    body = "".join(open(f, encoding="utf-8").read() for f in srcs)
                    ok = opt in body or f'"{opt[2:]}' in body
                if not ok:
                    fail(f"{doc}: {prog} has no option {opt} (`{seg.strip()[:100]}`)")

# --- The man pages render without a warning -----------------------------------------------------
for page in ("doc/pidnsd.8", "doc/pidnsctl.1"):
    r = subprocess.run(["groff", "-man", "-t", "-ww", "-z", os.path.join(SRC, page)], capture_output=True,
                       text=True)
    if r.returncode != 0 or r.stderr.strip():
        fail(f"{page}: groff -man -t -ww -z warns: {r.stderr.strip()}")
    if subprocess.run(["sh", "-c", "command -v man"], capture_output=True).returncode == 0:
        r = subprocess.run(["man", "-l", os.path.join(SRC, page)], capture_output=True, text=True,
                           env=dict(os.environ, MANPAGER="cat", PAGER="cat", MAN_KEEP_FORMATTING="0"))
        if r.returncode != 0 or not r.stdout.strip():
            fail(f"{page}: man -l fails: {r.stderr.strip()}")

print(f"{len(failures)} failures; compared {len(xml_methods)} methods, {len(xml_signals)} signals, "
      f"{len(xml_props)} properties, {len(code_errors)} errors, {len(pidnsd_opts)} pidnsd and "
      f"{len(all_ctl_opts)} pidnsctl options, {len(commands)} commands, {len(help_columns)} columns")
sys.exit(1 if failures else 0)
