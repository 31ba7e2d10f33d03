// The proc connector socket: subscribe (optionally with the 6.6+ event filter), read and parse events.
#include "proc_connector.h"

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace pidns {
namespace {

// struct proc_input from the Linux 6.6 uapi (Debian 12's headers predate it). The kernel's
// cn_proc_mcast_ctl() treats a cn_msg payload of exactly this size as {op, event_type mask}; a
// 4-byte payload is the classic bare op meaning "all events". Older kernels ignore other sizes
// silently (no ack), so the filter is applied on top of a classic subscription, never instead.
struct ProcInput {
    std::uint32_t mcast_op;
    std::uint32_t event_type;
};
static_assert(sizeof(ProcInput) == 8);

// The kernel's cn_filter() delivers a message when (event_type & what) != 0, so PROC_EVENT_NONE
// (what == 0: the acks) can never pass a filter: acks are only seen on unfiltered subscriptions.
constexpr std::uint32_t kEventMask =
    proc_event::PROC_EVENT_FORK | proc_event::PROC_EVENT_EXEC | proc_event::PROC_EVENT_EXIT;

constexpr int kAckTimeoutMs = 1000;
constexpr std::size_t kRecvBufLen = 8192;  // a proc connector datagram is 76 bytes
constexpr std::size_t kHandshakeDrainMax = 4096;

const char* const kNoConnectorHint = "the proc connector serves only the initial pid, user and network namespace";

Error io_error(const std::string& what, int err) { return make_error(Errc::io, what, err); }

Error unsupported(const std::string& why, int err = 0) {
    return make_error(Errc::unsupported, why + ": " + kNoConnectorHint, err);
}

std::uint32_t make_nonce() {
    static std::atomic<std::uint32_t> counter{0};
    std::uint32_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof v)) {
        timespec ts{};
        clock_gettime(CLOCK_MONOTONIC, &ts);
        v = static_cast<std::uint32_t>(ts.tv_nsec) ^ (static_cast<std::uint32_t>(getpid()) << 16);
    }
    return v + counter.fetch_add(0x9e3779b9u);
}

std::int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

Result<int> open_socket() {
    int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_CONNECTOR);
    if (fd >= 0) return fd;
    const int err = errno;
    if (err == EPROTONOSUPPORT || err == EAFNOSUPPORT || err == ESOCKTNOSUPPORT) {
        return unsupported("the kernel has no netlink connector (CONFIG_CONNECTOR/CONFIG_PROC_EVENTS)", err);
    }
    if (err == EPERM || err == EACCES) return unsupported("creating a NETLINK_CONNECTOR socket was refused", err);
    return io_error("socket(AF_NETLINK, NETLINK_CONNECTOR) failed", err);
}

Status set_rcvbuf(int fd, int bytes) {
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) == 0) return Ok{};
    if (errno != EPERM) return io_error("setsockopt(SO_RCVBUFFORCE) on the proc connector failed", errno);
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) == 0) return Ok{};
    return io_error("setsockopt(SO_RCVBUF) on the proc connector failed", errno);
}

Status bind_proc_group(int fd) {
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;
    addr.nl_pid = 0;  // let the kernel pick a port id: several connectors may live in one process
    addr.nl_groups = CN_IDX_PROC;
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return Ok{};
    const int err = errno;
    if (err == EPERM || err == EACCES) return unsupported("binding to the proc connector group was refused", err);
    return io_error("bind to the proc connector group failed", err);
}

// nlmsghdr + cn_msg + payload (4-byte op or 8-byte proc_input), laid out byte by byte.
std::size_t build_mcast(std::array<std::byte, 64>& out, std::uint32_t op, bool with_filter, std::uint32_t nonce) {
    const ProcInput input{op, kEventMask};
    const std::size_t payload_len = with_filter ? sizeof input : sizeof op;
    const std::size_t total = sizeof(nlmsghdr) + sizeof(cn_msg) + payload_len;
    nlmsghdr nl{};
    nl.nlmsg_len = static_cast<std::uint32_t>(total);
    nl.nlmsg_type = NLMSG_DONE;
    nl.nlmsg_seq = nonce;
    cn_msg cn{};
    cn.id.idx = CN_IDX_PROC;
    cn.id.val = CN_VAL_PROC;
    cn.seq = nonce;
    cn.ack = nonce;  // the kernel answers with ack + 1 (it overwrites seq with its own counter)
    cn.len = static_cast<std::uint16_t>(payload_len);
    out.fill(std::byte{0});
    std::memcpy(out.data(), &nl, sizeof nl);
    std::memcpy(out.data() + sizeof nl, &cn, sizeof cn);
    std::memcpy(out.data() + sizeof nl + sizeof cn, &input, payload_len);
    return total;
}

}  // namespace

