// Parser for /proc/PID/uid_map and gid_map.
#include "id_map.h"

#include <string>

#include "parse_util.h"

namespace pidns {

Result<std::vector<IdMapExtent>> parse_id_map(std::string_view text) {
    std::vector<IdMapExtent> out;
    std::size_t pos = 0;
    std::string_view line;
    int lineno = 0;
    while (next_line(text, pos, line)) {
        ++lineno;
        auto f = split_ws(line);
        if (f.empty()) continue;
        auto bad = [&](const char* why) {
            return make_error(Errc::parse, "id map line " + std::to_string(lineno) + ": " + why);
        };
        if (f.size() != 3) return bad("expected three numbers");
        auto in = parse_u64(f[0]), outv = parse_u64(f[1]), cnt = parse_u64(f[2]);
        if (!in || !outv || !cnt) return bad("not a number");
        constexpr std::uint64_t k32 = std::uint64_t{1} << 32;
        // Each number first: a 64-bit one would wrap the sums below, or be truncated when stored.
        if (*in >= k32 || *outv >= k32 || *cnt >= k32) return bad("number beyond 32 bits");
        if (*cnt == 0) return bad("zero count");
        if (*in + *cnt > k32 || *outv + *cnt > k32) return bad("range beyond 32 bits");
        if (out.size() >= 340) return bad("more than 340 extents");
        out.push_back(IdMapExtent{static_cast<std::uint32_t>(*in), static_cast<std::uint32_t>(*outv),
                                  static_cast<std::uint32_t>(*cnt)});
    }
    return out;
}

std::uint32_t map_id_in(const std::vector<IdMapExtent>& map, std::uint32_t outside) noexcept {
    for (const auto& e : map)
        if (outside >= e.outside && std::uint64_t{outside} - e.outside < e.count) return e.inside + (outside - e.outside);
    return kOverflowId;
}

}  // namespace pidns
