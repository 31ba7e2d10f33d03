// pidnsctl end to end: the real binary against a private bus with the real pidnsd, on real
// namespace trees. Oracles: lsns, /proc/PID/status (NSpid), /proc/PID/ns links, the kernel's own
// permission checks (opening /proc/PID/ns/pid as the same user).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "harness.h"
#include "support/nstree.h"
#include "support/lsns_oracle.h"
#include "support/task_state.h"

using namespace pidns::harness;
using namespace pidns::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

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
                                                  "machine", "unit_owner_uid", "container_owner_uid"};

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
        // alive, pidnsd does not index it (README "Known limits").
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
    CHECK(words == std::vector<std::string>{"ID", "INODE", "TYPE", "LEVEL", "PARENT", "OWNER", "NPROCS", "INIT", "USER",
                                            "CONTAINER", "COMMAND"});
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
    std::string chain;
    for (auto p : oracle_nspid(t.t5)) {
        if (!chain.empty()) chain += ' ';
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

    // The text form, stopped by SIGTERM: "TIMESTAMP added net ID CONTAINER UNIT COMMAND".
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
        return f.size() == 7 && f[2] == "net" && f[3] == str(id);
    });
    REQUIRE(line.has_value());
    const auto f = fields(line->text);
    CHECK(f[0].size() == 27);
    CHECK(f[1] == "added");
    CHECK(f[4] == "-");  // no container
    std::string comm = read_file("/proc/" + std::to_string(agent) + "/comm");
    if (!comm.empty()) comm.pop_back();
    CHECK(f[6] == comm);  // its command, as list shows it
    CHECK(text.stop(SIGTERM) == 0);
}

TEST_CASE("pidnsctl exit codes: 0 ok, 1 failure, 2 usage, 4 no such process or namespace, 5 access denied") {
    PrivateBus bus;
    Daemon d(bus);
    ProcTree tree;
    const pid_t agent = tree.spawn(0, CLONE_NEWNET);
    (void)expected_ns_id(agent, "net");
    const std::string gone = std::to_string(unused_pid());
    const std::string no_ns = str((std::uint64_t{1} << 62) + 12345);  // neither an id nor an inode
    struct Case {
        Argv args;
        int status;
        Argv prefix = {};
        std::string dbus_error = "";
    };
    const std::vector<Case> cases = {
        {{"list"}, 0},
        {{"stats"}, 0},
        {{"status", std::to_string(agent)}, 0},
        {{"--address=unix:path=/nonexistent/bus", "list"}, 1},
        {{}, 2},
        {{"frobnicate"}, 2},
        {{"list", "--no-such-option"}, 2},
        {{"list", "-t", "bogus"}, 2},
        {{"list", "-o", "ID,BOGUS"}, 2},
        {{"--json=long", "list"}, 2},
        {{"translate", "abc"}, 2},
        {{"translate", "0"}, 2},
        {{"translate", "1", "--from", "nonsense"}, 2},
        {{"translate", "1", "--from", "/proc/self/ns/net"}, 2, {}, "org.pidns.Error.NotPidNamespace"},
        {{"translate", "1", "--from", "/etc/hostname"}, 2},
        {{"status"}, 2},
        {{"translate", gone}, 4, {}, "org.pidns.Error.NoSuchProcess"},
        {{"status", gone}, 4, {}, "org.pidns.Error.NoSuchProcess"},
        {{"ps", no_ns}, 4, {}, "org.pidns.Error.NoSuchNamespace"},
        {{"tree", no_ns}, 4, {}, "org.pidns.Error.NoSuchNamespace"},
        {{"ps", "@" + gone}, 4, {}, "org.pidns.Error.NoSuchProcess"},
        {{"ps", "/nonexistent/ns"}, 4},
        {{"status", std::to_string(agent)}, 5, kAsNobody, "org.freedesktop.DBus.Error.AccessDenied"},
        {{"translate", "1", "--from", "/proc/" + std::to_string(agent) + "/ns/pid"}, 5, kAsNobody},
    };
    for (const auto& k : cases) {
        Argv args = k.args;
        if (!k.dbus_error.empty()) args.insert(args.begin(), "--verbose");
        auto r = pidnsctl(bus.address(), args, k.prefix);
        std::string shown;
        for (const auto& a : args) shown += " " + a;
        INFO("pidnsctl" << shown << (k.prefix.empty() ? "" : " (as nobody)") << "\nstderr: " << r.err);
        CHECK(r.status == k.status);
        if (k.status != 0) CHECK(!r.err.empty());
        if (!k.dbus_error.empty()) CHECK(r.err.find("(" + k.dbus_error + ")") != std::string::npos);
    }
    // Errors carry pidnsd's whole message, not only the D-Bus name's usual text.
    auto r = pidnsctl(bus.address(), {"status", std::to_string(agent)}, kAsNobody);
    CHECK(r.status == 5);
    CHECK(r.err.find("org.freedesktop.DBus.Error.AccessDenied") == std::string::npos);  // without --verbose
    CHECK(r.err.size() > std::string("pidnsctl: Access denied\n").size());
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

// Runs a shell script in a detached tmux session (a real terminal, 250x80) and returns the pane
// and its history as tmux captured them, escape sequences included (capture-pane -e -S -), once
// the script is done.
std::string in_tmux(const std::string& script) {
    TempDir dir;
    static int sessions = 0;  // a server of its own each time: a killed one may still be going away
    const std::string sock = "pidnsctl-test-" + std::to_string(getpid()) + "-" + std::to_string(++sessions);
    {
        std::ofstream f(dir.path() + "/script.sh");
        f << "unset NO_COLOR\n" << script << "\necho __DONE__\nsleep 60\n";
    }
    auto r = run({"tmux", "-L", sock, "-f", "/dev/null", "new-session", "-d", "-x", "250", "-y", "80", "sh",
                  dir.path() + "/script.sh"});
    REQUIRE(r.status == 0);
    std::string pane;
    for (int i = 0; i < 1000 && pane.find("__DONE__") == std::string::npos; ++i) {
        if (i) std::this_thread::sleep_for(10ms);
        pane = run({"tmux", "-L", sock, "capture-pane", "-p", "-e", "-S", "-", "-t", "0"}).out;  // with history
    }
    run({"tmux", "-L", sock, "kill-server"});
    REQUIRE(pane.find("__DONE__") != std::string::npos);
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

// Display columns of UTF-8 text (each code point one column: the tree's box drawing included).
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
