// pidns-flood: a hostile client of pidnsd (floods, slow consumers, connection churn), for tests and benches.
//
// SIGTERM ends batches, calls, lists and noread early (with their summary).
//   pidns-flood ADDRESS batches SECONDS INFLIGHT   one connection keeps INFLIGHT TranslatePids calls of
//                                                  65536 pids each in flight for SECONDS
//   pidns-flood ADDRESS calls SECONDS INFLIGHT     the same with TranslatePid(1, 0, 0)
//   pidns-flood ADDRESS lists SECONDS INFLIGHT     the same with ListProcesses(0) (a walk of every
//                                                  process: calls that stay in flight a while)
//                                                  (each of these three takes CONNS after INFLIGHT:
//                                                  that many connections, INFLIGHT on each)
//   pidns-flood ADDRESS noread N SECONDS           N connections that each Subscribe and call once,
//                                                  then never read their socket, for SECONDS; then
//                                                  prints "unread max M total T": the bytes waiting
//                                                  in their sockets' receive queues (FIONREAD)
//   pidns-flood ADDRESS leave N HOLD AFTER         N connections Subscribe (answered: "subscribed"), then
//                                                  after HOLD seconds all close ("closed") while the
//                                                  process stays AFTER seconds more
//   pidns-flood ADDRESS churn N THREADS PID        N short connections (THREADS at a time), each
//                                                  calling GetProcess(PID) once and leaving
//   pidns-flood ADDRESS latency N GAP_MS pidns|bus N round trips, GAP_MS apart, of TranslatePid(own pid)
//                                                  or of the bus's own GetId; prints p50, p99, max
//   pidns-flood ADDRESS dumps CONNS PER NS         CONNS connections each send PER DumpPidTree(NS)
//                                                  calls, all sent before any reply is read
//   pidns-flood ADDRESS dumploop SECONDS CONNS PER NS  CONNS connections each keep PER DumpPidTree(NS)
//                                                  calls in flight for SECONDS
//   pidns-flood ADDRESS fresh-batches SECONDS THREADS  THREADS at a time, for SECONDS: a new connection
//                                                  sends 4 TranslatePids of 65536 pids at once (before
//                                                  the bus can have told pidnsd who it is), reads the
//                                                  answers and leaves
//   pidns-flood ADDRESS denied SECONDS PER GAP_MS PID,PID,...  for SECONDS: a new connection calls
//                                                  TranslatePid(PID, 0, 0) for the next PER targets of
//                                                  the list in turn, one after the other GAP_MS apart,
//                                                  then leaves
// Prints one summary line: "replies R ok O errors E limits L" followed by "NAME=COUNT" per error
// name (the last, for churn, of the errors seen), then each kind of LimitsExceeded message seen (its
// first, at most 4) as "limit-text: TEXT". Exit 0 unless the bus could not be used at all.
#include <systemd/sd-bus.h>

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
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
volatile std::sig_atomic_t g_stop = 0;  // SIGTERM: the floods end early and print their summary
void on_term(int) { g_stop = 1; }
constexpr const char* kDest = "org.pidns";
constexpr const char* kPath = "/org/pidns";
constexpr const char* kIface = "org.pidns.Manager1";

