// Pure parser for proc connector datagrams (netlink + cn_msg + proc_event) into fork/exec/exit events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "result.h"

namespace pidns {

enum class ProcEventKind : std::uint8_t { fork, exec, exit };

struct ProcEvent {
    ProcEventKind kind;
    // fork: parent_pid/parent_tgid and child_pid/child_tgid; exec/exit: pid/tgid of the task in `pid`/`tgid`.
    std::int32_t pid = 0;          // the task (fork: the child's pid i.e. its tid)
    std::int32_t tgid = 0;         // its thread group (fork: child_tgid)
    std::int32_t parent_pid = 0;   // fork only
    std::int32_t parent_tgid = 0;  // fork only
    std::uint32_t exit_code = 0;   // exit only (wait status as the kernel stores it: code << 8 | signal)

    friend bool operator==(const ProcEvent&, const ProcEvent&) = default;
};

// A PROC_EVENT_NONE reply to a PROC_CN_MCAST_* request.
struct ProcAck {
    std::uint32_t ack = 0;  // cn_msg.ack: the request's ack + 1 (the kernel overwrites seq)
    std::uint32_t err = 0;  // 0 or a positive errno
};

struct ParsedBatch {
    // fork/exec/exit events in order; other event kinds (uid, gid, sid, comm, coredump, ptrace,
    // NONE acks...) are skipped
    std::vector<ProcEvent> events;
    std::size_t skipped = 0;        // messages ignored (other event kinds, acks, other connector ids, noops)
    bool overrun = false;           // an NLMSG_OVERRUN or NLMSG_ERROR with -ENOBUFS was seen
    std::vector<ProcAck> acks;            // the skipped NONE acks, for the subscriber's handshake
    std::vector<std::int32_t> comm_pids;  // pid of each skipped PROC_EVENT_COMM, to probe the kernel's event filter
};

// Parses one datagram received from a NETLINK_CONNECTOR socket (may hold several nlmsghdr).
// Validates every length (nlmsg_len, cn_msg.len, sizeof proc_event for the what field) and
// never reads out of bounds; truncated or garbage input -> Errc::parse with a message saying
// what was wrong (e.g. "netlink message truncated: nlmsg_len 64 > 40 bytes left").
Result<ParsedBatch> parse_proc_events(std::span<const std::byte> datagram);

}  // namespace pidns
