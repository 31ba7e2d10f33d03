// libFuzzer target: parse_mountinfo (/proc/PID/mountinfo), the nsfs bind mounts in it, and
// unescape_mount_path.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "fuzz_check.h"
#include "mountinfo.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = pidns::fuzz::as_text(data, size);

    const auto unescaped = pidns::unescape_mount_path(text);
    FUZZ_CHECK(unescaped.size() <= text.size());
    if (text.find('\\') == std::string_view::npos) FUZZ_CHECK(unescaped == text);

    auto r = pidns::parse_mountinfo(text);
    if (!r) {
        FUZZ_CHECK(r.error().code == pidns::Errc::parse);
        FUZZ_CHECK(r.error().message.starts_with("mountinfo: malformed line "));
        return 0;
    }
    const auto lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
    FUZZ_CHECK(r->size() <= lines);
    for (const auto& e : *r) {
        FUZZ_CHECK(!e.fstype.empty() && e.root.size() <= text.size() && e.mount_point.size() <= text.size());
    }
    const auto nsfs = pidns::nsfs_mounts(*r);
    FUZZ_CHECK(nsfs.size() <= r->size());
    for (const auto& m : nsfs) FUZZ_CHECK(m.ns.inode != 0);
    return 0;
}