struct Tally {
    std::mutex mu;
    std::uint64_t replies = 0, ok = 0, errors = 0;
    std::map<std::string, std::uint64_t> names;
    std::vector<std::string> limit_texts;  // the first LimitsExceeded message of each kind
    void add(const sd_bus_error* e) {
        std::lock_guard lk(mu);
        ++replies;
        if (e == nullptr || !sd_bus_error_is_set(e)) {
            ++ok;
            return;
        }
        ++errors;
        ++names[e->name];
        if (std::strcmp(e->name, "org.freedesktop.DBus.Error.LimitsExceeded") == 0 && e->message) note_limit(e->message);
    }
    // Kinds told apart by their first 24 characters.
    void note_limit(const std::string& text) {
        for (const auto& t : limit_texts)
            if (t.compare(0, 24, text, 0, 24) == 0) return;
        if (limit_texts.size() < 4) limit_texts.push_back(text);
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
        for (const auto& t : limit_texts) std::printf("limit-text: %s\n", t.c_str());
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

// `n` connections, or none (and a message) if one of them cannot be made.
std::vector<sd_bus*> open_buses(const char* address, int n) {
    std::vector<sd_bus*> buses;
    for (int i = 0; i < n; ++i) {
        sd_bus* bus = open_bus(address);
        if (!bus) {
            std::fprintf(stderr, "pidns-flood: cannot connect to %s\n", address);
            for (sd_bus* b : buses) sd_bus_unref(b);
            return {};
        }
        buses.push_back(bus);
    }
    return buses;
}

int on_reply(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* t = static_cast<Tally*>(userdata);
    t->add(sd_bus_message_get_error(m));
    return 0;
}

enum class Kind { batches, calls, lists };

// Keeps `inflight` calls in flight on each of `conns` connections for `seconds`.
int pipeline(const char* address, Kind kind, double seconds, int inflight, int conns) {
    const bool batches = kind == Kind::batches;
    struct Conn {
        sd_bus* bus = nullptr;
        std::uint64_t sent = 0;
        Tally t;
    };
    std::vector<Conn> cs(static_cast<std::size_t>(std::max(1, conns)));
    for (auto& c : cs)
        if (!(c.bus = open_bus(address))) {
            std::fprintf(stderr, "pidns-flood: cannot connect to %s\n", address);
            return 1;
        }
    std::vector<std::uint32_t> pids(65536);
    for (std::size_t i = 0; i < pids.size(); ++i) pids[i] = static_cast<std::uint32_t>(i + 1);
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    auto send_one = [&](Conn& c) -> bool {
        sd_bus_message* m = nullptr;
        const char* method = batches ? "TranslatePids" : kind == Kind::calls ? "TranslatePid" : "ListProcesses";
        if (sd_bus_message_new_method_call(c.bus, &m, kDest, kPath, kIface, method) < 0) return false;
        int r = kind == Kind::lists ? sd_bus_message_append(m, "t", std::uint64_t{0})
                : batches           ? sd_bus_message_append_array(m, 'u', pids.data(), pids.size() * sizeof(std::uint32_t))
                                    : sd_bus_message_append(m, "u", 1u);
        if (r >= 0 && kind != Kind::lists) r = sd_bus_message_append(m, "tt", std::uint64_t{0}, std::uint64_t{0});
        if (r >= 0) r = sd_bus_call_async(c.bus, nullptr, m, on_reply, &c.t, 60'000'000);
        sd_bus_message_unref(m);
        if (r >= 0) ++c.sent;
        return r >= 0;
    };
    while (Clock::now() < until && !g_stop) {
        bool any = false;
        for (auto& c : cs) {
            while (c.sent - c.t.replies < static_cast<std::uint64_t>(inflight))
                if (!send_one(c)) break;
            const int r = sd_bus_process(c.bus, nullptr);
            if (r < 0) return 1;
            any = any || r > 0;
        }
        if (!any) {
            if (cs.size() == 1)
                (void)sd_bus_wait(cs[0].bus, 50'000);
            else
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    Tally t;
    for (auto& c : cs) {
        t.replies += c.t.replies;
        t.ok += c.t.ok;
        t.errors += c.t.errors;
        for (const auto& [n, k] : c.t.names) t.names[n] += k;
        for (const auto& lt : c.t.limit_texts) t.note_limit(lt);
        sd_bus_flush_close_unref(c.bus);
    }
    t.print();
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
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < until && !g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    // What the kernel holds for them (the bus holds the rest: its Debug.Stats OutgoingBytes).
    long max = 0, total = 0;
    for (auto* b : buses) {
        int n = 0;
        if (::ioctl(sd_bus_get_fd(b), FIONREAD, &n) == 0) {
            max = std::max<long>(max, n);
            total += n;
        }
    }
    std::printf("unread max %ld total %ld\n", max, total);
    std::fflush(stdout);
    for (auto* b : buses) sd_bus_close_unref(b);
    return buses.empty() ? 1 : 0;
}

// N connections subscribe, close after `hold` seconds; the process lives `after` seconds more.
int leave(const char* address, int n, double hold, double after) {
    std::vector<sd_bus*> buses;
    for (int i = 0; i < n; ++i) {
        sd_bus* bus = open_bus(address);
        if (!bus) return 1;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message* reply = nullptr;
        const int r = sd_bus_call_method(bus, kDest, kPath, kIface, "Subscribe", &e, &reply, "");
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
        if (r < 0) {
            std::fprintf(stderr, "pidns-flood: Subscribe failed: %s\n", std::strerror(-r));
            return 1;
        }
        buses.push_back(bus);
    }
    std::printf("subscribed %zu\n", buses.size());
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::duration<double>(hold));
    for (auto* b : buses) sd_bus_close_unref(b);
    std::printf("closed\n");
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::duration<double>(after));
    return 0;
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
    const std::vector<sd_bus*> buses = open_buses(address, conns);
    if (buses.empty()) return 1;
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

// `conns` connections each keep `per` DumpPidTree(ns) in flight for `seconds`.
int dumploop(const char* address, double seconds, int conns, int per, std::uint64_t ns) {
    Tally t;
    const std::vector<sd_bus*> buses = open_buses(address, conns);
    if (buses.empty()) return 1;
    std::vector<std::uint64_t> sent(static_cast<std::size_t>(conns), 0);
    std::vector<Tally> own(static_cast<std::size_t>(conns));
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < until) {
        bool any = false;
        for (std::size_t i = 0; i < buses.size(); ++i) {
            while (sent[i] - own[i].replies < static_cast<std::uint64_t>(per)) {
                if (sd_bus_call_method_async(buses[i], nullptr, kDest, kPath, kIface, "DumpPidTree", on_reply, &own[i], "t", ns) < 0)
                    return 1;
                ++sent[i];
            }
            const int r = sd_bus_process(buses[i], nullptr);
            if (r < 0) return 1;
            any = any || r > 0;
        }
        if (!any) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (auto& o : own) {
        t.replies += o.replies;
        t.ok += o.ok;
        t.errors += o.errors;
        for (const auto& [n, c] : o.names) t.names[n] += c;
    }
    t.print();
    for (sd_bus* bus : buses) sd_bus_close_unref(bus);
    return 0;
}

// For `seconds`, `threads` at a time: a new connection sends 4 x TranslatePids(65536 pids) at once, reads the answers, leaves.
int fresh_batches(const char* address, double seconds, int threads) {
    Tally t;
    std::vector<std::uint32_t> pids(65536);
    for (std::size_t i = 0; i < pids.size(); ++i) pids[i] = static_cast<std::uint32_t>(i + 1);
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    auto worker = [&] {
        while (Clock::now() < until) {
            sd_bus* bus = open_bus(address);
            if (!bus) continue;
            Tally mine;
            int sent = 0;
            for (int k = 0; k < 4; ++k) {
                sd_bus_message* m = nullptr;
                if (sd_bus_message_new_method_call(bus, &m, kDest, kPath, kIface, "TranslatePids") < 0) break;
                int r = sd_bus_message_append_array(m, 'u', pids.data(), pids.size() * sizeof(std::uint32_t));
                if (r >= 0) r = sd_bus_message_append(m, "tt", std::uint64_t{0}, std::uint64_t{0});
                if (r >= 0) r = sd_bus_call_async(bus, nullptr, m, on_reply, &mine, 60'000'000);
                sd_bus_message_unref(m);
                if (r >= 0) ++sent;
            }
            while (mine.replies < static_cast<std::uint64_t>(sent)) {
                const int r = sd_bus_process(bus, nullptr);
                if (r < 0) break;
                if (r == 0) (void)sd_bus_wait(bus, 100'000);
            }
            {
                std::lock_guard lk(t.mu);
                t.replies += mine.replies;
                t.ok += mine.ok;
                t.errors += mine.errors;
                for (const auto& [n, c] : mine.names) t.names[n] += c;
            }
            sd_bus_flush_close_unref(bus);
        }
    };
    std::vector<std::thread> ts;
    for (int i = 0; i < threads; ++i) ts.emplace_back(worker);
    for (auto& th : ts) th.join();
    t.print();
    return 0;
}

// For `seconds`: a new connection calls TranslatePid(target) for the next `per` targets in turn, then leaves.
int denied(const char* address, double seconds, int per, double gap_ms, const std::vector<std::uint32_t>& targets) {
    Tally t;
    std::size_t next = 0;
    std::uint64_t connections = 0;
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < until) {
        sd_bus* bus = open_bus(address);
        if (!bus) {
            std::fprintf(stderr, "pidns-flood: cannot connect to %s\n", address);
            return 1;
        }
        ++connections;
        for (int k = 0; k < per && Clock::now() < until; ++k) {
            sd_bus_error e = SD_BUS_ERROR_NULL;
            sd_bus_message* reply = nullptr;
            (void)sd_bus_call_method(bus, kDest, kPath, kIface, "TranslatePid", &e, &reply, "utt",
                                     targets[next++ % targets.size()], std::uint64_t{0}, std::uint64_t{0});
            t.add(&e);
            sd_bus_error_free(&e);
            sd_bus_message_unref(reply);
            if (gap_ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(gap_ms));
        }
        sd_bus_flush_close_unref(bus);
    }
    std::printf("connections %llu ", static_cast<unsigned long long>(connections));
    t.print();
    return 0;
}

std::vector<std::uint32_t> pid_list(const char* s) {
    std::vector<std::uint32_t> out;
    for (const char* p = s; *p;) {
        char* end = nullptr;
        const unsigned long v = std::strtoul(p, &end, 10);
        if (end == p) break;
        out.push_back(static_cast<std::uint32_t>(v));
        p = *end == ',' ? end + 1 : end;
    }
    return out;
}

}  // namespace

// One connection sends N TranslatePid(own pid) at once and waits (at most SECONDS) for every
// answer: how many were refused for a quota, and the time from the first of those refusals to
// the last (they fall due together, 5 s after the calls; pidnsd sends them paced).
// It first makes one call (pidnsd then knows who it is), prints "ready" and waits for SIGUSR1
// before the burst; "sent" once the burst is written. A test stops pidnsd meanwhile, so that
// pidnsd reads the whole burst at once whatever the host's load.
int burst(const char* address, int n, double seconds) {
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &usr1, nullptr) != 0) return 1;
    sd_bus* bus = open_bus(address);
    if (!bus) return 1;
    if (sd_bus_call_method(bus, kDest, kPath, kIface, "TranslatePid", nullptr, nullptr, "utt",
                           static_cast<std::uint32_t>(getpid()), std::uint64_t{0}, std::uint64_t{0}) < 0)
        return 1;
    std::printf("ready\n");
    std::fflush(stdout);
    int sig = 0;
    if (sigwait(&usr1, &sig) != 0) return 1;
    struct State {
        int replies = 0, refused = 0;
        Clock::time_point first{}, last{};
    } st;
    auto on_answer = +[](sd_bus_message* m, void* u, sd_bus_error*) -> int {
        auto* s = static_cast<State*>(u);
        ++s->replies;
        const sd_bus_error* e = sd_bus_message_get_error(m);
        if (e != nullptr && sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.LimitsExceeded")) {
            const auto now = Clock::now();
            if (s->refused++ == 0) s->first = now;
            s->last = now;
        }
        return 0;
    };
    for (int i = 0; i < n; ++i) {
        sd_bus_message* m = nullptr;
        int r = sd_bus_message_new_method_call(bus, &m, kDest, kPath, kIface, "TranslatePid");
        if (r >= 0) r = sd_bus_message_append(m, "utt", static_cast<std::uint32_t>(getpid()), std::uint64_t{0}, std::uint64_t{0});
        if (r >= 0) r = sd_bus_call_async(bus, nullptr, m, on_answer, &st, 60'000'000);
        sd_bus_message_unref(m);
        if (r < 0) return 1;
    }
    (void)sd_bus_flush(bus);
    std::printf("sent\n");
    std::fflush(stdout);
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    while (st.replies < n && Clock::now() < until && !g_stop) {
        const int r = sd_bus_process(bus, nullptr);
        if (r < 0) return 1;
        if (r == 0) (void)sd_bus_wait(bus, 100'000);
    }
    std::printf("burst: %d replies, %d refused, refusals spread over %.1f ms\n", st.replies, st.refused,
                std::chrono::duration<double, std::milli>(st.last - st.first).count());
    sd_bus_flush_close_unref(bus);
    return st.replies == n ? 0 : 1;
}

int main(int argc, char** argv) {
    std::signal(SIGTERM, on_term);
    if (argc >= 5 && (std::strcmp(argv[2], "batches") == 0 || std::strcmp(argv[2], "calls") == 0 ||
                      std::strcmp(argv[2], "lists") == 0)) {
        const Kind kind = std::strcmp(argv[2], "batches") == 0 ? Kind::batches
                          : std::strcmp(argv[2], "calls") == 0 ? Kind::calls
                                                               : Kind::lists;
        return pipeline(argv[1], kind, std::atof(argv[3]), std::atoi(argv[4]), argc >= 6 ? std::atoi(argv[5]) : 1);
    }
    if (argc >= 5 && std::strcmp(argv[2], "noread") == 0) return noread(argv[1], std::atoi(argv[3]), std::atof(argv[4]));
    if (argc >= 6 && std::strcmp(argv[2], "leave") == 0)
        return leave(argv[1], std::atoi(argv[3]), std::atof(argv[4]), std::atof(argv[5]));
    if (argc >= 6 && std::strcmp(argv[2], "churn") == 0)
        return churn(argv[1], std::atoi(argv[3]), std::atoi(argv[4]), static_cast<std::uint32_t>(std::atoi(argv[5])));
    if (argc >= 6 && std::strcmp(argv[2], "dumps") == 0)
        return dumps(argv[1], std::atoi(argv[3]), std::atoi(argv[4]), std::strtoull(argv[5], nullptr, 10));
    if (argc >= 7 && std::strcmp(argv[2], "dumploop") == 0)
        return dumploop(argv[1], std::atof(argv[3]), std::atoi(argv[4]), std::atoi(argv[5]), std::strtoull(argv[6], nullptr, 10));
    if (argc >= 5 && std::strcmp(argv[2], "fresh-batches") == 0) return fresh_batches(argv[1], std::atof(argv[3]), std::atoi(argv[4]));
    if (argc >= 7 && std::strcmp(argv[2], "denied") == 0) {
        const auto targets = pid_list(argv[6]);
        if (targets.empty()) return 2;
        return denied(argv[1], std::atof(argv[3]), std::max(1, std::atoi(argv[4])), std::atof(argv[5]), targets);
    }
    if (argc >= 5 && std::strcmp(argv[2], "burst") == 0) return burst(argv[1], std::atoi(argv[3]), std::atof(argv[4]));
    if (argc >= 6 && std::strcmp(argv[2], "latency") == 0)
        return latency(argv[1], std::atoi(argv[3]), std::atoi(argv[4]), std::strcmp(argv[5], "bus") == 0);
    std::fprintf(stderr,
                 "usage: pidns-flood ADDRESS batches|calls|lists SECONDS INFLIGHT [CONNS] | ADDRESS noread N SECONDS | "
                 "ADDRESS churn N THREADS PID | ADDRESS latency N GAP_MS pidns|bus | ADDRESS dumps CONNS PER NS | "
                 "ADDRESS dumploop SECONDS CONNS PER NS | ADDRESS fresh-batches SECONDS THREADS | "
                 "ADDRESS denied SECONDS PER GAP_MS PID,PID,... | ADDRESS leave N HOLD AFTER | ADDRESS burst N SECONDS\n");
    return 2;
}
