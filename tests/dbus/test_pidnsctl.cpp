// pidnsctl end to end: the real binary against a private bus with the real pidnsd, on real
// namespace trees. Oracles: lsns, /proc/PID/status (NSpid), /proc/PID/ns links, the kernel's own
// permission checks (opening /proc/PID/ns/pid as the same user).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "cgroups.h"
#include "harness.h"
#include "support/nstree.h"
#include "tmux.h"
#include "support/lsns_oracle.h"
#include "support/task_state.h"

using namespace pidns::harness;
using namespace pidns::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

// pidnsctl --address=BUS --no-pager ARGS..., optionally under a prefix (setpriv).
CmdResult ctl(const PrivateBus& bus, const Argv& args, const Argv& prefix = {}) {
    return pidnsctl(bus.address(), args, prefix);
}

// pidnsctl's --json=short output, parsed (exit status 0 required).
json ctl_json(const PrivateBus& bus, const Argv& args, const Argv& prefix = {}) {
    auto a = args;
    a.push_back("--json=short");
    auto r = pidnsctl(bus.address(), a, prefix);
    INFO("pidnsctl stderr: " << r.err);
    REQUIRE(r.status == 0);
    return json::parse(r.out);
}

std::vector<std::uint32_t> to_u32(const std::vector<pid_t>& v) { return {v.begin(), v.end()}; }
std::string str(std::uint64_t v) { return std::to_string(v); }
// Concatenation by appending (GCC 12 -O3 warns about "literal" + std::string, a false -Wrestrict).
template <class... S>
std::string cat(const S&... s) {
    std::string out;
    ((out += s), ...);
    return out;
}
std::string pid_path(pid_t p) { return "/proc/" + std::to_string(p) + "/ns/pid"; }

pid_t unused_pid() {
    for (pid_t p = 32000; p > 1000; --p)
        if (kill(p, 0) != 0 && errno == ESRCH) return p;
    throw std::runtime_error("no unused pid");
}

// The fields of NamespaceInfo, as pidnsctl's JSON must name them.
const std::set<std::string> kNamespaceFields = {"id",    "inode",    "type",   "parent",   "owner",
                                                 "level", "init_pid", "nprocs", "owner_uid"};

// The keys a namespace description adds in JSON (dbus/client/client_json.h).
const std::set<std::string> kDescriptionFields = {"representative_pid", "command", "uid", "user", "cgroup", "unit",
                                                  "slice", "container_engine", "container_id", "container_name",
                                                  "pod_uid", "netns_names", "holders", "holders_omitted",
                                                  "machine", "unit_owner_uid", "container_owner_uid", "pod_id",
                                                  "pod_name", "pod_namespace", "container_sharers"};

std::set<std::string> keys(const json& o) {
    std::set<std::string> k;
    for (auto it = o.begin(); it != o.end(); ++it) k.insert(it.key());
    return k;
}

}  // namespace

TEST_CASE("pidnsctl list --json=short equals lsns -J on every shared field") {
    PrivateBus bus;
    Daemon d(bus);
    ProcTree tree;
    auto t = make_seed000_tree(tree);
    const pid_t netns = tree.spawn(0, CLONE_NEWNET | CLONE_NEWUTS);
    const pid_t netns_member = tree.spawn(netns, 0);
    // Our own namespaces: their processes are known, so nprocs is compared even on a busy host.
    const std::map<std::uint64_t, std::uint32_t> own_nprocs = {
        {oracle_ns_inode(t.t2, "pid"), 2}, {oracle_ns_inode(t.t4, "pid"), 2},
        {oracle_ns_inode(netns, "net"), 2}, {oracle_ns_inode(netns, "uts"), 2}};
    (void)netns_member;
    Client c(bus.address());
    (void)wait_indexed(t.t5, "pid", 2);
    (void)wait_indexed(netns_member, "net", 2);

    // lsns, then pidnsctl. Other processes of the host come and go in between (another test suite
    // may be churning namespaces), so nprocs is compared on our own namespaces, whose processes are
    // known; inode, type and lowest pid on every namespace whose lowest process still lives.
    const auto lsns = lsns_listing().at("namespaces");
    const auto mine = ctl_json(bus, {"list"});
    REQUIRE(mine.is_array());
    std::map<std::uint64_t, json> by_inode;
    for (const auto& e : mine) {
        // GetNamespace's fields always, and of DescribeNamespace's only those the client library names.
        const auto k = keys(e);
        CHECK(std::includes(k.begin(), k.end(), kNamespaceFields.begin(), kNamespaceFields.end()));
        for (const auto& key : k) {
            INFO("key " << key);
            CHECK((kNamespaceFields.count(key) == 1 || kDescriptionFields.count(key) == 1));
        }
        by_inode[e.at("inode").get<std::uint64_t>()] = e;
    }
    int compared = 0, nprocs_compared = 0;
    for (const auto& l : lsns) {
        const auto inode = l.at("ns").get<std::uint64_t>();
        const auto pid = l.at("pid").get<std::uint32_t>();
        if (kill(static_cast<pid_t>(pid), 0) != 0) continue;  // exited since
        // Exited but not reaped yet: lsns lists the namespaces its pid and credentials keep
        // alive, pidnsd does not index it (pidnsd(8), THE INDEX).
        if (pidns::testing::exited_unreaped(static_cast<pid_t>(pid))) continue;
        INFO("lsns " << l.dump());
        auto it = by_inode.find(inode);
        if (it == by_inode.end()) {
            // Made by someone else just before lsns ran, and not yet indexed when pidnsctl ran
            // (pidnsd reads a new process a moment after its fork): it must be listed now.
            for (const auto& e : ctl_json(bus, {"list"})) by_inode.emplace(e.at("inode").get<std::uint64_t>(), e);
            it = by_inode.find(inode);
        }
        REQUIRE(it != by_inode.end());
        const auto& e = it->second;
        INFO("pidnsctl " << e.dump());
        CHECK(e.at("type") == l.at("type"));
        if (e.at("type") != "pid") CHECK(e.at("init_pid").get<std::uint32_t>() == pid);  // lowest pid
        if (own_nprocs.count(inode)) {
            CHECK(e.at("nprocs").get<std::uint32_t>() == l.at("nprocs").get<std::uint32_t>());
            ++nprocs_compared;
        }
        ++compared;
    }
    CHECK(compared >= 12);
    CHECK(nprocs_compared == 4);
    for (const auto& [inode, n] : own_nprocs) {
        INFO("own namespace " << inode);
        REQUIRE(by_inode.count(inode));
        CHECK(by_inode[inode].at("nprocs").get<std::uint32_t>() == n);
    }
    // The pid namespaces of seed 000 as the library's typed answer gives them.
    const auto p4 = c.get_namespace(oracle_ns_inode(t.t4, "pid"));
    const auto& j4 = by_inode.at(p4.inode);
    CHECK(j4.at("id").get<std::uint64_t>() == p4.id);
    CHECK(j4.at("level").get<std::uint32_t>() == 2u);
    CHECK(j4.at("init_pid").get<std::uint32_t>() == static_cast<std::uint32_t>(t.t4));
    CHECK(j4.at("parent").get<std::uint64_t>() == expected_ns_id(t.t2, "pid"));

    // -t filters, repeated -t adds types, -o picks columns, --no-legend drops header and footer.
    for (const auto& e : ctl_json(bus, {"list", "-t", "net", "-t", "uts"}))
        CHECK((e.at("type") == "net" || e.at("type") == "uts"));
    auto r = pidnsctl(bus.address(), {"list", "-t", "net", "-o", "INODE,TYPE,NPROCS", "--no-legend"});
    REQUIRE(r.status == 0);
    std::istringstream lines(r.out);
    bool found = false;
    for (std::string line; std::getline(lines, line);) {
        std::istringstream w(line);
        std::string inode, type, nprocs, extra;
        w >> inode >> type >> nprocs;
        CHECK(!(w >> extra));
        CHECK(type == "net");
        if (inode == str(oracle_ns_inode(netns, "net"))) found = nprocs == "2";
    }
    CHECK(found);
    r = pidnsctl(bus.address(), {"list", "-t", "pid"});
    REQUIRE(r.status == 0);
    const auto header = r.out.substr(0, r.out.find('\n'));
    std::istringstream hw(header);
    std::vector<std::string> words{std::istream_iterator<std::string>(hw), std::istream_iterator<std::string>()};
    // The default columns; into a pipe nothing is left out or shortened (NETNS included).
    CHECK(words == std::vector<std::string>{"ID", "INODE", "TYPE", "LEVEL", "NPROCS", "INIT", "USER", "CONTAINER",
                                            "NETNS", "COMMAND"});
    // Aligned: each row's TYPE starts where the header's does.
    const auto type_at = header.find(" TYPE") + 1;
    std::istringstream rows(r.out.substr(header.size() + 1));
    int aligned = 0;
    for (std::string row; std::getline(rows, row) && !row.empty(); ++aligned) CHECK(row.substr(type_at, 4) == "pid ");
    CHECK(aligned >= 3);
    CHECK(r.out.find(" namespaces listed.") != std::string::npos);
    CHECK(r.out.find('\x1b') == std::string::npos);  // no colour into a file
}

