// pidns-flood: a hostile client of pidnsd (floods, slow consumers, connection churn), for tests and benches.
//
//   pidns-flood ADDRESS batches SECONDS INFLIGHT   one connection keeps INFLIGHT TranslatePids calls of
//                                                  65536 pids each in flight for SECONDS
//   pidns-flood ADDRESS calls SECONDS INFLIGHT     the same with TranslatePid(1, 0, 0)
//   pidns-flood ADDRESS noread N SECONDS           N connections that each Subscribe and call once,
//                                                  then never read their socket, for SECONDS
//   pidns-flood ADDRESS churn N THREADS PID        N short connections (THREADS at a time), each
//                                                  calling GetProcess(PID) once and leaving
//   pidns-flood ADDRESS latency N GAP_MS pidns|bus N round trips, GAP_MS apart, of TranslatePid(own pid)
//                                                  or of the bus's own GetId; prints p50, p99, max
//   pidns-flood ADDRESS dumps CONNS PER NS         CONNS connections each send PER DumpPidTree(NS)
//                                                  calls, all sent before any reply is read
// Prints one summary line: "replies R ok O errors E limits L" followed by "NAME=COUNT" per error
// name (the last, for churn, of the errors seen). Exit 0 unless the bus could not be used at all.
#include <systemd/sd-bus.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kDest = "org.pidns";
constexpr const char* kPath = "/org/pidns";
constexpr const char* kIface = "org.pidns.Manager1";

struct Tally {
    std::mutex mu;
    std::uint64_t replies = 0, ok = 0, errors = 0;
    std::map<std::string, std::uint64_t> names;
    void add(const sd_bus_error* e) {
        std::lock_guard lk(mu);
        ++replies;
        if (e == nullptr || !sd_bus_error_is_set(e)) {
            ++ok;
            return;
        }
        ++errors;
        ++names[e->name];
    }
    void print() {
        std::lock_guard lk(mu);
        const auto limits = names.count("org.freedesktop.DBus.Error.LimitsExceeded")
                                ? names["org.freedesktop.DBus.Error.LimitsExceeded"]
                                : 0;
        std::printf("replies %llu ok %llu errors %llu limits %llu", static_cast<unsigned long long>(replies),
                    static_cast<unsigned long long>(ok), static_cast<unsigned long long>(errors),
                    static_cast<unsigned long long>(limits));
        for (const auto& [n, c] : names) std::printf(" %s=%llu", n.c_str(), static_cast<unsigned long long>(c));
        std::printf("\n");
        std::fflush(stdout);
    }
};

sd_bus* open_bus(const char* address) {
    sd_bus* bus = nullptr;
    if (sd_bus_new(&bus) < 0) return nullptr;
    if (sd_bus_set_address(bus, address) < 0 || sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0) {
        sd_bus_unref(bus);
        return nullptr;
    }
    return bus;
}

int on_reply(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* t = static_cast<Tally*>(userdata);
    t->add(sd_bus_message_get_error(m));
    return 0;
}

