// libFuzzer target: parse_proc_stat (/proc/PID/stat) on any bytes.
#include <cstddef>
#include <cstdint>

#include "fuzz_check.h"
#include "proc_stat.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = pidns::fuzz::as_text(data, size);
    auto r = pidns::parse_proc_stat(text);
    if (!r) {
        FUZZ_CHECK(r.error().code == pidns::Errc::parse);
        FUZZ_CHECK(!r.error().message.empty());
        return 0;
    }
    FUZZ_CHECK(r->pid > 0);
    FUZZ_CHECK(r->ppid >= 0);
    // The state is the one character after the comm's last ')'.
    FUZZ_CHECK(text.find(r->state, text.rfind(')')) != std::string_view::npos);
    return 0;
}
