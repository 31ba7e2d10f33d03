// Unit tests for the pure proc connector datagram parser, on fixtures built from the kernel's layouts.
#include <catch2/catch.hpp>

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <random>
#include <vector>

#include "proc_event.h"

using pidns::Errc;
using pidns::ParsedBatch;
using pidns::ProcEvent;
using pidns::ProcEventKind;
using Bytes = std::vector<std::byte>;

namespace {

template <class T>
void append(Bytes& out, const T& v, std::size_t n = sizeof(T)) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    out.insert(out.end(), p, p + n);
}

void append_bytes(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }

// One netlink message: header (nlmsg_len = header + payload unless overridden), payload, padding to 4.
Bytes nlmsg(std::uint16_t type, const Bytes& payload, std::optional<std::uint32_t> len = {}, bool pad = true) {
    nlmsghdr h{};
    h.nlmsg_len = len.value_or(static_cast<std::uint32_t>(NLMSG_HDRLEN + payload.size()));
    h.nlmsg_type = type;
    h.nlmsg_seq = 7;
    Bytes out;
    append(out, h);
    append_bytes(out, payload);
    while (pad && out.size() % NLMSG_ALIGNTO != 0) out.push_back(std::byte{0});
    return out;
}

// A cn_msg header followed by `data`; cn_msg.len = data size unless overridden.
Bytes cn(const Bytes& data, cb_id id = {CN_IDX_PROC, CN_VAL_PROC}, std::optional<std::uint16_t> len = {},
         std::uint32_t ack = 0) {
    cn_msg m{};
    m.id = id;
    m.seq = 1234;
    m.ack = ack;
    m.len = len.value_or(static_cast<std::uint16_t>(data.size()));
    Bytes out;
    append(out, m);
    append_bytes(out, data);
    return out;
}

Bytes event_bytes(const proc_event& ev) {
    Bytes out;
    append(out, ev);
    return out;
}

proc_event base_event(std::uint32_t what) {
    proc_event ev{};
    ev.what = static_cast<decltype(ev.what)>(what);
    ev.cpu = 3;
    ev.timestamp_ns = 123456789;
    return ev;
}

Bytes fork_event(int ppid, int ptgid, int cpid, int ctgid) {
    auto ev = base_event(proc_event::PROC_EVENT_FORK);
    ev.event_data.fork.parent_pid = ppid;
    ev.event_data.fork.parent_tgid = ptgid;
    ev.event_data.fork.child_pid = cpid;
    ev.event_data.fork.child_tgid = ctgid;
    return event_bytes(ev);
}

Bytes exec_event(int pid, int tgid) {
    auto ev = base_event(proc_event::PROC_EVENT_EXEC);
    ev.event_data.exec.process_pid = pid;
    ev.event_data.exec.process_tgid = tgid;
    return event_bytes(ev);
}

Bytes exit_event(int pid, int tgid, std::uint32_t code) {
    auto ev = base_event(proc_event::PROC_EVENT_EXIT);
    ev.event_data.exit.process_pid = pid;
    ev.event_data.exit.process_tgid = tgid;
    ev.event_data.exit.exit_code = code;
    ev.event_data.exit.exit_signal = 17;
    ev.event_data.exit.parent_pid = 1;
    ev.event_data.exit.parent_tgid = 1;
    return event_bytes(ev);
}

Bytes kernel_msg(const Bytes& event) { return nlmsg(NLMSG_DONE, cn(event)); }

pidns::Result<ParsedBatch> parse(const Bytes& d) { return pidns::parse_proc_events(std::span<const std::byte>(d)); }

ParsedBatch parse_ok(const Bytes& d) {
    auto r = parse(d);
    INFO((r.ok() ? std::string("ok") : r.error().describe()));
    REQUIRE(r.ok());
    return std::move(r).value();
}

std::string parse_fail(const Bytes& d) {
    auto r = parse(d);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::parse);
    return r.error().message;
}

Bytes nlerr(int error) {
    nlmsgerr e{};
    e.error = error;
    Bytes payload;
    append(payload, e);
    return nlmsg(NLMSG_ERROR, payload);
}

}  // namespace

