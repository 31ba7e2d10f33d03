// Parser for /proc/PID/status.
#include "proc_status.h"

#include <cerrno>
#include <limits>
#include <string>

#include "parse_util.h"

namespace pidns {
namespace {

bool parse_i32(std::string_view s, std::int32_t& out) {
    auto v = parse_i64(s);
    if (!v || *v < 0 || *v > std::numeric_limits<std::int32_t>::max()) return false;
    out = static_cast<std::int32_t>(*v);
    return true;
}

bool parse_chain(std::string_view value, std::vector<std::int32_t>& out) {
    out.clear();
    std::size_t pos = 0;
    std::string_view f;
    while (next_field(value, pos, f)) {
        std::int32_t v = 0;
        if (!parse_i32(f, v) || out.size() == 64) return false;
        out.push_back(v);
    }
    return !out.empty();
}

bool parse_ids(std::string_view value, std::array<std::uint32_t, 4>& out) {
    std::size_t pos = 0, n = 0;
    std::string_view f;
    while (next_field(value, pos, f)) {
        auto v = parse_u64(f);
        if (n == 4 || !v || *v > std::numeric_limits<std::uint32_t>::max()) return false;
        out[n++] = static_cast<std::uint32_t>(*v);
    }
    return n == 4;
}

std::string_view trim_blanks(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
}

Error bad(std::string_view field) {
    return make_error(Errc::parse, "/proc status: missing or malformed field '" + std::string(field) + "'");
}

}  // namespace

Result<ProcStatus> parse_proc_status(std::string_view text) {
    ProcStatus st;
    enum Seen : unsigned { kTgid = 1, kPid = 2, kPPid = 4, kUid = 8, kGid = 16, kCap = 32, kNStgid = 64,
                           kNSpid = 128, kNSpgid = 256, kNSsid = 512, kCapPrm = 1024 };
    unsigned seen = 0;
    std::size_t pos = 0;
    std::string_view line;
    while (next_line(text, pos, line)) {
        auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        auto key = line.substr(0, colon);
        auto value = line.substr(colon + 1);
        const auto trimmed = trim_blanks(value);
        if (key == "Tgid") {
            if (!parse_i32(trimmed, st.tgid)) return bad(key);
            seen |= kTgid;
        } else if (key == "Pid") {
            if (!parse_i32(trimmed, st.pid)) return bad(key);
            seen |= kPid;
        } else if (key == "PPid") {
            if (!parse_i32(trimmed, st.ppid)) return bad(key);
            seen |= kPPid;
        } else if (key == "Uid") {
            if (!parse_ids(trimmed, st.uid)) return bad(key);
            seen |= kUid;
        } else if (key == "Gid") {
            if (!parse_ids(trimmed, st.gid)) return bad(key);
            seen |= kGid;
        } else if (key == "CapPrm") {
            auto v = parse_hex_u64(trimmed);
            if (!v) return bad(key);
            st.cap_prm = *v;
            seen |= kCapPrm;
        } else if (key == "CapEff") {
            auto v = parse_hex_u64(trimmed);
            if (!v) return bad(key);
            st.cap_eff = *v;
            seen |= kCap;
        } else if (key == "NStgid") {
            if (!parse_chain(trimmed, st.nstgid)) return bad(key);
            seen |= kNStgid;
        } else if (key == "NSpid") {
            if (!parse_chain(trimmed, st.nspid)) return bad(key);
            seen |= kNSpid;
        } else if (key == "NSpgid") {
            if (!parse_chain(trimmed, st.nspgid)) return bad(key);
            seen |= kNSpgid;
        } else if (key == "NSsid") {
            if (!parse_chain(trimmed, st.nssid)) return bad(key);
            seen |= kNSsid;
        }
    }
    static constexpr std::pair<unsigned, const char*> kRequired[] = {
        {kTgid, "Tgid"}, {kPid, "Pid"}, {kPPid, "PPid"}, {kUid, "Uid"}, {kGid, "Gid"}, {kCapPrm, "CapPrm"}, {kCap, "CapEff"},
        {kNStgid, "NStgid"}, {kNSpid, "NSpid"}, {kNSpgid, "NSpgid"}, {kNSsid, "NSsid"}};
    for (auto [bit, name] : kRequired)
        if (!(seen & bit)) return bad(name);
    const auto n = st.nspid.size();
    if (st.nstgid.size() != n || st.nspgid.size() != n || st.nssid.size() != n)
        return make_error(Errc::parse, "/proc status: NS* chains have different lengths");
    // A task released (reaped) while the kernel printed its status: Pid comes from the /proc
    // entry's own pid, Tgid and the NS* chains from the task, 0 once it is detached from its pids.
    // No live task has tgid 0 in the pid namespace of the /proc it is listed in.
    if (st.pid > 0 && (st.tgid == 0 || st.nspid.front() == 0))
        return make_error(Errc::not_found, "process " + std::to_string(st.pid) + " exited while its status was read",
                          ESRCH);
    if (st.nspid.front() != st.pid || st.nstgid.front() != st.tgid)
        return make_error(Errc::parse, "/proc status: NSpid/NStgid do not start with Pid/Tgid");
    return st;
}

Result<StatusCredentials> parse_status_credentials(std::string_view text) {
    StatusCredentials c;
    enum Seen : unsigned { kState = 1, kUid = 2, kGid = 4, kCap = 8, kAll = 15 };
    unsigned seen = 0;
    std::size_t pos = 0;
    std::string_view line;
    while (seen != kAll && next_line(text, pos, line)) {
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        const auto key = line.substr(0, colon);
        const auto value = trim_blanks(line.substr(colon + 1));
        if (key == "State") {
            if (value.empty()) return bad(key);
            c.state = value.front();
            seen |= kState;
        } else if (key == "Uid") {
            if (!parse_ids(value, c.uid)) return bad(key);
            seen |= kUid;
        } else if (key == "Gid") {
            if (!parse_ids(value, c.gid)) return bad(key);
            seen |= kGid;
        } else if (key == "CapEff") {
            auto v = parse_hex_u64(value);
            if (!v) return bad(key);
            c.cap_eff = *v;
            seen |= kCap;
        }
    }
    if (!(seen & kState)) return bad("State");
    if (!(seen & kUid)) return bad("Uid");
    if (!(seen & kGid)) return bad("Gid");
    if (!(seen & kCap)) return bad("CapEff");
    return c;
}

}  // namespace pidns