// Keeps `inflight` calls in flight on one connection for `seconds`.
int pipeline(const char* address, bool batches, double seconds, int inflight) {
    sd_bus* bus = open_bus(address);
    if (!bus) {
        std::fprintf(stderr, "pidns-flood: cannot connect to %s\n", address);
        return 1;
    }
    std::vector<std::uint32_t> pids(65536);
    for (std::size_t i = 0; i < pids.size(); ++i) pids[i] = static_cast<std::uint32_t>(i + 1);
    Tally t;
    std::uint64_t sent = 0;
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    auto send_one = [&]() -> bool {
        sd_bus_message* m = nullptr;
        if (sd_bus_message_new_method_call(bus, &m, kDest, kPath, kIface, batches ? "TranslatePids" : "TranslatePid") < 0)
            return false;
        int r = batches ? sd_bus_message_append_array(m, 'u', pids.data(), pids.size() * sizeof(std::uint32_t))
                        : sd_bus_message_append(m, "u", 1u);
        if (r >= 0) r = sd_bus_message_append(m, "tt", std::uint64_t{0}, std::uint64_t{0});
        if (r >= 0) r = sd_bus_call_async(bus, nullptr, m, on_reply, &t, 60'000'000);
        sd_bus_message_unref(m);
        if (r >= 0) ++sent;
        return r >= 0;
    };
    while (Clock::now() < until) {
        while (sent - t.replies < static_cast<std::uint64_t>(inflight))
            if (!send_one()) break;
        int r = sd_bus_process(bus, nullptr);
        if (r < 0) break;
        if (r == 0) (void)sd_bus_wait(bus, 50'000);
    }
    t.print();
    sd_bus_flush_close_unref(bus);
    return 0;
}

// N connections that subscribe and call once, then never read.
int noread(const char* address, int n, double seconds) {
    std::vector<sd_bus*> buses;
    for (int i = 0; i < n; ++i) {
        sd_bus* bus = open_bus(address);
        if (!bus) break;
        sd_bus_message* m = nullptr;
        for (const char* member : {"Subscribe", "GetStatistics"}) {
            if (sd_bus_message_new_method_call(bus, &m, kDest, kPath, kIface, member) >= 0) {
                (void)sd_bus_send(bus, m, nullptr);
                sd_bus_message_unref(m);
            }
        }
        (void)sd_bus_flush(bus);
        buses.push_back(bus);
    }
    std::printf("connected %zu\n", buses.size());
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    for (auto* b : buses) sd_bus_close_unref(b);
    return buses.empty() ? 1 : 0;
}

// N short connections, each one GetProcess(pid) and gone.
int churn(const char* address, int n, int threads, std::uint32_t pid) {
    Tally t;
    std::atomic<int> next{0}, failed{0};
    auto worker = [&] {
        while (next.fetch_add(1) < n) {
            sd_bus* bus = open_bus(address);
            if (!bus) {
                ++failed;
                continue;
            }
            sd_bus_error e = SD_BUS_ERROR_NULL;
            sd_bus_message* reply = nullptr;
            (void)sd_bus_call_method(bus, kDest, kPath, kIface, "GetProcess", &e, &reply, "u", pid);
            t.add(&e);
            sd_bus_error_free(&e);
            sd_bus_message_unref(reply);
            sd_bus_flush_close_unref(bus);
        }
    };
    std::vector<std::thread> ts;
    for (int i = 0; i < threads; ++i) ts.emplace_back(worker);
    for (auto& th : ts) th.join();
    if (failed > 0) std::printf("connect-failures %d ", failed.load());
    t.print();
    return failed == n ? 1 : 0;
}

// `n` round trips `gap_ms` apart, of TranslatePid(own pid) ("pidns") or the bus's own GetId ("bus").
int latency(const char* address, int n, int gap_ms, bool bus_only) {
    sd_bus* bus = open_bus(address);
    if (!bus) return 1;
    std::vector<double> ms;
    for (int i = 0; i < n; ++i) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message* reply = nullptr;
        const auto t0 = Clock::now();
        const int r = bus_only ? sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                    "org.freedesktop.DBus", "GetId", &e, &reply, "")
                               : sd_bus_call_method(bus, kDest, kPath, kIface, "TranslatePid", &e, &reply, "utt",
                                                    static_cast<std::uint32_t>(getpid()), std::uint64_t{0}, std::uint64_t{0});
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
        if (r < 0) {
            std::fprintf(stderr, "pidns-flood: call failed: %s\n", std::strerror(-r));
            return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
    }
    std::sort(ms.begin(), ms.end());
    std::printf("p50 %.3f p99 %.3f max %.3f ms\n", ms[ms.size() / 2], ms[ms.size() * 99 / 100], ms.back());
    sd_bus_flush_close_unref(bus);
    return 0;
}

// `conns` connections, each sending `per` DumpPidTree(ns) at once; then every reply is read.
int dumps(const char* address, int conns, int per, std::uint64_t ns) {
    Tally t;
    std::vector<sd_bus*> buses;
    for (int i = 0; i < conns; ++i) {
        sd_bus* bus = open_bus(address);
        if (!bus) {
            std::fprintf(stderr, "pidns-flood: cannot connect to %s\n", address);
            return 1;
        }
        buses.push_back(bus);
    }
    for (sd_bus* bus : buses)
        for (int k = 0; k < per; ++k)
            if (sd_bus_call_method_async(bus, nullptr, kDest, kPath, kIface, "DumpPidTree", on_reply, &t, "t", ns) < 0) {
                std::fprintf(stderr, "pidns-flood: cannot send DumpPidTree\n");
                return 1;
            }
    const auto want = static_cast<std::uint64_t>(conns) * static_cast<std::uint64_t>(per);
    const auto until = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < until) {
        {
            std::lock_guard lk(t.mu);
            if (t.replies >= want) break;
        }
        bool any = false;
        for (sd_bus* bus : buses) {
            const int r = sd_bus_process(bus, nullptr);
            if (r < 0) return 1;
            any = any || r > 0;
        }
        if (!any) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    t.print();
    for (sd_bus* bus : buses) sd_bus_flush_close_unref(bus);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 5 && (std::strcmp(argv[2], "batches") == 0 || std::strcmp(argv[2], "calls") == 0))
        return pipeline(argv[1], std::strcmp(argv[2], "batches") == 0, std::atof(argv[3]), std::atoi(argv[4]));
    if (argc >= 5 && std::strcmp(argv[2], "noread") == 0) return noread(argv[1], std::atoi(argv[3]), std::atof(argv[4]));
    if (argc >= 6 && std::strcmp(argv[2], "churn") == 0)
        return churn(argv[1], std::atoi(argv[3]), std::atoi(argv[4]), static_cast<std::uint32_t>(std::atoi(argv[5])));
    if (argc >= 6 && std::strcmp(argv[2], "dumps") == 0)
        return dumps(argv[1], std::atoi(argv[3]), std::atoi(argv[4]), std::strtoull(argv[5], nullptr, 10));
    if (argc >= 6 && std::strcmp(argv[2], "latency") == 0)
        return latency(argv[1], std::atoi(argv[3]), std::atoi(argv[4]), std::strcmp(argv[5], "bus") == 0);
    std::fprintf(stderr,
                 "usage: pidns-flood ADDRESS batches|calls SECONDS INFLIGHT | ADDRESS noread N SECONDS | "
                 "ADDRESS churn N THREADS PID | ADDRESS latency N GAP_MS pidns|bus | ADDRESS dumps CONNS PER NS\n");
    return 2;
}
