// Naive kernel oracles, independent of lib/: NSpid lines, nsfs inodes and ids, the pid-translation and hierarchy ioctls.
#pragma once

#include <sys/ioctl.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "errors.h"

namespace pidns::testing {

// nsfs ioctls, values from Linux 6.18 uapi (Debian 12's <linux/nsfs.h> lacks the pid translations and NS_GET_ID).
inline constexpr unsigned long kNsGetPidFromPidns = _IOR(0xb7, 0x6, int);   // pid in fd's ns -> caller's ns
inline constexpr unsigned long kNsGetTgidFromPidns = _IOR(0xb7, 0x7, int);
inline constexpr unsigned long kNsGetPidInPidns = _IOR(0xb7, 0x8, int);     // pid in caller's ns -> fd's ns
inline constexpr unsigned long kNsGetTgidInPidns = _IOR(0xb7, 0x9, int);
inline constexpr unsigned long kNsGetId = _IOR(0xb7, 13, std::uint64_t);
inline constexpr unsigned long kNsGetUserns = _IO(0xb7, 0x1);
inline constexpr unsigned long kNsGetParent = _IO(0xb7, 0x2);

// NSpid / NStgid line of /proc/<host_tid>/status (works for tids too): outermost (the /proc
// mount's pid ns, i.e. the test's) first, the task's own pid ns last. Empty if no such task.
std::vector<pid_t> oracle_nspid(pid_t host_tid);
std::vector<pid_t> oracle_nstgid(pid_t host_tid);
// Pid in the task's own pid ns (last NSpid element); 0 if no such task.
pid_t pid_in_ns_of(pid_t host_pid);
// stat("/proc/<pid>/ns/<type>").st_ino (pid may be a tid). Throws KernelError.
ino_t oracle_ns_inode(pid_t pid, const char* type);
// fstat(fd).st_ino. Throws KernelError.
ino_t oracle_fd_inode(int fd);
// NS_GET_PID_FROM_PIDNS(from) then NS_GET_PID_IN_PIDNS(to): nullopt if `pid` names no task
// in from's ns, 0 if the task has no pid in to's ns, else its pid there.
std::optional<pid_t> oracle_ioctl_translate(pid_t pid, int from_pidns_fd, int to_pidns_fd);
// NS_GET_ID (64-bit namespace id, Linux 6.18). Throws KernelError.
std::uint64_t oracle_ns_id(int fd);
// NS_GET_PARENT: inode of the parent namespace, nullopt if there is none visible (EPERM).
std::optional<ino_t> oracle_parent_inode(int ns_fd);
// NS_GET_USERNS: inode of the owning user namespace (EPERM -> nullopt).
std::optional<ino_t> oracle_owner_inode(int ns_fd);
// open("/proc/<pid>/ns/<type>") / open(path), O_RDONLY|O_CLOEXEC. Throw KernelError.
UniqueFd open_ns(pid_t pid, const char* type);
UniqueFd open_path(const std::string& path);

}  // namespace pidns::testing
