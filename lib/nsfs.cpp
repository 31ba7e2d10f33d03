// Wrappers for the nsfs ioctls, opening nsfs files safely, and the kernel feature probe.
#include "nsfs.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <linux/openat2.h>

#include "pidfd_creds.h"

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
// include/linux/exportfs.h (Linux 6.18): an nsfs handle is struct nsfs_file_handle
// { __u64 ns_id; __u32 ns_type; __u32 ns_inum; }, ns_type a CLONE_NEW* flag.
constexpr int kFileidNsfs = 0xf1;
constexpr unsigned kNsfsHandleBytes = 16;

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

namespace {
Error refused(const std::string& what, int e = 0) {
    return make_error(Errc::access_denied, "refused to open " + what, e);
}

Error open_failed(const std::string& what, int e) {
    if (e == ENOENT || e == ESRCH || e == ENOTDIR) return make_error(Errc::not_found, "cannot open " + what, e);
    if (e == ELOOP || e == EXDEV) return refused(what + ": a symlink on the way, or outside its root", e);
    return make_error(Errc::io, "cannot open " + what, e);
}

const char* kind_of(unsigned mode) {
    switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFLNK: return "a symlink";
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    default: return "of unknown type";
    }
}

std::string_view without_leading_slashes(std::string_view path) {
    while (!path.empty() && path.front() == '/') path.remove_prefix(1);
    return path;
}
}  // namespace

Result<Fd> open_ns_link(int proc_fd, const std::string& rel) {
    int fd = ::openat(proc_fd, rel.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) return open_failed("/proc/" + rel, errno);
    Fd opath(fd);
    return reopen_nsfs(proc_fd, opath.get());
}

Result<Fd> open_beneath(int dir_fd, std::string_view path) {
    const std::string rel(without_leading_slashes(path));
    if (rel.empty()) return make_error(Errc::not_found, "empty path");
    open_how how{};
    how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    // EAGAIN: a rename or mount raced with the walk; RESOLVE_BENEATH then gives up rather than guess.
    for (int attempt = 0; attempt < 3; ++attempt) {
        long fd = ::syscall(SYS_openat2, dir_fd, rel.c_str(), &how, sizeof how);
        if (fd >= 0) return Fd(static_cast<int>(fd));
        // ENOSYS: Linux < 5.6; EPERM: a seccomp filter older than openat2 (SystemCallErrorNumber=EPERM).
        if (errno == ENOSYS || errno == EPERM) return open_beneath_by_walk(dir_fd, rel);
        if (errno != EAGAIN && errno != EINTR) return open_failed(rel, errno);
    }
    return make_error(Errc::io, "cannot open " + rel + ": it kept changing", EAGAIN);
}

