// Wrappers for the nsfs ioctls (NS_GET_*), a small fd owner, and the one-time kernel feature probe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
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
    bool pid_ioctls = false;     // NS_GET_PID_FROM_PIDNS / NS_GET_PID_IN_PIDNS (Linux >= 6.11)
    bool owner_uid = false;      // NS_GET_OWNER_UID
    std::uint64_t nsfs_dev = 0;  // st_dev of nsfs inodes
};

// Probed once, on first call, against /proc/self/ns/*.
const KernelFeatures& kernel_features();

// open(path, O_RDONLY|O_CLOEXEC). ENOENT/ESRCH -> Errc::not_found.
Result<Fd> open_path(const std::string& path);

struct NsIdentity {
    NsType type;
    std::uint64_t inode;
    std::uint64_t dev;
};
// fstat + NS_GET_NSTYPE; Errc::parse if the fd is not an nsfs file.
Result<NsIdentity> ns_identity(int fd);

Result<std::uint64_t> ns_get_id(int fd);
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
