// libFuzzer target: pidnsd's command line (parse_options), and parse_interval / parse_size (and
// parse_kernel_version, --assume-kernel's) on every argument. The input is argv[1..], one
// argument per NUL-terminated piece (as the kernel lays argv out; a trailing piece without its
// NUL is an argument too).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "options.h"
#if __has_include("kernel_version.h")  // --assume-kernel's parser (lib/kernel_version.h)
#include "kernel_version.h"
#define PIDNS_FUZZ_KERNEL_VERSION 1
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 4096) return 0;  // a command line, not a file
    const auto text = pidns::fuzz::as_text(data, size);
    std::vector<std::string> args;  // separate allocations: an over-read of one is caught by ASan
    for (std::size_t pos = 0; pos < text.size();) {
        auto nul = text.find('\0', pos);
        if (nul == std::string_view::npos) nul = text.size();
        args.emplace_back(text.substr(pos, nul - pos));
        pos = nul + 1;
    }
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());

    auto r = pidnsd::parse_options(argv);
    if (!r) {
        FUZZ_CHECK(r.error().code == pidns::Errc::invalid_argument);
        FUZZ_CHECK(r.error().message.ends_with("; see pidnsd --help"));
    } else {
        const auto& o = *r;
        FUZZ_CHECK(o.poll_interval.count() >= 10 && o.poll_interval.count() <= 3600'000);
        FUZZ_CHECK(o.verify_interval.count() == 0 ||
                   (o.verify_interval.count() >= 10 && o.verify_interval.count() <= 3600'000));
        FUZZ_CHECK(o.netlink_buffer == 0 || (o.netlink_buffer >= 4096 && o.netlink_buffer <= (1u << 30)));
        FUZZ_CHECK(o.bus != pidnsd::BusKind::address || o.bus_address.find(':') != std::string::npos);
    }

    for (const auto& a : args) {
        if (auto d = pidnsd::parse_interval(a); d) {
            FUZZ_CHECK(d->count() >= 10 && d->count() <= 3600'000);
        } else {
            FUZZ_CHECK(d.error().code == pidns::Errc::invalid_argument);
        }
        if (auto n = pidnsd::parse_size(a, "--netlink-buffer"); n) {
            FUZZ_CHECK(*n == 0 || (*n >= 4096 && *n <= (std::size_t{1} << 30)));
        } else {
            FUZZ_CHECK(n.error().code == pidns::Errc::invalid_argument);
        }
#ifdef PIDNS_FUZZ_KERNEL_VERSION
        if (auto k = pidns::parse_kernel_version(a); k) {
            FUZZ_CHECK(!(*k < pidns::kOldestKernel) && k->major <= 99 && k->minor >= 0 && k->minor <= 999);
        } else {
            FUZZ_CHECK(k.error().code == pidns::Errc::invalid_argument);
        }
#endif
    }
    return 0;
}
