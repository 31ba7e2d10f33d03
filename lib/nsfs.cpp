// Wrappers for the nsfs ioctls and the kernel feature probe.
#include "nsfs.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <linux/nsfs.h>

// Debian 12's <linux/nsfs.h> predates these.
#ifndef NS_GET_PID_FROM_PIDNS
#define NS_GET_PID_FROM_PIDNS _IOR(0xb7, 0x6, int)
#endif
#ifndef NS_GET_TGID_FROM_PIDNS
#define NS_GET_TGID_FROM_PIDNS _IOR(0xb7, 0x7, int)
#endif
#ifndef NS_GET_PID_IN_PIDNS
#define NS_GET_PID_IN_PIDNS _IOR(0xb7, 0x8, int)
#endif
#ifndef NS_GET_ID
#define NS_GET_ID _IOR(0xb7, 13, __u64)
#endif

namespace pidns {

Fd& Fd::operator=(Fd&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
}

Fd::~Fd() {
    if (fd_ >= 0) ::close(fd_);
}

Result<Fd> open_path(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        return make_error(e == ENOENT || e == ESRCH ? Errc::not_found : Errc::io, "cannot open " + path, e);
    }
    return Fd(fd);
}

Result<NsIdentity> ns_identity(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return make_error(Errc::io, "fstat on namespace fd failed", errno);
    int flag = ::ioctl(fd, NS_GET_NSTYPE);
    if (flag < 0) return make_error(Errc::parse, "not a namespace file (NS_GET_NSTYPE failed)", errno);
    auto type = ns_type_from_clone_flag(flag);
    if (!type) return make_error(Errc::parse, "unknown namespace type flag " + std::to_string(flag));
    return NsIdentity{*type, static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_dev)};
}

Result<std::uint64_t> ns_get_id(int fd) {
    __u64 id = 0;
    if (::ioctl(fd, NS_GET_ID, &id) != 0) {
        int e = errno;
        return make_error(e == ENOTTY || e == EINVAL ? Errc::unsupported : Errc::io, "NS_GET_ID failed", e);
    }
    return static_cast<std::uint64_t>(id);
}

namespace {
Result<Fd> relation(int fd, unsigned long req, const char* what) {
    int r = ::ioctl(fd, req);
    if (r < 0) {
        int e = errno;
        if (e == EPERM) return make_error(Errc::not_found, std::string(what) + ": none visible from here", e);
        if (e == EINVAL) return make_error(Errc::invalid_argument, std::string(what) + ": not applicable", e);
        return make_error(Errc::io, std::string(what) + " failed", e);
    }
    return Fd(r);
}

Result<std::int32_t> pid_ioctl(int fd, unsigned long req, std::int32_t nr, const char* what) {
    int r = ::ioctl(fd, req, nr);
    if (r < 0) {
        int e = errno;
        if (e == ESRCH || e == ENOTTY)
            return make_error(Errc::not_found, std::string(what) + ": no such task", e);
        return make_error(Errc::io, std::string(what) + " failed", e);
    }
    if (r == 0) return make_error(Errc::not_found, std::string(what) + ": no such task");
    return static_cast<std::int32_t>(r);
}
}  // namespace

Result<Fd> ns_get_parent(int fd) { return relation(fd, NS_GET_PARENT, "NS_GET_PARENT"); }
Result<Fd> ns_get_userns(int fd) { return relation(fd, NS_GET_USERNS, "NS_GET_USERNS"); }

Result<std::uint32_t> ns_get_owner_uid(int fd) {
    uid_t uid = 0;
    if (::ioctl(fd, NS_GET_OWNER_UID, &uid) != 0)
        return make_error(errno == EINVAL ? Errc::invalid_argument : Errc::io, "NS_GET_OWNER_UID failed", errno);
    return static_cast<std::uint32_t>(uid);
}

Result<std::int32_t> ns_pid_from_pidns(int fd, std::int32_t nr) {
    return pid_ioctl(fd, NS_GET_PID_FROM_PIDNS, nr, "NS_GET_PID_FROM_PIDNS");
}
Result<std::int32_t> ns_tgid_from_pidns(int fd, std::int32_t nr) {
    return pid_ioctl(fd, NS_GET_TGID_FROM_PIDNS, nr, "NS_GET_TGID_FROM_PIDNS");
}
Result<std::int32_t> ns_pid_in_pidns(int fd, std::int32_t nr) {
    return pid_ioctl(fd, NS_GET_PID_IN_PIDNS, nr, "NS_GET_PID_IN_PIDNS");
}

const KernelFeatures& kernel_features() {
    static const KernelFeatures f = [] {
        KernelFeatures k;
        auto pidfd = open_path("/proc/self/ns/pid");
        if (!pidfd) return k;
        struct stat st {};
        if (::fstat(pidfd->get(), &st) == 0) k.nsfs_dev = st.st_dev;
        k.ns_get_id = ns_get_id(pidfd->get()).ok();
        // Our own pid, translated into our own namespace, must come back unchanged.
        auto self = ns_pid_in_pidns(pidfd->get(), static_cast<std::int32_t>(::getpid()));
        k.pid_ioctls = self.ok() && *self == ::getpid();
        if (auto userfd = open_path("/proc/self/ns/user"))
            k.owner_uid = ns_get_owner_uid(userfd->get()).ok();
        return k;
    }();
    return f;
}

}  // namespace pidns
