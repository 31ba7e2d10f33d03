// The client examples (pidns_translate.py with python3-dbus, pidns_translate.c with sd-bus) run
// against a private bus with the real pidnsd, and their output checked against the kernel's own
// answers: /proc/PID/status's NS* lines, the nsfs inodes and ids, open(/proc/PID/ns/pid) as the
// caller for access, and namespaces made and ended by the test for the monitor.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <map>
#include <sstream>
#include <thread>

#include "harness.h"

using namespace pidns::harness;
using namespace std::chrono_literals;

namespace {

// The kernel's line "NAME:\t..." of /proc/PID/status, without its newline ("" if absent).
std::string status_line(pid_t pid, const std::string& name) {
    std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(name + ":")) return line;
    return "";
}

std::vector<pid_t> numbers_of(const std::string& line) {
    std::istringstream in(line.substr(line.find(':') + 1));
    std::vector<pid_t> out;
    for (pid_t p = 0; in >> p;) out.push_back(p);
    return out;
}

std::uint64_t ns_inode(pid_t pid, const char* type) {
    struct stat st {};
    const std::string path = "/proc/" + std::to_string(pid) + "/ns/" + type;
    REQUIRE(stat(path.c_str(), &st) == 0);
    return st.st_ino;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::istringstream in(text);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

bool has_line(const std::string& text, const std::string& line) {
    const auto ls = lines_of(text);
    return std::find(ls.begin(), ls.end(), line) != ls.end();
}

// The value after "KEY: " on the line that starts with it ("" if none).
std::string value_of(const std::string& text, const std::string& key) {
    for (const auto& l : lines_of(text))
        if (l.starts_with(key + ": ")) return l.substr(key.size() + 2);
    return "";
}

// The words of a "pid namespace: id I inode N level L init_pid P nprocs C" line, as a map.
std::map<std::string, std::uint64_t> pidns_fields(const std::string& text) {
    std::istringstream in(value_of(text, "pid namespace"));
    std::map<std::string, std::uint64_t> out;
    std::string key;
    std::uint64_t v = 0;
    while (in >> key >> v) out[key] = v;
    return out;
}

// One way of running an example: its command line, and how it is told the bus.
struct Example {
    std::string name;
    Argv argv;  // up to the example's own arguments
};

// Each example, given the bus both ways: --address and $DBUS_SYSTEM_BUS_ADDRESS.
std::vector<Example> examples(const std::string& address) {
    const Argv py = {PIDNS_EXAMPLES_PYTHON, PIDNS_EXAMPLE_PY};
    const Argv c = {PIDNS_EXAMPLE_C_BIN};
    const Argv env = {"env", "DBUS_SYSTEM_BUS_ADDRESS=" + address};
    return {
        {"python --address", concat(py, {"--address=" + address})},
        {"python DBUS_SYSTEM_BUS_ADDRESS", concat(env, py)},
        {"C --address", concat(c, {"--address=" + address})},
        {"C DBUS_SYSTEM_BUS_ADDRESS", concat(env, c)},
    };
}

std::string describe(const Example& ex, const Argv& args, const CmdResult& r) {
    std::ostringstream s;
    s << ex.name << ":";
    for (const auto& a : args) s << " " << a;
    s << "\nexit " << r.status << "\nstdout:\n" << r.out << "stderr:\n" << r.err;
    return s.str();
}

// The message of a D-Bus error as dbus-send prints it ("Error NAME: MESSAGE").
std::string dbus_send_message(const DbusSendResult& r) {
    const std::string marker = "Error " + r.error_name + ": ";
    const auto at = r.output.find(marker);
    if (at == std::string::npos) return "";
    const auto end = r.output.find('\n', at);
    return r.output.substr(at + marker.size(), end == std::string::npos ? std::string::npos : end - at - marker.size());
}

// A nested pid namespace pair: unshare → (ns1) unshare → (ns2) sleep, the sleep being pid 1 of ns2.
struct Nested {
    Proc top{{"unshare", "-p", "-f", "--mount-proc", "unshare", "-p", "-f", "--mount-proc", "sleep", "1000"}};
    pid_t middle = 0;  // the inner unshare: pid 1 of ns1
    pid_t inner = 0;   // sleep: pid 1 of ns2 (and has a pid in ns1 and here)
    Nested() {
        middle = child_of(top.pid());
        wait_comm(middle, "unshare");
        inner = child_of(middle);
        wait_comm(inner, "sleep");
    }
    ~Nested() {
        if (inner > 0) kill(inner, SIGKILL);
        if (middle > 0) kill(middle, SIGKILL);
    }
    Nested(const Nested&) = delete;
    Nested& operator=(const Nested&) = delete;
};

// Waits until pidnsd has indexed the namespace of `type` of `pid` (GetNamespace by inode answers).
void wait_indexed(const std::string& address, pid_t pid, const char* type) {
    const std::string inode = std::to_string(ns_inode(pid, type));
    for (int i = 0; i < 500; ++i) {
        try {
            busctl_call(address, "GetNamespace", "t", {inode});
            return;
        } catch (const std::runtime_error&) {
            std::this_thread::sleep_for(10ms);
        }
    }
    FAIL("pidnsd never indexed the " << type << " namespace of " << pid);
}

}  // namespace