TEST_CASE("pidnsctl translate and status equal the kernel's NSpid chains in nested pid namespaces") {
    PrivateBus bus;
    Daemon d(bus);
    ProcTree tree;
    auto t = make_seed000_tree(tree);
    const pid_t thread = tree.spawn_thread(t.t5);
    (void)wait_indexed(t.t5, "pid", 2);
    Client c(bus.address());
    // The pid namespace at each level of t5's NSpid: ours, ns1 (t2's), ns2 (t4's).
    const std::vector<pid_t> inits = {0, t.t2, t.t4};
    auto ns_ref_forms = [&](std::size_t level) -> std::vector<std::string> {
        if (level == 0) return {"", cat("@", std::to_string(getpid())), pid_path(getpid())};
        const pid_t init = inits[level];
        return {pid_path(init), cat("pid:[", str(oracle_ns_inode(init, "pid")), "]"), str(expected_ns_id(init, "pid")),
                cat("@", std::to_string(init))};
    };
    for (const pid_t task : {t.t1, t.t2, t.t3, t.t4, t.t5, thread}) {
        INFO("task " << task);
        const auto nspid = oracle_nspid(task);
        const auto nstgid = oracle_nstgid(task);
        REQUIRE(!nspid.empty());
        const auto st = ctl_json(bus, {"status", std::to_string(task)});
        CHECK(st.at("pid").get<std::uint32_t>() == static_cast<std::uint32_t>(task));
        CHECK(st.at("nspid").get<std::vector<std::uint32_t>>() == to_u32(nspid));
        CHECK(st.at("nstgid").get<std::vector<std::uint32_t>>() == to_u32(nstgid));
        // The namespace named at each level is the kernel's: the task's own last, then its ancestors.
        const auto levels = st.at("pid_namespaces");
        REQUIRE(levels.size() == nspid.size());
        for (std::size_t i = 0; i < nspid.size(); ++i) {
            const pid_t at = i == 0 ? getpid() : inits[i];
            CHECK(levels[i].get<std::uint64_t>() == expected_ns_id(at, "pid"));
        }
        for (const char* type : {"pid", "user", "mnt", "net", "uts", "ipc", "cgroup", "time"})
            CHECK(st.at("namespaces").at(type).get<std::uint64_t>() == expected_ns_id(task, type));
        // translate from every level to every level, with every form of NS argument.
        for (std::size_t i = 0; i < nspid.size(); ++i)
            for (std::size_t j = 0; j < nspid.size(); ++j)
                for (const auto& from : ns_ref_forms(i)) {
                    const auto to_forms = ns_ref_forms(j);
                    const auto& to = to_forms[(i + j) % to_forms.size()];
                    Argv args = {"translate", std::to_string(nspid[i])};
                    if (!from.empty()) args.insert(args.end(), {"--from", from});
                    if (!to.empty()) args.insert(args.end(), {"--to", to});
                    INFO("pidnsctl " << args[1] << " --from '" << from << "' --to '" << to << "'");
                    auto r = pidnsctl(bus.address(), args);
                    CHECK(r.status == 0);
                    CHECK(r.out == std::to_string(nspid[j]) + "\n");
                }
    }
    // A process with no pid in a deeper namespace: exit 4, nothing on stdout.
    auto r = pidnsctl(bus.address(), {"translate", std::to_string(t.t1), "--to", pid_path(t.t2)});
    CHECK(r.status == 4);
    CHECK(r.out.empty());
    // --batch: the pids of every task in ns1, translated to ours; 0 for the pid that names nothing.
    const pid_t missing_in_ns1 = 30000;
    std::string input;
    std::vector<std::uint32_t> want;
    for (const pid_t task : {t.t2, t.t3, t.t4, t.t5}) {
        input += std::to_string(oracle_nspid(task).at(1)) + "\n";
        want.push_back(static_cast<std::uint32_t>(task));
    }
    input += std::to_string(missing_in_ns1) + "\n";
    want.push_back(0);
    auto b = run({"sh", "-c", "printf '" + input + "' | " + PIDNSCTL_BIN + " --address=" + bus.address() +
                                  " translate --batch --json=short --from " + pid_path(t.t2)});
    INFO(b.err);
    REQUIRE(b.status == 0);
    const auto bj = json::parse(b.out);
    REQUIRE(bj.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(bj[i].at("result").get<std::uint32_t>() == want[i]);
}

TEST_CASE("pidnsctl tree shows 32 nested pid namespaces, and with --all-types what each user namespace owns") {
    PrivateBus bus;
    Daemon d(bus);
    ProcTree tree;
    const int depth = max_extra_pid_ns_levels();
    REQUIRE(depth >= 31);
    const auto chain = make_chain(tree, depth);
    (void)wait_indexed(chain.back(), "pid");
    auto roots = ctl_json(bus, {"tree", pid_path(chain.front())});
    REQUIRE(roots.size() == 1);
    const json* node = &roots[0];
    for (int i = 0; i < depth; ++i) {
        INFO("level " << i + 1);
        const pid_t init = chain[static_cast<std::size_t>(i)];
        CHECK(node->at("inode").get<std::uint64_t>() == oracle_ns_inode(init, "pid"));
        CHECK(node->at("id").get<std::uint64_t>() == expected_ns_id(init, "pid"));
        CHECK(node->at("level").get<std::uint32_t>() == static_cast<std::uint32_t>(i + 1));
        CHECK(node->at("nprocs").get<std::uint32_t>() == 1u);
        CHECK(node->at("init_pid").get<std::uint32_t>() == static_cast<std::uint32_t>(init));
        CHECK(node->at("init_nspid").get<std::vector<std::uint32_t>>() == to_u32(oracle_nspid(init)));
        const auto& kids = node->at("children");
        REQUIRE(kids.size() == (i + 1 < depth ? 1u : 0u));
        if (i + 1 < depth) node = &kids[0];
    }
    // The text form: one line per namespace, each indented one step below its parent.
    auto r = pidnsctl(bus.address(), {"tree", "--no-legend", str(expected_ns_id(chain.front(), "pid"))});
    REQUIRE(r.status == 0);
    std::istringstream in(r.out);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    REQUIRE(lines.size() == static_cast<std::size_t>(depth));
    for (int i = 0; i < depth; ++i) {
        const auto& l = lines[static_cast<std::size_t>(i)];
        INFO(l);
        const std::string name = "pid:[" + str(oracle_ns_inode(chain[static_cast<std::size_t>(i)], "pid")) + "]";
        const std::string prefix = i == 0 ? "" : std::string(static_cast<std::size_t>(2 * (i - 1)), ' ') + "└─";
        CHECK(l.rfind(prefix + name + " ", 0) == 0);
        CHECK(l.find("level " + std::to_string(i + 1) + " ") != std::string::npos);
        CHECK(l.find("processes 1") != std::string::npos);
    }
    // Without NS: the whole hierarchy, ours at the top, the chain somewhere below it.
    r = pidnsctl(bus.address(), {"tree"});
    REQUIRE(r.status == 0);
    CHECK(r.out.rfind("pid:[" + str(oracle_ns_inode(getpid(), "pid")) + "]", 0) == 0);
    CHECK(r.out.find("pid:[" + str(oracle_ns_inode(chain.back(), "pid")) + "]") != std::string::npos);

    // --all-types: the user namespace hierarchy, each with the namespaces it owns.
    const pid_t u1 = tree.spawn(0, CLONE_NEWUSER | CLONE_NEWNET);
    const pid_t u2 = tree.spawn(u1, CLONE_NEWUSER | CLONE_NEWUTS);
    (void)wait_indexed(u2, "uts");
    const auto all = ctl_json(bus, {"tree", "--all-types"});
    REQUIRE(all.at("pid").size() == 1);
    CHECK(all.at("pid")[0].at("inode").get<std::uint64_t>() == oracle_ns_inode(getpid(), "pid"));
    auto child_by_inode = [](const json& node, std::uint64_t inode) -> const json* {
        for (const auto& k : node.at("children"))
            if (k.at("inode").get<std::uint64_t>() == inode) return &k;
        return nullptr;
    };
    auto owned_inodes = [](const json& node) {
        std::set<std::uint64_t> s;
        for (const auto& o : node.at("owned")) s.insert(o.at("inode").get<std::uint64_t>());
        return s;
    };
    REQUIRE(all.at("user").size() == 1);
    const json& host_user = all.at("user")[0];
    CHECK(host_user.at("inode").get<std::uint64_t>() == oracle_ns_inode(getpid(), "user"));
    CHECK(owned_inodes(host_user).count(oracle_ns_inode(getpid(), "net")) == 1);
    const json* j1 = child_by_inode(host_user, oracle_ns_inode(u1, "user"));
    REQUIRE(j1 != nullptr);
    const json* j2 = child_by_inode(*j1, oracle_ns_inode(u2, "user"));
    REQUIRE(j2 != nullptr);
    CHECK(owned_inodes(*j1) == std::set<std::uint64_t>{oracle_ns_inode(u1, "net")});
    CHECK(owned_inodes(*j2) == std::set<std::uint64_t>{oracle_ns_inode(u2, "uts")});
    CHECK(j2->at("level").get<std::uint32_t>() == 2u);
}

TEST_CASE("pidnsctl ps lists exactly a namespace's processes") {
    PrivateBus bus;
    Daemon d(bus);
    ProcTree tree;
    auto t = make_seed000_tree(tree);
    const pid_t net_a = tree.spawn(0, CLONE_NEWNET);
    const pid_t net_b = tree.spawn(net_a, 0);
    const pid_t net_c = tree.spawn(net_b, 0);
    (void)wait_indexed(net_c, "net", 3);
    (void)wait_indexed(t.t2, "pid", 2);
    (void)wait_indexed(t.t5, "pid", 2);
    auto pids_of = [](const json& j) {
        std::set<std::uint32_t> s;
        for (const auto& e : j) s.insert(e.at("pid").get<std::uint32_t>());
        return s;
    };
    auto u = [](pid_t p) { return static_cast<std::uint32_t>(p); };
    // A pid namespace: its members only (not those of the namespaces nested in it), with NSpid chains.
    const auto ns1 = ctl_json(bus, {"ps", pid_path(t.t2)});
    CHECK(pids_of(ns1) == std::set<std::uint32_t>{u(t.t2), u(t.t3)});
    for (const auto& e : ns1) {
        const auto pid = static_cast<pid_t>(e.at("pid").get<std::uint32_t>());
        CHECK(e.at("nspid").get<std::vector<std::uint32_t>>() == to_u32(oracle_nspid(pid)));
        CHECK(!e.at("command").get<std::string>().empty());
    }
    CHECK(pids_of(ctl_json(bus, {"ps", "@" + std::to_string(t.t5)})) == std::set<std::uint32_t>{u(t.t4), u(t.t5)});
    // A net namespace by TYPE:[INODE] and by path.
    const std::string net = "net:[" + str(oracle_ns_inode(net_a, "net")) + "]";
    CHECK(pids_of(ctl_json(bus, {"ps", net})) == std::set<std::uint32_t>{u(net_a), u(net_b), u(net_c)});
    CHECK(pids_of(ctl_json(bus, {"ps", "/proc/" + std::to_string(net_b) + "/ns/net"})) ==
          std::set<std::uint32_t>{u(net_a), u(net_b), u(net_c)});
    tree.exit_agent(net_c);
    CHECK(pids_of(ctl_json(bus, {"ps", net})) == std::set<std::uint32_t>{u(net_a), u(net_b)});
    // The table: a header, one line per process, the footer.
    auto r = pidnsctl(bus.address(), {"ps", pid_path(t.t4)});
    REQUIRE(r.status == 0);
    CHECK(r.out.find("PID NSPID") != std::string::npos);
    std::string chain;  // written as tree and dump write chains: 12333/2/1
    for (auto p : oracle_nspid(t.t5)) {
        if (!chain.empty()) chain += '/';
        chain += std::to_string(p);
    }
    CHECK(r.out.find(std::to_string(t.t5) + " " + chain + " ") != std::string::npos);
    CHECK(r.out.find("2 processes listed.") != std::string::npos);
}

TEST_CASE("pidnsctl monitor prints a line as unshare -n makes a net namespace and as it ends, each within the event bound") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    const auto subscribers0 = stat_of(c, "Subscribers");
    LineReader mon({PIDNSCTL_BIN, "--address=" + bus.address(), "monitor", "--json=short"});
    for (int i = 0; i < 500 && stat_of(c, "Subscribers") == subscribers0; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(stat_of(c, "Subscribers") == subscribers0 + 1);
    const auto own_net = oracle_ns_inode(getpid(), "net");
    const auto bound = pidns::harness::bound(100ms);
    for (int round = 0; round < 3; ++round) {
        INFO("round " << round);
        // `unshare -n sleep 60`, done by hand so that the child can tell when the kernel had made
        // the namespace: the clock starts when unshare() returns (then it execs, which pidnsd sees).
        int tp[2];
        REQUIRE(pipe2(tp, O_CLOEXEC) == 0);
        const pid_t child = fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (unshare(CLONE_NEWNET) != 0) _exit(126);
            const auto made = Clock::now();
            if (write(tp[1], &made, sizeof made) != sizeof made) _exit(125);
            execlp("sleep", "sleep", "60", static_cast<char*>(nullptr));
            _exit(127);
        }
        close(tp[1]);
        Clock::time_point t0{};
        const bool got = read(tp[0], &t0, sizeof t0) == sizeof t0;
        close(tp[0]);
        REQUIRE(got);
        REQUIRE(oracle_ns_inode(child, "net") != own_net);
        const auto id = expected_ns_id(child, "net");
        auto is = [&](const char* event) {
            return [=](const std::string& line) {
                const auto j = json::parse(line);
                return j.at("event") == event && j.at("id").get<std::uint64_t>() == id && j.at("type") == "net";
            };
        };
        auto added = mon.wait_line(is("added"));
        REQUIRE(added.has_value());
        const auto add_ms = std::chrono::duration_cast<std::chrono::milliseconds>(added->at - t0);
        INFO(added->text << " after " << add_ms.count() << " ms");
        CHECK(add_ms <= bound);
        const auto j = json::parse(added->text);
        CHECK(j.at("timestamp").get<std::string>().size() == 27);  // 2026-12-01T09:50:01.123456Z
        CHECK(j.at("inode").get<std::uint64_t>() == oracle_ns_inode(child, "net"));
        // The end: the namespace dies with its only process.
        const auto t1 = Clock::now();
        kill(child, SIGKILL);
        waitpid(child, nullptr, 0);
        auto removed = mon.wait_line(is("removed"));
        REQUIRE(removed.has_value());
        const auto rm_ms = std::chrono::duration_cast<std::chrono::milliseconds>(removed->at - t1);
        INFO(removed->text << " after " << rm_ms.count() << " ms");
        CHECK(rm_ms <= bound);
    }
    CHECK(mon.stop(SIGINT) == 0);

    // The text form, stopped by SIGTERM: "TIMESTAMP added net ID INODE CONTAINER UNIT COMMAND".
    LineReader text({PIDNSCTL_BIN, "--address=" + bus.address(), "monitor"});
    for (int i = 0; i < 500 && stat_of(c, "Subscribers") == subscribers0; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(stat_of(c, "Subscribers") == subscribers0 + 1);
    ProcTree tree;
    const pid_t agent = tree.spawn(0, CLONE_NEWNET);
    const auto id = expected_ns_id(agent, "net");
    auto fields = [](const std::string& l) {
        std::istringstream w(l);
        std::vector<std::string> f;
        for (std::string s; w >> s;) f.push_back(s);
        return f;
    };
    auto line = text.wait_line([&](const std::string& l) {
        const auto f = fields(l);
        return f.size() == 8 && f[2] == "net" && f[3] == str(id);
    });
    REQUIRE(line.has_value());
    const auto f = fields(line->text);
    CHECK(f[0].size() == 27);
    CHECK(f[1] == "added");
    CHECK(f[4] == str(oracle_ns_inode(agent, "net")));  // the kernel's inode
    CHECK(f[5] == "-");  // no container
    std::string comm = read_file("/proc/" + std::to_string(agent) + "/comm");
    if (!comm.empty()) comm.pop_back();
    CHECK(f[7] == comm);  // its command, as list shows it
    CHECK(text.stop(SIGTERM) == 0);
}

namespace {

// The exit statuses pidnsctl(1) gives each command (its EXIT STATUS table, tbl rows between .TS
// and .TE: COMMAND, then x or \- for 0 to 5).
std::map<std::string, std::set<int>> documented_exit_statuses() {
    std::ifstream f(std::string(PIDNS_SOURCE_DIR) + "/doc/pidnsctl.1");
    std::map<std::string, std::set<int>> out;
    bool in_table = false;
    int row = 0;
    for (std::string line; std::getline(f, line);) {
        if (line == ".TS") in_table = true, row = 0;
        else if (line == ".TE") in_table = false;
        else if (in_table && row++ >= 2) {  // the format line and the header first
            std::istringstream w(line);
            std::string command, mark;
            w >> command;
            for (int status = 0; w >> mark; ++status)
                if (mark == "x") out[command].insert(status);
        }
    }
    return out;
}

// The methods the interface XML declares: no message of pidnsctl's may name one.
std::vector<std::string> interface_methods() {
    const auto xml = read_file(std::string(PIDNS_SOURCE_DIR) + "/dbus/org.pidns.Manager1.xml");
    std::vector<std::string> out;
    static const std::regex method(R"re(<method name="(\w+)")re");
    for (std::sregex_iterator it(xml.begin(), xml.end(), method), end; it != end; ++it) out.push_back((*it)[1]);
    return out;
}

}  // namespace

TEST_CASE("pidnsctl exit codes: every command with every class of error, exactly as pidnsctl(1) gives them, each error in the CLI's words") {
    const fs::path root = systemd_hierarchy();
    REQUIRE(!root.empty());
    PrivateBus bare;  // a bus with no pidnsd on it (made first: the harness asks the bus made last)
    PrivateBus bus;
    Daemon d(bus);
    const std::string no_bus = "unix:path=/nonexistent/pidns-test-bus";
    // Two pid namespaces whose inits run in the same docker container's unit: container:ID names
    // both at the same level (ambiguous); a net namespace of root's; a pid that names nothing.
    const std::string top = "pidnsd-test-" + std::to_string(getpid()) + "-exit.slice";
    TestCgroup cg(root, top + "/docker-" + kTestContainerId + ".scope");
    Proc p1({"unshare", "-p", "-f", "sleep", "1000"}), p2({"unshare", "-p", "-f", "sleep", "1000"});
    const pid_t i1 = child_of(p1.pid()), i2 = child_of(p2.pid());
    REQUIRE(i1 > 0);
    REQUIRE(i2 > 0);
    struct KillInits {
        std::vector<pid_t> pids;
        ~KillInits() {
            for (auto p : pids) ::kill(p, SIGKILL);
            for (auto p : pids)
                for (int i = 0; i < 500 && ::kill(p, 0) == 0; ++i) std::this_thread::sleep_for(10ms);
        }
    } kill_inits{{i1, i2}};
    wait_comm(i1, "sleep");
    wait_comm(i2, "sleep");
    cg.move(i1);
    cg.move(i2);
    ProcTree tree;
    const pid_t net_agent = tree.spawn(0, CLONE_NEWNET);
    (void)expected_ns_id(net_agent, "net");
    (void)expected_ns_id(i2, "pid");
    const std::string I = std::to_string(i1);
    const std::string net = str(oracle_ns_inode(net_agent, "net"));
    const std::string gone = std::to_string(unused_pid());
    const std::string no_ns = str((std::uint64_t{1} << 62) + 12345);  // neither an id nor an inode
    const std::string id12 = kTestContainerId.substr(0, 12), id8 = kTestContainerId.substr(0, 8);
    TempDir dir;
    const std::string differs = dir.path() + "/differs.json";
    std::ofstream(differs) << R"({"namespace":0,"tasks":[{"rpid":1,"depth":0,"vpids":[999999],"vtgid":999999,"vppid":0,"vpgid":0,"vsid":0,"pidns":1,"pid_for_children":1,"flags":0}]})";

    enum class Bus { ours, none, bare };
    struct Case {
        Argv args;
        int status;
        Argv prefix = {};
        Bus on = Bus::ours;
        std::string says = "";  // a phrase the error must contain
    };
    const std::vector<Case> cases = {
        {{"list"}, 0},
        {{"list"}, 1, {}, Bus::none, "cannot connect to the bus at " + no_bus},
        {{"list"}, 1, {}, Bus::bare, "pidnsd is not running on the bus at"},
        {{"list", "-t", "bogus"}, 2, {}, Bus::ours, "unknown namespace type \"bogus\""},
        {{"list", "-o", "ID,BOGUS"}, 2, {}, Bus::ours, "unknown column \"BOGUS\""},
        {{"list", "-o", "ID,+NETNS"}, 2, {}, Bus::ours, "mixes columns with +COL"},
        {{"--json=long", "list"}, 2},
        {{"--address=", "list"}, 2, {}, Bus::ours, "--address needs a D-Bus address"},
        {{"list", "extra"}, 2},

        {{"translate", "1", "--from", "@" + I}, 0},
        {{"translate", "1"}, 1, {}, Bus::none},
        {{"translate", "1"}, 1, {}, Bus::bare},
        {{"translate"}, 2, {}, Bus::ours, "translate needs a PID"},
        {{"translate", "abc"}, 2, {}, Bus::ours, "invalid pid \"abc\""},
        {{"translate", "0"}, 2},
        {{"translate", "1", "--from", "nonsense"}, 2, {}, Bus::ours, "invalid namespace \"--from nonsense\""},
        {{"translate", "1", "--from", net}, 2, {}, Bus::ours, "--from " + net + " is a net namespace"},
        {{"translate", "1", "--from", "net:[" + net + "]"}, 2, {}, Bus::ours, "is a net namespace"},
        {{"translate", "1", "--from", "/proc/" + std::to_string(net_agent) + "/ns/net"}, 2, {}, Bus::ours, "is a net namespace"},
        {{"translate", "1", "--from", "/etc/hostname"}, 2, {}, Bus::ours, "is not a namespace file"},
        {{"translate", "1", "--from", "container:" + id8}, 2, {}, Bus::ours, "give at least 12"},
        {{"translate", "1", "--from", "container:" + id12}, 3, {}, Bus::ours, "is ambiguous"},
        {{"translate", gone}, 4, {}, Bus::ours, "no process " + gone + " in your pid namespace that you may see; pidnsctl ps lists"},
        {{"translate", std::to_string(getpid()), "--to", "@" + I}, 4, {}, Bus::ours, "has no pid in pid namespace @" + I},
        {{"translate", "1", "--from", "@" + gone}, 4, {}, Bus::ours, "no process " + gone + " (--from @" + gone + ")"},
        {{"translate", "1", "--from", no_ns}, 4, {}, Bus::ours, "no namespace " + no_ns + " (--from) that you may see"},
        {{"translate", "1", "--from", "@" + I}, 5, kAsNobody, Bus::ours, "you may not inspect process " + I},
        {{"translate", "1", "--from", pid_path(i1)}, 5, kAsNobody, Bus::ours, "cannot open"},

        {{"status", I}, 0},
        {{"status", I}, 1, {}, Bus::none},
        {{"status", I}, 1, {}, Bus::bare},
        {{"status"}, 2},
        {{"status", "abc"}, 2},
        {{"status", gone}, 4, {}, Bus::ours, "no process " + gone},
        {{"status", I}, 5, kAsNobody, Bus::ours, "you may not inspect process " + I},

        {{"tree"}, 0},
        {{"tree", "@" + I}, 0},
        {{"tree"}, 1, {}, Bus::none},
        {{"tree"}, 1, {}, Bus::bare},
        {{"tree", net}, 2, {}, Bus::ours, net + " is a net namespace (net:[" + net + "]), not a pid namespace; pidnsctl list -t pid"},
        {{"tree", "nonsense"}, 2},
        {{"tree", "container:" + id12}, 3},
        {{"tree", no_ns}, 4},
        {{"tree", "@" + gone}, 4},
        {{"tree", "@" + I}, 5, kAsNobody},

        {{"ps"}, 0},
        {{"ps", net}, 0},  // a namespace of any type
        {{"ps"}, 1, {}, Bus::none},
        {{"ps"}, 1, {}, Bus::bare},
        {{"ps", "nonsense"}, 2},
        {{"ps", "/etc/hostname"}, 2},
        {{"ps", "container:" + id12}, 3},
        {{"ps", no_ns}, 4, {}, Bus::ours, "no namespace " + no_ns + " that you may see; pidnsctl list shows"},
        {{"ps", "@" + gone}, 4},
        {{"ps", "/nonexistent/ns"}, 4, {}, Bus::ours, "cannot open /nonexistent/ns"},
        {{"ps", "@" + I}, 5, kAsNobody},
        {{"ps", pid_path(i1)}, 5, kAsNobody},

        {{"monitor"}, 0, {"timeout", "--preserve-status", "-s", "TERM", "2"}},  // SIGTERM: exit 0
        {{"monitor"}, 1, {}, Bus::none},
        {{"monitor"}, 1, {}, Bus::bare},
        {{"monitor", "extra"}, 2},

        {{"stats"}, 0},
        {{"stats"}, 1, {}, Bus::none},
        {{"stats"}, 1, {}, Bus::bare},
        {{"stats", "--bogus"}, 2},

        {{"dump", "@" + I}, 0},
        {{"dump"}, 1, {}, Bus::none},
        {{"dump"}, 1, {}, Bus::bare},
        {{"dump", "--check", differs, "@" + I}, 1, {}, Bus::ours, "differs from"},
        {{"dump", net}, 2, {}, Bus::ours, "is a net namespace"},
        {{"dump", "--check", dir.path() + "/absent.json"}, 2, {}, Bus::ours, "cannot read"},
        {{"dump", "container:" + id12}, 3},
        {{"dump", no_ns}, 4},
        {{"dump", "@" + gone}, 4},
        {{"dump"}, 5, kAsNobody, Bus::ours, "of your pid namespace"},
    };
    const auto documented = documented_exit_statuses();
    REQUIRE(documented.size() == 8);  // list translate status tree ps monitor stats dump
    const auto methods = interface_methods();
    REQUIRE(methods.size() >= 14);
    std::map<std::string, std::set<int>> seen;
    for (const auto& k : cases) {
        Argv args = k.args;
        if (k.on == Bus::none) args.insert(args.begin(), "--address=" + no_bus);
        if (k.on == Bus::bare) args.insert(args.begin(), "--address=" + bare.address());
        auto r = ctl(bus, args, k.prefix);
        std::string shown;
        for (const auto& a : args) shown += " " + a;
        INFO("pidnsctl" << shown << (k.prefix == kAsNobody ? " (as nobody)" : "") << "\nstderr: " << r.err);
        CHECK(r.status == k.status);
        // The command: the first word that is one (the others are options and their values).
        std::string command;
        for (const auto& a : k.args)
            if (documented.count(a)) {
                command = a;
                break;
            }
        REQUIRE(!command.empty());
        CHECK(documented.at(command).count(k.status) == 1);
        seen[command].insert(k.status);
        if (k.status == 0) continue;
        CHECK(!r.err.empty());
        if (!k.says.empty()) CHECK(r.err.find(k.says) != std::string::npos);
        // In the CLI's words: no D-Bus error name, no method of the interface, no reference the
        // user did not type ("pid namespace 0" for "yours").
        CHECK(r.err.find("org.freedesktop.DBus") == std::string::npos);
        CHECK(r.err.find("org.pidns.Error") == std::string::npos);
        for (const auto& m : methods) CHECK(r.err.find(m) == std::string::npos);
        CHECK(r.err.find("namespace 0") == std::string::npos);
    }
    // Every status the man page gives a command is one it was seen to exit with, and no other.
    for (const auto& [command, statuses] : documented) {
        INFO(command);
        CHECK(seen[command] == statuses);
    }
    // pidnsd absent and the bus absent are told apart.
    const auto absent_bus = ctl(bus, {"--address=" + no_bus, "list"});
    const auto absent_pidnsd = ctl(bus, {"--address=" + bare.address(), "list"});
    CHECK(absent_bus.err != absent_pidnsd.err);
    // --verbose adds what the bus said.
    auto r = ctl(bus, {"--verbose", "translate", gone});
    CHECK(r.status == 4);
    CHECK(r.err.find("(D-Bus error org.pidns.Error.NoSuchProcess: ") != std::string::npos);
}

TEST_CASE("pidnsctl as an unprivileged user shows only what it may see") {
    PrivateBus bus;
    Daemon d(bus);
    ProcTree tree;
    const pid_t root_agent = tree.spawn(0, CLONE_NEWNET | CLONE_NEWUTS);
    (void)expected_ns_id(root_agent, "net");
    // A process of nobody's own, in the host's namespaces.
    LineReader sleeper(concat(kAsNobody, {"sh", "-c", "echo up; exec sleep 60"}));
    REQUIRE(sleeper.wait_line([](const std::string& l) { return l == "up"; }).has_value());
    const auto nobody_pid = static_cast<std::uint32_t>(sleeper.pid());
    for (int i = 0; i < 500 && read_file("/proc/" + std::to_string(nobody_pid) + "/comm") != "sleep\n"; ++i)
        std::this_thread::sleep_for(10ms);
    // The kernel's verdict first: nobody may not open the agent's namespaces, and may its own.
    REQUIRE(open_ns_pid_as(kAsNobody, root_agent).status != 0);
    REQUIRE(open_ns_pid_as(kAsNobody, static_cast<pid_t>(nobody_pid)).status == 0);

    const auto list = ctl_json(bus, {"list"}, kAsNobody);
    const auto root_list = ctl_json(bus, {"list"});
    std::set<std::uint64_t> seen;
    for (const auto& e : list) seen.insert(e.at("inode").get<std::uint64_t>());
    CHECK(seen.count(oracle_ns_inode(root_agent, "net")) == 0);
    CHECK(seen.count(oracle_ns_inode(root_agent, "uts")) == 0);
    CHECK(seen.count(oracle_ns_inode(getpid(), "net")) == 1);  // nobody's own
    CHECK(list.size() < root_list.size());
    // ps in our pid namespace: only processes nobody may inspect, the kernel agreeing for each.
    std::set<std::uint32_t> pids;
    for (int attempt = 0; attempt < 100 && !pids.count(nobody_pid); ++attempt) {  // until indexed as nobody's
        if (attempt) std::this_thread::sleep_for(20ms);
        pids.clear();
        for (const auto& e : ctl_json(bus, {"ps"}, kAsNobody)) pids.insert(e.at("pid").get<std::uint32_t>());
    }
    CHECK(pids.count(nobody_pid) == 1);
    CHECK(pids.count(static_cast<std::uint32_t>(root_agent)) == 0);
    CHECK(pids.count(static_cast<std::uint32_t>(getpid())) == 0);
    for (auto p : pids)
        if (kill(static_cast<pid_t>(p), 0) == 0) CHECK(open_ns_pid_as(kAsNobody, static_cast<pid_t>(p)).status == 0);
    // nobody's count of our pid namespace is what its ps lists, not root's count (other users'
    // processes may come and go meanwhile: taken when two listings around the ps agree).
    const auto own_pidns = oracle_ns_inode(getpid(), "pid");
    auto nprocs_as = [&](const Argv& prefix) -> std::uint32_t {
        for (const auto& e : ctl_json(bus, {"list", "-t", "pid"}, prefix))
            if (e.at("inode").get<std::uint64_t>() == own_pidns) return e.at("nprocs").get<std::uint32_t>();
        return 0;
    };
    bool agreed = false;
    for (int attempt = 0; attempt < 20 && !agreed; ++attempt) {
        const auto before = nprocs_as(kAsNobody);
        const auto ps = ctl_json(bus, {"ps"}, kAsNobody);
        if (nprocs_as(kAsNobody) != before) continue;
        agreed = true;
        CHECK(ps.size() == before);
        CHECK(before + 2 <= nprocs_as({}));  // root sees at least this process and its agent more
    }
    CHECK(agreed);
    // Nothing about root's agent: status and ps of its namespace are refused or empty.
    CHECK(pidnsctl(bus.address(), {"status", std::to_string(root_agent)}, kAsNobody).status == 5);
    auto r = pidnsctl(bus.address(), {"ps", "--json=short", "net:[" + str(oracle_ns_inode(root_agent, "net")) + "]"}, kAsNobody);
    if (r.status == 0) CHECK(json::parse(r.out).empty());
    else CHECK(r.status == 4);
    // Its own process, in full.
    const auto st = ctl_json(bus, {"status", std::to_string(nobody_pid)}, kAsNobody);
    CHECK(st.at("nspid").get<std::vector<std::uint32_t>>() == to_u32(oracle_nspid(static_cast<pid_t>(nobody_pid))));
}

namespace {

// Runs a shell script in a detached tmux session (a real terminal, `width` x 80) and returns the
// pane and its history as tmux captured them (capture-pane -S -), escape sequences included
// unless `joined` (then the lines the terminal wrapped are given back whole, -J), once the script
// is done.
std::string in_tmux(const std::string& script, int width = 250, bool joined = false) {
    TempDir dir;
    {
        std::ofstream f(dir.path() + "/script.sh");
        f << "unset NO_COLOR COLUMNS\n" << script << "\necho __DONE__\nsleep 60\n";
    }
    Tmux t("sh " + dir.path() + "/script.sh", width, 80);
    std::string pane;
    REQUIRE(t.wait(
        [&](const std::string& s) {
            pane = s;
            return s.find("__DONE__") != std::string::npos;
        },
        patience(20s), joined));
    if (!joined) pane = t.screen(false, true);
    return pane.substr(0, pane.find("__DONE__"));
}

std::string strip_escapes(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\x1b' && i + 1 < s.size() && s[i + 1] == '[') {
            i += 2;
            while (i < s.size() && !std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
            continue;
        }
        out += s[i];
    }
    return out;
}

// Display columns of UTF-8 text (each code point one column: the tree's box drawing and the
// ellipsis included).
std::size_t columns_of(const std::string& s) {
    std::size_t n = 0;
    for (unsigned char ch : s)
        if ((ch & 0xc0) != 0x80) ++n;
    return n;
}

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);)
        if (!l.empty()) out.push_back(l);
    return out;
}

}  // namespace

