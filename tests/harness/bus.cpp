// A private dbus-daemon with the project's policy, and the real pidnsd on it, ready.
#include "bus.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "bus_users.h"

#ifndef PIDNSD_BIN
#error "PIDNSD_BIN must name the pidnsd binary"
#endif
#ifndef PIDNS_SOURCE_DIR
#error "PIDNS_SOURCE_DIR must name the top of the source tree"
#endif

namespace pidns::harness {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::string source_path(const char* rel) { return std::string(PIDNS_SOURCE_DIR) + "/" + rel; }

std::string& latest_address() {
    static std::string address;
    return address;
}

}  // namespace

const std::string& latest_bus_address() { return latest_address(); }

std::string bus_conf_template() { return source_path("tests/dbus/system-bus.conf.in"); }

const std::vector<std::string>& extra_daemon_args() {
    static const std::vector<std::string> args = [] {
        std::vector<std::string> out;
        std::istringstream in(std::getenv("PIDNS_TEST_DAEMON_ARGS") ? std::getenv("PIDNS_TEST_DAEMON_ARGS") : "");
        for (std::string a; in >> a;) out.push_back(a);
        return out;
    }();
    return args;
}

std::optional<pidns::KernelVersion> assumed_kernel() {
    std::optional<pidns::KernelVersion> v;
    for (const auto& a : extra_daemon_args()) {
        constexpr std::string_view kOpt = "--assume-kernel=";
        if (!a.starts_with(kOpt)) continue;
        auto k = pidns::parse_kernel_version(std::string_view(a).substr(kOpt.size()));
        if (k) v = *k;
    }
    return v;
}

bool kernel_ids_expected() {
    if (!pidns::kernel_features().ns_get_id) return false;
    const auto k = assumed_kernel();
    return !k || !(*k < pidns::KernelVersion{6, 18});
}

PrivateBus::PrivateBus(const std::vector<std::uint32_t>& users, const std::string& extra_conf) {
    std::string conf = read_file(bus_conf_template());
    auto put = [&](const std::string& key, const std::string& v) {
        auto at = conf.find(key);
        if (at == std::string::npos) throw std::runtime_error(bus_conf_template() + " lacks " + key);
        conf.replace(at, key.size(), v);
    };
    put("@SOCKET@", dir_.path() + "/bus");
    put("@POLICY@", source_path("dbus/org.pidns.conf"));
    if (!extra_conf.empty()) conf.insert(conf.rfind("</busconfig>"), extra_conf + "\n");
    std::ofstream(dir_.path() + "/bus.conf") << conf;
    SpawnOptions o;
    o.err_path = log_path();
    pid_ = spawn(with_bus_users(dir_.path(), users,
                                {"dbus-daemon", "--nofork", "--config-file=" + dir_.path() + "/bus.conf"}),
                 o);
    const auto until = Clock::now() + 10s;
    struct stat st {};
    while (::stat((dir_.path() + "/bus").c_str(), &st) != 0) {
        if (Clock::now() > until || ::waitpid(pid_, nullptr, WNOHANG) == pid_) {
            stop();
            throw std::runtime_error("dbus-daemon did not start: " + read_file(log_path()));
        }
        std::this_thread::sleep_for(10ms);
    }
    latest_address() = address();
}

PrivateBus::~PrivateBus() { stop(); }

int PrivateBus::stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    const int st = wait_exit(pid_, 5s);
    pid_ = -1;
    return st;
}

Daemon::Daemon(const PrivateBus& bus, std::vector<std::string> args, std::chrono::milliseconds ready_timeout,
               const std::vector<std::string>& env)
    : Daemon(bus, [&] {
          DaemonOptions o;
          o.args = std::move(args);
          o.env = env;
          o.ready_timeout = ready_timeout;
          return o;
      }()) {}

Daemon::Daemon(const PrivateBus& bus, const DaemonOptions& o) {
    const std::string sock = dir_.path() + "/notify";
    notify_fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, sock.c_str(), sizeof sa.sun_path - 1);
    if (::bind(notify_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        throw std::runtime_error("cannot bind the notify socket");
    argv_ = {o.binary.empty() ? std::string(PIDNSD_BIN) : o.binary, "--bus=" + bus.address()};
    if (o.debug_log) argv_.emplace_back("--log-level=debug");
    argv_.insert(argv_.end(), o.args.begin(), o.args.end());
    if (o.suite_args) argv_.insert(argv_.end(), extra_daemon_args().begin(), extra_daemon_args().end());
    std::vector<std::string> env{"NOTIFY_SOCKET=" + sock};
    env.insert(env.end(), o.env.begin(), o.env.end());
    for (auto& e : env) {
        if (e != "JOURNAL_STREAM=@STDERR@") continue;
        ::close(::open(log_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        struct stat st {};
        ::stat(log_path().c_str(), &st);
        e = "JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    }
    SpawnOptions so;
    so.err_path = log_path();
    so.env = env;
    pid_ = spawn(argv_, so);
    const auto until = Clock::now() + o.ready_timeout;
    for (;;) {
        for (const auto& n : notifications())
            if (n.find("READY=1") != std::string::npos) return;
        if (exited()) {
            pid_ = -1;
            throw std::runtime_error("pidnsd exited before READY (status " + std::to_string(*status_) + "): " + log());
        }
        if (Clock::now() > until) {
            stop(SIGTERM);
            throw std::runtime_error("pidnsd not READY in time: " + log());
        }
        pollfd p{notify_fd_, POLLIN, 0};
        ::poll(&p, 1, 20);
    }
}

Daemon::~Daemon() {
    if (pid_ > 0) stop(SIGTERM);
    if (notify_fd_ >= 0) ::close(notify_fd_);
}

void Daemon::signal(int sig) const {
    if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

int Daemon::stop(int sig, std::chrono::milliseconds timeout) {
    if (exited() || pid_ <= 0) return status_.value_or(-1);
    ::kill(pid_, sig);
    status_ = wait_exit(pid_, timeout);
    pid_ = -1;
    return *status_;
}

std::optional<int> Daemon::exited() {
    if (status_ || pid_ <= 0) return status_;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) != pid_) return std::nullopt;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return status_;
}

std::string Daemon::log() const { return read_file(log_path()); }

bool Daemon::wait_log(const std::string& needle, std::chrono::milliseconds timeout) const {
    return eventually([&] { return log().find(needle) != std::string::npos; }, timeout, 20ms);
}

std::vector<std::string> Daemon::notifications() {
    char buf[4096];
    for (;;) {
        const ssize_t n = ::recv(notify_fd_, buf, sizeof buf, 0);
        if (n <= 0) break;
        notes_.emplace_back(buf, static_cast<std::size_t>(n));
    }
    return notes_;
}

CmdResult run_daemon_expecting_exit(const std::vector<std::string>& args) {
    Argv argv{PIDNSD_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), extra_daemon_args().begin(), extra_daemon_args().end());
    return run(argv, 30s);
}

}  // namespace pidns::harness
