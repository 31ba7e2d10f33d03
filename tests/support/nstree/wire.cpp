// The agents' wire: messages with fds and credentials, deadlines, and the raw pidfd and clone3 syscalls.
#include "wire.h"

#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "errors.h"

namespace pidns::testing::detail {

std::chrono::milliseconds g_agent_timeout{7500};

std::string pid_str(pid_t pid) { return std::to_string(pid); }

std::string errno_text(int err) {
  return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")";
}

[[noreturn]] void throw_errno(const std::string& what, int err) {
  throw KernelError(what + ": " + errno_text(err), err);
}

long sys_pidfd_open(pid_t pid, unsigned flags) { return syscall(SYS_pidfd_open, pid, flags); }

long sys_pidfd_send_signal(int pidfd, int sig) {
  return syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0);
}

pid_t raw_clone3(int flags, int* pidfd) {
  struct clone_args args;
  std::memset(&args, 0, sizeof args);
  args.flags = static_cast<std::uint64_t>(static_cast<std::uint32_t>(flags));
  if (pidfd) {
    args.flags |= CLONE_PIDFD;
    args.pidfd = reinterpret_cast<std::uint64_t>(pidfd);
  }
  args.exit_signal = SIGCHLD;
  return static_cast<pid_t>(syscall(SYS_clone3, &args, sizeof args));
}

static int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) return 0;
  return static_cast<int>(std::min<long long>(left.count() + 1, 1000 * 1000));
}

bool wait_readable(int fd, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int ms = remaining_ms(deadline);
    int r = poll(&p, 1, ms);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return true;
    if (r == 0 && Clock::now() >= deadline) return false;
  }
}

int send_msg(int sock, const void* buf, std::size_t len, const int* fds, std::size_t nfds,
             const ucred* cred) {
  iovec iov{const_cast<void*>(buf), len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 4)];
  std::memset(control, 0, sizeof control);
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::size_t clen = 0;
  if (nfds > 0) clen += CMSG_SPACE(sizeof(int) * nfds);
  if (cred) clen += CMSG_SPACE(sizeof(ucred));
  if (clen > 0) {
    msg.msg_control = control;
    msg.msg_controllen = clen;
    cmsghdr* h = CMSG_FIRSTHDR(&msg);
    if (nfds > 0) {
      h->cmsg_level = SOL_SOCKET;
      h->cmsg_type = SCM_RIGHTS;
      h->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
      std::memcpy(CMSG_DATA(h), fds, sizeof(int) * nfds);
      h = CMSG_NXTHDR(&msg, h);
    }
    if (cred) {
      h->cmsg_level = SOL_SOCKET;
      h->cmsg_type = SCM_CREDENTIALS;
      h->cmsg_len = CMSG_LEN(sizeof(ucred));
      std::memcpy(CMSG_DATA(h), cred, sizeof(ucred));
    }
  }
  for (;;) {
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n >= 0) return 0;
    if (errno != EINTR) return -errno;
  }
}

Received recv_msg(int sock, void* buf, std::size_t len) {
  Received out;
  iovec iov{buf, len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 8)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    out.n = -errno;
    return out;
  }
  out.n = n;
  for (cmsghdr* h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h)) {
    if (h->cmsg_level != SOL_SOCKET) continue;
    if (h->cmsg_type == SCM_CREDENTIALS && h->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
      ucred c;
      std::memcpy(&c, CMSG_DATA(h), sizeof c);
      out.cred = c;
    } else if (h->cmsg_type == SCM_RIGHTS) {
      std::size_t count = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
        out.fds.push_back(fd);
      }
    }
  }
  return out;
}

void close_all(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);
}

}  // namespace pidns::testing::detail