TEST_CASE("translate: a process in nested pid namespaces, its NS chains, namespace ids and pids as the kernel has them") {
    PrivateBus bus;
    Daemon d(bus);
    Nested n;
    wait_indexed(bus.address(), n.inner, "pid");

    // The kernel's answers.
    const std::string nspid = status_line(n.inner, "NSpid");
    const auto chain = numbers_of(nspid);
    REQUIRE(chain.size() >= 3);  // this namespace, ns1, ns2 (more if the suite itself runs nested)
    REQUIRE(chain.front() == n.inner);
    const std::uint64_t inner_inode = ns_inode(n.inner, "pid"), middle_inode = ns_inode(n.middle, "pid");
    REQUIRE(inner_inode != middle_inode);
    const std::uint64_t inner_id = expected_ns_id(n.inner, "pid");
    const pid_t in_middle = numbers_of(status_line(n.inner, "NSpid")).at(chain.size() - 2);

    for (const auto& ex : examples(bus.address())) {
        SECTION(ex.name) {
            // PID in your namespace: translated into its own pid namespace by default.
            Argv args = {std::to_string(n.inner)};
            auto r = run(concat(ex.argv, args));
            INFO(describe(ex, args, r));
            REQUIRE(r.status == 0);
            CHECK(value_of(r.out, "translated") == std::to_string(chain.back()));
            for (const char* field : {"NSpid", "NStgid", "NSpgid", "NSsid"}) {
                const std::string kernel = status_line(n.inner, field);
                REQUIRE(!kernel.empty());
                CHECK(has_line(r.out, kernel));
            }
            for (const char* type : {"pid", "user", "mnt", "net", "uts", "ipc", "cgroup", "time"})
                CHECK(value_of(r.out, std::string("namespace ") + type) == std::to_string(expected_ns_id(n.inner, type)));
            // Its pid namespace's ListNamespaces entry: the inode, the depth below ours, its init.
            auto f = pidns_fields(r.out);
            CHECK(f["id"] == inner_id);
            CHECK(f["inode"] == inner_inode);
            CHECK(f["level"] == chain.size() - 1);
            CHECK(f["init_pid"] == static_cast<std::uint64_t>(n.inner));  // sleep is pid 1 of ns2
            CHECK(f["nprocs"] == 1);

            // --to an intermediate namespace (by inode): its pid there.
            args = {"--to", std::to_string(middle_inode), std::to_string(n.inner)};
            r = run(concat(ex.argv, args));
            INFO(describe(ex, args, r));
            REQUIRE(r.status == 0);
            CHECK(value_of(r.out, "translated") == std::to_string(in_middle));

            // --from the inner namespace (as readlink prints it), --to yours (0): pid 1 there is n.inner.
            args = {"--from", "pid:[" + std::to_string(inner_inode) + "]", "--to", "0", "1"};
            r = run(concat(ex.argv, args));
            INFO(describe(ex, args, r));
            REQUIRE(r.status == 0);
            CHECK(value_of(r.out, "translated") == std::to_string(n.inner));
            CHECK(has_line(r.out, nspid));

            // --from the middle namespace by id: the sleep's pid there, translated to its own namespace.
            args = {"--from", std::to_string(expected_ns_id(n.middle, "pid")), std::to_string(in_middle)};
            r = run(concat(ex.argv, args));
            INFO(describe(ex, args, r));
            REQUIRE(r.status == 0);
            CHECK(value_of(r.out, "translated") == std::to_string(chain.back()));
        }
    }
}