TEST_CASE("pidnsctl on a real terminal (tmux): aligned tables and tree, colour and pager only there") {
    PrivateBus bus;
    Daemon d(bus);
    ProcTree tree;
    auto t = make_seed000_tree(tree);
    (void)expected_ns_id(t.t5, "pid");
    TempDir dir;
    const std::string ctl_cmd = std::string(PIDNSCTL_BIN) + " --address=" + bus.address();

    // list on a terminal: the header in bold, every row's columns under the header's.
    const auto pane = in_tmux(ctl_cmd + " --no-pager list -t pid");
    INFO(pane);
    auto lines = lines_of(pane);
    REQUIRE(lines.size() >= 5);  // header, the 3 pid namespaces of seed 000 at least, the footer
    CHECK(lines[0].find("\x1b[1m") != std::string::npos);
    const auto header = strip_escapes(lines[0]);
    const auto type_col = header.find(" TYPE ") + 1, user_col = header.find(" USER") + 1;
    int rows = 0;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const auto row = strip_escapes(lines[i]);
        if (row.find(" namespaces listed.") != std::string::npos) break;
        CHECK(row.substr(type_col, 4) == "pid ");
        CHECK(row.size() > user_col);
        CHECK(row[user_col - 1] == ' ');
        CHECK(row[user_col] != ' ');  // a user name starts there
        ++rows;
    }
    CHECK(rows >= 3);

    // tree on a terminal: each nested namespace two columns right of its parent.
    const auto tree_text = in_tmux(ctl_cmd + " --no-pager tree " + pid_path(t.t2));
    INFO(tree_text);
    const auto tree_pane = lines_of(strip_escapes(tree_text));
    auto column_of = [&](pid_t init) -> std::size_t {
        const std::string name = "pid:[" + str(oracle_ns_inode(init, "pid")) + "]";
        for (const auto& l : tree_pane)
            if (auto at = l.find(name); at != std::string::npos) return columns_of(l.substr(0, at));
        return std::string::npos;
    };
    CHECK(column_of(t.t2) == 0);  // the tree of ns1 (t2 is its init), ns2 (t4's) below it
    CHECK(column_of(t.t4) == 2);
    REQUIRE(!tree_pane.empty());
    CHECK(tree_pane[0].rfind("pid:[", 0) == 0);

    // The pager runs on a terminal only, and not with --no-pager; colour goes through it.
    const std::string paged = dir.path() + "/paged", unpaged = dir.path() + "/unpaged";
    in_tmux("PIDNSCTL_PAGER='cat > " + paged + "' " + ctl_cmd + " list -t pid");
    const auto through_pager = read_file(paged);
    CHECK(through_pager.find("namespaces listed.") != std::string::npos);
    CHECK(through_pager.find("\x1b[1m") != std::string::npos);
    in_tmux("PIDNSCTL_PAGER='cat > " + unpaged + "' " + ctl_cmd + " --no-pager list -t pid");
    CHECK(access(unpaged.c_str(), F_OK) != 0);
    auto r = run({"sh", "-c", "PIDNSCTL_PAGER='cat > " + unpaged + "' " + ctl_cmd + " list -t pid"});
    CHECK(r.status == 0);
    CHECK(access(unpaged.c_str(), F_OK) != 0);
    CHECK(r.out.find("namespaces listed.") != std::string::npos);
    CHECK(r.out.find('\x1b') == std::string::npos);
}

