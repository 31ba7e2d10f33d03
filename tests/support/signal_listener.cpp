// pidns-signal-listener ADDRESS SECONDS: a client that subscribes (Subscribe), then prints every
// NamespaceAdded/NamespaceRemoved/Resync it receives as "added|removed ID TYPE" or "resync"
// lines, for SECONDS. The tests run it as other users (setpriv) to see which signals reach whom.
// pidns-signal-listener ADDRESS --become UID: connects (as whoever runs it), then switches all its
// ids to UID and calls GetNamespace(0): prints "ok" or the D-Bus error name. The bus still knows
// the connection by the uid it connected with, so pidnsd must refuse it.
// pidns-signal-listener ADDRESS --mirror SECONDS: a subscriber that reads everything ("ready NAME"
// once subscribed, NAME its unique name) and keeps a mirror of the namespaces it may see (a
// listing after Subscribe, then the signals; a Resync lists again); after SECONDS and then 2 s
// without a signal (at most 30 s), compares the mirror with a fresh listing and prints "mirror added A removed R resyncs S listed L missing M extra E"
// (missing: listed but not mirrored; extra: mirrored but gone). Exit 0 unless the bus failed.
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "client.h"

namespace {
std::mutex out_mu;

void print(const pidns::client::NamespaceEvent& e) {
    std::lock_guard lk(out_mu);
    std::printf("%s %llu %s\n", pidns::client::to_string(e.kind), static_cast<unsigned long long>(e.id), e.type.c_str());
    std::fflush(stdout);
}

// The client library's Client with its own event-loop thread, printing every signal.
pidns::client::ConnectOptions listener(const std::string& address) {
    return pidns::client::ConnectOptions{address, true, print};
}
}  // namespace

// The --mirror mode (see the top).
int mirror(const std::string& address, int seconds) {
    using Clock = std::chrono::steady_clock;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<pidns::client::NamespaceEvent> events;
    auto on_event = [&](const pidns::client::NamespaceEvent& e) {
        std::lock_guard lk(mu);
        events.push_back(e);
        cv.notify_all();
    };
    pidns::client::Client c(pidns::client::ConnectOptions{address, true, on_event});
    c.subscribe();
    std::map<std::uint64_t, std::string> types;  // of every namespace seen, for the report
    auto listing = [&] {
        std::set<std::uint64_t> ids;
        for (const auto& n : c.list_namespaces()) {
            ids.insert(n.id);
            types[n.id] = n.type;
        }
        return ids;
    };
    std::set<std::uint64_t> mirror = listing();
    std::printf("ready %s\n", c.connection().getUniqueName().c_str());
    std::fflush(stdout);
    std::uint64_t added = 0, removed = 0, resyncs = 0;
    const auto until = Clock::now() + std::chrono::seconds(seconds);
    auto quiet_since = Clock::now();
    for (;;) {
        std::deque<pidns::client::NamespaceEvent> batch;
        {
            std::unique_lock lk(mu);
            cv.wait_for(lk, std::chrono::milliseconds(100), [&] { return !events.empty(); });
            batch.swap(events);
        }
        const auto now = Clock::now();
        if (!batch.empty()) quiet_since = now;
        for (const auto& e : batch) {
            switch (e.kind) {
            case pidns::client::NamespaceEvent::Kind::added:
                ++added;
                mirror.insert(e.id);
                types[e.id] = e.type;
                break;
            case pidns::client::NamespaceEvent::Kind::removed:
                ++removed;
                mirror.erase(e.id);
                break;
            case pidns::client::NamespaceEvent::Kind::resync:
                ++resyncs;
                mirror = listing();
                break;
            }
        }
        if (now >= until && now - quiet_since >= std::chrono::seconds(2)) break;
        if (now >= until + std::chrono::seconds(30)) break;
    }
    const auto now_listed = listing();
    std::size_t missing = 0, extra = 0;
    std::string which;
    for (auto id : now_listed)
        if (!mirror.count(id) && ++missing <= 8) which += " missing " + types[id] + ":" + std::to_string(id);
    for (auto id : mirror)
        if (!now_listed.count(id) && ++extra <= 8) which += " extra " + types[id] + ":" + std::to_string(id);
    if (!which.empty()) std::printf("differences%s\n", which.c_str());
    std::printf("mirror added %llu removed %llu resyncs %llu listed %zu missing %zu extra %zu\n",
                static_cast<unsigned long long>(added), static_cast<unsigned long long>(removed),
                static_cast<unsigned long long>(resyncs), now_listed.size(), missing, extra);
    std::fflush(stdout);
    return 0;
}

int main(int argc, char** argv) {
    if (argc == 4 && std::string(argv[2]) == "--mirror") {
        try {
            return mirror(argv[1], std::atoi(argv[3]));
        } catch (const pidns::client::Error& e) {
            std::fprintf(stderr, "pidns-signal-listener: %s: %s\n", e.name().c_str(), e.message().c_str());
            return 1;
        }
    }
    if (argc == 4 && std::string(argv[2]) == "--become") {
        try {
            pidns::client::Client l(listener(argv[1]));
            const auto uid = static_cast<uid_t>(std::atoi(argv[3]));
            if (setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) return 3;
            (void)l.get_namespace(0);
            std::printf("ok\n");
        } catch (const pidns::client::Error& e) {
            std::printf("%s\n", e.name().c_str());
        }
        return 0;
    }
    if (argc != 3) {
        std::fprintf(stderr, "usage: pidns-signal-listener ADDRESS SECONDS | ADDRESS --become UID | ADDRESS --mirror SECONDS\n");
        return 2;
    }
    try {
        pidns::client::Client l(listener(argv[1]));
        l.subscribe();
        {
            std::lock_guard lk(out_mu);
            std::printf("ready\n");
            std::fflush(stdout);
        }
        std::this_thread::sleep_for(std::chrono::seconds(std::atoi(argv[2])));
    } catch (const pidns::client::Error& e) {
        std::fprintf(stderr, "pidns-signal-listener: %s: %s\n", e.name().c_str(), e.message().c_str());
        return 1;
    }
    return 0;
}
