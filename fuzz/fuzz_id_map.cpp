// libFuzzer target: parse_id_map (/proc/PID/uid_map, gid_map) and map_id_in over what it accepts.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "fuzz_check.h"
#include "id_map.h"

namespace {

// A naive oracle for map_id_in: the first extent whose outside range holds `outside`.
std::uint32_t naive_map(const std::vector<pidns::IdMapExtent>& map, std::uint32_t outside) {
    for (const auto& e : map) {
        const std::uint64_t lo = e.outside, hi = lo + e.count;  // [lo, hi)
        if (outside >= lo && outside < hi) return static_cast<std::uint32_t>(e.inside + (outside - lo));
    }
    return pidns::kOverflowId;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto r = pidns::parse_id_map(pidns::fuzz::as_text(data, size));
    if (!r) {
        FUZZ_CHECK(r.error().code == pidns::Errc::parse);
        FUZZ_CHECK(r.error().message.starts_with("id map line "));
        return 0;
    }
    FUZZ_CHECK(r->size() <= 340);
    for (const auto& e : *r) {
        FUZZ_CHECK(e.count != 0);
        FUZZ_CHECK(std::uint64_t{e.inside} + e.count <= (std::uint64_t{1} << 32));
        FUZZ_CHECK(std::uint64_t{e.outside} + e.count <= (std::uint64_t{1} << 32));
    }
    // Probe ids at and around every extent's edges, plus the extremes.
    std::vector<std::uint32_t> probes = {0, 1, pidns::kOverflowId, 0x7fffffffu, 0xfffffffeu, 0xffffffffu};
    for (const auto& e : *r) {
        const std::uint32_t last = static_cast<std::uint32_t>(std::uint64_t{e.outside} + e.count - 1);
        for (std::uint32_t v : {e.outside, e.outside - 1, last, last + 1}) probes.push_back(v);
    }
    for (auto id : probes) FUZZ_CHECK(pidns::map_id_in(*r, id) == naive_map(*r, id));
    return 0;
}
