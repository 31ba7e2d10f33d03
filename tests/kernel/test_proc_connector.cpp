// Kernel tests for ProcConnector: real fork/exec/exit events, overflow reporting, forged senders.
#include <catch2/catch.hpp>

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "proc_connector.h"

using pidns::ProcConnector;
using pidns::ProcConnectorOptions;
using pidns::ProcEvent;
using pidns::ProcEventKind;

namespace {

std::int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

std::unique_ptr<ProcConnector> open_or_fail(const ProcConnectorOptions& opts) {
    auto r = ProcConnector::open(opts);
    INFO((r.ok() ? std::string("ok") : r.error().describe()));
    REQUIRE(r.ok());
    return std::move(r).value();
}

pid_t spawn_true() {
    char arg0[] = "/bin/true";
    char* const argv[] = {arg0, nullptr};
    char* const envp[] = {nullptr};
    const pid_t child = ::fork();
    if (child == 0) {
        ::execve("/bin/true", argv, envp);
        ::_exit(127);
    }
    return child;
}

struct ChildEvents {
    std::vector<ProcEvent> events;  // only those concerning the child, in arrival order
    bool lost = false;
    bool complete() const {
        auto has = [&](ProcEventKind k) {
            return std::any_of(events.begin(), events.end(), [&](const ProcEvent& e) { return e.kind == k; });
        };
        return has(ProcEventKind::fork) && has(ProcEventKind::exec) && has(ProcEventKind::exit);
    }
};

ChildEvents collect_child_events(ProcConnector& pc, pid_t child, int timeout_ms) {
    ChildEvents out;
    const std::int64_t deadline = now_ms() + timeout_ms;
    while (!out.complete()) {
        const std::int64_t left = deadline - now_ms();
        if (left <= 0) break;
        pollfd p{pc.fd(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
        auto r = pc.read_some();
        REQUIRE(r.ok());
        out.lost = out.lost || r->lost;
        for (const auto& e : r->events) {
            if (e.pid == child) out.events.push_back(e);
        }
    }
    return out;
}

std::ptrdiff_t index_of(const std::vector<ProcEvent>& evs, ProcEventKind k) {
    auto it = std::find_if(evs.begin(), evs.end(), [&](const ProcEvent& e) { return e.kind == k; });
    return it == evs.end() ? -1 : it - evs.begin();
}

bool kernel_at_least(int major, int minor) {
    utsname u{};
    if (::uname(&u) != 0) return false;
    int ma = 0, mi = 0;
    if (std::sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
    return ma > major || (ma == major && mi >= minor);
}

}  // namespace

TEST_CASE("the proc connector reports fork, exec and exit of a child", "[kernel][proc_connector]") {
    const bool filter = GENERATE(true, false);
    INFO("use_event_filter = " << filter);
    auto pc = open_or_fail(ProcConnectorOptions{.use_event_filter = filter});
    if (!filter) CHECK_FALSE(pc->filtered());

    const pid_t child = spawn_true();
    REQUIRE(child > 0);
    const ChildEvents got = collect_child_events(*pc, child, 5000);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);

    INFO("events for child " << child << ": " << got.events.size() << ", lost " << got.lost);
    REQUIRE(got.complete());
    const auto fork_at = index_of(got.events, ProcEventKind::fork);
    const auto exec_at = index_of(got.events, ProcEventKind::exec);
    const auto exit_at = index_of(got.events, ProcEventKind::exit);
    CHECK(fork_at < exec_at);
    CHECK(exec_at < exit_at);

    const ProcEvent& f = got.events[static_cast<std::size_t>(fork_at)];
    CHECK(f.tgid == child);
    CHECK(f.parent_tgid == ::getpid());
    CHECK(f.parent_pid == ::gettid());
    const ProcEvent& x = got.events[static_cast<std::size_t>(exit_at)];
    CHECK(x.tgid == child);
    CHECK(x.exit_code == 0);
    CHECK(pc->malformed() == 0);
}

TEST_CASE("the kernel event filter is in use on Linux >= 6.6", "[kernel][proc_connector]") {
    auto pc = open_or_fail(ProcConnectorOptions{});
    if (kernel_at_least(6, 6)) {
        CHECK(pc->filtered());
    } else {
        WARN("kernel older than 6.6: filter not expected, filtered() = " << pc->filtered());
    }
    auto unfiltered = open_or_fail(ProcConnectorOptions{.use_event_filter = false});
    CHECK_FALSE(unfiltered->filtered());
}

TEST_CASE("ENOBUFS is reported when the receive buffer overflows", "[kernel][proc_connector]") {
    auto pc = open_or_fail(ProcConnectorOptions{.rcvbuf_bytes = 1024});
    const int effective = pc->rcvbuf();
    INFO("effective rcvbuf " << effective);
    REQUIRE(effective > 0);
    REQUIRE(effective <= 64 * 1024);  // the tiny request was not grown to the 8 MiB default

    for (int i = 0; i < 3000; ++i) {
        const pid_t child = ::fork();
        if (child == 0) ::_exit(0);
        REQUIRE(child > 0);
        REQUIRE(::waitpid(child, nullptr, 0) == child);
    }

    bool lost = false;
    std::size_t events = 0;
    for (int turn = 0; turn < 1000; ++turn) {
        auto r = pc->read_some(64);
        REQUIRE(r.ok());
        lost = lost || r->lost;
        events += r->events.size();
        if (r->would_block) break;
    }
    INFO("events read after the burst: " << events);
    CHECK(lost);
    CHECK(events < 6000);  // 3000 forks + 3000 exits could not all fit
}

TEST_CASE("datagrams not sent by the kernel are dropped and counted", "[kernel][proc_connector]") {
    auto pc = open_or_fail(ProcConnectorOptions{});
    sockaddr_nl self{};
    socklen_t self_len = sizeof self;
    REQUIRE(::getsockname(pc->fd(), reinterpret_cast<sockaddr*>(&self), &self_len) == 0);
    REQUIRE(self.nl_pid != 0);

    const int forger = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
    REQUIRE(forger >= 0);
    sockaddr_nl bind_addr{};
    bind_addr.nl_family = AF_NETLINK;
    REQUIRE(::bind(forger, reinterpret_cast<sockaddr*>(&bind_addr), sizeof bind_addr) == 0);

    // A well-formed FORK message claiming pid 424242, sent from user space straight to our port.
    proc_event ev{};
    ev.what = proc_event::PROC_EVENT_FORK;
    ev.event_data.fork.child_pid = 424242;
    ev.event_data.fork.child_tgid = 424242;
    cn_msg cn{};
    cn.id = {CN_IDX_PROC, CN_VAL_PROC};
    cn.len = sizeof ev;
    nlmsghdr nl{};
    nl.nlmsg_len = sizeof nl + sizeof cn + sizeof ev;
    nl.nlmsg_type = NLMSG_DONE;
    std::vector<unsigned char> msg(nl.nlmsg_len);
    std::memcpy(msg.data(), &nl, sizeof nl);
    std::memcpy(msg.data() + sizeof nl, &cn, sizeof cn);
    std::memcpy(msg.data() + sizeof nl + sizeof cn, &ev, sizeof ev);
    sockaddr_nl dst{};
    dst.nl_family = AF_NETLINK;
    dst.nl_pid = self.nl_pid;
    const ssize_t sent = ::sendto(forger, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst);
    ::close(forger);
    REQUIRE(sent == static_cast<ssize_t>(msg.size()));

    bool saw_forged = false;
    for (int turn = 0; turn < 100; ++turn) {
        auto r = pc->read_some();
        REQUIRE(r.ok());
        for (const auto& e : r->events) saw_forged = saw_forged || e.pid == 424242;
        if (r->would_block) break;
    }
    CHECK_FALSE(saw_forged);
    CHECK(pc->malformed() >= 1);
}