ProcConnector::ProcConnector(int fd) noexcept : fd_(fd), buf_(kRecvBufLen) {}

ProcConnector::~ProcConnector() {
    if (fd_ < 0) return;
    if (subscribed_) (void)send_mcast(PROC_CN_MCAST_IGNORE, false, make_nonce());
    ::close(fd_);
}

Result<std::unique_ptr<ProcConnector>> ProcConnector::open(const ProcConnectorOptions& opts) {
    auto fd = open_socket();
    if (!fd) return std::move(fd).error();
    std::unique_ptr<ProcConnector> pc(new ProcConnector(*fd));
    if (opts.rcvbuf_bytes > 0) {
        if (auto st = set_rcvbuf(pc->fd_, opts.rcvbuf_bytes); !st) return std::move(st).error();
    }
    if (auto st = bind_proc_group(pc->fd_); !st) return std::move(st).error();
    if (auto st = pc->subscribe(); !st) return std::move(st).error();
    if (opts.use_event_filter) {
        if (auto st = pc->send_mcast(PROC_CN_MCAST_LISTEN, true, make_nonce()); !st) return std::move(st).error();
        if (auto st = pc->probe_filter(); !st) return std::move(st).error();
    }
    pc->acks_.clear();
    pc->comm_pids_.clear();
    return pc;
}

// Classic 4-byte LISTEN first: it is the only form every kernel acknowledges.
Status ProcConnector::subscribe() {
    const std::uint32_t nonce = make_nonce();
    if (auto st = send_mcast(PROC_CN_MCAST_LISTEN, false, nonce); !st) return st;
    auto st = wait_for_ack(nonce);
    subscribed_ = st.ok();  // only then does the destructor send IGNORE (old kernels count blindly)
    return st;
}

Status ProcConnector::send_mcast(std::uint32_t op, bool with_filter, std::uint32_t ack_nonce) {
    std::array<std::byte, 64> msg{};
    const std::size_t len = build_mcast(msg, op, with_filter, ack_nonce);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    for (;;) {
        const ssize_t n = ::sendto(fd_, msg.data(), len, 0, reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
        if (n == static_cast<ssize_t>(len)) return Ok{};
        if (n >= 0) return io_error("short send to the proc connector", 0);
        if (errno == EINTR) continue;
        const int err = errno;
        if (err == ECONNREFUSED) return unsupported("no proc connector in this network namespace", err);
        if (err == EPERM || err == EACCES) return unsupported("the kernel refused the proc connector request", err);
        return io_error("sending to the proc connector failed", err);
    }
}

ProcConnector::Recv ProcConnector::recv_one(std::vector<std::byte>& buf, std::size_t& len, int& err) {
    for (;;) {
        sockaddr_nl from{};
        socklen_t from_len = sizeof from;
        const ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC,
                                     reinterpret_cast<sockaddr*>(&from), &from_len);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return Recv::would_block;
            if (errno == ENOBUFS) return Recv::lost;
            err = errno;
            return Recv::error;
        }
        const bool from_kernel = from_len >= sizeof from && from.nl_family == AF_NETLINK && from.nl_pid == 0;
        if (!from_kernel || static_cast<std::size_t>(n) > buf.size()) {
            ++malformed_;  // forged by a user-space sender, or larger than any proc connector message
            return Recv::dropped;
        }
        len = static_cast<std::size_t>(n);
        return Recv::datagram;
    }
}

void ProcConnector::absorb(ParsedBatch&& batch) {
    pending_.insert(pending_.end(), batch.events.begin(), batch.events.end());
    acks_.insert(acks_.end(), batch.acks.begin(), batch.acks.end());
    comm_pids_.insert(comm_pids_.end(), batch.comm_pids.begin(), batch.comm_pids.end());
    if (batch.overrun) pending_lost_ = true;
}

