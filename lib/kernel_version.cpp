// Kernel version parsing and the feature set of an assumed kernel.
#include "kernel_version.h"

#include "parse_util.h"

namespace pidns {

Result<KernelVersion> parse_kernel_version(std::string_view text) {
    auto bad = [&](const std::string& why) {
        return make_error(Errc::invalid_argument, "kernel version '" + std::string(text) + "' " + why +
                                                      "; give MAJOR.MINOR, e.g. 5.14, 6.1 or 6.18");
    };
    const auto dot = text.find('.');
    if (dot == std::string_view::npos) return bad("has no '.'");
    auto major = parse_u64(text.substr(0, dot));
    std::string_view rest = text.substr(dot + 1);
    std::size_t digits = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    // After MAJOR.MINOR only a release suffix ("-28-amd64") or a patch level (".3") may follow.
    if (digits < rest.size() && rest[digits] != '.' && rest[digits] != '-') return bad("is not a version");
    auto minor = parse_u64(rest.substr(0, digits));
    if (!major || !minor || *major > 99 || *minor > 999) return bad("is not a version");
    const KernelVersion v{static_cast<int>(*major), static_cast<int>(*minor)};
    if (v < kOldestKernel) return bad("is older than the oldest supported (" + kOldestKernel.str() + ")");
    return v;
}

KernelFeatures features_of(const KernelFeatures& probed, KernelVersion v) {
    KernelFeatures k = probed;
    if (v < KernelVersion{6, 18}) k.ns_get_id = k.ns_handles = false;
    if (v < KernelVersion{6, 13}) k.pidfd_info = false;
    if (v < KernelVersion{6, 11}) k.pid_ioctls = false;
    return k;
}

}  // namespace pidns