TEST_CASE("kernel layouts match what the parser assumes", "[proc_event]") {
    STATIC_REQUIRE(sizeof(nlmsghdr) == 16);
    STATIC_REQUIRE(sizeof(cn_msg) == 20);
    STATIC_REQUIRE(sizeof(proc_event) == 40);
    CHECK(kernel_msg(fork_event(1, 1, 2, 2)).size() == 76);
}

TEST_CASE("a fork event parses into its pids, tgids and parent", "[proc_event]") {
    auto b = parse_ok(kernel_msg(fork_event(100, 99, 4242, 4241)));
    REQUIRE(b.events.size() == 1);
    const ProcEvent& e = b.events[0];
    CHECK(e.kind == ProcEventKind::fork);
    CHECK(e.pid == 4242);
    CHECK(e.tgid == 4241);
    CHECK(e.parent_pid == 100);
    CHECK(e.parent_tgid == 99);
    CHECK(e.exit_code == 0);
    CHECK(b.skipped == 0);
    CHECK_FALSE(b.overrun);
}

TEST_CASE("an exec event parses into its pid and tgid", "[proc_event]") {
    auto b = parse_ok(kernel_msg(exec_event(555, 554)));
    REQUIRE(b.events.size() == 1);
    CHECK(b.events[0] == ProcEvent{.kind = ProcEventKind::exec, .pid = 555, .tgid = 554});
}

TEST_CASE("an exit event parses into its pid, tgid and exit code", "[proc_event]") {
    auto b = parse_ok(kernel_msg(exit_event(777, 777, 0x0100)));
    REQUIRE(b.events.size() == 1);
    CHECK(b.events[0] == ProcEvent{.kind = ProcEventKind::exit, .pid = 777, .tgid = 777, .exit_code = 0x0100});
}

TEST_CASE("several messages in one datagram keep their order", "[proc_event]") {
    Bytes d = kernel_msg(fork_event(1, 1, 10, 10));
    auto comm = base_event(proc_event::PROC_EVENT_COMM);
    comm.event_data.comm.process_pid = 10;
    comm.event_data.comm.process_tgid = 10;
    std::memcpy(comm.event_data.comm.comm, "true", 5);
    append_bytes(d, kernel_msg(event_bytes(comm)));
    append_bytes(d, kernel_msg(exec_event(10, 10)));
    append_bytes(d, kernel_msg(exit_event(10, 10, 0)));
    auto b = parse_ok(d);
    REQUIRE(b.events.size() == 3);
    CHECK(b.events[0].kind == ProcEventKind::fork);
    CHECK(b.events[1].kind == ProcEventKind::exec);
    CHECK(b.events[2].kind == ProcEventKind::exit);
    for (const auto& e : b.events) CHECK(e.pid == 10);
    CHECK(b.skipped == 1);
    CHECK(b.comm_pids == std::vector<std::int32_t>{10});
}

TEST_CASE("a last message without its alignment padding is accepted", "[proc_event]") {
    Bytes d = kernel_msg(exec_event(5, 5));
    append_bytes(d, nlmsg(NLMSG_NOOP, Bytes{std::byte{1}}, {}, /*pad=*/false));  // nlmsg_len 17, no padding
    auto b = parse_ok(d);
    CHECK(b.events.size() == 1);
    CHECK(b.skipped == 1);
}

TEST_CASE("messages for other connector ids are skipped", "[proc_event]") {
    auto b = parse_ok(nlmsg(NLMSG_DONE, cn(fork_event(1, 1, 2, 2), cb_id{CN_IDX_CIFS, CN_VAL_CIFS})));
    CHECK(b.events.empty());
    CHECK(b.skipped == 1);
    auto b2 = parse_ok(nlmsg(NLMSG_DONE, cn(fork_event(1, 1, 2, 2), cb_id{CN_IDX_PROC, 2})));
    CHECK(b2.events.empty());
    CHECK(b2.skipped == 1);
}

