// Parser for /proc/PID/mountinfo.
#include "mountinfo.h"

#include "parse_util.h"

namespace pidns {

std::string unescape_mount_path(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            auto a = s[i + 1], b = s[i + 2], c = s[i + 3];
            if (a >= '0' && a <= '3' && b >= '0' && b <= '7' && c >= '0' && c <= '7') {
                out.push_back(static_cast<char>((a - '0') * 64 + (b - '0') * 8 + (c - '0')));
                i += 3;
                continue;
            }
        }
        out.push_back(s[i]);
    }
    return out;
}

Result<std::vector<MountEntry>> parse_mountinfo(std::string_view text) {
    std::vector<MountEntry> out;
    std::size_t pos = 0, lineno = 0;
    std::string_view line;
    while (next_line(text, pos, line)) {
        ++lineno;
        if (line.empty()) continue;
        auto f = split_ws(line);
        // id parent maj:min root mountpoint options [optional...] - fstype source superopts
        std::size_t sep = 0;
        for (std::size_t i = 6; i < f.size(); ++i)
            if (f[i] == "-") {
                sep = i;
                break;
            }
        auto id = f.empty() ? std::nullopt : parse_u64(f[0]);
        if (f.size() < 7 || sep == 0 || sep + 1 >= f.size() || !id)
            return make_error(Errc::parse, "mountinfo: malformed line " + std::to_string(lineno));
        MountEntry e;
        e.mount_id = *id;
        e.root = unescape_mount_path(f[3]);
        e.mount_point = unescape_mount_path(f[4]);
        e.fstype = std::string(f[sep + 1]);
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<NsfsMount> nsfs_mounts(const std::vector<MountEntry>& entries) {
    std::vector<NsfsMount> out;
    for (const auto& e : entries) {
        if (e.fstype != "nsfs") continue;
        auto link = parse_ns_link(e.root);
        if (!link) continue;
        out.push_back(NsfsMount{*link, e.mount_point, e.mount_id});
    }
    return out;
}

}  // namespace pidns
