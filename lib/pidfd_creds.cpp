// A process's credentials without rendering its /proc status: PIDFD_GET_INFO (Linux 6.13) and capget.
#include "pidfd_creds.h"

#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "nsfs.h"

namespace pidns {
namespace {

// include/uapi/linux/pidfd.h of Linux 6.13 (Debian 12's headers are 6.1's): the first version of
// struct pidfd_info (64 bytes). The kernel takes any size from this one up and fills what it knows.
struct PidfdInfo {
    std::uint64_t mask;
    std::uint64_t cgroupid;
    std::uint32_t pid, tgid, ppid;
    std::uint32_t ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    std::uint32_t spare0[1];
};
static_assert(sizeof(PidfdInfo) == 64);
constexpr std::uint64_t kPidfdInfoCreds = 1u << 1;  // PIDFD_INFO_CREDS
constexpr unsigned long kPidfdGetInfo = _IOWR(0xFF, 11, PidfdInfo);  // PIDFD_GET_INFO

}  // namespace

Result<PidfdCreds> pidfd_creds(int pidfd) {
    PidfdInfo info{};
    info.mask = kPidfdInfoCreds;
    int rc;
    do rc = ::ioctl(pidfd, kPidfdGetInfo, &info);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        const int err = errno;
        return make_error(err == ESRCH ? Errc::not_found : Errc::io, "PIDFD_GET_INFO", err);
    }
    if ((info.mask & kPidfdInfoCreds) == 0) return make_error(Errc::io, "PIDFD_GET_INFO gave no credentials");
    return PidfdCreds{{info.ruid, info.euid, info.suid, info.fsuid}, {info.rgid, info.egid, info.sgid, info.fsgid}};
}

Result<std::uint64_t> effective_capabilities(pid_t tid) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, tid};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
    if (::syscall(SYS_capget, &header, data) != 0) {
        const int err = errno;
        return make_error(err == ESRCH ? Errc::not_found : Errc::io, "capget", err);
    }
    return static_cast<std::uint64_t>(data[0].effective) | (static_cast<std::uint64_t>(data[1].effective) << 32);
}

bool pidfd_info_supported() {
    static const bool supported = [] {
        const Fd self(static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0)));
        if (!self.valid()) return false;
        auto c = pidfd_creds(self.get());
        return c.ok() && c->uid[1] == ::geteuid() && c->gid[1] == ::getegid();
    }();
    return supported;
}

}  // namespace pidns