TEST_CASE("other proc event kinds and acks are skipped", "[proc_event]") {
    Bytes d;
    for (std::uint32_t what : {proc_event::PROC_EVENT_UID, proc_event::PROC_EVENT_GID, proc_event::PROC_EVENT_SID,
                      proc_event::PROC_EVENT_PTRACE, proc_event::PROC_EVENT_COMM, proc_event::PROC_EVENT_COREDUMP}) {
        auto ev = base_event(what);
        ev.event_data.id.process_pid = 33;
        append_bytes(d, kernel_msg(event_bytes(ev)));
    }
    auto unknown = base_event(0x400);  // a kind newer than this parser
    append_bytes(d, kernel_msg(event_bytes(unknown)));
    auto ack = base_event(proc_event::PROC_EVENT_NONE);
    ack.event_data.ack.err = EPERM;
    append_bytes(d, nlmsg(NLMSG_DONE, cn(event_bytes(ack), {CN_IDX_PROC, CN_VAL_PROC}, {}, /*ack=*/42)));

    auto b = parse_ok(d);
    CHECK(b.events.empty());
    CHECK(b.skipped == 8);
    CHECK_FALSE(b.overrun);
    REQUIRE(b.acks.size() == 1);
    CHECK(b.acks[0].ack == 42);
    CHECK(b.acks[0].err == EPERM);
    CHECK(b.comm_pids == std::vector<std::int32_t>{33});
}

TEST_CASE("netlink loss indicators set overrun", "[proc_event]") {
    SECTION("NLMSG_ERROR with -ENOBUFS") {
        auto b = parse_ok(nlerr(-ENOBUFS));
        CHECK(b.overrun);
    }
    SECTION("NLMSG_OVERRUN") {
        auto b = parse_ok(nlmsg(NLMSG_OVERRUN, {}));
        CHECK(b.overrun);
    }
    SECTION("an overrun between events keeps the events") {
        Bytes d = kernel_msg(exec_event(1, 1));
        append_bytes(d, nlmsg(NLMSG_OVERRUN, {}));
        append_bytes(d, kernel_msg(exec_event(2, 2)));
        auto b = parse_ok(d);
        CHECK(b.overrun);
        CHECK(b.events.size() == 2);
    }
    SECTION("other NLMSG_ERROR codes and plain acks are not losses") {
        auto b = parse_ok(nlerr(0));
        CHECK_FALSE(b.overrun);
        CHECK(b.skipped == 1);
        auto b2 = parse_ok(nlerr(-EINVAL));
        CHECK_FALSE(b2.overrun);
    }
}

TEST_CASE("malformed datagrams are parse errors that say what is wrong", "[proc_event]") {
    using Catch::Matchers::Contains;
    const Bytes good = kernel_msg(fork_event(1, 1, 2, 2));

    SECTION("empty") { CHECK_THAT(parse_fail({}), Contains("empty")); }
    SECTION("3 bytes") {
        CHECK_THAT(parse_fail(Bytes(3, std::byte{0x4c})), Contains("netlink header truncated: 3 bytes left"));
    }
    SECTION("nlmsg_len larger than the buffer") {
        Bytes d = nlmsg(NLMSG_DONE, cn(fork_event(1, 1, 2, 2)), /*len=*/200);
        CHECK_THAT(parse_fail(d), Contains("netlink message truncated: nlmsg_len 200 > 76 bytes left"));
    }
    SECTION("datagram cut short inside the event") {
        Bytes d(good.begin(), good.begin() + 40);
        CHECK_THAT(parse_fail(d), Contains("nlmsg_len 76 > 40 bytes left"));
    }
    SECTION("nlmsg_len smaller than the header") {
        Bytes d = nlmsg(NLMSG_DONE, cn(fork_event(1, 1, 2, 2)), /*len=*/8);
        CHECK_THAT(parse_fail(d), Contains("nlmsg_len 8 smaller than the 16-byte netlink header"));
        CHECK_THAT(parse_fail(nlmsg(NLMSG_DONE, {}, /*len=*/0)), Contains("nlmsg_len 0"));
    }
    SECTION("payload too short for a cn_msg") {
        CHECK_THAT(parse_fail(nlmsg(NLMSG_DONE, Bytes(12, std::byte{0}))), Contains("cn_msg truncated"));
    }
    SECTION("cn_msg.len larger than the payload") {
        Bytes d = nlmsg(NLMSG_DONE, cn(fork_event(1, 1, 2, 2), {CN_IDX_PROC, CN_VAL_PROC}, /*len=*/64));
        CHECK_THAT(parse_fail(d), Contains("cn_msg.len 64 > 40 bytes of payload"));
    }
    SECTION("cn_msg.len too short for the proc_event header") {
        Bytes d = nlmsg(NLMSG_DONE, cn(fork_event(1, 1, 2, 2), {CN_IDX_PROC, CN_VAL_PROC}, /*len=*/8));
        CHECK_THAT(parse_fail(d), Contains("proc_event truncated: cn_msg.len 8"));
    }
    SECTION("a what with a truncated event body") {
        Bytes ev = fork_event(1, 1, 2, 2);
        ev.resize(24);  // header + only half of fork_proc_event
        CHECK_THAT(parse_fail(kernel_msg(ev)), Contains("proc event FORK truncated: needs 32 bytes, cn_msg.len is 24"));
        Bytes ex = exit_event(1, 1, 0);
        ex.resize(36);
        CHECK_THAT(parse_fail(kernel_msg(ex)), Contains("EXIT truncated: needs 40 bytes"));
        Bytes ack = event_bytes(base_event(proc_event::PROC_EVENT_NONE));
        ack.resize(16);
        CHECK_THAT(parse_fail(kernel_msg(ack)), Contains("NONE truncated"));
    }
    SECTION("a valid message followed by a truncated one fails as a whole") {
        Bytes d = good;
        Bytes bad = kernel_msg(exec_event(3, 3));
        d.insert(d.end(), bad.begin(), bad.begin() + 30);
        CHECK_THAT(parse_fail(d), Contains("nlmsg_len 76 > 30 bytes left"));
    }
    SECTION("trailing bytes shorter than a header") {
        Bytes d = good;
        d.push_back(std::byte{0});
        d.push_back(std::byte{0});
        d.push_back(std::byte{0});
        d.push_back(std::byte{0});
        d.push_back(std::byte{0});
        CHECK_THAT(parse_fail(d), Contains("5 bytes left at offset 76"));
    }
    SECTION("NLMSG_ERROR without its error code") {
        CHECK_THAT(parse_fail(nlmsg(NLMSG_ERROR, Bytes(2, std::byte{0}))), Contains("NLMSG_ERROR truncated"));
    }
}

