// Kernel versions and the interfaces pidnsd uses that each one has: for --assume-kernel and pidnsd(8)'s KERNELS table.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "nsfs.h"
#include "result.h"

namespace pidns {

struct KernelVersion {
    int major = 0;
    int minor = 0;
    friend constexpr bool operator<(KernelVersion a, KernelVersion b) noexcept {
        return a.major != b.major ? a.major < b.major : a.minor < b.minor;
    }
    friend constexpr bool operator==(KernelVersion a, KernelVersion b) noexcept = default;
    [[nodiscard]] std::string str() const { return std::to_string(major) + "." + std::to_string(minor); }
};

// "5.14", "6.1", also "6.1.0-28-amd64" (what uname -r prints): the major and minor numbers.
// Errc::invalid_argument for anything else, or a version older than the oldest pidnsd supports.
Result<KernelVersion> parse_kernel_version(std::string_view text);

// The interfaces pidnsd uses that not every supported kernel has, with the version that brought
// each and what pidnsd does without it. Older interfaces (NS_GET_USERNS/PARENT 4.9,
// NS_GET_NSTYPE and NS_GET_OWNER_UID 4.11, pid_for_children 4.12, pidfd_open 5.3, openat2 and
// time namespaces 5.6) are in every kernel pidnsd supports: kOldestKernel.
struct KernelInterface {
    const char* name;
    KernelVersion since;
    const char* without;  // what pidnsd does on an older kernel
};
inline constexpr KernelVersion kOldestKernel{5, 6};
inline constexpr std::array<KernelInterface, 4> kKernelInterfaces{{
    {"proc connector event filter (PROC_CN_MCAST_LISTEN with proc_input)", {6, 6},
     "every event kind is delivered; pidnsd parses and drops all but fork/exec/exit"},
    {"NS_GET_PID_FROM_PIDNS, NS_GET_TGID_FROM_PIDNS, NS_GET_PID_IN_PIDNS", {6, 11},
     "a translation the index misses lists /proc and reads the processes the index lacks (at most "
     "one listing per call)"},
    {"PIDFD_GET_INFO", {6, 13},
     "a caller's credentials are re-read at each call from its /proc/PID/status (held open: one "
     "pread, which the kernel renders whole) instead of its pidfd and capget"},
    {"NS_GET_ID, nsfs file handles", {6, 18},
     "namespace ids are assigned by pidnsd from 2^32 up (never equal to an nsfs inode), carried over "
     "a rescan only to a namespace alike in inode, type, parent, owner and owner uid, valid while "
     "pidnsd runs; an entry is confirmed by opening the namespace and comparing those"},
}};

// The features of `probed` (what this kernel has, kernel_features()) that a kernel of version `v`
// also has: the daemon runs as on such a kernel. Never adds a feature the running kernel lacks.
KernelFeatures features_of(const KernelFeatures& probed, KernelVersion v);
// Whether a kernel of version `v` has the proc connector's event filter.
constexpr bool has_event_filter(KernelVersion v) noexcept { return !(v < KernelVersion{6, 6}); }

}  // namespace pidns
