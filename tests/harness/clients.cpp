// busctl, dbus-send, pidnsctl and the client library against a pidnsd under test.
#include "clients.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "bus.h"
#include "timing.h"

#ifndef PIDNSCTL_BIN
#error "PIDNSCTL_BIN must name the pidnsctl binary"
#endif

namespace pidns::harness {

using namespace std::chrono_literals;

namespace {

// busctl --json=short --address=ADDR VERB org.pidns /org/pidns org.pidns.Manager1 ARGS: its "data".
nlohmann::json busctl(const std::string& address, const char* verb, const std::string& what, const Argv& args,
                      const Argv& prefix) {
    Argv argv = concat(prefix, {"busctl", "--json=short", "--address=" + address, verb, "org.pidns", "/org/pidns",
                                "org.pidns.Manager1"});
    argv = concat(argv, args);
    auto r = run(argv);
    if (r.status != 0) throw std::runtime_error(std::string("busctl ") + verb + " " + what + " failed: " + r.err);
    return nlohmann::json::parse(r.out).at("data");
}

}  // namespace

nlohmann::json busctl_call(const std::string& address, const std::string& method, const std::string& signature,
                           const Argv& args, const Argv& prefix) {
    return busctl(address, "call", method, concat({method, signature}, args), prefix);
}

nlohmann::json busctl_property(const std::string& address, const std::string& property, const Argv& prefix) {
    return busctl(address, "get-property", property, {property}, prefix);
}

DbusSendResult dbus_send(const std::string& address, const std::string& method, const Argv& args, const Argv& prefix) {
    Argv argv = concat(prefix, {"dbus-send", "--bus=" + address, "--print-reply", "--dest=org.pidns", "/org/pidns",
                                "org.pidns.Manager1." + method});
    auto r = run(concat(argv, args));
    DbusSendResult out;
    out.ok = r.status == 0;
    out.output = r.out + r.err;
    // dbus-send prints "Error org.pidns.Error.NoSuchNamespace: message" on failure.
    if (auto at = r.err.find("Error "); !out.ok && at != std::string::npos) {
        auto name_start = at + 6;
        auto end = r.err.find(':', name_start);
        out.error_name = r.err.substr(name_start, end - name_start);
    }
    return out;
}

Argv pidnsctl_argv(const std::string& address, const Argv& args, const Argv& prefix) {
    Argv argv = concat(prefix, {PIDNSCTL_BIN});
    if (std::none_of(args.begin(), args.end(), [](const std::string& a) { return a.starts_with("--address="); }))
        argv.push_back("--address=" + address);
    argv.emplace_back("--no-pager");
    return concat(argv, args);
}

CmdResult pidnsctl(const std::string& address, const Argv& args, const Argv& prefix,
                   std::chrono::milliseconds timeout) {
    return run(pidnsctl_argv(address, args, prefix), timeout);
}

void detail::SignalRecord::record(const pidns::client::NamespaceEvent& e) {
    std::lock_guard lk(mu_);
    if (e.kind == pidns::client::NamespaceEvent::Kind::resync)
        ++resyncs_;
    else
        signals_.push_back({e.kind == pidns::client::NamespaceEvent::Kind::added, e.id, e.type});
    cv_.notify_all();
}

Client::Client(const std::string& address)
    : pidns::client::Client(pidns::client::ConnectOptions{
          address, true, [this](const pidns::client::NamespaceEvent& e) { record(e); }}) {}

std::size_t Client::resyncs() {
    std::lock_guard lk(mu_);
    return resyncs_;
}

bool Client::wait_signal(bool added, std::uint64_t id, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] {
        for (const auto& s : signals_)
            if (s.added == added && s.id == id) return true;
        return false;
    });
}

std::vector<Client::Signal> Client::signals() {
    std::lock_guard lk(mu_);
    return signals_;
}

std::uint64_t stat_of(Client& c, const std::string& key) { return c.GetStatistics().at(key).get<std::uint64_t>(); }

std::uint64_t expected_ns_id(pid_t pid, const char* type) {
    const std::string path = "/proc/" + std::to_string(pid) + "/ns/" + type;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + path);
    struct stat st {};
    std::uint64_t id = 0;
    const bool kernel = kernel_ids_expected();
    const bool ok = ::fstat(fd, &st) == 0 && (!kernel || ::ioctl(fd, _IOR(0xb7, 13, std::uint64_t), &id) == 0);  // NS_GET_ID
    ::close(fd);
    if (!ok) throw std::runtime_error("cannot read the namespace of " + path);
    if (kernel) return id;
    Client c(latest_bus_address());
    for (int i = 0; i < 500; ++i) {
        try {
            id = std::get<0>(c.GetNamespace(static_cast<std::uint64_t>(st.st_ino)));
            if (id < (std::uint64_t{1} << 32))
                throw std::runtime_error("pidnsd assigned id " + std::to_string(id) + ", below 2^32, to " + path);
            return id;
        } catch (const sdbus::Error&) {
            std::this_thread::sleep_for(10ms);
        }
    }
    throw std::runtime_error("pidnsd never listed the namespace of " + path);
}

std::uint64_t wait_indexed(pid_t pid, const char* type, std::uint32_t members) {
    const std::uint64_t id = expected_ns_id(pid, type);
    Client c(latest_bus_address());
    std::uint32_t listed = 0;
    const bool indexed = eventually(
        [&] {
            listed = std::get<7>(c.GetNamespace(id));  // Processes
            return listed >= members;
        },
        patience(5s), 10ms, /*retry_throws=*/true);
    if (!indexed)
        throw std::runtime_error("pidnsd never listed " + std::to_string(members) + " processes in the " + type +
                                 " namespace of pid " + std::to_string(pid) + " (" + std::to_string(listed) + ")");
    return id;
}

}  // namespace pidns::harness
