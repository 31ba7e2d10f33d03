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

#include "org.pidns.Manager1.proxy.h"

namespace {
std::mutex out_mu;

class Listener final : public sdbus::ProxyInterfaces<org::pidns::Manager1_proxy> {
public:
    explicit Listener(const std::string& address)
        : ProxyInterfaces(sdbus::createSessionBusConnectionWithAddress(address), "org.pidns", "/org/pidns") {
        registerProxy();
    }
    ~Listener() { unregisterProxy(); }

private:
    void onNamespaceAdded(const std::uint64_t& id, const std::string& type) override { print("added", id, type); }
    void onNamespaceRemoved(const std::uint64_t& id, const std::string& type) override { print("removed", id, type); }
    void onResync() override { print("resync", 0, ""); }
    static void print(const char* what, std::uint64_t id, const std::string& type) {
        std::lock_guard lk(out_mu);
        std::printf("%s %llu %s\n", what, static_cast<unsigned long long>(id), type.c_str());
        std::fflush(stdout);
    }
};
}  // namespace

int main(int argc, char** argv) {
    if (argc == 4 && std::string(argv[2]) == "--become") {
        try {
            Listener l(argv[1]);
            const auto uid = static_cast<uid_t>(std::atoi(argv[3]));
            if (setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) return 3;
            (void)l.GetNamespace(0);
            std::printf("ok\n");
        } catch (const sdbus::Error& e) {
            std::printf("%s\n", e.getName().c_str());
        }
        return 0;
    }
    if (argc != 3) {
        std::fprintf(stderr, "usage: pidns-signal-listener ADDRESS SECONDS | ADDRESS --become UID\n");
        return 2;
    }
    try {
        Listener l(argv[1]);
        l.Subscribe();
        {
            std::lock_guard lk(out_mu);
            std::printf("ready\n");
            std::fflush(stdout);
        }
        std::this_thread::sleep_for(std::chrono::seconds(std::atoi(argv[2])));
    } catch (const sdbus::Error& e) {
        std::fprintf(stderr, "pidns-signal-listener: %s: %s\n", e.getName().c_str(), e.getMessage().c_str());
        return 1;
    }
    return 0;
}
