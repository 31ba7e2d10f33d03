// Untrusted text (issue 23): a hostile-names corpus planted by nobody in comm, argv, cgroup and unit
// names and nsfs mount paths. Every method answers root and nobody, each string escaped on its own
// and equal, unescaped, to the kernel's bytes; pidnsctl's tables, trees, JSON and monitor hold no
// raw control byte and no invalid UTF-8, a row is one line; labels from a cgroup nobody could name
// carry its uid, and names resolve to root's claim or not at all; a process that holds its mmap
// lock cannot hold up pidnsctl.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "skip.h"
#include "escape.h"
#include "support/fuse_stall.h"

using namespace pidns::harness;
using namespace std::chrono_literals;
using namespace std::string_literals;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Description = std::map<std::string, sdbus::Variant>;
using Clock = std::chrono::steady_clock;

std::string hex(const std::string& bytes) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) out += {kHex[c >> 4], kHex[c & 15]};
    return out;
}

// The test's own reading of text (independent of lib/escape.cpp): nothing a terminal would act on.
// Valid UTF-8 (shortest forms, no surrogates, at most U+10FFFF), no C0 control but the newline that
// ends a line (`newlines`), no DEL, no C1 control, no U+2028/U+2029 and no bidi formatting.
std::string first_unclean(const std::string& s, bool newlines) {
    for (std::size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        std::uint32_t cp = b;
        std::size_t n = 1;
        if (b >= 0x80) {
            if ((b & 0xe0) == 0xc0) cp = b & 0x1f, n = 2;
            else if ((b & 0xf0) == 0xe0) cp = b & 0x0f, n = 3;
            else if ((b & 0xf8) == 0xf0) cp = b & 0x07, n = 4;
            else return "invalid byte at " + std::to_string(i);
            if (i + n > s.size()) return "truncated sequence at " + std::to_string(i);
            for (std::size_t k = 1; k < n; ++k) {
                const auto c = static_cast<unsigned char>(s[i + k]);
                if ((c & 0xc0) != 0x80) return "invalid sequence at " + std::to_string(i);
                cp = (cp << 6) | (c & 0x3f);
            }
            const std::uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
            if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return "ill-formed at " + std::to_string(i);
        }
        const bool control = (cp < 0x20 && !(newlines && cp == '\n')) || (cp >= 0x7f && cp <= 0x9f);
        const bool format = cp == 0x2028 || cp == 0x2029 || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
                            (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
        if (control || format) return "character U+" + std::to_string(cp) + " at " + std::to_string(i);
        i += n;
    }
    return "";
}
#define CHECK_CLEAN(text, newlines)                                                 \
    do {                                                                            \
        const std::string what_ = first_unclean(text, newlines);                    \
        INFO("unclean: " << what_ << " in " << pidns::escape_text(text, 2000));      \
        CHECK(what_.empty());                                                       \
    } while (0)

// The bytes of an escaped value, checked to be printable first.
std::string bytes_of(const std::string& escaped) {
    CHECK_CLEAN(escaped, false);
    return pidns::unescape_text(escaped).bytes;
}

std::string str(const Description& d, const std::string& key) {
    auto it = d.find(key);
    return it == d.end() ? "<absent>"s : it->second.get<std::string>();
}

std::uint32_t u32(const Description& d, const std::string& key) {
    auto it = d.find(key);
    return it == d.end() ? 0xffffffffu : it->second.get<std::uint32_t>();
}

// The kernel's bytes: the comm (no newline), and the path of the hierarchy pidnsd labels by (the
// v1 name=systemd line where there is one, else the v2 line).
std::string kernel_comm(pid_t pid) {
    auto c = read_file("/proc/" + std::to_string(pid) + "/comm");
    if (!c.empty() && c.back() == '\n') c.pop_back();
    return c;
}
std::string kernel_cgroup(pid_t pid) {
    std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/cgroup"));
    std::string v2;
    for (std::string line; std::getline(in, line);) {
        const auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
        if (line.compare(c1 + 1, c2 - c1 - 1, "name=systemd") == 0) return line.substr(c2 + 1);
        if (line.starts_with("0::")) v2 = line.substr(3);
    }
    return v2;
}

// The mount point of the hierarchy pidnsd reads cgroup paths of.
fs::path systemd_hierarchy() {
    return fs::exists("/sys/fs/cgroup/systemd/cgroup.procs") ? "/sys/fs/cgroup/systemd" : "/sys/fs/cgroup";
}

// The test's cgroup top (root's), with a slice delegated to nobody in it; everything below is
// removed (its processes must be gone first) when it goes.
class Delegated {
public:
    explicit Delegated(const std::string& what)
        : root_(systemd_hierarchy()), top_("pidnsd-test-" + std::to_string(getpid()) + "-" + what + ".slice") {
        fs::create_directories(root_ / top_ / "user-deleg.slice");
        REQUIRE(::chown((root_ / top_ / "user-deleg.slice").c_str(), kNobody, kNobody) == 0);
    }
    ~Delegated() { remove_below(root_ / top_); }
    // A path as /proc/PID/cgroup prints it, and the directory of it.
    [[nodiscard]] std::string path(const std::string& rel) const { return "/" + top_ + "/" + rel; }
    [[nodiscard]] std::string dir(const std::string& rel) const { return (root_ / top_ / rel).string(); }
    // Root moves a process in (cgroup v2 lets no user move a process out of root's cgroup).
    void move(pid_t pid, const std::string& rel) const {
        std::ofstream f(dir(rel) + "/cgroup.procs");
        f << pid << std::flush;
        REQUIRE(f.good());
    }

private:
    static void remove_below(const fs::path& p) {
        std::error_code ec;
        std::vector<fs::path> subdirs;
        for (const auto& e : fs::directory_iterator(p, ec))
            if (e.is_directory(ec) && !e.is_symlink(ec)) subdirs.push_back(e.path());
        for (const auto& s : subdirs) remove_below(s);
        ::rmdir(p.c_str());
    }
    fs::path root_;
    std::string top_;
};

// A process of the attacker's (tests/support/hostile_names.cpp), as nobody unless told otherwise.
struct Plant {
    std::string comm;                 // at most 15 bytes
    std::vector<std::string> argv;    // its argv, argv[0] included; empty: the binary's
    std::string cgroup;               // below the Delegated top, made by the process ("": none)
    std::string unshare = "user,net";
    std::vector<std::string> bind;    // nsfs mount point names in /tmp of its own mount namespace
    bool fork = false;                // pid 1 of a pid namespace of its own does the rest
};

class Hostile {
public:
    Hostile(const Plant& p, const Delegated* cg, bool as_nobody = true) : plant_(p) {
        std::vector<std::string> env = {"PIDNS_HOSTILE_COMM=" + hex(p.comm), "PIDNS_HOSTILE_UNSHARE=" + p.unshare};
        if (!p.argv.empty()) {
            std::string list;
            for (const auto& a : p.argv) list += (list.empty() ? "" : ",") + hex(a);
            env.push_back("PIDNS_HOSTILE_ARGV=" + list);
        }
        if (!p.cgroup.empty()) env.push_back("PIDNS_HOSTILE_MKDIR=" + hex(cg->dir(p.cgroup)));
        if (!p.bind.empty()) {
            std::string list;
            for (const auto& b : p.bind) list += (list.empty() ? "" : ",") + hex(b);
            env.push_back("PIDNS_HOSTILE_BIND=" + list);
        }
        if (p.fork) env.push_back("PIDNS_HOSTILE_FORK=1");
        SpawnOptions o;
        o.env = env;
        starter_ = spawn(as_nobody ? concat(kAsNobody, {PIDNS_HOSTILE_BIN}) : Argv{PIDNS_HOSTILE_BIN}, o);
        pid_ = p.fork ? child_of(starter_) : starter_;
        // The comm is set last: everything is in place. (The kernel keeps 15 bytes of it.)
        wait_comm(pid_, p.comm.substr(0, 15));
        if (!p.cgroup.empty()) cg->move(pid_, p.cgroup);
    }
    ~Hostile() {
        kill(starter_, SIGKILL);
        if (pid_ != starter_) kill(pid_, SIGKILL);
        waitpid(starter_, nullptr, 0);
        for (int i = 0; i < 500 && pid_ != starter_ && kill(pid_, 0) == 0; ++i) std::this_thread::sleep_for(10ms);
    }
    Hostile(const Hostile&) = delete;
    Hostile& operator=(const Hostile&) = delete;
    [[nodiscard]] pid_t pid() const { return pid_; }
    [[nodiscard]] const Plant& plant() const { return plant_; }

private:
    Plant plant_;
    pid_t starter_ = -1, pid_ = -1;
};

// Until pidnsd has indexed the namespace of `type` of process `pid` (one it unshared without an
// exec reaches the index without an event: GetProcess re-reads a process whose links changed),
// by its nsfs inode.
void wait_indexed(Client& c, pid_t pid, const std::string& type = "net") {
    struct stat st {};
    REQUIRE(::stat(("/proc/" + std::to_string(pid) + "/ns/" + type).c_str(), &st) == 0);
    for (int i = 0; i < 1000; ++i) {
        try {
            const auto id = c.get_process(static_cast<std::uint32_t>(pid)).namespaces.at(type);
            if (c.get_namespace(id).inode == st.st_ino) return;
        } catch (const pidns::client::Error&) {
        }
        std::this_thread::sleep_for(10ms);
    }
    FAIL("pidnsd did not index the " << type << " namespace of process " << pid);
}
void wait_indexed(Client& c, const Hostile& h) { wait_indexed(c, h.pid()); }

// pidnsctl's output, checked clean; for --json, parsed.
std::string ctl_text(const PrivateBus& bus, const Argv& args, const Argv& prefix = {}) {
    const auto r = pidnsctl(bus.address(), args, prefix);
    INFO("pidnsctl " << pidns::escape_text(args.empty() ? "" : args.front()) << ": " << pidns::escape_text(r.err, 2000));
    CHECK(r.status == 0);
    CHECK_CLEAN(r.out, true);
    CHECK_CLEAN(r.err, true);
    return r.out;
}
json ctl_json(const PrivateBus& bus, Argv args, const Argv& prefix = {}) {
    args.push_back("--json=short");
    const auto out = ctl_text(bus, args, prefix);
    json j;
    REQUIRE_NOTHROW(j = json::parse(out));
    return j;
}

const std::string kHex = "abababababab3c2b9a8e7f6d5c4b3a29180716253a4b5c6d7e8f90a1b2c3d4e5";

// The corpus: comm (15 bytes at most), argv and cgroup names a user chose.
std::vector<Plant> corpus() {
    const std::string forged = "fake\n    1 1     init.scope  -  /sbin/init --fake-row";
    auto p = [](std::string comm, std::vector<std::string> argv, std::string cgroup) {
        Plant x;
        x.comm = std::move(comm);
        x.argv = std::move(argv);
        x.cgroup = std::move(cgroup);
        return x;
    };
    return {
        p("x\xff\xfe", {"x\xff\xfe"}, "user-deleg.slice/evil\xff.service"),
        p("\xffstart", {"\xff", "mid\xff" "dle", "end\xe2\x82"}, "user-deleg.slice/\xc0\xaf" "overlong.scope"),
        p("mid\xff" "dle\xe2\x82", {forged}, "user-deleg.slice/cr\rname.service"),  // the kernel refuses \n in cgroup names
        p("a\tb\nc", {"a\tb\nc", "tab\there"}, "user-deleg.slice/tab\tname.service"),
        p("\x1b]0;pwned\x07\x1b[2J", {"\x1b]0;pwned\x07\x1b[2J"}, "user-deleg.slice/\x1b]0;x\x07.scope"),
        p("\xc2\x9b" "2J\xe2\x80\xae" "cod", {"\xc2\x9b" "2J", "\xe2\x80\xae" "cod.exe"}, "user-deleg.slice/\xc2\x9b" "c1.service"),
        p("nspawn1", {}, "user-deleg.slice/systemd-nspawn@\\xff.service"),
        p("nspawn2", {}, "user-deleg.slice/systemd-nspawn@a\\x00b.service"),
        p("nspawn3", {}, "user-deleg.slice/systemd-nspawn@\\x1b[2J.service"),
        p("nspawn4", {}, "user-deleg.slice/systemd-nspawn@\xff.service"),
        p("nspawn5", {}, "user-deleg.slice/systemd-nspawn@my\\x2dbox.service"),
        p("1234567890123456789", {"bad\xff" "argv"}, "user-deleg.slice/docker-" + kHex + ".scope"),
        p("\\x41\\", {"\\x1b", "\\\\"}, "user-deleg.slice/back\\x0a\\slash.service"),
    };
}

// What the nspawn cases name their container (as the bus gives it, unescaped): an escape is decoded
// only into a printable character.
const std::map<std::string, std::string> kNspawnName = {
    {"nspawn1", "\\xff"}, {"nspawn2", "a\\x00b"}, {"nspawn3", "\\x1b[2J"}, {"nspawn4", "\xff"}, {"nspawn5", "my-box"}};

// The kernel's command line of a process, as pidnsctl shows it unescaped (arguments joined by spaces).
std::string joined(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
    return s;
}

// Checks one process's labels against the kernel (and its plant).
void check_labels(const Description& d, const Hostile& h) {
    const auto& p = h.plant();
    INFO("process " << h.pid() << " comm " << pidns::escape_text(p.comm) << " cgroup " << pidns::escape_text(p.cgroup));
    CHECK(bytes_of(str(d, "Command")) == kernel_comm(h.pid()));
    CHECK(bytes_of(str(d, "CGroup")) == kernel_cgroup(h.pid()));
    const auto leaf = p.cgroup.substr(p.cgroup.rfind('/') + 1);
    if (leaf.ends_with(".service") || leaf.ends_with(".scope")) {
        CHECK(bytes_of(str(d, "Unit")) == leaf);
        CHECK(u32(d, "UnitOwnerUid") == kNobody);  // named in nobody's delegated slice
    }
    CHECK(bytes_of(str(d, "Slice")) == "user-deleg.slice");
    if (auto it = kNspawnName.find(p.comm); it != kNspawnName.end()) {
        CHECK(str(d, "ContainerEngine") == "nspawn");
        CHECK(bytes_of(str(d, "ContainerName")) == it->second);
        CHECK(bytes_of(str(d, "ContainerId")) == it->second);
        CHECK(u32(d, "ContainerOwnerUid") == kNobody);
    } else if (leaf.starts_with("docker-")) {
        CHECK(str(d, "ContainerId") == kHex);
        CHECK(u32(d, "ContainerOwnerUid") == kNobody);
    } else {
        CHECK(str(d, "ContainerEngine") == "<absent>");
        CHECK(u32(d, "ContainerOwnerUid") == 0xffffffffu);
    }
}

// busctl --json=short's description (nobody's view) as a Description of strings and uids.
void check_labels(const json& d, const Hostile& h) {
    Description desc;
    for (auto it = d.begin(); it != d.end(); ++it) {
        const auto& v = it.value().at("data");
        if (v.is_string()) desc[it.key()] = sdbus::Variant(v.get<std::string>());
        else if (it.value().at("type") == "u") desc[it.key()] = sdbus::Variant(v.get<std::uint32_t>());
    }
    check_labels(desc, h);
}

}  // namespace

