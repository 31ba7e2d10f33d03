// libFuzzer target: parse_proc_status (/proc/PID/status) on any bytes.
#include <cstddef>
#include <cstdint>

#include "fuzz_check.h"
#include "proc_status.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto r = pidns::parse_proc_status(pidns::fuzz::as_text(data, size));
    if (!r) {
        // not_found: a task the kernel released while printing it (Tgid or first NSpid 0).
        FUZZ_CHECK(r.error().code == pidns::Errc::parse ||
                   (r.error().code == pidns::Errc::not_found &&
                    r.error().message.ends_with(" exited while its status was read")));
        FUZZ_CHECK(!r.error().message.empty());
        return 0;
    }
    const auto& st = *r;
    const auto n = st.nspid.size();
    FUZZ_CHECK(n >= 1 && n <= 64);
    FUZZ_CHECK(st.nstgid.size() == n && st.nspgid.size() == n && st.nssid.size() == n);
    FUZZ_CHECK(st.nspid.front() == st.pid && st.nstgid.front() == st.tgid);
    FUZZ_CHECK(st.pid >= 0 && st.tgid >= 0 && st.ppid >= 0);
    for (const auto* chain : {&st.nstgid, &st.nspid, &st.nspgid, &st.nssid})
        for (auto v : *chain) FUZZ_CHECK(v >= 0);
    return 0;
}
