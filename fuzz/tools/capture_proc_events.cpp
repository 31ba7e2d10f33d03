// Captures real proc connector datagrams into a seed corpus (root only):
//   pidns-capture-proc-events OUT_DIR
// Subscribes without the event filter (so every event kind arrives, and the kernel's
// acknowledgements), runs a small workload (fork, exec, threads, comm/sid/uid/gid changes, exits
// with a code and by a signal) and writes each datagram the kernel sent about it, byte for byte,
// to OUT_DIR/<kind>-<n>.bin (at most 4 per kind), plus one datagram that joins three real messages
// the way a netlink datagram may (several nlmsghdr, each padded to NLMSG_ALIGNTO).
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

using Bytes = std::vector<unsigned char>;

int fail(const char* what) {
    std::fprintf(stderr, "pidns-capture-proc-events: %s: %s\n", what, std::strerror(errno));
    return 1;
}

bool send_op(int fd, std::uint32_t op) {
    unsigned char buf[sizeof(nlmsghdr) + sizeof(cn_msg) + sizeof op] = {};
    auto* nl = reinterpret_cast<nlmsghdr*>(buf);
    nl->nlmsg_len = sizeof buf;
    nl->nlmsg_type = NLMSG_DONE;
    nl->nlmsg_pid = 0;
    auto* cn = reinterpret_cast<cn_msg*>(buf + sizeof(nlmsghdr));
    cn->id.idx = CN_IDX_PROC;
    cn->id.val = CN_VAL_PROC;
    cn->seq = 1;
    cn->ack = 41;
    cn->len = sizeof op;
    std::memcpy(buf + sizeof(nlmsghdr) + sizeof(cn_msg), &op, sizeof op);
    return ::send(fd, buf, sizeof buf, 0) == static_cast<ssize_t>(sizeof buf);
}

const char* kind_name(std::uint32_t what) {
    switch (what) {
    case proc_event::PROC_EVENT_NONE: return "ack";
    case proc_event::PROC_EVENT_FORK: return "fork";
    case proc_event::PROC_EVENT_EXEC: return "exec";
    case proc_event::PROC_EVENT_UID: return "uid";
    case proc_event::PROC_EVENT_GID: return "gid";
    case proc_event::PROC_EVENT_SID: return "sid";
    case proc_event::PROC_EVENT_PTRACE: return "ptrace";
    case proc_event::PROC_EVENT_COMM: return "comm";
    case proc_event::PROC_EVENT_COREDUMP: return "coredump";
    case proc_event::PROC_EVENT_EXIT: return "exit";
    default: return "other";
    }
}

void* thread_main(void*) { return nullptr; }

// The workload, in a child: every event kind the proc connector sends for ordinary processes.
[[noreturn]] void workload() {
    ::prctl(PR_SET_NAME, "seed-comm", 0, 0, 0);  // COMM
    ::setsid();                                   // SID
    pthread_t t;                                  // FORK of a thread, EXIT of a thread
    if (pthread_create(&t, nullptr, thread_main, nullptr) == 0) pthread_join(t, nullptr);
    const pid_t a = ::fork();  // FORK, EXEC, EXIT (code 0)
    if (a == 0) {
        ::execl("/bin/true", "true", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::waitpid(a, nullptr, 0);
    const pid_t b = ::fork();  // EXIT with a code
    if (b == 0) ::_exit(3);
    ::waitpid(b, nullptr, 0);
    const pid_t c = ::fork();  // EXIT by a signal
    if (c == 0) {
        ::pause();
        ::_exit(0);
    }
    ::kill(c, SIGKILL);
    ::waitpid(c, nullptr, 0);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(1);  // GID, UID
    ::_exit(0);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUT_DIR (as root)\n", argv[0]);
        return 2;
    }
    const std::string out = argv[1];
    const int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
    if (fd < 0) return fail("socket(NETLINK_CONNECTOR)");
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = CN_IDX_PROC;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return fail("bind");
    if (!send_op(fd, PROC_CN_MCAST_LISTEN)) return fail("send PROC_CN_MCAST_LISTEN");

    std::vector<Bytes> got;
    auto drain = [&](int ms) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
            if (left.count() <= 0) return;
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            Bytes buf(8192);
            const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
            if (n <= 0) continue;
            buf.resize(static_cast<std::size_t>(n));
            got.push_back(std::move(buf));
        }
    };
    drain(200);  // the acknowledgement
    const pid_t w = ::fork();
    if (w == 0) workload();
    if (w < 0) return fail("fork");
    drain(500);
    ::waitpid(w, nullptr, 0);
    drain(200);
    (void)send_op(fd, PROC_CN_MCAST_IGNORE);
    drain(200);

    std::map<std::string, int> count;
    std::vector<Bytes> fork_exec_exit;
    std::set<Bytes> written;
    auto write = [&](const std::string& name, const Bytes& b) {
        const std::string path = out + "/" + name + ".bin";
        FILE* f = std::fopen(path.c_str(), "wb");
        if (!f) return false;
        std::fwrite(b.data(), 1, b.size(), f);
        std::fclose(f);
        written.insert(b);
        return true;
    };
    for (const auto& b : got) {
        if (written.count(b)) continue;
        std::uint32_t what = 0xffffffff;
        if (b.size() >= sizeof(nlmsghdr) + sizeof(cn_msg) + 4)
            std::memcpy(&what, b.data() + sizeof(nlmsghdr) + sizeof(cn_msg), 4);
        const std::string kind = kind_name(what);
        if (count[kind] >= 4) continue;
        if (!write(kind + "-" + std::to_string(count[kind]++), b)) return fail("write");
        if (kind == "fork" || kind == "exec" || kind == "exit") fork_exec_exit.push_back(b);
    }
    // Several messages in one datagram, each padded to NLMSG_ALIGNTO.
    if (fork_exec_exit.size() >= 3) {
        Bytes joined;
        for (std::size_t i = 0; i < 3; ++i) {
            joined.insert(joined.end(), fork_exec_exit[i].begin(), fork_exec_exit[i].end());
            while (i < 2 && joined.size() % NLMSG_ALIGNTO) joined.push_back(0);
        }
        if (!write("joined-0", joined)) return fail("write");
    }
    std::printf("captured %zu datagrams, wrote %zu files to %s\n", got.size(), written.size(), out.c_str());
    return 0;
}