TEST_CASE("hostile text: comm, cgroup and unit names of nobody's reach root and nobody escaped, every method answering") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    Delegated cg("text");
    std::vector<std::unique_ptr<Hostile>> procs;
    for (const auto& p : corpus()) procs.push_back(std::make_unique<Hostile>(p, &cg));
    for (const auto& h : procs) wait_indexed(c, *h);

    // Root: each process and its net namespace (its only member), described with every label.
    std::map<std::uint64_t, const Hostile*> by_net;
    for (const auto& h : procs) {
        const auto pid = static_cast<std::uint32_t>(h->pid());
        Description dp;
        REQUIRE_NOTHROW(dp = c.DescribeProcess(pid));
        check_labels(dp, *h);
        const auto net = expected_ns_id(h->pid(), "net");
        by_net[net] = h.get();
        Description dn;
        REQUIRE_NOTHROW(dn = c.DescribeNamespace(net));
        CHECK(u32(dn, "RepresentativePid") == pid);
        check_labels(dn, *h);
        CHECK_NOTHROW(c.GetProcess(pid));
        CHECK(c.ListProcesses(net) == std::vector<std::uint32_t>{pid});
    }
    // The whole host in one reply: every namespace there, each hostile one labelled as alone.
    std::vector<Description> all;
    REQUIRE_NOTHROW(all = c.DescribeNamespaces(""));
    std::size_t seen = 0;
    for (const auto& e : all) {
        for (const auto& [key, v] : e)
            if (v.peekValueType() == "s") CHECK_CLEAN(v.get<std::string>(), false);
        const auto it = by_net.find(e.at("Id").get<std::uint64_t>());
        if (it == by_net.end()) continue;
        check_labels(e, *it->second);
        ++seen;
    }
    CHECK(seen == procs.size());
    CHECK_NOTHROW(c.ListNamespaces(""));

    // nobody, the owner: its own processes, described the same (busctl parses every reply).
    const auto mine = busctl_call(bus.address(), "DescribeNamespaces", "s", {""}, kAsNobody).at(0);
    std::size_t own = 0;
    for (const auto& e : mine) {
        const auto it = by_net.find(e.at("Id").at("data").get<std::uint64_t>());
        if (it == by_net.end()) continue;
        check_labels(e, *it->second);
        ++own;
    }
    CHECK(own == procs.size());
    for (const auto& h : procs) {
        const auto pid = std::to_string(h->pid());
        json dp;
        REQUIRE_NOTHROW(dp = busctl_call(bus.address(), "DescribeProcess", "u", {pid}, kAsNobody).at(0));
        check_labels(dp, *h);
        CHECK(dp.at("Uid").at("data") == kNobody);
        const auto dn = busctl_call(bus.address(), "DescribeNamespace", "t",
                                    {std::to_string(expected_ns_id(h->pid(), "net"))}, kAsNobody).at(0);
        check_labels(dn, *h);
    }
}