Result<Fd> open_beneath_by_walk(int dir_fd, std::string_view path) {
    int start = ::openat(dir_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (start < 0) return open_failed("the starting directory", errno);
    Fd cur(start);
    bool any = false;
    for (std::string_view rest = path; !rest.empty();) {
        const auto slash = rest.find('/');
        const std::string name(rest.substr(0, slash));
        rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
        if (name.empty() || name == ".") continue;
        if (name == "..") return refused(std::string(path) + ": \"..\" on the way", EXDEV);
        int fd = ::openat(cur.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return open_failed(std::string(path), errno);
        Fd next(fd);
        struct stat st {};
        if (::fstat(fd, &st) != 0) return make_error(Errc::io, "fstat on " + name + " failed", errno);
        if (S_ISLNK(st.st_mode)) return refused(std::string(path) + ": a symlink on the way", ELOOP);
        if (!rest.empty() && !S_ISDIR(st.st_mode))
            return make_error(Errc::not_found, "cannot open " + std::string(path), ENOTDIR);
        cur = std::move(next);
        any = true;
    }
    if (!any) return make_error(Errc::not_found, "empty path");
    return cur;
}

namespace {
// st_dev of nsfs: one superblock holds every namespace inode. Read once through our own pid
// namespace's link (a kernel-made magic link to our own namespace).
std::uint64_t nsfs_device(int proc_fd) {
    static const std::uint64_t dev = [proc_fd]() -> std::uint64_t {
        int fd = ::openat(proc_fd, "self/ns/pid", O_PATH | O_CLOEXEC);
        if (fd < 0) return 0;
        const Fd owner(fd);
        struct stat st {};
        return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_dev) : 0;
    }();
    return dev;
}
}  // namespace

Result<Fd> reopen_nsfs(int proc_fd, int opath_fd) {
    // Type and device first, from the inode as cached (AT_STATX_DONT_SYNC: FUSE asks its server
    // nothing), so that fstatfs, which a FUSE server may leave unanswered, only ever reaches nsfs.
    struct statx stx {};
    if (::statx(opath_fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO, &stx) != 0)
        return make_error(Errc::io, "statx on an O_PATH fd failed", errno);
    const auto dev = static_cast<std::uint64_t>(makedev(stx.stx_dev_major, stx.stx_dev_minor));
    const std::string what = "inode " + std::to_string(stx.stx_ino);
    if (!S_ISREG(stx.stx_mode)) return refused(what + ": " + kind_of(stx.stx_mode) + ", not a namespace");
    const auto nsfs_dev = nsfs_device(proc_fd);
    if (nsfs_dev == 0 || dev != nsfs_dev) return refused(what + ": a regular file not on nsfs");
    struct statfs sfs {};
    if (::fstatfs(opath_fd, &sfs) != 0) return make_error(Errc::io, "fstatfs on an O_PATH fd failed", errno);
    if (static_cast<unsigned long>(sfs.f_type) != NSFS_MAGIC) return refused(what + ": not on nsfs");
    // O_PATH fds take no ioctl: open the same inode through its /proc/self/fd link.
    const std::string self_fd = "self/fd/" + std::to_string(opath_fd);
    int fd = ::openat(proc_fd, self_fd.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return make_error(Errc::io, "reopening nsfs " + what + " failed", errno);
    Fd out(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) return make_error(Errc::io, "fstat on a namespace fd failed", errno);
    if (static_cast<std::uint64_t>(st.st_dev) != dev || st.st_ino != stx.stx_ino)
        return refused(what + ": another file after reopening");
    return out;
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

Result<NsHandle> ns_handle_at(int dirfd, const char* path) {
    struct {
        file_handle head;
        unsigned char bytes[MAX_HANDLE_SZ];
    } h{};
    h.head.handle_bytes = MAX_HANDLE_SZ;
    int mount_id = 0;
    const int flags = *path == '\0' ? AT_EMPTY_PATH : AT_SYMLINK_FOLLOW;
    if (::name_to_handle_at(dirfd, path, &h.head, &mount_id, flags) != 0) {
        const int e = errno;
        if (e == ENOENT || e == ESRCH) return make_error(Errc::not_found, std::string("no namespace at ") + path, e);
        if (e == EOPNOTSUPP || e == EOVERFLOW || e == ENOSYS)
            return make_error(Errc::unsupported, "no nsfs file handle", e);
        return make_error(Errc::io, std::string("name_to_handle_at ") + path + " failed", e);
    }
    if (h.head.handle_type != kFileidNsfs || h.head.handle_bytes < kNsfsHandleBytes)
        return make_error(Errc::unsupported, "not an nsfs file handle");
    NsHandle out;
    std::uint32_t flag = 0, inum = 0;
    std::memcpy(&out.id, h.head.f_handle, 8);
    std::memcpy(&flag, h.head.f_handle + 8, 4);
    std::memcpy(&inum, h.head.f_handle + 12, 4);
    auto type = ns_type_from_clone_flag(static_cast<int>(flag));
    if (!type || out.id == 0 || inum == 0) return make_error(Errc::unsupported, "an nsfs file handle of unknown shape");
    out.type = *type;
    out.inode = inum;
    return out;
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
        int proc = ::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (proc < 0) return k;
        const Fd procfd(proc);
        auto pidfd = open_ns_link(procfd.get(), "self/ns/pid");
        if (!pidfd) return k;
        struct stat st {};
        if (::fstat(pidfd->get(), &st) == 0) k.nsfs_dev = st.st_dev;
        const auto id = ns_get_id(pidfd->get());
        k.ns_get_id = id.ok();
        // nsfs file handles came with NS_GET_ID; used only where they give the same id.
        if (auto h = ns_handle_at(procfd.get(), "self/ns/pid"); h && id)
            k.ns_handles = h->id == *id && h->type == NsType::pid && h->inode == static_cast<std::uint64_t>(st.st_ino);
        // Our own pid, translated into our own namespace, must come back unchanged.
        auto self = ns_pid_in_pidns(pidfd->get(), static_cast<std::int32_t>(::getpid()));
        k.pid_ioctls = self.ok() && *self == ::getpid();
        k.pidfd_info = pidfd_info_supported();
        if (auto userfd = open_ns_link(procfd.get(), "self/ns/user"))
            k.owner_uid = ns_get_owner_uid(userfd->get()).ok();
        return k;
    }();
    return f;
}

}  // namespace pidns
