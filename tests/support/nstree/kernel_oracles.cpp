// Naive kernel oracles: /proc status lines, nsfs inodes, NS_GET_ID and the translation and hierarchy ioctls.
#include "kernel_oracles.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "wire.h"

namespace pidns::testing {

using detail::pid_str;
using detail::throw_errno;

namespace {

std::vector<pid_t> status_line(pid_t tid, const char* key) {
  std::ifstream in("/proc/" + pid_str(tid) + "/status");
  std::vector<pid_t> out;
  if (!in) return out;
  std::string line;
  std::string prefix = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.compare(0, prefix.size(), prefix) != 0) continue;
    std::istringstream fields(line.substr(prefix.size()));
    long v;
    while (fields >> v) out.push_back(static_cast<pid_t>(v));
    break;
  }
  return out;
}

std::optional<ino_t> related_inode(int ns_fd, unsigned long op, const char* name) {
  int fd = ioctl(ns_fd, op);
  if (fd < 0) {
    if (errno == EPERM) return std::nullopt;
    throw_errno(std::string("pidns::testing: ") + name, errno);
  }
  UniqueFd owned(fd);
  return oracle_fd_inode(fd);
}

}  // namespace

std::vector<pid_t> oracle_nspid(pid_t host_tid) { return status_line(host_tid, "NSpid"); }

std::vector<pid_t> oracle_nstgid(pid_t host_tid) { return status_line(host_tid, "NStgid"); }

pid_t pid_in_ns_of(pid_t host_pid) {
  auto chain = oracle_nspid(host_pid);
  return chain.empty() ? 0 : chain.back();
}

ino_t oracle_ns_inode(pid_t pid, const char* type) {
  std::string path = "/proc/" + pid_str(pid) + "/ns/" + type;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) throw_errno("pidns::testing: stat " + path, errno);
  return st.st_ino;
}

ino_t oracle_fd_inode(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) throw_errno("pidns::testing: fstat", errno);
  return st.st_ino;
}

std::optional<pid_t> oracle_ioctl_translate(pid_t pid, int from_pidns_fd, int to_pidns_fd) {
  int mine = ioctl(from_pidns_fd, kNsGetPidFromPidns, static_cast<unsigned long>(pid));
  if (mine < 0) {
    if (errno == ESRCH) return std::nullopt;
    throw_errno("pidns::testing: NS_GET_PID_FROM_PIDNS", errno);
  }
  int theirs = ioctl(to_pidns_fd, kNsGetPidInPidns, static_cast<unsigned long>(mine));
  if (theirs < 0) {
    if (errno == ESRCH) return 0;
    throw_errno("pidns::testing: NS_GET_PID_IN_PIDNS", errno);
  }
  return theirs;
}

std::uint64_t oracle_ns_id(int fd) {
  std::uint64_t id = 0;
  if (ioctl(fd, kNsGetId, &id) != 0) throw_errno("pidns::testing: NS_GET_ID", errno);
  return id;
}

std::optional<ino_t> oracle_parent_inode(int ns_fd) { return related_inode(ns_fd, kNsGetParent, "NS_GET_PARENT"); }

std::optional<ino_t> oracle_owner_inode(int ns_fd) { return related_inode(ns_fd, kNsGetUserns, "NS_GET_USERNS"); }

UniqueFd open_ns(pid_t pid, const char* type) {
  return open_path("/proc/" + pid_str(pid) + "/ns/" + type);
}

UniqueFd open_path(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("pidns::testing: open " + path, errno);
  return UniqueFd(fd);
}

}  // namespace pidns::testing