TEST_CASE("list: the pid namespaces made by the test, with inode, level, init and parent as the kernel has them") {
    PrivateBus bus;
    Daemon d(bus);
    Nested n;
    wait_indexed(bus.address(), n.inner, "pid");
    const std::size_t depth = numbers_of(status_line(n.inner, "NSpid")).size() - 1;

    struct Expect {
        std::uint64_t id, inode;
        std::size_t level;
        pid_t init;
    };
    const std::vector<Expect> expected = {
        {expected_ns_id(getpid(), "pid"), ns_inode(getpid(), "pid"), 0, 0},
        {expected_ns_id(n.middle, "pid"), ns_inode(n.middle, "pid"), depth - 1, n.middle},
        {expected_ns_id(n.inner, "pid"), ns_inode(n.inner, "pid"), depth, n.inner},
    };
    for (const auto& ex : examples(bus.address())) {
        SECTION(ex.name) {
            const Argv args = {"--list", "pid"};
            auto r = run(concat(ex.argv, args));
            INFO(describe(ex, args, r));
            REQUIRE(r.status == 0);
            // Rows: ID INODE TYPE PARENT OWNER LEVEL INIT NPROCS OWNER-UID; then "N namespaces".
            std::map<std::uint64_t, std::vector<std::string>> rows;
            std::size_t count_line = 0;
            for (const auto& l : lines_of(r.out)) {
                std::istringstream in(l);
                std::vector<std::string> w;
                for (std::string s; in >> s;) w.push_back(s);
                if (w.size() == 2 && w[1] == "namespaces") count_line = std::stoul(w[0]);
                if (w.size() != 9 || w[0] == "ID") continue;
                CHECK(w[2] == "pid");
                rows[std::stoull(w[0])] = w;
            }
            CHECK(count_line == rows.size());
            for (const auto& e : expected) {
                INFO("namespace id " << e.id << " inode " << e.inode);
                REQUIRE(rows.count(e.id) == 1);
                const auto& w = rows[e.id];
                CHECK(w[1] == std::to_string(e.inode));
                CHECK(w[5] == std::to_string(e.level));
                if (e.init != 0) CHECK(w[6] == std::to_string(e.init));
            }
            // ns2's parent is ns1, ns1's is ours.
            CHECK(rows[expected[2].id][3] == std::to_string(expected[1].id));
            CHECK(rows[expected[1].id][3] == std::to_string(expected[0].id));
        }
    }
}

TEST_CASE("errors: the error name and whole message of pidnsd, exit 4 for a pid or namespace that does not exist") {
    PrivateBus bus;
    Daemon d(bus);

    // A pid that the kernel has no process for: a child that exited and was reaped.
    pid_t gone = fork();
    REQUIRE(gone >= 0);
    if (gone == 0) _exit(0);
    REQUIRE(waitpid(gone, nullptr, 0) == gone);
    const std::string gone_s = std::to_string(gone);

    // A namespace reference that is no namespace's id nor inode (pidnsd lists all as root).
    const std::uint64_t no_ns = 0xFFFF'FFFF'FFFF'0000ULL;
    const auto all = busctl_call(bus.address(), "ListNamespaces", "s", {""}).at(0);
    REQUIRE(all.size() > 0);
    for (const auto& e : all) {
        REQUIRE(e.at(0).get<std::uint64_t>() != no_ns);
        REQUIRE(e.at(1).get<std::uint64_t>() != no_ns);
    }

    for (const auto& ex : examples(bus.address())) {
        SECTION(ex.name) {
            // What pidnsd answers GetProcess for that pid (dbus-send prints the whole message).
            const auto ref = dbus_send(bus.address(), "GetProcess", {"uint32:" + gone_s});
            REQUIRE(!ref.ok);
            REQUIRE(ref.error_name == "org.pidns.Error.NoSuchProcess");
            const std::string message = dbus_send_message(ref);
            REQUIRE(!message.empty());

            Argv args = {gone_s};
            auto r = run(concat(ex.argv, args));
            INFO(describe(ex, args, r));
            REQUIRE(access(("/proc/" + gone_s).c_str(), F_OK) != 0);  // still no such process
            CHECK(r.status == 4);
            CHECK(r.err.find("org.pidns.Error.NoSuchProcess: " + message) != std::string::npos);

            args = {"--from", std::to_string(no_ns), "1"};
            r = run(concat(ex.argv, args));
            INFO(describe(ex, args, r));
            CHECK(r.status == 4);
            CHECK(r.err.find("org.pidns.Error.NoSuchNamespace: ") != std::string::npos);

            // An error outside the exit-code table (InvalidArgs for pid 0): a plain failure, 1.
            args = {"0"};
            r = run(concat(ex.argv, args));
            INFO(describe(ex, args, r));
            CHECK(r.status == 1);
            CHECK(r.err.find("org.freedesktop.DBus.Error.InvalidArgs: ") != std::string::npos);
        }
    }
}

