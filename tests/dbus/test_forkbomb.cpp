// seed 003's fork bomb (32768 short-lived processes, half of them in a nested pid namespace) while
// clients keep calling; afterwards the daemon's answers equal a fresh scan of /proc.
#include <catch2/catch.hpp>

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <set>
#include <thread>

#include <signal.h>

#include "harness.h"
#include "model.h"
#include "support/nstree.h"

using namespace pidns::harness;
using namespace std::chrono_literals;

namespace {

pid_t start_bomber(int n, bool nested) {
    std::vector<std::string> argv{PIDNS_FORKBOMB_BIN, std::to_string(n)};
    if (nested) argv.emplace_back("--nested");
    const ExecArgs args(argv);
    pid_t b = fork();
    REQUIRE(b >= 0);
    if (b == 0) args.exec();
    return b;
}

struct Snapshot {
    std::set<std::pair<std::uint64_t, std::string>> namespaces;
    std::set<std::uint32_t> processes;
    std::uint32_t processes_property = 0;
};

Snapshot from_daemon(Client& c) {
    Snapshot s;
    for (const auto& e : c.ListNamespaces("")) {
        s.namespaces.emplace(std::get<0>(e), std::get<2>(e));
        if (std::get<2>(e) == "pid")
            for (auto p : c.ListProcesses(std::get<0>(e))) s.processes.insert(p);
    }
    s.processes_property = c.Processes();
    return s;
}

Snapshot fresh_scan() {
    auto m = pidns::Model::create();
    REQUIRE(m.ok());
    REQUIRE((*m)->rescan().ok());
    Snapshot s;
    for (const auto& [id, ns] : (*m)->index().namespaces())
        s.namespaces.emplace(id, std::string(pidns::ns_type_name(ns.meta.type)));
    for (const auto& [tgid, p] : (*m)->index().processes()) s.processes.insert(static_cast<std::uint32_t>(tgid));
    s.processes_property = static_cast<std::uint32_t>(s.processes.size());
    return s;
}

template <class T>
std::string diff(const std::set<T>& a, const std::set<T>& b) {
    std::vector<T> only_a, only_b;
    std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only_a));
    std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(only_b));
    return std::to_string(only_a.size()) + " only in the daemon, " + std::to_string(only_b.size()) + " only in the scan";
}

}  // namespace