TEST_CASE("hostile text: nsfs bind mounts of the host's net namespace at hostile paths in nobody's mount namespace") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    const std::vector<std::string> names = {"m\xff" "bad", "m\nnl", "m\x1b[2J\x1b]0;t\x07", "m\\x0a", "m\xc2\x9b" "c1"};
    std::vector<std::unique_ptr<Hostile>> procs;
    for (const auto& n : names) {
        Plant p;
        p.comm = "mounter";
        p.unshare = "user,mnt";
        p.bind = {n};
        procs.push_back(std::make_unique<Hostile>(p, nullptr));
    }

    const auto host_net = expected_ns_id(getpid(), "net");
    auto holders_seen = [&](const Description& dn) {
        std::set<std::string> paths;
        for (const auto& h : dn.at("Holders").get<std::vector<sdbus::Struct<std::string, std::string>>>())
            if (std::get<0>(h) == "mount" && !std::get<1>(h).empty()) paths.insert(bytes_of(std::get<1>(h)));
        return paths;
    };
    std::set<std::string> want;
    for (const auto& n : names) want.insert("/tmp/" + n);
    // pidnsd reads a new mount namespace's bind mounts at its next rescan.
    d.signal(SIGHUP);
    std::set<std::string> got;
    for (int i = 0; i < 1000 && !std::includes(got.begin(), got.end(), want.begin(), want.end()); ++i) {
        std::this_thread::sleep_for(10ms);
        Description dn;
        REQUIRE_NOTHROW(dn = c.DescribeNamespace(host_net));  // root's view of the host's namespace
        got = holders_seen(dn);
    }
    CHECK(std::includes(got.begin(), got.end(), want.begin(), want.end()));
    CHECK_NOTHROW(c.DescribeNamespaces("net"));

    // nobody sees the same paths: the mount namespaces are its own processes'.
    const auto dn = busctl_call(bus.address(), "DescribeNamespace", "t", {std::to_string(host_net)}, kAsNobody).at(0);
    std::set<std::string> nobody_got;
    for (const auto& h : dn.at("Holders").at("data"))
        if (h.at(0) == "mount" && !h.at(1).get<std::string>().empty()) nobody_got.insert(bytes_of(h.at(1).get<std::string>()));
    CHECK(std::includes(nobody_got.begin(), nobody_got.end(), want.begin(), want.end()));
    // pidnsctl's list shows them in the host's row, escaped.
    const auto list = ctl_json(bus, {"list", "-t", "net"});
    bool row = false;
    for (const auto& e : list)
        if (e.at("id") == host_net) {
            row = true;
            std::set<std::string> paths;
            for (const auto& h : e.at("holders"))
                if (h.at("kind") == "mount") paths.insert(pidns::unescape_text(h.at("path").get<std::string>()).bytes);
            CHECK(std::includes(paths.begin(), paths.end(), want.begin(), want.end()));
        }
    CHECK(row);

    // One more that bind-mounts it 80 times: Holders lists 64 mount points, HoldersOmitted the rest.
    Plant many;
    many.comm = "mounter";
    many.unshare = "user,mnt";
    for (int i = 0; i < 80; ++i) many.bind.push_back("many" + std::to_string(i));
    Hostile lots(many, nullptr);
    d.signal(SIGHUP);
    Description crowded;
    std::uint32_t omitted = 0;
    const std::uint32_t at_least = 80 + static_cast<std::uint32_t>(names.size()) - 64;
    for (int i = 0; i < 1000 && omitted < at_least; ++i) {
        std::this_thread::sleep_for(10ms);
        crowded = c.DescribeNamespace(host_net);
        omitted = u32(crowded, "HoldersOmitted") == 0xffffffffu ? 0 : u32(crowded, "HoldersOmitted");
    }
    std::size_t listed = 0;
    for (const auto& h : crowded.at("Holders").get<std::vector<sdbus::Struct<std::string, std::string>>>())
        listed += std::get<0>(h) == "mount" && !std::get<1>(h).empty();
    CHECK(listed == 64);
    CHECK(omitted >= at_least);
    CHECK(ctl_json(bus, {"list", "-t", "net"}).size() > 0);  // holders_omitted in JSON, parsed
}

