// Integration-test fixtures: private dbus-daemon, the real pidnsd, command runners, the client library.
#include "bus_fixture.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "kernel_version.h"
#include "nsfs.h"
#include "support/bus_users.h"

extern char** environ;

namespace pidns::dbustest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0) return -1;
        if (Clock::now() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return 128 + SIGKILL;
        }
        std::this_thread::sleep_for(5ms);
    }
}

// fork+exec with stdout/stderr redirected to files (or inherited), env additions.
pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path,
            const std::vector<std::string>& env_add = {}) {
    const ExecArgs exec_args(argv, env_add);
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        if (!out_path.empty()) {
            int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            dup2(fd, 1);
        }
        if (!err_path.empty()) {
            int fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
            dup2(fd, 2);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        exec_args.exec();
    }
    return pid;
}

std::string source_path(const char* rel) { return std::string(PIDNS_SOURCE_DIR) + "/" + rel; }

std::string& current_bus_address() {
    static std::string address;
    return address;
}

}  // namespace

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

std::uint64_t expected_ns_id(pid_t pid, const char* type) {
    const std::string path = "/proc/" + std::to_string(pid) + "/ns/" + type;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + path);
    struct stat st {};
    std::uint64_t id = 0;
    const bool kernel = kernel_ids_expected();
    const bool ok = fstat(fd, &st) == 0 && (!kernel || ioctl(fd, _IOR(0xb7, 13, std::uint64_t), &id) == 0);  // NS_GET_ID
    close(fd);
    if (!ok) throw std::runtime_error("cannot read the namespace of " + path);
    if (kernel) return id;
    Client c(current_bus_address());
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

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

ExecArgs::ExecArgs(std::vector<std::string> argv, const std::vector<std::string>& env_add) : argv_(std::move(argv)) {
    if (argv_.empty()) throw std::invalid_argument("ExecArgs: empty command line");
    for (char** e = environ; *e; ++e) {
        const std::string_view var(*e);
        const auto eq = var.find('=');
        const auto name = var.substr(0, eq == std::string_view::npos ? var.size() : eq + 1);
        bool replaced = false;
        for (const auto& a : env_add) replaced |= a.compare(0, name.size(), name) == 0;
        if (!replaced) env_.emplace_back(var);
    }
    env_.insert(env_.end(), env_add.begin(), env_add.end());
    // The strings are final: the pointers into them stay valid.
    for (auto& a : argv_) argv_ptrs_.push_back(a.data());
    argv_ptrs_.push_back(nullptr);
    for (auto& e : env_) env_ptrs_.push_back(e.data());
    env_ptrs_.push_back(nullptr);
}

