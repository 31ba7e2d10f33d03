// libFuzzer target: parse_ns_link ("net:[4026531840]", readlink of /proc/PID/ns/TYPE or fd/N).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "ns_link.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = pidns::fuzz::as_text(data, size);
    auto r = pidns::parse_ns_link(text);
    if (!r) {
        FUZZ_CHECK(r.error().code == pidns::Errc::parse);
        FUZZ_CHECK(!r.error().message.empty());
        // The message quotes at most a bounded prefix of the input.
        FUZZ_CHECK(r.error().message.size() < 160);
        return 0;
    }
    FUZZ_CHECK(r->inode != 0);
    // Accepted links have the kernel's shape TYPE:[DIGITS] (leading zeros are tolerated).
    const std::string head = std::string(pidns::ns_type_name(r->type)) + ":[";
    FUZZ_CHECK(text.starts_with(head) && text.ends_with("]") && text.size() > head.size() + 1);
    const auto digits = text.substr(head.size(), text.size() - head.size() - 1);
    FUZZ_CHECK(digits.find_first_not_of("0123456789") == std::string_view::npos);
    const auto last = std::to_string(r->inode);
    FUZZ_CHECK(digits.ends_with(last));
    return 0;
}