TEST_CASE("hostile text: pidnsctl list, tree, ps, status and monitor print no control byte and no invalid UTF-8, one row per process, valid JSON") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    Delegated cg("ctl");
    std::vector<std::unique_ptr<Hostile>> procs;
    for (const auto& p : corpus()) procs.push_back(std::make_unique<Hostile>(p, &cg));
    for (const auto& h : procs) wait_indexed(c, *h);

    for (const Argv& prefix : {Argv{}, kAsNobody}) {
        INFO((prefix.empty() ? "root" : "nobody"));
        ctl_text(bus, {"list"}, prefix);
        const auto cols = ctl_text(bus, {"list", "-o", "ID,TYPE,USER,CONTAINER,COMMAND,UNIT,SLICE,CGROUP,MACHINE,NETNS"}, prefix);
        ctl_text(bus, {"list", "--json=pretty"}, prefix);
        ctl_text(bus, {"tree", "--all-types"}, prefix);
        ctl_json(bus, {"tree", "--all-types"}, prefix);
        // Each hostile net namespace is one line whose CGROUP is the process's, escaped.
        for (const auto& h : procs) {
            const auto net = std::to_string(expected_ns_id(h->pid(), "net"));
            std::size_t rows = 0;
            std::istringstream in(cols);
            for (std::string line; std::getline(in, line);) {
                std::istringstream words(line);
                std::string id;
                words >> id;
                if (id != net) continue;
                ++rows;
                CHECK(line.find(pidns::escape_text(kernel_cgroup(h->pid()))) != std::string::npos);
            }
            CHECK(rows == 1);
        }
        const auto listed = ctl_json(bus, {"list"}, prefix);
        for (const auto& e : listed)
            if (e.contains("command")) CHECK(!pidns::unescape_text(e.at("command").get<std::string>()).bytes.empty());

        // ps of the host's pid namespace: a row per process, its first word its pid; the forged
        // row is not a row.
        const auto ps = ctl_text(bus, {"ps"}, prefix);
        std::istringstream in(ps);
        std::string line;
        std::getline(in, line);  // header
        CHECK(line.find("COMMAND") != std::string::npos);
        std::map<std::string, int> first_words;
        for (; std::getline(in, line) && !line.empty();) {
            std::istringstream w(line);
            std::string first;
            w >> first;
            CHECK(first.find_first_not_of("0123456789") == std::string::npos);
            ++first_words[first];
        }
        for (const auto& [word, n] : first_words) CHECK(n == 1);
        for (const auto& h : procs) CHECK(first_words.count(std::to_string(h->pid())) == 1);
        // The JSON: each hostile process's command line is its argv, byte for byte.
        const auto psj = ctl_json(bus, {"ps"}, prefix);
        std::size_t matched = 0;
        for (const auto& e : psj)
            for (const auto& h : procs)
                if (e.at("pid") == h->pid() && !h->plant().argv.empty()) {
                    ++matched;
                    CHECK(pidns::unescape_text(e.at("command").get<std::string>()).bytes == joined(h->plant().argv));
                    CHECK(pidns::unescape_text(e.at("cgroup").get<std::string>()).bytes == kernel_cgroup(h->pid()));
                }
        CHECK(matched == static_cast<std::size_t>(std::count_if(
                             procs.begin(), procs.end(), [](const auto& h) { return !h->plant().argv.empty(); })));
        for (const auto& h : procs) {
            const auto pid = std::to_string(h->pid());
            ctl_text(bus, {"status", pid}, prefix);
            const auto st = ctl_json(bus, {"status", pid}, prefix);
            CHECK(pidns::unescape_text(st.at("command").get<std::string>()).bytes ==
                  (h->plant().argv.empty() ? std::string(PIDNS_HOSTILE_BIN) : joined(h->plant().argv)));
            CHECK(pidns::unescape_text(st.at("cgroup").get<std::string>()).bytes == kernel_cgroup(h->pid()));
        }
    }

    // monitor, in text and JSON, while hostile namespaces come and go.
    for (const Argv& mode : {Argv{"monitor"}, Argv{"--json=short", "monitor"}}) {
        LineReader monitor(pidnsctl_argv(bus.address(), mode));
        std::this_thread::sleep_for(patience(500ms));  // subscribed
        {
            Plant p = corpus().front();
            p.cgroup.clear();
            Hostile h(p, nullptr);
            wait_indexed(c, h);
            std::this_thread::sleep_for(patience(300ms));
        }
        std::this_thread::sleep_for(patience(300ms));
        const int status = monitor.stop(SIGINT);
        const std::string out = monitor.output();
        INFO("monitor printed: " << pidns::escape_text(out, 2000));
        CHECK(status == 0);  // it ended at SIGINT, as pidnsctl monitor does
        CHECK_CLEAN(out, true);
        CHECK(out.find("added") != std::string::npos);
        if (mode.size() == 2) {
            std::istringstream in(out);
            for (std::string line; std::getline(in, line);) CHECK_NOTHROW(json::parse(line));
        }
    }
}