TEST_CASE("pidnsctl tables fit 80 and 200 columns (tmux): text columns shortened with an ellipsis, --full and pipes whole") {
    const fs::path root = systemd_hierarchy();
    REQUIRE(!root.empty());
    PrivateBus bus;
    Daemon d(bus);
    // A pid namespace whose init runs in a docker container's unit: a 77-character UNIT.
    const std::string top = "pidnsd-test-" + std::to_string(getpid()) + "-width.slice";
    const std::string unit = "docker-" + kTestContainerId + ".scope";
    TestCgroup cg(root, top + "/" + unit);
    Proc p({"unshare", "-p", "-f", "sleep", "1000"});
    const pid_t init = child_of(p.pid());
    REQUIRE(init > 0);
    struct KillInit {
        pid_t pid;
        ~KillInit() {
            ::kill(pid, SIGKILL);
            for (int i = 0; i < 500 && ::kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(10ms);
        }
    } kill_init{init};
    wait_comm(init, "sleep");
    cg.move(init);
    (void)expected_ns_id(init, "pid");
    const std::string P = std::to_string(init);
    const std::string ctl_cmd = std::string(PIDNSCTL_BIN) + " --address=" + bus.address() + " --no-pager";
    const std::string chain = P + "/1";  // NSpid, written as tree and dump write chains
    const std::string inode = str(oracle_ns_inode(init, "pid"));
    // The row of a table that holds `needle`.
    auto row_with = [](const std::string& text, const std::string& needle) {
        for (const auto& l : lines_of(text))
            if (l.find(needle) != std::string::npos) return l;
        return std::string();
    };
    auto every_line_within = [](const std::string& text, std::size_t width) {
        for (const auto& l : lines_of(text)) {
            INFO("line of " << columns_of(l) << " columns: " << l);
            CHECK(columns_of(l) <= width);
        }
    };
    // Wrapped lines joined again (-J): a line longer than the terminal shows as such.
    const std::string script = ctl_cmd + " ps @" + P + "; " + ctl_cmd + " list -t pid";
    {
        const auto at80 = in_tmux(script, 80, true);
        INFO(at80);
        every_line_within(at80, 80);
        const auto ps_row = row_with(at80, " " + chain + " ");
        REQUIRE(!ps_row.empty());
        CHECK(ps_row.find("docker-7a1d3c2b") != std::string::npos);  // the unit, shortened
        CHECK(ps_row.find(unit) == std::string::npos);
        CHECK(ps_row.find("\xe2\x80\xa6") != std::string::npos);       // with an ellipsis
        CHECK(ps_row.find("docker:7a1d3c2b9a8e") != std::string::npos);  // CONTAINER on screen
        CHECK(ps_row.ends_with("sleep 1000"));                          // and COMMAND whole
        CHECK(at80.find("1 process listed.") != std::string::npos);
        const auto list_header = row_with(at80, " INODE ");
        CHECK(list_header.ends_with("COMMAND"));
        CHECK(row_with(at80, " " + inode + " ").ends_with("sleep"));
    }
    {
        const auto at200 = in_tmux(script, 200, true);
        INFO(at200);
        every_line_within(at200, 200);
        const auto ps_row = row_with(at200, " " + chain + " ");
        CHECK(ps_row.find(unit) != std::string::npos);  // room for all of it
        CHECK(ps_row.find("\xe2\x80\xa6") == std::string::npos);
        CHECK(row_with(at200, " INODE ").find(" NETNS ") != std::string::npos);  // NETNS where it fits
    }
    {
        // --full at 80: nothing shortened (the terminal wraps the line).
        const auto full = in_tmux(ctl_cmd + " --full ps @" + P, 80, true);
        INFO(full);
        CHECK(row_with(full, " " + chain + " ").find(unit) != std::string::npos);
    }
    // Into a pipe: whole, whatever COLUMNS says.
    auto r = run({"sh", "-c", "COLUMNS=40 " + ctl_cmd + " ps @" + P});
    CHECK(r.status == 0);
    CHECK(row_with(r.out, " " + chain + " ").find(unit) != std::string::npos);
    CHECK(r.out.find("\xe2\x80\xa6") == std::string::npos);
}

TEST_CASE("pidnsctl list columns: USER is the process owner as lsns shows it, CREATOR the user namespace's, NETNS by default, -o +COL and -o -COL") {
    PrivateBus bus;
    Daemon d(bus);
    // A net namespace root made, whose only process runs as nobody; and one ip netns add named.
    LineReader owned({"unshare", "-n", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c",
                      "echo up; exec sleep 60"});
    REQUIRE(owned.wait_line([](const std::string& l) { return l == "up"; }).has_value());
    wait_comm(owned.pid(), "sleep");
    const auto owned_net = str(oracle_ns_inode(owned.pid(), "net"));
    (void)expected_ns_id(owned.pid(), "net");
    const std::string name = "pidnsd-test-" + std::to_string(getpid());
    REQUIRE(run({"ip", "netns", "add", name}).status == 0);
    struct DelNetns {
        std::string name;
        ~DelNetns() { run({"ip", "netns", "del", name}); }
    } del{name};
    struct stat st {};
    REQUIRE(stat(("/run/netns/" + name).c_str(), &st) == 0);  // the nsfs file ip netns bind-mounted
    const auto named_net = str(st.st_ino);

    auto cells = [&](const Argv& args) {
        std::map<std::string, std::map<std::string, std::string>> rows;  // inode -> column -> cell
        for (int attempt = 0; attempt < 100; ++attempt) {
            auto r = ctl(bus, args);
            REQUIRE(r.status == 0);
            std::istringstream in(r.out);
            std::string header;
            std::getline(in, header);
            std::istringstream hw(header);
            const std::vector<std::string> cols{std::istream_iterator<std::string>(hw), std::istream_iterator<std::string>()};
            rows.clear();
            for (std::string line; std::getline(in, line) && !line.empty();) {
                std::istringstream w(line);
                std::map<std::string, std::string> row;
                for (std::size_t i = 0; i < cols.size(); ++i) {
                    std::string cell;
                    if (i + 1 == cols.size()) std::getline(w >> std::ws, cell);  // the last may hold spaces
                    else w >> cell;
                    row[cols[i]] = cell;
                }
                rows[row["INODE"]] = row;
            }
            if (rows.count(owned_net) && rows.count(named_net)) break;  // both indexed
            std::this_thread::sleep_for(50ms);
        }
        return rows;
    };
    auto rows = cells({"list", "-t", "net", "-o", "+CREATOR,+UID"});
    REQUIRE(rows.count(owned_net));
    REQUIRE(rows.count(named_net));
    CHECK(rows[owned_net]["USER"] == "nobody");   // who runs in it, as lsns says
    CHECK(rows[owned_net]["UID"] == "65534");
    CHECK(rows[owned_net]["CREATOR"] == "root");  // who made its user namespace
    CHECK(rows[owned_net]["NETNS"] == "-");
    CHECK(rows[named_net]["NETNS"] == name);      // ip netns add's name, by default
    // lsns, the outside oracle, names the same user (where another user's comm lets it run).
    const auto lsns = run({"lsns", "-J", "-t", "net", "-o", "NS,USER"});
    if (lsns.status == 0) {
        const auto listing = json::parse(lsns.out);
        for (const auto& e : listing.at("namespaces"))
            if (std::to_string(e.at("ns").get<std::uint64_t>()) == owned_net) CHECK(e.at("user") == "nobody");
    } else {
        WARN("lsns failed (another user's comm?): " << lsns.err);
    }
    // -o -COL removes a default column, -o with names alone replaces them.
    rows = cells({"list", "-t", "net", "-o", "-USER,-CONTAINER"});
    CHECK(rows[owned_net].count("USER") == 0);
    CHECK(rows[owned_net].count("CONTAINER") == 0);
    CHECK(rows[owned_net].count("NETNS") == 1);
    rows = cells({"list", "-t", "net", "-o", "inode,netns"});
    CHECK(rows[named_net].size() == 2);
    CHECK(rows[named_net]["NETNS"] == name);
}

TEST_CASE("pidnsctl stats prints durations and sizes as systemd does, --json the numbers") {
    PrivateBus bus;
    Daemon d(bus);
    auto r = ctl(bus, {"stats"});
    REQUIRE(r.status == 0);
    std::map<std::string, std::string> kv;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
        std::istringstream w(line);
        std::string k, v;
        w >> k;
        std::getline(w >> std::ws, v);
        kv[k] = v;
    }
    INFO(r.out);
    CHECK(std::regex_match(kv.at("UptimeUSec"), std::regex(R"(0|\d+(us|ms)|(\d+d )?(\d+h )?(\d+min )?\d+(\.\d{3})?s|(\d+d )?(\d+h )?\d+min)")));
    CHECK(std::regex_match(kv.at("ReceiveBufferBytes"), std::regex(R"(\d+B|\d+\.\dK|\d+\.\dM|\d+\.\dG)")));
    CHECK(std::regex_match(kv.at("LastRescanUSec"), std::regex(R"(0|\d+(us|ms)|\d+(\.\d{3})?s)")));
    CHECK(kv.at("Rescans") == "1");
    const auto j = ctl_json(bus, {"stats"});
    CHECK(j.at("UptimeUSec").is_number_unsigned());
    CHECK(j.at("ReceiveBufferBytes").get<std::uint64_t>() % 1024 == 0);
}

