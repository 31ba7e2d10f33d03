// pidns-bus-handoff: a raw D-Bus client whose connection outlives the process that made it (fork, then exit).
//
// pidns-bus-handoff ADDRESS STEP...: connects to ADDRESS (unix:path=...) itself (SASL EXTERNAL as
// its uid, Hello) and prints "hello NAME", then runs the steps in order:
//   call:[METHOD:]TARGET  calls org.pidns.Manager1 METHOD (GetProcess, the default, or TranslatePid
//                         with from = to = 0) on pid TARGET ("self": its own pid); prints
//                         "call METHOD PID: ok VALUE" (GetProcess: the first NSpid element;
//                         TranslatePid: the result) or "call METHOD PID: error NAME (MESSAGE)"
//   fork-exit, fork-stay  forks; the child keeps the connection. The parent exits at once
//                         (fork-exit) or waits for the child and exits with its status (fork-stay).
//                         The child prints "pid ORIGINAL child CHILD" and runs the remaining
//                         steps once a line arrives on stdin (EOF: it exits with status 3).
//   become:UID[:GID]      setresuid(UID, UID, UID), after setgroups({}) and setresgid(GID, GID, GID)
//                         when GID is given; prints "became UID[:GID]"
//   unshare-user          unshare(CLONE_NEWUSER): the same uids, every capability in the new user
//                         namespace and none outside it; prints "unshared user"
//   drop-ptrace           clears CAP_SYS_PTRACE from its effective set (capset); prints "dropped ptrace"
//   leader-exit           the remaining steps run on a new thread; the leader (main thread) exits
//                         and prints "leader exits"
//   open:PID              the kernel's own answer, now: opens /proc/PID/ns/pid (ptrace_may_access
//                         READ_FSCREDS); prints "open PID: ok" or "open PID: error ERRNO-NAME"
// sd-bus cannot do this: a connection used after fork answers -ECHILD. So this speaks the wire
// protocol (little-endian) on its own socket. Exit status: 0 when every step ran (errors from
// pidnsd included), 1 on a protocol or system failure (with a message on stderr), 2 on usage.
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "task_state.h"

