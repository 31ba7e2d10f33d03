// The agents' wire: the commands and replies between the test and its agents (SOCK_SEQPACKET, with fds
// and credentials), the deadline of every wait, and the raw syscalls both sides use. Internal to nstree.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pidns::testing::detail {

using Clock = std::chrono::steady_clock;

// The agent's control socket lives at this fd number in every agent.
inline constexpr int kCtlFd = 3;

// Exit codes of agents/helpers that give up (for debugging only).
inline constexpr int kExitSetup = 120;
inline constexpr int kExitIo = 121;
inline constexpr int kExitCrash = 122;

// Deadline for waits inside agents (set from the ProcTree; agents inherit it).
extern std::chrono::milliseconds g_agent_timeout;

enum class Op : std::uint32_t {
  Spawn = 1,      // a = clone flags, fd = child's control socket
  SpawnThread,    //
  Unshare,        // a = flags
  Setns,          // b = nstype, fd = namespace
  ThreadSetns,    // a = thread index, b = nstype, fd = namespace
  ThreadExit,     // a = thread index
  HoldFd,         // fd = the fd to keep
  CloseFd,        // a = fd number
  Exit,           //
  Translate,      // SCM_CREDENTIALS naming a pid
};

// Thread-internal ops (agent main thread -> agent thread).
enum class ThreadOp : std::uint32_t { Setns = 1, Exit };

enum class ReplyKind : std::int32_t { Ack = 0, Hello, Thread, ThreadLocalTid };

struct Request {
  Op op;
  std::int32_t a;
  std::int32_t b;
  std::int32_t c;
};

struct Reply {
  std::int32_t err;
  ReplyKind kind;
  std::int64_t value;
  std::int64_t value2;
};

struct ThreadRequest {
  ThreadOp op;
  std::int32_t fd;
  std::int32_t nstype;
};

std::string errno_text(int err);
[[noreturn]] void throw_errno(const std::string& what, int err);  // KernelError
std::string pid_str(pid_t pid);

long sys_pidfd_open(pid_t pid, unsigned flags);
long sys_pidfd_send_signal(int pidfd, int sig);
// clone3 without a stack: fork-like (child returns 0), with namespace flags. With `pidfd`,
// CLONE_PIDFD stores a pidfd of the child there.
pid_t raw_clone3(int flags, int* pidfd = nullptr);

// True when fd is readable (or in error / hung up: the read reports it) before the deadline.
bool wait_readable(int fd, Clock::time_point deadline);

// sendmsg with optional fds and explicit credentials. Returns 0 or -errno.
int send_msg(int sock, const void* buf, std::size_t len, const int* fds, std::size_t nfds, const ucred* cred);

struct Received {
  ssize_t n = 0;  // bytes, 0 = EOF, <0 = -errno
  std::optional<ucred> cred;
  std::vector<int> fds;
};
Received recv_msg(int sock, void* buf, std::size_t len);
void close_all(const std::vector<int>& fds);

// Creates a new agent with clone3(flags); the child serves on child_ctl. Returns the child's
// pid in the caller's pid ns, or -errno. Used by the test process and by agents (agent.cpp).
pid_t create_agent(int child_ctl, int flags, bool direct_child_of_test);

}  // namespace pidns::testing::detail