TEST_CASE("signals: root's busctl monitor and dbus-monitor see the unicast signals pidnsd sends a subscriber, nobody's do not") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    const std::string match = "type='signal',sender='org.pidns',interface='org.pidns.Manager1'";
    LineReader root_monitor({"dbus-monitor", "--address", bus.address(), match});
    LineReader root_busctl({"busctl", "--address=" + bus.address(), "monitor", "org.pidns"});
    LineReader nobody_monitor(concat(kAsNobody, {"dbus-monitor", "--address", bus.address(), match}));
    std::this_thread::sleep_for(patience(500ms));  // the monitors are connected
    // A subscriber of its own (pidnsctl monitor), and a namespace made after it subscribed.
    const auto subscribers0 = stat_of(c, "Subscribers");
    LineReader subscriber({PIDNSCTL_BIN, "--address=" + bus.address(), "monitor"});
    for (int i = 0; i < 500 && stat_of(c, "Subscribers") == subscribers0; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(stat_of(c, "Subscribers") == subscribers0 + 1);
    ProcTree tree;
    const pid_t agent = tree.spawn(0, CLONE_NEWUTS);
    const auto id = expected_ns_id(agent, "uts");
    REQUIRE(subscriber.wait_line([&](const std::string& l) { return l.find(" uts ") != std::string::npos && l.find(str(id)) != std::string::npos; }).has_value());
    auto sees = [&](LineReader& m) {
        return m.wait_line([](const std::string& l) { return l.find("NamespaceAdded") != std::string::npos; }, 5s).has_value();
    };
    CHECK(sees(root_monitor));   // Debian's rule: root may monitor the system bus
    CHECK(sees(root_busctl));
    CHECK_FALSE(sees(nobody_monitor));
}