namespace {

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

void say(const std::string& line) {
    const std::string s = line + "\n";
    std::size_t off = 0;
    while (off < s.size()) {
        const ssize_t n = ::write(1, s.data() + off, s.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        off += static_cast<std::size_t>(n);
    }
}

void send_all(int fd, const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
        const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail(std::string("send: ") + std::strerror(errno));
        off += static_cast<std::size_t>(n);
    }
}

std::string recv_exact(int fd, std::size_t len) {
    std::string out(len, '\0');
    std::size_t off = 0;
    while (off < len) {
        const ssize_t n = ::recv(fd, out.data() + off, len - off, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail(std::string("recv: ") + std::strerror(errno));
        if (n == 0) fail("the bus closed the connection");
        off += static_cast<std::size_t>(n);
    }
    return out;
}

// --- Marshalling (offsets are from the start of the message, as the alignment rules count them).

class Writer {
public:
    void pad(std::size_t a) {
        while (buf_.size() % a != 0) buf_.push_back('\0');
    }
    void byte(std::uint8_t v) { buf_.push_back(static_cast<char>(v)); }
    void u32(std::uint32_t v) {
        pad(4);
        for (int i = 0; i < 4; ++i) byte(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    void u64(std::uint64_t v) {
        pad(8);
        for (int i = 0; i < 8; ++i) byte(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    void str(const std::string& s) {  // s and o
        u32(static_cast<std::uint32_t>(s.size()));
        buf_ += s;
        byte(0);
    }
    void sig(const std::string& s) {  // g
        byte(static_cast<std::uint8_t>(s.size()));
        buf_ += s;
        byte(0);
    }
    void put_u32_at(std::size_t at, std::uint32_t v) {
        for (int i = 0; i < 4; ++i) buf_[at + static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * i));
    }
    [[nodiscard]] std::size_t size() const { return buf_.size(); }
    std::string& data() { return buf_; }

private:
    std::string buf_;
};

class Reader {
public:
    explicit Reader(const std::string& buf, std::size_t pos = 0) : buf_(buf), pos_(pos) {}
    void align(std::size_t a) {
        while (pos_ % a != 0) ++pos_;
        need(0);
    }
    std::uint8_t byte() {
        need(1);
        return static_cast<std::uint8_t>(buf_[pos_++]);
    }
    std::uint32_t u32() {
        align(4);
        need(4);
        std::uint32_t v = 0;
        for (std::size_t i = 0; i < 4; ++i)
            v |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(buf_[pos_ + i])) << (8 * i);
        pos_ += 4;
        return v;
    }
    std::string str() {
        const std::uint32_t n = u32();
        need(std::size_t{n} + 1);
        std::string s = buf_.substr(pos_, n);
        pos_ += std::size_t{n} + 1;
        return s;
    }
    std::string sig() {
        const std::uint8_t n = byte();
        need(std::size_t{n} + 1);
        std::string s = buf_.substr(pos_, n);
        pos_ += std::size_t{n} + 1;
        return s;
    }
    [[nodiscard]] std::size_t pos() const { return pos_; }
    void seek(std::size_t p) { pos_ = p; }

private:
    void need(std::size_t n) const {
        if (pos_ + n > buf_.size()) fail("malformed message: truncated");
    }
    const std::string& buf_;
    std::size_t pos_;
};

enum : std::uint8_t { kMethodCall = 1, kMethodReturn = 2, kError = 3, kSignal = 4 };
enum : std::uint8_t {  // header field codes
    kPath = 1,
    kInterface = 2,
    kMember = 3,
    kErrorName = 4,
    kReplySerial = 5,
    kDestination = 6,
    kSignature = 8,
};

struct Message {
    std::uint8_t type = 0;
    std::uint32_t reply_serial = 0;
    std::string error_name, signature, body;
};

class Connection {
public:
    explicit Connection(const std::string& address) {
        const std::string prefix = "unix:path=";
        if (address.rfind(prefix, 0) != 0) fail("only unix:path= addresses are supported: " + address);
        const std::string path = address.substr(prefix.size());
        fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);  // no CLOEXEC needed: this process never execs
        if (fd_ < 0) fail(std::string("socket: ") + std::strerror(errno));
        timeval tv{30, 0};  // never hang the test: a lost reply is a failure
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        if (path.size() >= sizeof sa.sun_path) fail("socket path too long");
        std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
            fail("connect " + path + ": " + std::strerror(errno));
        authenticate();
        Message r = call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", "", "");
        if (r.type != kMethodReturn || r.signature != "s") fail("Hello failed: " + r.error_name);
        Reader rd(r.body);
        name_ = rd.str();
    }
    [[nodiscard]] const std::string& name() const { return name_; }

    // Sends a method call and returns its reply (signals and other messages are skipped).
    Message call(const std::string& dest, const std::string& path, const std::string& iface,
                 const std::string& member, const std::string& signature, const std::string& body) {
        const std::uint32_t serial = ++serial_;
        Writer w;
        w.byte('l');
        w.byte(kMethodCall);
        w.byte(0);  // flags
        w.byte(1);  // protocol version
        w.u32(static_cast<std::uint32_t>(body.size()));
        w.u32(serial);
        const std::size_t len_at = w.size();
        w.u32(0);  // header fields array length, filled in below
        const std::size_t start = w.size();
        auto field = [&](std::uint8_t code, const char* type, const std::string& value) {
            w.pad(8);
            w.byte(code);
            w.sig(type);
            if (type[0] == 'g')
                w.sig(value);
            else
                w.str(value);
        };
        field(kPath, "o", path);
        field(kInterface, "s", iface);
        field(kMember, "s", member);
        field(kDestination, "s", dest);
        if (!signature.empty()) field(kSignature, "g", signature);
        w.put_u32_at(len_at, static_cast<std::uint32_t>(w.size() - start));
        w.pad(8);
        w.data() += body;
        send_all(fd_, w.data());
        for (;;) {
            Message m = receive();
            if ((m.type == kMethodReturn || m.type == kError) && m.reply_serial == serial) return m;
        }
    }

private:
    void authenticate() {
        const std::string uid = std::to_string(::geteuid());
        std::string hex;
        for (unsigned char c : uid) {
            char b[3];
            std::snprintf(b, sizeof b, "%02x", c);
            hex += b;
        }
        send_all(fd_, std::string(1, '\0') + "AUTH EXTERNAL " + hex + "\r\n");
        std::string line;
        while (line.size() < 2 || line.compare(line.size() - 2, 2, "\r\n") != 0) {
            line += recv_exact(fd_, 1);
            if (line.size() > 512) fail("SASL: overlong line");
        }
        if (line.rfind("OK ", 0) != 0) fail("SASL: the bus answered " + line.substr(0, line.size() - 2));
        send_all(fd_, "BEGIN\r\n");
    }

    Message receive() {
        const std::string fixed = recv_exact(fd_, 16);
        if (fixed[0] != 'l') fail("only little-endian messages are handled");
        Reader f(fixed);
        f.seek(4);
        const std::uint32_t body_len = f.u32();
        f.u32();  // serial
        const std::uint32_t fields_len = f.u32();
        if (body_len > (1u << 27) || fields_len > (1u << 26)) fail("malformed message: too long");
        std::size_t header_end = 16 + fields_len;
        header_end = (header_end + 7) & ~std::size_t{7};
        const std::string msg = fixed + recv_exact(fd_, header_end - 16 + body_len);
        Message m;
        m.type = static_cast<std::uint8_t>(msg[1]);
        Reader r(msg, 16);
        while (r.pos() < 16 + fields_len) {
            r.align(8);
            const std::uint8_t code = r.byte();
            const std::string type = r.sig();
            if (type == "u") {
                const std::uint32_t v = r.u32();
                if (code == kReplySerial) m.reply_serial = v;
            } else if (type == "s" || type == "o") {
                std::string v = r.str();
                if (code == kErrorName) m.error_name = std::move(v);
            } else if (type == "g") {
                std::string v = r.sig();
                if (code == kSignature) m.signature = std::move(v);
            } else {
                fail("malformed message: header field of type " + type);
            }
        }
        m.body = msg.substr(header_end);
        return m;
    }

    int fd_ = -1;
    std::uint32_t serial_ = 0;
    std::string name_;
};

// call:[METHOD:]TARGET
std::string call_step(Connection& c, const std::string& spec) {
    std::string method = "GetProcess", target = spec;
    if (auto colon = spec.find(':'); colon != std::string::npos) {
        method = spec.substr(0, colon);
        target = spec.substr(colon + 1);
    }
    const std::uint32_t pid = target == "self" ? static_cast<std::uint32_t>(::getpid())
                                               : static_cast<std::uint32_t>(std::stoul(target));
    Writer body;
    std::string signature;
    if (method == "GetProcess") {
        signature = "u";
        body.u32(pid);
    } else if (method == "TranslatePid") {
        signature = "utt";
        body.u32(pid);
        body.u64(0);
        body.u64(0);
    } else {
        fail("unsupported method " + method);
    }
    const Message r = c.call("org.pidns", "/org/pidns", "org.pidns.Manager1", method, signature, body.data());
    std::string line = "call " + method + " " + std::to_string(pid) + ": ";
    if (r.type == kError) {
        std::string message;
        if (r.signature.rfind('s', 0) == 0) message = Reader(r.body).str();
        return line + "error " + r.error_name + " (" + message + ")";
    }
    Reader rd(r.body);
    if (method == "GetProcess") {
        if (r.signature.rfind("au", 0) != 0) fail("GetProcess returned " + r.signature);
        const std::uint32_t bytes = rd.u32();
        return line + "ok " + (bytes >= 4 ? std::to_string(rd.u32()) : std::string("(empty)"));
    }
    if (r.signature != "u") fail("TranslatePid returned " + r.signature);
    return line + "ok " + std::to_string(rd.u32());
}

// Waits for a line on stdin; false at EOF.
bool wait_go() {
    char ch = 0;
    for (;;) {
        const ssize_t n = ::read(0, &ch, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        if (ch == '\n') return true;
    }
}

int run_steps(Connection& c, int from, int argc, char** argv);

// On the heap and held by a global: a leader that exits (leader-exit) unwinds its stack while the
// connection lives on, and LeakSanitizer sees it reachable when the program ends.
Connection* g_connection = nullptr;

int run(int argc, char** argv) {
    g_connection = new Connection(argv[1]);
    say("hello " + g_connection->name());
    return run_steps(*g_connection, 2, argc, argv);
}

// Waits (at most 10 s) until this process's leader is a zombie: State Z in /proc/self/stat.
bool leader_is_zombie() {
    for (int i = 0; i < 10000; ++i) {
        if (pidns::testing::stat_state("/proc/self/stat") == 'Z') return true;
        ::usleep(1000);
    }
    return false;
}

int run_steps(Connection& c, int from, int argc, char** argv) {
    for (int i = from; i < argc; ++i) {
        const std::string step = argv[i];
        if (step == "leader-exit") {
            // The rest runs on a second thread once the leader has exited: a zombie leader whose
            // status keeps its credentials as they were, with a live thread. Not before: while the
            // leader still runs (pthread_exit's userspace part) glibc's setresuid skips it, and its
            // credentials, which are the process's in /proc/PID/status, stay the old ones.
            std::thread([&c, i, argc, argv] {
                int rc = 1;
                try {
                    if (!leader_is_zombie()) fail("the leader did not exit within 10 s");
                    say("leader exits");
                    rc = run_steps(c, i + 1, argc, argv);
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "pidns-bus-handoff: %s\n", e.what());
                }
                ::_exit(rc);
            }).detach();
            ::pthread_exit(nullptr);
        }
        if (step.rfind("call:", 0) == 0) {
            say(call_step(c, step.substr(5)));
        } else if (step == "fork-exit" || step == "fork-stay") {
            const pid_t original = ::getpid();
            const pid_t child = ::fork();
            if (child < 0) fail(std::string("fork: ") + std::strerror(errno));
            if (child > 0) {
                if (step == "fork-exit") ::_exit(0);
                int st = 0;
                while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
                }
                ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
            }
            say("pid " + std::to_string(original) + " child " + std::to_string(::getpid()));
            if (!wait_go()) return 3;
        } else if (step.rfind("become:", 0) == 0) {
            const std::string ids = step.substr(7);
            const auto colon = ids.find(':');
            const auto uid = static_cast<uid_t>(std::stoul(ids.substr(0, colon)));
            if (colon != std::string::npos) {
                const auto gid = static_cast<gid_t>(std::stoul(ids.substr(colon + 1)));
                if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0)
                    fail(std::string("setgroups/setresgid: ") + std::strerror(errno));
            }
            if (::setresuid(uid, uid, uid) != 0) fail(std::string("setresuid: ") + std::strerror(errno));
            say("became " + ids);
        } else if (step == "unshare-user") {
            if (::unshare(CLONE_NEWUSER) != 0) fail(std::string("unshare(CLONE_NEWUSER): ") + std::strerror(errno));
            say("unshared user");
        } else if (step == "drop-ptrace") {
            __user_cap_header_struct head{_LINUX_CAPABILITY_VERSION_3, 0};
            __user_cap_data_struct data[2]{};
            if (::syscall(SYS_capget, &head, data) != 0) fail(std::string("capget: ") + std::strerror(errno));
            data[0].effective &= ~(1u << CAP_SYS_PTRACE);
            if (::syscall(SYS_capset, &head, data) != 0) fail(std::string("capset: ") + std::strerror(errno));
            say("dropped ptrace");
        } else if (step.rfind("open:", 0) == 0) {
            const std::string path = "/proc/" + step.substr(5) + "/ns/pid";
            const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
            const int err = errno;
            if (fd >= 0) ::close(fd);
            say("open " + step.substr(5) + ": " + (fd >= 0 ? std::string("ok") : std::string("error ") + ::strerrorname_np(err)));
        } else {
            std::fprintf(stderr, "pidns-bus-handoff: unknown step %s\n", step.c_str());
            return 2;
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: pidns-bus-handoff ADDRESS "
                             "[call:[METHOD:]PID|self | fork-exit | fork-stay | become:UID[:GID] | unshare-user | drop-ptrace |\n"
                             " open:PID | leader-exit]...\n");
        return 2;
    }
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pidns-bus-handoff: %s\n", e.what());
        return 1;
    }
}