TEST_CASE("hostile text: a 4 KB cgroup path of nobody's keeps every label, the path cut with the marker") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    Delegated cg("long");
    std::string rel = "user-deleg.slice";
    const std::string tail = "/docker-" + kHex + ".scope";
    const std::string component = std::string(100, 'a') + std::string(100, '\xff');  // 200 bytes, 500 escaped
    while (cg.path(rel).size() + 1 + component.size() + tail.size() < 3900) rel += "/" + component;
    rel += tail;
    REQUIRE(cg.path(rel).size() > 3000);
    Plant p;
    p.comm = "long";
    p.cgroup = rel;
    Hostile h(p, &cg);
    wait_indexed(c, h);
    const auto path = kernel_cgroup(h.pid());
    REQUIRE(path == cg.path(rel));
    for (const Description& dd : {c.DescribeProcess(static_cast<std::uint32_t>(h.pid())),
                                  c.DescribeNamespace(expected_ns_id(h.pid(), "net"))}) {
        const auto cgroup = str(dd, "CGroup");
        CHECK_CLEAN(cgroup, false);
        CHECK(cgroup.size() <= pidns::kMaxTextBytes);
        CHECK(cgroup.ends_with(pidns::kCutMarker));
        const auto u = pidns::unescape_text(cgroup);
        CHECK(u.cut);
        CHECK(path.starts_with(u.bytes));
        CHECK(u.bytes.size() > 1000);
        CHECK(str(dd, "ContainerEngine") == "docker");
        CHECK(str(dd, "ContainerId") == kHex);
        CHECK(u32(dd, "ContainerOwnerUid") == kNobody);
        CHECK(str(dd, "Slice") == "user-deleg.slice");
        CHECK(str(dd, "Command") == "long");
    }
    const auto ps = ctl_text(bus, {"ps", std::to_string(expected_ns_id(h.pid(), "net"))});
    CHECK(ps.find("docker:" + kHex.substr(0, 12)) != std::string::npos);
}