TEST_CASE("access: nobody gets its own process translated and the process of root refused as the kernel refuses it") {
    PrivateBus bus;
    Daemon d(bus);
    Proc root_sleep({"sleep", "1000"});
    Proc nobody_sleep(concat(kAsNobody, {"sleep", "1000"}));
    wait_comm(root_sleep.pid(), "sleep");
    wait_comm(nobody_sleep.pid(), "sleep");

    // The kernel's rule (ptrace_may_access with PTRACE_MODE_READ_FSCREDS, as for opening
    // /proc/PID/ns/pid): nobody may inspect its own process, not root's; with hidepid it would not
    // even see root's (ENOENT: no such process).
    const auto own = open_ns_pid_as(kAsNobody, nobody_sleep.pid());
    INFO("kernel, nobody opens its own /proc/PID/ns/pid: exit " << own.status << " " << own.err);
    REQUIRE(own.status == 0);
    const auto other = open_ns_pid_as(kAsNobody, root_sleep.pid());
    INFO("kernel, nobody opens root's /proc/PID/ns/pid: exit " << other.status << " " << other.err);
    REQUIRE(other.status != 0);
    const bool denied = other.err.find("Permission denied") != std::string::npos;
    const bool absent = other.err.find("No such file") != std::string::npos;
    REQUIRE(denied != absent);
    const int expected_exit = denied ? 5 : 4;
    const std::string expected_name =
        denied ? "org.freedesktop.DBus.Error.AccessDenied" : "org.pidns.Error.NoSuchProcess";

    // pidnsd's whole message to nobody, as dbus-send prints it.
    const auto ref = dbus_send(bus.address(), "GetProcess", {"uint32:" + std::to_string(root_sleep.pid())}, kAsNobody);
    INFO("dbus-send as nobody: " << ref.output);
    REQUIRE(ref.error_name == expected_name);
    const std::string message = dbus_send_message(ref);
    REQUIRE(!message.empty());

    for (const auto& ex : examples(bus.address())) {
        SECTION(ex.name) {
            Argv args = {std::to_string(nobody_sleep.pid())};
            auto r = run(concat(kAsNobody, concat(ex.argv, args)));
            INFO(describe(ex, args, r));
            REQUIRE(r.status == 0);
            CHECK(value_of(r.out, "translated") == std::to_string(nobody_sleep.pid()));
            CHECK(has_line(r.out, status_line(nobody_sleep.pid(), "NSpid")));

            args = {std::to_string(root_sleep.pid())};
            r = run(concat(kAsNobody, concat(ex.argv, args)));
            INFO(describe(ex, args, r));
            CHECK(r.status == expected_exit);
            // The whole explanation, not a generic "Access denied".
            CHECK(r.err.find(expected_name + ": " + message) != std::string::npos);
            CHECK(r.out.find("translated") == std::string::npos);
        }
    }
}

TEST_CASE("monitor: NamespaceAdded and NamespaceRemoved of a net namespace the test makes and ends") {
    PrivateBus bus;
    Daemon d(bus);
    auto subscribers = [&] {
        const auto stats = busctl_call(bus.address(), "GetStatistics", "", {}).at(0);
        return stats.at("Subscribers").at("data").get<std::uint64_t>();
    };
    const std::uint64_t before = subscribers();

    for (const auto& ex : examples(bus.address())) {
        SECTION(ex.name) {
            const Argv args = {"--monitor", "8"};
            auto monitor = std::async(std::launch::async, [&] { return run(concat(ex.argv, args), 30s); });
            // Once it has subscribed, make a net namespace, let pidnsd index it, then end it.
            bool subscribed = false;
            for (int i = 0; i < 600 && !subscribed; ++i) {
                subscribed = subscribers() > before;
                if (!subscribed) std::this_thread::sleep_for(10ms);
            }
            std::uint64_t id = 0;
            if (subscribed) {
                Proc netns({"unshare", "-n", "sleep", "1000"});
                wait_comm(netns.pid(), "sleep");
                REQUIRE(ns_inode(netns.pid(), "net") != ns_inode(getpid(), "net"));
                wait_indexed(bus.address(), netns.pid(), "net");
                id = expected_ns_id(netns.pid(), "net");
                std::this_thread::sleep_for(300ms);
                netns.stop();
            }
            const auto r = monitor.get();
            INFO(describe(ex, args, r));
            REQUIRE(subscribed);
            CHECK(r.status == 0);
            // Lines: "HH:MM:SS.mmm NamespaceAdded ID TYPE".
            bool added = false, removed = false;
            for (const auto& l : lines_of(r.out)) {
                std::istringstream in(l);
                std::string ts, what, type;
                std::uint64_t got = 0;
                if (!(in >> ts >> what >> got >> type) || got != id || type != "net") continue;
                added |= what == "NamespaceAdded";
                removed |= what == "NamespaceRemoved";
            }
            CHECK(added);
            CHECK(removed);
        }
    }
}
