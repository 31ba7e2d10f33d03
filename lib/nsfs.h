// The nsfs ioctls (NS_GET_*), opening nsfs files safely, a small fd owner, and the kernel feature probe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "ns_type.h"
#include "result.h"

namespace pidns {

// Owns one file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd();
    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }

private:
    int fd_ = -1;
};

struct KernelFeatures {
    bool ns_get_id = false;      // NS_GET_ID (Linux >= 6.18): 64-bit ids, never reused
    bool ns_handles = false;     // nsfs file handles (Linux >= 6.18): id, type and inode without an open
    bool pid_ioctls = false;     // NS_GET_PID_FROM_PIDNS / NS_GET_PID_IN_PIDNS (Linux >= 6.11)
    bool owner_uid = false;      // NS_GET_OWNER_UID
    bool pidfd_info = false;     // PIDFD_GET_INFO (Linux >= 6.13): a process's credentials from its pidfd
    std::uint64_t nsfs_dev = 0;  // st_dev of nsfs inodes
};

// Probed once, on first call, against /proc/self/ns/* (opened with open_ns_link).
const KernelFeatures& kernel_features();

// Opening nsfs files without following anything a user controls. Every opener below first
// gets an O_PATH fd, which never calls the object's open: a FIFO cannot block and a device is
// not opened. Errc::access_denied means "refused for safety, nothing was opened": the object is
// not an nsfs file (a FIFO, device, socket, symlink, directory, file of another filesystem), or
// reaching it takes a symlink or leaves the starting directory. A vanished process or a missing
// path component is Errc::not_found.

// An nsfs file through a procfs magic link below the /proc fd `proc_fd`: "PID/ns/net",
// "PID/task/TID/ns/net", "PID/ns/pid_for_children", "PID/fd/N", "self/ns/pid"; checked and
// reopened by reopen_nsfs. The kernel resolves such a link itself (a jump to the object, no path
// walk, nothing asked of the target's filesystem); an fd swapped under us (dup2) for a FIFO or
// device is refused, never opened. Only for these kernel-made links: `rel` is not checked for
// ordinary symlinks.
Result<Fd> open_ns_link(int proc_fd, const std::string& rel);

// An O_PATH fd for `path` (a leading '/' is ignored) below the directory `dir_fd`, reached
// without any symlink or magic link and without leaving `dir_fd`: openat2 with RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, or open_beneath_by_walk where openat2 is missing
// (ENOSYS) or filtered (EPERM).
// Opens nothing, but walks directories that users may control, where a lookup may never be
// answered (FUSE): MountPathOpener (safe_open.h) runs it with a deadline. Then reopen_nsfs.
Result<Fd> open_beneath(int dir_fd, std::string_view path);
// The same, one component at a time with openat(O_PATH|O_NOFOLLOW), refusing symlinks and "..".
Result<Fd> open_beneath_by_walk(int dir_fd, std::string_view path);

// Checks that the O_PATH fd `opath_fd` is an nsfs file and opens it for the ioctls (O_PATH fds
// take none) through PROC/self/fd/N, which reopens that very inode (compared again after). Asks
// nothing of another filesystem: the type and device come from the cached inode (statx
// AT_STATX_DONT_SYNC) and must be a regular file on nsfs before fstatfs (NSFS_MAGIC) is called.
Result<Fd> reopen_nsfs(int proc_fd, int opath_fd);

struct NsIdentity {
    NsType type;
    std::uint64_t inode;
    std::uint64_t dev;
};
// fstat + NS_GET_NSTYPE; Errc::parse if the fd is not an nsfs file.
Result<NsIdentity> ns_identity(int fd);

Result<std::uint64_t> ns_get_id(int fd);

// An nsfs file handle's contents (Linux 6.18, FILEID_NSFS): the namespace's 64-bit id (NS_GET_ID's),
// its type and its inode, from name_to_handle_at(): one system call, nothing opened.
struct NsHandle {
    std::uint64_t id = 0;
    NsType type = NsType::pid;
    std::uint64_t inode = 0;
};
// The handle of the nsfs file at `path` below `dirfd`, the final magic link followed: only for
// kernel-made links into nsfs ("PID/ns/net", "PID/task/TID/ns/user"; an fd link may name any
// file: open it O_PATH, check it, and pass path ""). With path "": the O_PATH fd `dirfd` itself.
// Errc::not_found when gone, Errc::unsupported when it has no nsfs handle (another filesystem, or
// a kernel without them), Errc::io otherwise (EACCES: the kernel refused the link).
Result<NsHandle> ns_handle_at(int dirfd, const char* path);
// Parent of a pid or user namespace. Errc::not_found when it has none visible to us (EPERM).
Result<Fd> ns_get_parent(int fd);
// Owning user namespace. Errc::not_found when it is outside our view (EPERM).
Result<Fd> ns_get_userns(int fd);
// Owner uid of a user namespace, in our user namespace.
Result<std::uint32_t> ns_get_owner_uid(int fd);

// NS_GET_PID_FROM_PIDNS: the task `nr` of the fd's pid namespace, as a pid in ours.
// ESRCH (and ENOTTY, as some 6.12-6.18 kernels return for a missing task) -> Errc::not_found.
Result<std::int32_t> ns_pid_from_pidns(int pidns_fd, std::int32_t nr);
// NS_GET_TGID_FROM_PIDNS: the thread group of that task, as a pid in ours.
Result<std::int32_t> ns_tgid_from_pidns(int pidns_fd, std::int32_t nr);
// NS_GET_PID_IN_PIDNS: our pid `nr` as seen in the fd's pid namespace; not_found if it has none.
Result<std::int32_t> ns_pid_in_pidns(int pidns_fd, std::int32_t nr);

}  // namespace pidns