namespace {

// NSpid chains of every process of the scan, as the daemon answers them (GetProcess, root's view).
std::vector<std::string> chain_differences(Client& c) {
    auto m = pidns::Model::create();
    REQUIRE(m.ok());
    REQUIRE((*m)->rescan().ok());
    std::vector<std::string> out;
    for (const auto& [tgid, p] : (*m)->index().processes()) {
        const auto want = p.chains.nspid();
        try {
            const auto got = std::get<0>(c.GetProcess(static_cast<std::uint32_t>(tgid)));
            if (!std::equal(got.begin(), got.end(), want.begin(), want.end()))
                out.push_back(std::to_string(tgid) + ": NSpid differs");
        } catch (const sdbus::Error& e) {
            if (::kill(tgid, 0) == 0) out.push_back(std::to_string(tgid) + ": " + e.getName());
        }
    }
    return out;
}

// seed 003's bomb, 2 x 16384 (one half in a nested pid namespace) while a client calls; then,
// within 1 s, the daemon's namespaces, processes and NSpid chains equal a fresh scan's.
std::uint64_t storm(const std::vector<std::string>& daemon_args, const char* label) {
    PrivateBus bus;
    Daemon d(bus, daemon_args);
    pidns::testing::ProcTree tree;
    const pid_t nested = tree.spawn(tree.spawn(0, CLONE_NEWPID), CLONE_NEWPID);
    const auto nested_chain = pidns::testing::oracle_nspid(nested);
    Client c(bus.address());
    const std::uint64_t nested_ns = expected_ns_id(nested, "pid");
    const auto lost_before = stat_of(c, "EventsLost");
    const auto rescans_before = stat_of(c, "Rescans");
    std::atomic<bool> done{false};
    std::atomic<int> calls{0}, wrong{0}, errors{0};
    std::vector<double> lat_ms;
    std::thread client([&] {
        Client mine(bus.address());
        const auto self = static_cast<std::uint32_t>(getpid());
        while (!done) {
            const auto t0 = std::chrono::steady_clock::now();
            try {
                if (mine.TranslatePid(self, 0, 0) != self) ++wrong;
                if (mine.TranslatePid(static_cast<std::uint32_t>(nested), 0, nested_ns) !=
                    static_cast<std::uint32_t>(nested_chain.back()))
                    ++wrong;
            } catch (const sdbus::Error& e) {
                ++errors;
            }
            lat_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
            ++calls;
        }
    });
    const auto t0 = std::chrono::steady_clock::now();
    const pid_t host_bomber = start_bomber(16384, false);
    const pid_t nested_bomber = start_bomber(16384, true);
    int st1 = 0, st2 = 0;
    waitpid(host_bomber, &st1, 0);
    waitpid(nested_bomber, &st2, 0);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    done = true;
    client.join();
    CHECK(WIFEXITED(st1));
    CHECK(WEXITSTATUS(st1) == 0);
    CHECK(WIFEXITED(st2));
    CHECK(WEXITSTATUS(st2) == 0);

    std::sort(lat_ms.begin(), lat_ms.end());
    const double p50 = lat_ms.empty() ? 0 : lat_ms[lat_ms.size() / 2];
    const double p99 = lat_ms.empty() ? 0 : lat_ms[lat_ms.size() * 99 / 100];
    std::cout << label << ": fork bomb: 32768 processes in " << secs << " s (" << 32768 / secs << "/s); " << calls
              << " call pairs answered meanwhile, p50 " << p50 << " ms, p99 " << p99 << " ms, max "
              << (lat_ms.empty() ? 0 : lat_ms.back()) << " ms\n";
    CHECK(calls > 10);  // it kept answering
    CHECK(wrong == 0);
    CHECK(errors == 0);

    // Afterwards, within 1 s: the same namespaces, processes and NSpid chains as a fresh scan.
    Snapshot daemon, scan;
    std::vector<std::string> chains;
    bool equal = false;
    const auto storm_end = std::chrono::steady_clock::now();
    while (!equal && std::chrono::steady_clock::now() < storm_end + 1s) {
        try {
            daemon = from_daemon(c);
        } catch (const sdbus::Error& e) {
            // A namespace listed a moment ago may be gone by the next call (the nested bomber's
            // pid namespace dies with its init): only the error for that is acceptable.
            REQUIRE(e.getName() == "org.pidns.Error.NoSuchNamespace");
            continue;
        }
        scan = fresh_scan();
        equal = daemon.namespaces == scan.namespaces && daemon.processes == scan.processes &&
                daemon.processes_property == scan.processes_property;
        if (equal) {
            chains = chain_differences(c);
            equal = chains.empty();
        }
        if (!equal) std::this_thread::sleep_for(20ms);
    }
    const double settle = std::chrono::duration<double>(std::chrono::steady_clock::now() - storm_end).count();
    INFO("namespaces: " << diff(daemon.namespaces, scan.namespaces));
    INFO("processes: " << diff(daemon.processes, scan.processes));
    INFO("NSpid chains: " << chains.size() << " differ" << (chains.empty() ? "" : ", first " + chains.front()));
    CHECK(daemon.namespaces == scan.namespaces);
    CHECK(daemon.processes == scan.processes);
    CHECK(daemon.processes_property == scan.processes_property);
    CHECK(chains.empty());
    CHECK(equal);
    const auto lost = stat_of(c, "EventsLost") - lost_before;
    const auto rescans = stat_of(c, "Rescans") - rescans_before;
    std::cout << label << ": after the storm: " << daemon.namespaces.size() << " namespaces, " << daemon.processes.size()
              << " processes, NSpid chains compared; equal to a fresh scan: " << (equal ? "yes" : "NO") << ", " << settle
              << " s after the storm; losses (ENOBUFS) " << lost << ", rescans " << rescans << ", receive buffer "
              << stat_of(c, "ReceiveBufferBytes") << " bytes; events " << stat_of(c, "EventsReceived") << ", reads "
              << stat_of(c, "EventReads") << ", coalesced " << stat_of(c, "EventReadsCoalesced") << "\n";
    if (!equal) std::cout << "daemon log tail: " << d.log().substr(d.log().size() > 600 ? d.log().size() - 600 : 0) << "\n";
    return lost;
}

}  // namespace

TEST_CASE("fork storm, default receive buffer: the daemon keeps answering and then equals a fresh scan within 1 s") {
    storm({}, "default buffer");
}

TEST_CASE("fork storm, 4 KiB receive buffer: events are lost, rescans recover, equal to a fresh scan within 1 s") {
    const auto lost = storm({"--netlink-buffer=4K"}, "4 KiB buffer");
    CHECK(lost > 0);  // the buffer is small enough that this run exercises the loss path
}