void ExecArgs::exec() const noexcept {
    execvpe(argv_ptrs_[0], argv_ptrs_.data(), env_ptrs_.data());
    _exit(127);
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

CmdResult open_ns_pid_as(const std::vector<std::string>& prefix, pid_t target) {
    return run(concat(prefix, {"dd", "of=/dev/null", "count=0", "status=none",
                               "if=/proc/" + std::to_string(target) + "/ns/pid"}));
}

TempDir::TempDir() {
    char tmpl[] = "/tmp/pidnsd-test.XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
    chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

CmdResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
    TempDir d;
    const std::string out = d.path() + "/out", err = d.path() + "/err";
    pid_t pid = spawn(argv, out, err);
    CmdResult r;
    r.status = wait_exit(pid, timeout);
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
}

PrivateBus::PrivateBus(const std::vector<std::uint32_t>& users, const std::string& extra_conf) {
    std::string conf = read_file(source_path("tests/dbus/system-bus.conf.in"));
    auto put = [&](const std::string& key, const std::string& v) {
        auto at = conf.find(key);
        if (at == std::string::npos) throw std::runtime_error("bus config template lacks " + key);
        conf.replace(at, key.size(), v);
    };
    put("@SOCKET@", dir_.path() + "/bus");
    put("@POLICY@", source_path("dbus/org.pidns.conf"));
    if (!extra_conf.empty()) conf.insert(conf.rfind("</busconfig>"), extra_conf + "\n");
    {
        std::ofstream f(dir_.path() + "/bus.conf");
        f << conf;
    }
    pid_ = spawn(pidns::testsupport::with_bus_users(dir_.path(), users,
                                                   {"dbus-daemon", "--nofork", "--config-file=" + dir_.path() + "/bus.conf"}),
                 "",
                 dir_.path() + "/bus.log");
    const auto until = Clock::now() + 10s;
    struct stat st {};
    while (stat((dir_.path() + "/bus").c_str(), &st) != 0) {
        if (Clock::now() > until)
            throw std::runtime_error("dbus-daemon did not start: " + read_file(dir_.path() + "/bus.log"));
        std::this_thread::sleep_for(10ms);
    }
    current_bus_address() = address();
}

PrivateBus::~PrivateBus() {
    if (pid_ > 0) {
        kill(pid_, SIGTERM);
        wait_exit(pid_, 5s);
    }
}

Daemon::Daemon(const PrivateBus& bus, std::vector<std::string> args, std::chrono::milliseconds ready_timeout,
               const std::vector<std::string>& env) {
    const std::string sock = dir_.path() + "/notify";
    notify_fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, sock.c_str(), sizeof sa.sun_path - 1);
    if (bind(notify_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        throw std::runtime_error("cannot bind the notify socket");
    std::vector<std::string> argv{PIDNSD_BIN, "--bus=" + bus.address(), "--log-level=debug"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), extra_daemon_args().begin(), extra_daemon_args().end());
    std::vector<std::string> env_add{"NOTIFY_SOCKET=" + sock};
    env_add.insert(env_add.end(), env.begin(), env.end());
    // "JOURNAL_STREAM=@STDERR@" stands for the device:inode of the daemon's stderr (its log file),
    // as systemd would set it for a journal stream.
    for (auto& e : env_add) {
        if (e != "JOURNAL_STREAM=@STDERR@") continue;
        const std::string path = dir_.path() + "/log";
        close(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600));
        struct stat st {};
        stat(path.c_str(), &st);
        e = "JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    }
    pid_ = spawn(argv, "", dir_.path() + "/log", env_add);
    const auto until = Clock::now() + ready_timeout;
    for (;;) {
        for (const auto& n : notifications())
            if (n.find("READY=1") != std::string::npos) return;
        int st = 0;
        if (waitpid(pid_, &st, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("pidnsd exited before READY: " + log());
        }
        if (Clock::now() > until) throw std::runtime_error("pidnsd not READY in time: " + log());
        pollfd p{notify_fd_, POLLIN, 0};
        poll(&p, 1, 20);
    }
}

Daemon::~Daemon() {
    if (pid_ > 0) stop(SIGTERM);
    if (notify_fd_ >= 0) close(notify_fd_);
}

void Daemon::signal(int sig) const {
    if (pid_ > 0) kill(pid_, sig);
}

int Daemon::stop(int sig, std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int st = wait_exit(pid_, timeout);
    pid_ = -1;
    return st;
}

std::string Daemon::log() const { return read_file(dir_.path() + "/log"); }

bool Daemon::wait_log(const std::string& needle, std::chrono::milliseconds timeout) const {
    const auto until = Clock::now() + timeout;
    while (Clock::now() < until) {
        if (log().find(needle) != std::string::npos) return true;
        std::this_thread::sleep_for(20ms);
    }
    return false;
}

std::vector<std::string> Daemon::notifications() {
    char buf[4096];
    for (;;) {
        ssize_t n = recv(notify_fd_, buf, sizeof buf, 0);
        if (n <= 0) break;
        notes_.emplace_back(buf, static_cast<std::size_t>(n));
    }
    return notes_;
}

CmdResult run_daemon_expecting_exit(const std::vector<std::string>& args) {
    std::vector<std::string> argv{PIDNSD_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), extra_daemon_args().begin(), extra_daemon_args().end());
    return run(argv, 30s);
}

nlohmann::json busctl_call(const std::string& address, const std::string& method, const std::string& signature,
                           const std::vector<std::string>& args, const std::vector<std::string>& prefix) {
    std::vector<std::string> argv = prefix;
    for (const char* a : {"busctl", "--json=short"}) argv.emplace_back(a);
    argv.push_back("--address=" + address);
    for (const char* a : {"call", "org.pidns", "/org/pidns", "org.pidns.Manager1"}) argv.emplace_back(a);
    argv.push_back(method);
    argv.push_back(signature);
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv);
    if (r.status != 0) throw std::runtime_error("busctl " + method + " failed: " + r.err);
    return nlohmann::json::parse(r.out).at("data");
}

nlohmann::json busctl_property(const std::string& address, const std::string& property,
                               const std::vector<std::string>& prefix) {
    std::vector<std::string> argv = prefix;
    for (const char* a : {"busctl", "--json=short"}) argv.emplace_back(a);
    argv.push_back("--address=" + address);
    for (const char* a : {"get-property", "org.pidns", "/org/pidns", "org.pidns.Manager1"}) argv.emplace_back(a);
    argv.push_back(property);
    auto r = run(argv);
    if (r.status != 0) throw std::runtime_error("busctl get-property " + property + " failed: " + r.err);
    return nlohmann::json::parse(r.out).at("data");
}

DbusSendResult dbus_send(const std::string& address, const std::string& method, const std::vector<std::string>& args,
                         const std::vector<std::string>& prefix) {
    std::vector<std::string> argv = prefix;
    argv.emplace_back("dbus-send");
    argv.push_back("--bus=" + address);
    for (const char* a : {"--print-reply", "--dest=org.pidns", "/org/pidns"}) argv.emplace_back(a);
    argv.push_back("org.pidns.Manager1." + method);
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv);
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

}  // namespace pidns::dbustest
