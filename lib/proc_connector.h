// Non-blocking NETLINK_CONNECTOR socket subscribed to the kernel's process events (fork/exec/exit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "proc_event.h"
#include "result.h"

namespace pidns {

struct ProcConnectorOptions {
    // Receive buffer; applied with SO_RCVBUFFORCE (falls back to SO_RCVBUF if EPERM). <= 0 keeps the
    // kernel default. The kernel doubles the value and enforces a small minimum.
    int rcvbuf_bytes = 8 << 20;
    // Use the kernel's PROC_CN_MCAST_LISTEN with a proc_input event_type filter (Linux >= 6.6) so only
    // FORK|EXEC|EXIT are delivered; kernels without it silently keep delivering every event kind.
    bool use_event_filter = true;
};

struct ProcConnectorRead {
    std::vector<ProcEvent> events;
    bool lost = false;         // ENOBUFS (or overrun) seen: events were lost, the owner must rescan
    bool would_block = false;  // nothing more to read right now
};

// Not thread-safe: one owner (the event loop) drives it.
class ProcConnector {
public:
    // socket(AF_NETLINK, SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC, NETLINK_CONNECTOR), bind to the CN_IDX_PROC
    // group, subscribe and wait (up to 1 s) for the kernel's acknowledgement.
    // Errors: Errc::unsupported when the kernel has no proc connector or refuses us (not in the initial
    // pid/user/network namespace, EPERM), Errc::io otherwise.
    static Result<std::unique_ptr<ProcConnector>> open(const ProcConnectorOptions& opts = {});

    ~ProcConnector();  // sends PROC_CN_MCAST_IGNORE best effort, closes fd
    ProcConnector(const ProcConnector&) = delete;
    ProcConnector& operator=(const ProcConnector&) = delete;

    int fd() const noexcept;         // non-blocking, for epoll
    bool filtered() const noexcept;  // whether the kernel event filter is verified to be in use
    int rcvbuf() const noexcept;     // effective receive buffer (getsockopt SO_RCVBUF), -1 on failure

    // Reads up to max_datagrams datagrams without blocking (bounded work per event-loop turn).
    // ENOBUFS -> lost=true (and keeps going). Malformed datagrams, and datagrams not sent by the
    // kernel, are counted in malformed() and dropped, never fatal.
    Result<ProcConnectorRead> read_some(std::size_t max_datagrams = 64);
    std::uint64_t malformed() const noexcept;

private:
    explicit ProcConnector(int fd) noexcept;

    Status subscribe();
    Status send_mcast(std::uint32_t op, bool with_filter, std::uint32_t ack_nonce);
    Status wait_for_ack(std::uint32_t ack_nonce);
    Status probe_filter();
    Status drain_handshake(bool& lost);

    enum class Recv { datagram, dropped, would_block, lost, error };
    Recv recv_one(std::vector<std::byte>& buf, std::size_t& len, int& err);
    void absorb(ParsedBatch&& batch);

    int fd_ = -1;
    bool filtered_ = false;
    bool subscribed_ = false;
    std::uint64_t malformed_ = 0;
    // Events and losses seen during open()'s handshake, handed out by the first read_some().
    std::vector<ProcEvent> pending_;
    bool pending_lost_ = false;
    std::vector<ProcAck> acks_;
    std::vector<std::int32_t> comm_pids_;
    std::vector<std::byte> buf_;
};

}  // namespace pidns