TEST_CASE("random garbage never crashes the parser", "[proc_event][fuzz]") {
    std::mt19937 rng(20240607u);
    std::uniform_int_distribution<int> byte(0, 255);
    std::size_t accepted = 0;
    for (int i = 0; i < 4000; ++i) {
        Bytes d(static_cast<std::size_t>(rng() % 300));
        for (auto& b : d) b = static_cast<std::byte>(byte(rng));
        if (d.size() >= 4 && (rng() % 2) == 0) {  // plausible lengths reach the deeper checks more often
            const std::uint32_t len = static_cast<std::uint32_t>(rng() % (d.size() + 8));
            std::memcpy(d.data(), &len, sizeof len);
        }
        auto r = parse(d);
        if (r.ok()) {
            ++accepted;
        } else {
            REQUIRE(r.error().code == Errc::parse);
            REQUIRE_FALSE(r.error().message.empty());
        }
    }
    CHECK(accepted < 4000);
}

TEST_CASE("mutated and truncated real datagrams never crash the parser", "[proc_event][fuzz]") {
    Bytes seed = kernel_msg(fork_event(1, 1, 2, 2));
    append_bytes(seed, kernel_msg(exec_event(2, 2)));
    append_bytes(seed, kernel_msg(exit_event(2, 2, 0)));
    append_bytes(seed, nlerr(-ENOBUFS));
    std::mt19937 rng(7u);
    for (int i = 0; i < 4000; ++i) {
        Bytes d = seed;
        const int flips = 1 + static_cast<int>(rng() % 6);
        for (int f = 0; f < flips; ++f) d[rng() % d.size()] = static_cast<std::byte>(rng() & 0xff);
        if (rng() % 3 == 0) d.resize(rng() % (d.size() + 1));
        auto r = parse(d);
        if (r.ok()) {
            REQUIRE(r->events.size() <= 3);
        } else {
            REQUIRE(r.error().code == Errc::parse);
        }
    }
    for (std::size_t cut = 0; cut < seed.size(); ++cut) {  // every prefix
        auto r = parse(Bytes(seed.begin(), seed.begin() + static_cast<std::ptrdiff_t>(cut)));
        const bool boundary = cut != 0 && cut % 76 == 0;
        CHECK(r.ok() == boundary);
    }
}
