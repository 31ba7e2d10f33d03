// pidns-ideal-service: a stand-in for pidnsd that only reads the bus, for bench_flood's baseline.
//
// bench_flood measures root's TranslatePid while clients flood pidnsd; how much of what root waits
// is pidnsd's, and how much the bus's? This service owns org.pidns and answers the bench's calls
// with no work at all: TranslatePid(pid, 0, 0) with pid (the right answer for a caller in the
// host's pid namespace, which the bench checks; the `calls` flood's TranslatePid(1, 0, 0), which
// pidnsd denies, is answered as well, at once), TranslatePids with LimitsExceeded 5 s later (as
// pidnsd refuses a flood beyond its quota: at most 128 waiting per sender, 16384 in all, beyond at
// once), GetStatistics with an empty dictionary, the Version property with its own name. Started
// like pidnsd (--bus=ADDRESS, READY=1 on NOTIFY_SOCKET), through PIDNS_BENCH_PIDNSD:
//
//   PIDNS_BENCH_PIDNSD=./build/me/bench/pidns-ideal-service ./build/me/bench/bench_flood --kinds batches
//
// What a service that reads as fast as sd-bus can is the floor for pidnsd's row.
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <string>

namespace {

using Clock = std::chrono::steady_clock;

struct Deferred {
    Clock::time_point due;
    std::string sender;
    sd_bus_message* reply;
};
std::deque<Deferred> deferred;
std::map<std::string, std::size_t> waiting;  // deferred replies per sender

volatile std::sig_atomic_t stop = 0;

int on_message(sd_bus_message* m, void*, sd_bus_error*) {
    std::uint8_t type = 0;
    if (sd_bus_message_get_type(m, &type) < 0 || type != SD_BUS_MESSAGE_METHOD_CALL) return 0;
    const char* iface = sd_bus_message_get_interface(m);
    const char* member = sd_bus_message_get_member(m);
    if (iface != nullptr && std::strcmp(iface, "org.freedesktop.DBus.Properties") == 0 && std::strcmp(member, "Get") == 0) {
        const char* in = nullptr;
        const char* name = nullptr;
        if (sd_bus_message_read(m, "ss", &in, &name) >= 0 && std::strcmp(name, "Version") == 0)
            return sd_bus_reply_method_return(m, "v", "s", "pidns-ideal-service");
        return sd_bus_reply_method_errorf(m, SD_BUS_ERROR_UNKNOWN_PROPERTY, "not in the ideal service");
    }
    if (iface == nullptr || std::strcmp(iface, "org.pidns.Manager1") != 0) {
        std::fprintf(stderr, "pidns-ideal-service: not answered: %s.%s\n", iface ? iface : "?", member ? member : "?");
        return 0;
    }
    const std::string sender = sd_bus_message_get_sender(m) ? sd_bus_message_get_sender(m) : "";
    if (std::strcmp(member, "TranslatePid") == 0) {
        std::uint32_t pid = 0;
        std::uint64_t from = 0, to = 0;
        if (sd_bus_message_read(m, "utt", &pid, &from, &to) < 0) return sd_bus_reply_method_errorf(m, SD_BUS_ERROR_INVALID_ARGS, "bad");
        return sd_bus_reply_method_return(m, "u", pid);
    }
    if (std::strcmp(member, "TranslatePids") == 0) {
        sd_bus_message* reply = nullptr;
        sd_bus_error e = SD_BUS_ERROR_MAKE_CONST("org.pidns.Error.LimitsExceeded", "over quota");
        if (sd_bus_message_new_method_error(m, &reply, &e) < 0) return -ENOMEM;
        if (waiting[sender] >= 128 || deferred.size() >= 16384) {
            sd_bus_send(nullptr, reply, nullptr);
            sd_bus_message_unref(reply);
            return 1;
        }
        ++waiting[sender];
        deferred.push_back({Clock::now() + std::chrono::seconds(5), sender, reply});
        return 1;
    }
    if (std::strcmp(member, "GetStatistics") == 0) {
        sd_bus_message* reply = nullptr;
        if (sd_bus_message_new_method_return(m, &reply) < 0) return -ENOMEM;
        sd_bus_message_open_container(reply, 'a', "{sv}");
        sd_bus_message_close_container(reply);
        sd_bus_send(nullptr, reply, nullptr);
        sd_bus_message_unref(reply);
        return 1;
    }
    return sd_bus_reply_method_errorf(m, SD_BUS_ERROR_UNKNOWN_METHOD, "not in the ideal service");
}

}  // namespace

int main(int argc, char** argv) {
    std::string address;
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], "--bus=", 6) == 0) address = argv[i] + 6;
    if (address.empty()) {
        std::fprintf(stderr, "usage: %s --bus=ADDRESS (other options are ignored)\n", argv[0]);
        return 2;
    }
    std::signal(SIGTERM, [](int) { stop = 1; });
    std::signal(SIGINT, [](int) { stop = 1; });
    sd_bus* bus = nullptr;
    if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address.c_str()) < 0 || sd_bus_set_bus_client(bus, 1) < 0 ||
sd_bus_start(bus) < 0) {
        std::fprintf(stderr, "pidns-ideal-service: cannot connect to %s\n", address.c_str());
        return 1;
    }
    if (sd_bus_add_filter(bus, nullptr, on_message, nullptr) < 0 || sd_bus_request_name(bus, "org.pidns", 0) < 0) {
        std::fprintf(stderr, "pidns-ideal-service: cannot own org.pidns\n");
        return 1;
    }
    sd_notify(0, "READY=1");
    while (!stop) {
        int r;
        while ((r = sd_bus_process(bus, nullptr)) > 0) {}
        if (r < 0) break;
        const auto now = Clock::now();
        while (!deferred.empty() && deferred.front().due <= now) {
            auto d = deferred.front();
            deferred.pop_front();
            if (auto it = waiting.find(d.sender); it != waiting.end() && --it->second == 0) waiting.erase(it);
            sd_bus_send(bus, d.reply, nullptr);
            sd_bus_message_unref(d.reply);
        }
        std::uint64_t wait = 100'000;
        if (!deferred.empty()) {
            const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deferred.front().due - now).count();
            wait = static_cast<std::uint64_t>(std::max<long long>(0, std::min<long long>(left, 100'000)));
        }
        if (sd_bus_wait(bus, wait) < 0 && !stop) break;
    }
    for (auto& d : deferred) sd_bus_message_unref(d.reply);
    sd_bus_flush_close_unref(bus);
    return 0;
}