TEST_CASE("hostile text: container: resolves to root's claim over nobody's, names nobody's, refuses two (exit 3)") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    Delegated cg("claim");
    const std::string scope = "docker-" + kHex + ".scope";
    // nobody's pid namespace in its delegated slice, named like a docker container.
    Plant fake;
    fake.comm = "fake-init";
    fake.unshare = "user,pid";
    fake.fork = true;
    fake.cgroup = "user-deleg.slice/" + scope;
    auto nobodys = std::make_unique<Hostile>(fake, &cg);
    // root's, of the same id, in root's directory.
    fs::create_directories(cg.dir(scope));
    Plant real;
    real.comm = "real-init";
    real.unshare = "pid";
    real.fork = true;
    auto roots = std::make_unique<Hostile>(real, &cg, false);
    cg.move(roots->pid(), scope);
    wait_indexed(c, nobodys->pid(), "pid");
    wait_indexed(c, roots->pid(), "pid");
    const std::string ref = "container:" + kHex.substr(0, 12);
    auto translate = [&](const Argv& prefix = {}) { return pidnsctl(bus.address(), {"translate", "1", "--from", ref}, prefix); };

    auto r = translate();
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out == std::to_string(roots->pid()) + "\n");  // root's claim wins
    // As the DescribeNamespace keys say.
    const auto real_ns = c.DescribeNamespace(expected_ns_id(roots->pid(), "pid"));
    CHECK(u32(real_ns, "ContainerOwnerUid") == 0xffffffffu);
    CHECK(u32(c.DescribeNamespace(expected_ns_id(nobodys->pid(), "pid")), "ContainerOwnerUid") == kNobody);
    // And as pidnsctl status shows it.
    CHECK(pidnsctl(bus.address(), {"status", std::to_string(nobodys->pid())}).out.find("docker " + kHex + " [named by nobody]") !=
          std::string::npos);
    CHECK(pidnsctl(bus.address(), {"status", std::to_string(roots->pid())}).out.find("[named by") == std::string::npos);

    // Without root's, nobody's is the one, and pidnsctl says whose it is.
    roots.reset();
    r = translate();
    CHECK(r.status == 0);
    CHECK(r.out == std::to_string(nobodys->pid()) + "\n");
    CHECK(r.err.find("uid 65534") != std::string::npos);
    // nobody resolves its own without a note.
    r = translate(kAsNobody);
    CHECK(r.status == 0);
    CHECK(r.err.empty());

    // Two pid namespaces of nobody's claim the id, neither inside the other: ambiguous.
    fake.cgroup = "user-deleg.slice/other.slice/" + scope;
    fake.comm = "fake-init2";
    Hostile second(fake, &cg);
    wait_indexed(c, second.pid(), "pid");
    r = translate();
    CHECK(r.status == 3);
    CHECK(r.out.empty());
    CHECK(r.err.find("ambiguous") != std::string::npos);
    for (const auto* h : {nobodys.get(), &second})
        CHECK(r.err.find(std::to_string(expected_ns_id(h->pid(), "pid"))) != std::string::npos);
    CHECK_CLEAN(r.err, true);
}

