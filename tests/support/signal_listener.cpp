// pidns-signal-listener ADDRESS SECONDS: a client that subscribes (Subscribe), then prints every
// NamespaceAdded/NamespaceRemoved/Resync it receives as "added|removed ID TYPE" or "resync"
// lines, for SECONDS. The tests run it as other users (setpriv) to see which signals reach whom.
// pidns-signal-listener ADDRESS --become UID: connects (as whoever runs it), then switches all its
// ids to UID and calls GetNamespace(0): prints "ok" or the D-Bus error name. The bus still knows
// the connection by the uid it connected with, so pidnsd must refuse it.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
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

int main(int argc, char** argv) {
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
        std::fprintf(stderr, "usage: pidns-signal-listener ADDRESS SECONDS | ADDRESS --become UID\n");
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