// Reads everything queued right now into pending_/acks_/comm_pids_; lost is set on ENOBUFS.
Status ProcConnector::drain_handshake(bool& lost) {
    for (std::size_t i = 0; i < kHandshakeDrainMax; ++i) {
        std::size_t len = 0;
        int err = 0;
        switch (recv_one(buf_, len, err)) {
        case Recv::would_block: return Ok{};
        case Recv::lost: lost = pending_lost_ = true; break;
        case Recv::dropped: break;
        case Recv::error: return io_error("recvfrom on the proc connector socket failed", err);
        case Recv::datagram: {
            auto parsed = parse_proc_events(std::span<const std::byte>(buf_.data(), len));
            if (parsed) absorb(std::move(parsed).value()); else ++malformed_;
            break;
        }
        }
    }
    return Ok{};
}

Status ProcConnector::wait_for_ack(std::uint32_t ack_nonce) {
    const std::int64_t deadline = now_ms() + kAckTimeoutMs;
    bool resent = false;
    for (;;) {
        bool lost = false;
        if (auto st = drain_handshake(lost); !st) return st;
        auto it = std::find_if(acks_.begin(), acks_.end(), [&](const ProcAck& a) { return a.ack == ack_nonce + 1; });
        if (it != acks_.end()) {
            const int err = static_cast<int>(it->err);
            acks_.clear();
            if (err == 0) return Ok{};
            if (err == EPERM || err == EACCES) {
                return unsupported("the kernel refused the proc connector subscription", err);
            }
            return io_error("the proc connector rejected the subscription", err);
        }
        if (lost && !resent) {  // our ack may have been dropped with the overflow: ask again (idempotent)
            resent = true;
            if (auto st = send_mcast(PROC_CN_MCAST_LISTEN, false, ack_nonce); !st) return st;
            continue;
        }
        const std::int64_t left = deadline - now_ms();
        if (left <= 0) {
            return unsupported("no acknowledgement from the kernel's proc connector within 1 s "
                               "(the kernel ignores subscriptions from non-initial pid/user namespaces)");
        }
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) {
            return io_error("poll on the proc connector socket failed", errno);
        }
    }
}

// Renaming our thread to its own name emits a PROC_EVENT_COMM synchronously (prctl -> netlink
// broadcast). If it reaches us, the kernel did not apply the FORK|EXEC|EXIT filter.
Status ProcConnector::probe_filter() {
    filtered_ = false;
    std::array<char, 32> name{};
    if (::prctl(PR_GET_NAME, name.data()) != 0 || ::prctl(PR_SET_NAME, name.data()) != 0) return Ok{};
    comm_pids_.clear();
    bool lost = false;
    if (auto st = drain_handshake(lost); !st) return st;
    const std::int32_t tid = static_cast<std::int32_t>(::gettid());
    const bool saw_comm = std::find(comm_pids_.begin(), comm_pids_.end(), tid) != comm_pids_.end();
    filtered_ = !saw_comm && !lost;  // an overflow could have swallowed the COMM event: stay unsure
    return Ok{};
}

Result<ProcConnectorRead> ProcConnector::read_some(std::size_t max_datagrams) {
    ProcConnectorRead r;
    r.events = std::move(pending_);
    pending_.clear();
    r.lost = std::exchange(pending_lost_, false);
    for (std::size_t i = 0; i < max_datagrams; ++i) {
        std::size_t len = 0;
        int err = 0;
        switch (recv_one(buf_, len, err)) {
        case Recv::would_block: r.would_block = true; return r;
        case Recv::lost: r.lost = true; break;
        case Recv::dropped: break;
        case Recv::error:
            pending_ = std::move(r.events);  // keep what was read for the next call
            pending_lost_ = r.lost;
            return io_error("recvfrom on the proc connector socket failed", err);
        case Recv::datagram: {
            auto parsed = parse_proc_events(std::span<const std::byte>(buf_.data(), len));
            if (!parsed) {
                ++malformed_;
                break;
            }
            auto& evs = parsed->events;
            r.events.insert(r.events.end(), evs.begin(), evs.end());
            if (parsed->overrun) r.lost = true;
            break;
        }
        }
    }
    return r;
}

int ProcConnector::fd() const noexcept { return fd_; }

bool ProcConnector::filtered() const noexcept { return filtered_; }

int ProcConnector::rcvbuf() const noexcept {
    int v = 0;
    socklen_t len = sizeof v;
    if (::getsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &v, &len) != 0) return -1;
    return v;
}

std::uint64_t ProcConnector::malformed() const noexcept { return malformed_; }

}  // namespace pidns