TEST_CASE("stalled argv: root's pidnsctl ps and status of a namespace whose process holds its mmap lock answer within 1 s") {
    PIDNS_REQUIRE_PREREQUISITE(fuse_missing());  // the stall is made with a FUSE file that never answers a read
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    pidns::testing::FuseStall fuse;
    // nobody's process in a net namespace of its own: it opens the FUSE file, starts a read the
    // server never answers, and on "go" mmaps the file again, which takes its mmap lock for writing
    // and waits behind that read.
    int go[2];
    REQUIRE(pipe2(go, O_CLOEXEC) == 0);
    SpawnOptions attacker;
    attacker.in_fd = go[0];
    attacker.env = {"PIDNS_HOSTILE_STALL=" + hex(fuse.file()), "PIDNS_HOSTILE_COMM=" + hex("argv-stalled"),
                    "PIDNS_HOSTILE_UNSHARE=user,net"};
    const pid_t target = spawn(concat(kAsNobody, {PIDNS_HOSTILE_BIN}), attacker);
    close(go[0]);
    struct Teardown {
        pidns::testing::FuseStall& fuse;
        pid_t target;
        int go;
        ~Teardown() {
            fuse.abort();  // first: nothing waits on the server after this
            kill(target, SIGKILL);
            waitpid(target, nullptr, 0);
            close(go);
        }
    } teardown{fuse, target, go[1]};
    wait_comm(target, "argv-stalled");
    wait_indexed(c, target);
    REQUIRE(fuse.wait_read(10s));
    REQUIRE(write(go[1], "g", 1) == 1);
    // The stall is real: a plain read of its cmdline (as ps does) does not come back.
    bool stalled = false;
    for (int i = 0; i < 50 && !stalled; ++i)
        stalled = run({"cat", "/proc/" + std::to_string(target) + "/cmdline"}, 500ms).status == 128 + SIGKILL;
    REQUIRE(stalled);
    // A second process in that namespace, with a command line to read.
    Proc sleeper({"nsenter", "-t", std::to_string(target), "-n", "sleep", "1000"});
    wait_comm(sleeper.pid(), "sleep");
    const auto net = std::to_string(expected_ns_id(target, "net"));
    for (int i = 0; i < 500 && c.ListProcesses(std::stoull(net)).size() < 2; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(c.ListProcesses(std::stoull(net)).size() == 2);
    // pidnsd never waits on it.
    CHECK(str(c.DescribeProcess(static_cast<std::uint32_t>(target)), "Command") == "argv-stalled");

    // The same commands on a namespace of two calm processes, interleaved, as the baseline: on a
    // loaded host pidnsctl itself may take a while, so what is measured is what the stalled process
    // adds (one abandoned read: 200 ms), against the 1 s it must stay under; and never a hang.
    Proc calm({"unshare", "-n", "sleep", "1000"});
    wait_comm(calm.pid(), "sleep");
    Proc calm_peer({"nsenter", "-t", std::to_string(calm.pid()), "-n", "sleep", "1000"});
    wait_comm(calm_peer.pid(), "sleep");
    wait_indexed(c, calm.pid());
    const auto calm_net = std::to_string(expected_ns_id(calm.pid(), "net"));
    for (int i = 0; i < 500 && c.ListProcesses(std::stoull(calm_net)).size() < 2; ++i) std::this_thread::sleep_for(10ms);
    auto timed = [&](const Argv& args) {
        const auto t0 = Clock::now();
        const auto r = pidnsctl(bus.address(), args);
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
        INFO("pidnsctl " << args.back() << " took " << took.count() << " ms; stderr: " << r.err);
        CHECK(r.status == 0);
        CHECK(took < bound(10s));  // not a hang, whatever the load
        return std::make_pair(took, r.out);
    };
    auto median = [](std::vector<std::chrono::milliseconds> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    const std::vector<std::pair<Argv, Argv>> commands = {
        {{"ps", net}, {"ps", calm_net}},
        {{"--json=short", "ps", net}, {"--json=short", "ps", calm_net}},
        {{"status", std::to_string(target)}, {"status", std::to_string(calm.pid())}}};
    for (const auto& [stalled_args, calm_args] : commands) {
        std::vector<std::chrono::milliseconds> stalled_ms, calm_ms;
        for (int i = 0; i < 3; ++i) {
            const auto [took, out] = timed(stalled_args);
            stalled_ms.push_back(took);
            CHECK(out.find("[argv-stalled]") != std::string::npos);  // its comm, from pidnsd
            if (stalled_args.back() == net) CHECK(out.find("sleep 1000") != std::string::npos);  // the other's whole line
            calm_ms.push_back(timed(calm_args).first);
        }
        INFO("pidnsctl " << stalled_args.front() << ": median " << median(stalled_ms).count() << " ms with the stalled process, "
                         << median(calm_ms).count() << " ms without");
        CHECK(median(stalled_ms) - median(calm_ms) < bound(1000ms));
    }
}
