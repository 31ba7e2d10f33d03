// Bounds-checked decoding of proc connector datagrams (no system calls).
#include "proc_event.h"

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

namespace pidns {
namespace {

constexpr std::size_t kNlHdrLen = sizeof(nlmsghdr);                     // 16
constexpr std::size_t kCnHdrLen = sizeof(cn_msg);                       // 20
constexpr std::size_t kEvHdrLen = offsetof(proc_event, event_data);     // what, cpu, timestamp_ns

using ForkBody = decltype(proc_event::event_data.fork);
using ExecBody = decltype(proc_event::event_data.exec);
using ExitBody = decltype(proc_event::event_data.exit);
using AckBody = decltype(proc_event::event_data.ack);
using CommBody = decltype(proc_event::event_data.comm);

static_assert(kNlHdrLen == 16 && kCnHdrLen == 20 && kEvHdrLen == 16);

// Copies a T out of `bytes` at `off`; the caller has checked the bounds.
template <class T>
T load(std::span<const std::byte> bytes, std::size_t off) {
    T v{};
    std::memcpy(&v, bytes.data() + off, sizeof(T));
    return v;
}

std::size_t nl_align(std::size_t n) { return (n + NLMSG_ALIGNTO - 1) & ~std::size_t{NLMSG_ALIGNTO - 1}; }

Error parse_error(std::string message) { return make_error(Errc::parse, std::move(message)); }

std::string num(std::size_t n) { return std::to_string(n); }

const char* what_name(std::uint32_t what) {
    switch (what) {
    case proc_event::PROC_EVENT_NONE: return "NONE";
    case proc_event::PROC_EVENT_FORK: return "FORK";
    case proc_event::PROC_EVENT_EXEC: return "EXEC";
    case proc_event::PROC_EVENT_EXIT: return "EXIT";
    case proc_event::PROC_EVENT_COMM: return "COMM";
    default: return "other";
    }
}

// Bytes of event_data the kernel always sends for the kinds we read; 0 for kinds we only skip.
std::size_t body_len(std::uint32_t what) {
    switch (what) {
    case proc_event::PROC_EVENT_NONE: return sizeof(AckBody);
    case proc_event::PROC_EVENT_FORK: return sizeof(ForkBody);
    case proc_event::PROC_EVENT_EXEC: return sizeof(ExecBody);
    case proc_event::PROC_EVENT_EXIT: return sizeof(ExitBody);
    case proc_event::PROC_EVENT_COMM: return sizeof(CommBody);
    default: return 0;
    }
}

void decode_known(std::uint32_t what, std::uint32_t cn_ack, std::span<const std::byte> ev, ParsedBatch& out) {
    switch (what) {
    case proc_event::PROC_EVENT_FORK: {
        auto b = load<ForkBody>(ev, kEvHdrLen);
        out.events.push_back(ProcEvent{.kind = ProcEventKind::fork, .pid = b.child_pid, .tgid = b.child_tgid,
                                       .parent_pid = b.parent_pid, .parent_tgid = b.parent_tgid});
        return;
    }
    case proc_event::PROC_EVENT_EXEC: {
        auto b = load<ExecBody>(ev, kEvHdrLen);
        out.events.push_back(ProcEvent{.kind = ProcEventKind::exec, .pid = b.process_pid, .tgid = b.process_tgid});
        return;
    }
    case proc_event::PROC_EVENT_EXIT: {
        auto b = load<ExitBody>(ev, kEvHdrLen);
        out.events.push_back(ProcEvent{.kind = ProcEventKind::exit, .pid = b.process_pid, .tgid = b.process_tgid,
                                       .exit_code = b.exit_code});
        return;
    }
    case proc_event::PROC_EVENT_NONE:
        out.acks.push_back(ProcAck{.ack = cn_ack, .err = load<AckBody>(ev, kEvHdrLen).err});
        break;
    case proc_event::PROC_EVENT_COMM:
        out.comm_pids.push_back(load<CommBody>(ev, kEvHdrLen).process_pid);
        break;
    default: break;
    }
    ++out.skipped;
}

// `ev` is exactly the cn_msg.len bytes following a CN_IDX_PROC cn_msg header.
Status parse_proc_event(std::span<const std::byte> ev, std::uint32_t cn_ack, ParsedBatch& out) {
    if (ev.size() < kEvHdrLen) {
        return parse_error("proc_event truncated: cn_msg.len " + num(ev.size()) + " < " + num(kEvHdrLen) +
                           "-byte proc_event header");
    }
    const auto what = load<std::uint32_t>(ev, 0);
    const std::size_t need = kEvHdrLen + body_len(what);
    if (ev.size() < need) {
        return parse_error(std::string("proc event ") + what_name(what) + " truncated: needs " + num(need) +
                           " bytes, cn_msg.len is " + num(ev.size()));
    }
    decode_known(what, cn_ack, ev, out);
    return Ok{};
}

Status parse_cn_msg(std::span<const std::byte> payload, ParsedBatch& out) {
    if (payload.size() < kCnHdrLen) {
        return parse_error("cn_msg truncated: " + num(payload.size()) + " payload bytes < " + num(kCnHdrLen) +
                           "-byte cn_msg header");
    }
    const auto cn = load<cn_msg>(payload, 0);
    const std::size_t room = payload.size() - kCnHdrLen;
    if (cn.len > room) {
        return parse_error("cn_msg.len " + num(cn.len) + " > " + num(room) + " bytes of payload");
    }
    if (cn.id.idx != CN_IDX_PROC || cn.id.val != CN_VAL_PROC) {
        ++out.skipped;
        return Ok{};
    }
    return parse_proc_event(payload.subspan(kCnHdrLen, cn.len), cn.ack, out);
}

Status parse_nlmsg_error(std::span<const std::byte> payload, ParsedBatch& out) {
    if (payload.size() < sizeof(std::int32_t)) {
        return parse_error("NLMSG_ERROR truncated: " + num(payload.size()) + " payload bytes, need 4");
    }
    if (load<std::int32_t>(payload, 0) == -ENOBUFS) {
        out.overrun = true;
    } else {
        ++out.skipped;
    }
    return Ok{};
}

Status parse_nlmsg(std::uint16_t type, std::span<const std::byte> payload, ParsedBatch& out) {
    switch (type) {
    case NLMSG_NOOP: ++out.skipped; return Ok{};
    case NLMSG_ERROR: return parse_nlmsg_error(payload, out);
    case NLMSG_OVERRUN: out.overrun = true; return Ok{};
    case NLMSG_DONE:
        if (payload.empty()) {  // a bare end-of-dump marker
            ++out.skipped;
            return Ok{};
        }
        return parse_cn_msg(payload, out);  // the connector sends every cn_msg as NLMSG_DONE
    default:
        if (type >= NLMSG_MIN_TYPE) return parse_cn_msg(payload, out);
        ++out.skipped;
        return Ok{};
    }
}

}  // namespace

Result<ParsedBatch> parse_proc_events(std::span<const std::byte> datagram) {
    if (datagram.empty()) return parse_error("empty netlink datagram");
    ParsedBatch out;
    std::size_t off = 0;
    while (off < datagram.size()) {
        const std::size_t left = datagram.size() - off;
        if (left < kNlHdrLen) {
            return parse_error("netlink header truncated: " + num(left) + " bytes left at offset " + num(off) +
                               ", need " + num(kNlHdrLen));
        }
        const auto hdr = load<nlmsghdr>(datagram, off);
        if (hdr.nlmsg_len < kNlHdrLen) {
            return parse_error("nlmsg_len " + num(hdr.nlmsg_len) + " smaller than the " + num(kNlHdrLen) +
                               "-byte netlink header at offset " + num(off));
        }
        if (hdr.nlmsg_len > left) {
            return parse_error("netlink message truncated: nlmsg_len " + num(hdr.nlmsg_len) + " > " + num(left) +
                               " bytes left");
        }
        auto st = parse_nlmsg(hdr.nlmsg_type, datagram.subspan(off + kNlHdrLen, hdr.nlmsg_len - kNlHdrLen), out);
        if (!st) return std::move(st).error();
        off += std::min(nl_align(hdr.nlmsg_len), left);  // the last message may lack its padding
    }
    return out;
}

}  // namespace pidns
