// Test support implementation: agent processes driven over unix sockets, namespace holders and naive kernel oracles.
#include "nstree.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>
#include <thread>

namespace pidns::testing {

namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned long kNsGetParent = _IO(0xb7, 0x2);
constexpr unsigned long kNsGetUserns = _IO(0xb7, 0x1);

constexpr int kAllowedCloneFlags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
                                   CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWTIME;

// The agent's control socket lives at this fd number in every agent.
constexpr int kCtlFd = 3;

// Exit codes of agents/helpers that give up (for debugging only).
constexpr int kExitSetup = 120;
constexpr int kExitIo = 121;
constexpr int kExitCrash = 122;

// Deadline for waits inside agents (set from the ProcTree; agents inherit it).
std::chrono::milliseconds g_agent_timeout{7500};

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

// clone3 without a stack: fork-like (child returns 0), with namespace flags. With `pidfd`,
// CLONE_PIDFD stores a pidfd of the child there.
pid_t raw_clone3(int flags, int* pidfd = nullptr) {
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

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) return 0;
  return static_cast<int>(std::min<long long>(left.count() + 1, 1000 * 1000));
}

// True when fd is readable (or in error / hung up: the read reports it) before the deadline.
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

// sendmsg with optional fds and explicit credentials. Returns 0 or -errno.
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

struct Received {
  ssize_t n = 0;  // bytes, 0 = EOF, <0 = -errno
  std::optional<ucred> cred;
  std::vector<int> fds;
};

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

bool write_all(int fd, const void* buf, std::size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<std::size_t>(n);
  }
  return true;
}

// Writes a whole file in one write() (uid_map needs that). Returns 0 or errno.
int write_file(const std::string& path, const std::string& content) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n = write(fd, content.data(), content.size());
  int err = n == static_cast<ssize_t>(content.size()) ? 0 : (n < 0 ? errno : EIO);
  close(fd);
  return err;
}

// Full identity map for the user namespace of the process /proc/<proc_pid> (a pid as the
// /proc mount sees it). Must run in the parent user namespace with CAP_SETUID/CAP_SETGID.
int write_id_maps(const std::string& proc_pid) {
  const std::string map = "0 0 4294967295\n";
  if (int err = write_file("/proc/" + proc_pid + "/uid_map", map)) return err;
  return write_file("/proc/" + proc_pid + "/gid_map", map);
}

// "/proc/self" as the /proc mount sees us (the test's pid ns: the same /proc mount is
// inherited by every agent, also across CLONE_NEWNS).
std::string proc_self() {
  char buf[64];
  ssize_t n = readlink("/proc/self", buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<std::size_t>(n));
}

// ------------------------------- agent side ---------------------------------------------

[[noreturn]] void agent_main(int ctl, bool direct_child_of_test) noexcept;

// Creates a new agent with clone3(flags); the child serves on child_ctl. Returns the child's
// pid in the caller's pid ns, or -errno. Used by the test process and by agents.
pid_t create_agent(int child_ctl, int flags, bool direct_child_of_test) {
  const bool newuser = (flags & CLONE_NEWUSER) != 0;
  int up[2] = {-1, -1};    // child -> parent: its /proc pid
  int down[2] = {-1, -1};  // parent -> child: maps written (0) or not
  if (newuser) {
    if (pipe2(up, O_CLOEXEC) != 0) return -errno;
    if (pipe2(down, O_CLOEXEC) != 0) {
      int err = errno;
      close(up[0]);
      close(up[1]);
      return -err;
    }
  }
  pid_t pid = raw_clone3(flags);
  if (pid < 0) {
    int err = errno;
    for (int fd : {up[0], up[1], down[0], down[1]})
      if (fd >= 0) close(fd);
    return -err;
  }
  if (pid == 0) {
    if (newuser) {
      close(up[0]);
      close(down[1]);
      std::string self = proc_self();
      if (self.empty() || !write_all(up[1], self.data(), self.size())) _exit(kExitSetup);
      close(up[1]);
      char ack = 1;
      if (!wait_readable(down[0], Clock::now() + g_agent_timeout) || read(down[0], &ack, 1) != 1 ||
          ack != 0)
        _exit(kExitSetup);
      close(down[0]);
    }
    agent_main(child_ctl, direct_child_of_test);
  }
  if (newuser) {
    close(up[1]);
    close(down[0]);
    int err = 0;
    char buf[64];
    ssize_t n = -1;
    if (wait_readable(up[0], Clock::now() + g_agent_timeout)) n = read(up[0], buf, sizeof buf - 1);
    if (n <= 0)
      err = n < 0 ? ETIMEDOUT : EPROTO;
    else
      err = write_id_maps(std::string(buf, static_cast<std::size_t>(n)));
    char ack = err ? 1 : 0;
    (void)!write(down[1], &ack, 1);
    close(up[0]);
    close(down[1]);
    if (err) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, __WALL);
      return -err;
    }
  }
  return pid;
}

// unshare() in the agent; for CLONE_NEWUSER a helper forked beforehand (so it stays in the
// parent user ns) writes the identity maps. Returns 0 or errno.
int agent_unshare(int flags) {
  if (!(flags & CLONE_NEWUSER)) return unshare(flags) == 0 ? 0 : errno;
  std::string self = proc_self();
  if (self.empty()) return errno ? errno : EIO;
  int go[2], done[2];
  if (pipe2(go, O_CLOEXEC) != 0) return errno;
  if (pipe2(done, O_CLOEXEC) != 0) {
    int err = errno;
    close(go[0]);
    close(go[1]);
    return err;
  }
  int helper_pidfd = -1;
  pid_t helper = raw_clone3(0, &helper_pidfd);
  if (helper < 0) {
    int err = errno;
    for (int fd : {go[0], go[1], done[0], done[1]}) close(fd);
    return err;
  }
  if (helper == 0) {
    char proceed = 0;
    int err = ETIMEDOUT;
    if (wait_readable(go[0], Clock::now() + g_agent_timeout) && read(go[0], &proceed, 1) == 1)
      err = proceed ? write_id_maps(self) : ECANCELED;
    (void)!write(done[1], &err, sizeof err);
    _exit(0);
  }
  close(go[0]);
  close(done[1]);
  int rc = unshare(flags);
  int err = rc == 0 ? 0 : errno;
  char proceed = rc == 0 ? 1 : 0;
  (void)!write(go[1], &proceed, 1);
  close(go[1]);
  int map_err = ETIMEDOUT;
  if (wait_readable(done[0], Clock::now() + g_agent_timeout) &&
      read(done[0], &map_err, sizeof map_err) != static_cast<ssize_t>(sizeof map_err))
    map_err = EPROTO;
  close(done[0]);
  // Wait until the helper is reaped (we auto-reap): until then it is still a task in the
  // old user namespace, which e.g. hide_user_ns_ancestor() promises has no tasks left.
  auto dl = Clock::now() + g_agent_timeout;
  while (sys_pidfd_send_signal(helper_pidfd, 0) == 0 && Clock::now() < dl) usleep(200);
  close(helper_pidfd);
  if (err) return err;
  return map_err;
}

struct AgentThread {
  int sock = -1;  // main thread's end of the socketpair
  std::thread thread;
  bool running = false;
};

void agent_thread_main(int sock, std::int32_t index) {
  pid_t tid = gettid();
  Reply rep{0, ReplyKind::Thread, index, tid};
  ucred cred{tid, getuid(), getgid()};
  int r = send_msg(kCtlFd, &rep, sizeof rep, nullptr, 0, &cred);
  if (r == -EPERM || r == -EINVAL) {
    // Not allowed to name our tid (no CAP_SYS_ADMIN over our pid ns): send the tgid
    // credentials instead and our tid in our own pid ns; the test resolves it via /proc.
    rep.kind = ReplyKind::ThreadLocalTid;
    r = send_msg(kCtlFd, &rep, sizeof rep, nullptr, 0, nullptr);
  }
  std::int32_t status = r < 0 ? -r : 0;
  (void)!write(sock, &status, sizeof status);
  if (status != 0) return;
  for (;;) {
    ThreadRequest req{};
    ssize_t n = recv(sock, &req, sizeof req, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof req)) return;
    std::int32_t err = 0;
    if (req.op == ThreadOp::Setns) {
      err = setns(req.fd, req.nstype) == 0 ? 0 : errno;
    }
    (void)!write(sock, &err, sizeof err);
    if (req.op == ThreadOp::Exit) return;
  }
}

struct AgentState {
  std::vector<std::unique_ptr<AgentThread>> threads;
};

bool reply(const Reply& rep) { return send_msg(kCtlFd, &rep, sizeof rep, nullptr, 0, nullptr) == 0; }

// Sends a ThreadRequest to one of the agent's threads and waits for its errno.
int ask_thread(AgentThread& t, const ThreadRequest& req) {
  if (!t.running) return ESRCH;
  if (send(t.sock, &req, sizeof req, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof req)) return ESRCH;
  std::int32_t err = ETIMEDOUT;
  if (!wait_readable(t.sock, Clock::now() + g_agent_timeout)) return ETIMEDOUT;
  ssize_t n = recv(t.sock, &err, sizeof err, 0);
  if (n != static_cast<ssize_t>(sizeof err)) return ESRCH;
  return err;
}

// Handles one request. Returns false when the agent must exit.
bool agent_handle(AgentState& st, const Request& req, const Received& in) {
  Reply rep{0, ReplyKind::Ack, 0, 0};
  auto fd0 = [&]() { return in.fds.empty() ? -1 : in.fds[0]; };
  switch (req.op) {
    case Op::Spawn: {
      if (in.fds.size() != 1) {
        rep.err = EPROTO;
        break;
      }
      pid_t r = create_agent(fd0(), req.a, false);
      close(fd0());
      rep.err = r < 0 ? -r : 0;
      rep.value = r < 0 ? 0 : r;
      break;
    }
    case Op::SpawnThread: {
      int sp[2];
      if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
        rep.err = errno;
        break;
      }
      auto t = std::make_unique<AgentThread>();
      t->sock = sp[0];
      auto index = static_cast<std::int32_t>(st.threads.size());
      int thread_end = sp[1];
      try {
        t->thread = std::thread([thread_end, index] { agent_thread_main(thread_end, index); });
      } catch (const std::system_error& e) {
        close(sp[0]);
        close(sp[1]);
        rep.err = e.code().value() ? e.code().value() : EAGAIN;
        break;
      }
      std::int32_t status = ETIMEDOUT;
      if (wait_readable(sp[0], Clock::now() + g_agent_timeout) &&
          recv(sp[0], &status, sizeof status, 0) != static_cast<ssize_t>(sizeof status))
        status = EPROTO;
      t->running = status == 0;
      st.threads.push_back(std::move(t));
      if (status == 0) return true;  // the thread itself sent the reply (with its tid)
      rep.err = status;
      break;
    }
    case Op::Unshare:
      rep.err = agent_unshare(req.a);
      break;
    case Op::Setns:
      if (in.fds.size() != 1) {
        rep.err = EPROTO;
        break;
      }
      rep.err = setns(fd0(), req.b) == 0 ? 0 : errno;
      close(fd0());
      break;
    case Op::ThreadSetns:
    case Op::ThreadExit: {
      if (req.a < 0 || static_cast<std::size_t>(req.a) >= st.threads.size()) {
        rep.err = ESRCH;
        close_all(in.fds);
        break;
      }
      AgentThread& t = *st.threads[static_cast<std::size_t>(req.a)];
      if (req.op == Op::ThreadSetns) {
        if (in.fds.size() != 1) {
          rep.err = EPROTO;
          close_all(in.fds);
          break;
        }
        rep.err = ask_thread(t, ThreadRequest{ThreadOp::Setns, fd0(), req.b});
        close(fd0());
      } else {
        rep.err = ask_thread(t, ThreadRequest{ThreadOp::Exit, -1, 0});
        if (rep.err == 0) {
          t.thread.join();
          t.running = false;
          close(t.sock);
          t.sock = -1;
        }
      }
      break;
    }
    case Op::HoldFd:
      if (in.fds.size() != 1) {
        rep.err = EPROTO;
        close_all(in.fds);
        break;
      }
      rep.value = fd0();  // kept open (the MSG_CMSG_CLOEXEC flag does not matter: no exec)
      break;
    case Op::CloseFd:
      rep.err = (req.a > kCtlFd && close(req.a) == 0) ? 0 : (req.a <= kCtlFd ? EBADF : errno);
      break;
    case Op::Exit:
      reply(rep);
      return false;
    case Op::Translate:
      if (!in.cred) {
        rep.err = EPROTO;
        break;
      }
      rep.value = in.cred->pid;
      break;
    default:
      rep.err = ENOSYS;
      close_all(in.fds);
      break;
  }
  if (!reply(rep)) _exit(kExitIo);
  return true;
}

[[noreturn]] void agent_main(int ctl, bool direct_child_of_test) noexcept {
  try {
    // Keep stdio and the control socket only: inherited fds (other agents' sockets, held
    // namespace fds, the test's files) must not leak into this agent.
    if (ctl != kCtlFd) {
      if (dup2(ctl, kCtlFd) < 0) _exit(kExitSetup);
    }
    syscall(SYS_close_range, kCtlFd + 1, ~0U, 0);

    struct sigaction dfl;
    std::memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL, SIGINT, SIGTERM, SIGHUP, SIGPIPE,
                    SIGQUIT, SIGTRAP})
      sigaction(sig, &dfl, nullptr);
    struct sigaction ign = dfl;
    ign.sa_handler = SIG_IGN;
    sigaction(SIGCHLD, &ign, nullptr);  // children are auto-reaped
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (direct_child_of_test) prctl(PR_SET_PDEATHSIG, SIGKILL);

    // Hello: the kernel attaches our credentials (the test's end has SO_PASSCRED) and
    // translates our pid into the test's pid ns. A pidfd of ourselves comes along.
    Reply hello{0, ReplyKind::Hello, getpid(), 0};
    int pidfd = static_cast<int>(sys_pidfd_open(getpid(), 0));
    int r = send_msg(kCtlFd, &hello, sizeof hello, pidfd >= 0 ? &pidfd : nullptr, pidfd >= 0 ? 1 : 0,
                     nullptr);
    if (pidfd >= 0) close(pidfd);
    if (r != 0) _exit(kExitIo);

    AgentState st;
    for (;;) {
      Request req{};
      Received in = recv_msg(kCtlFd, &req, sizeof req);
      if (in.n == 0) _exit(0);  // the test process closed our socket (or died)
      if (in.n < 0) _exit(kExitIo);
      if (in.n != static_cast<ssize_t>(sizeof req)) {
        close_all(in.fds);
        Reply rep{EPROTO, ReplyKind::Ack, 0, 0};
        if (!reply(rep)) _exit(kExitIo);
        continue;
      }
      if (!agent_handle(st, req, in)) _exit(0);
    }
  } catch (...) {
  }
  _exit(kExitCrash);
}

// ------------------------------- test side ----------------------------------------------

int g_subreaper_users = 0;
int g_subreaper_previous = 0;

std::string pid_str(pid_t pid) { return std::to_string(pid); }

}  // namespace

KernelError::KernelError(const std::string& what, int err) : std::runtime_error(what), err_(err) {}

UniqueFd::~UniqueFd() { reset(); }

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

int UniqueFd::release() noexcept {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::reset(int fd) noexcept {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

struct ProcTree::Impl {
  struct Agent {
    pid_t pid = 0;
    pid_t parent = 0;
    UniqueFd ctl;
    UniqueFd pidfd;
    bool alive = true;
    bool broken = false;  // a reply timed out: the protocol is out of sync
    std::map<pid_t, std::int32_t> threads;  // host tid -> thread index in the agent
  };

  std::chrono::milliseconds timeout;
  std::vector<std::unique_ptr<Agent>> agents;  // creation order
  std::map<pid_t, Agent*> by_pid;               // latest agent with that host pid
  std::map<pid_t, pid_t> thread_owner;          // live host tid -> agent host pid
  std::vector<pid_t> every_pid;
  std::string tmpdir;
  bool tmpdir_mounted = false;
  std::vector<std::string> mounts;
  unsigned mount_counter = 0;

  Clock::time_point deadline() const { return Clock::now() + timeout; }

  Agent& find(pid_t pid) {
    auto it = by_pid.find(pid);
    if (it == by_pid.end())
      throw HarnessError("pidns::testing: pid " + pid_str(pid) + " is not an agent of this ProcTree");
    return *it->second;
  }

  Agent& live(pid_t pid) {
    Agent& a = find(pid);
    if (!a.alive) throw AgentGone("pidns::testing: agent " + pid_str(pid) + " has exited");
    if (a.broken)
      throw HarnessError("pidns::testing: agent " + pid_str(pid) +
                         " stopped answering earlier; not usable any more");
    return a;
  }

  // Reaps the agent if it is our (possibly adopted) child and has exited; true once it is
  // gone from the kernel (pidfd_send_signal(0) says ESRCH only after the task is reaped).
  static bool try_reap(Agent& a) {
    if (!a.pidfd) return true;
    siginfo_t si;
    std::memset(&si, 0, sizeof si);
    waitid(P_PIDFD, static_cast<id_t>(a.pidfd.get()), &si, WEXITED | WNOHANG | __WALL);
    if (sys_pidfd_send_signal(a.pidfd.get(), 0) == -1 && errno == ESRCH) return true;
    return false;
  }

  void mark_dead(Agent& a) {
    a.alive = false;
    a.ctl.reset();
    a.pidfd.reset();  // a pidfd pins the struct pid, which pins its pid namespace
    for (auto& [tid, index] : a.threads) thread_owner.erase(tid);
    a.threads.clear();
  }

  void sweep() {
    for (auto& a : agents)
      if (a->alive && try_reap(*a)) mark_dead(*a);
  }

  void wait_reaped(Agent& a, const char* why) {
    auto dl = deadline();
    while (!try_reap(a)) {
      if (Clock::now() >= dl)
        throw HarnessError("pidns::testing: agent " + pid_str(a.pid) + " not reaped within " +
                           std::to_string(timeout.count()) + " ms after " + why);
      usleep(500);
    }
    mark_dead(a);
    sweep();
  }

  [[noreturn]] void gone(Agent& a, const std::string& what) {
    pid_t pid = a.pid;
    // Give the kernel a moment to finish the exit so the tree's state is accurate.
    auto dl = Clock::now() + std::chrono::milliseconds(200);
    while (!try_reap(a) && Clock::now() < dl) usleep(500);
    if (try_reap(a)) mark_dead(a);
    sweep();
    throw AgentGone("pidns::testing: agent " + pid_str(pid) + " is gone (" + what + ")");
  }

  void send(Agent& a, const Request& req, int fd = -1, const ucred* cred = nullptr) {
    int r = send_msg(a.ctl.get(), &req, sizeof req, fd >= 0 ? &fd : nullptr, fd >= 0 ? 1 : 0, cred);
    if (r == 0) return;
    if (r == -EPIPE || r == -ECONNRESET || r == -ENOTCONN || r == -ECONNREFUSED)
      gone(a, "sending a command: " + errno_text(-r));
    throw_errno("pidns::testing: sending a command to agent " + pid_str(a.pid), -r);
  }

  // Waits for the reply to the last command.
  Reply await(Agent& a, const char* what, Received* raw = nullptr) {
    if (!wait_readable(a.ctl.get(), deadline())) {
      a.broken = true;
      throw HarnessError("pidns::testing: agent " + pid_str(a.pid) + " did not answer '" + what +
                         "' within " + std::to_string(timeout.count()) + " ms");
    }
    Reply rep{};
    Received in = recv_msg(a.ctl.get(), &rep, sizeof rep);
    if (in.n == 0 || in.n == -ECONNRESET) {
      close_all(in.fds);
      gone(a, std::string("while waiting for the answer to '") + what + "'");
    }
    if (in.n < 0) throw_errno("pidns::testing: receiving from agent " + pid_str(a.pid), static_cast<int>(-in.n));
    if (in.n != static_cast<ssize_t>(sizeof rep)) {
      close_all(in.fds);
      a.broken = true;
      throw HarnessError("pidns::testing: malformed answer from agent " + pid_str(a.pid));
    }
    if (raw) {
      *raw = std::move(in);
    } else {
      close_all(in.fds);
    }
    return rep;
  }

  Reply command(Agent& a, const Request& req, const char* what, int fd = -1, const ucred* cred = nullptr,
                Received* raw = nullptr) {
    send(a, req, fd, cred);
    return await(a, what, raw);
  }
};

ProcTree::ProcTree(std::chrono::milliseconds timeout) : impl_(std::make_unique<Impl>()) {
  impl_->timeout = timeout;
  g_agent_timeout = timeout * 3 / 4;
  if (g_subreaper_users++ == 0) {
    int prev = 0;
    prctl(PR_GET_CHILD_SUBREAPER, &prev);
    g_subreaper_previous = prev;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
  }
}

ProcTree::~ProcTree() {
  Impl& im = *impl_;
  // Children before parents: a parent that is still alive auto-reaps its dying child.
  for (auto it = im.agents.rbegin(); it != im.agents.rend(); ++it) {
    Impl::Agent& a = **it;
    if (a.alive && a.pidfd) sys_pidfd_send_signal(a.pidfd.get(), SIGKILL);
  }
  auto dl = im.deadline();
  for (auto it = im.agents.rbegin(); it != im.agents.rend(); ++it) {
    Impl::Agent& a = **it;
    if (!a.alive) continue;
    while (!Impl::try_reap(a) && Clock::now() < dl) usleep(500);
    if (!Impl::try_reap(a))
      std::fprintf(stderr, "pidns::testing: ~ProcTree: agent %d was not reaped within %lld ms\n",
                   static_cast<int>(a.pid), static_cast<long long>(im.timeout.count()));
    im.mark_dead(a);
  }
  for (auto it = im.mounts.rbegin(); it != im.mounts.rend(); ++it) {
    umount2(it->c_str(), MNT_DETACH);
    unlink(it->c_str());
  }
  if (!im.tmpdir.empty()) {
    if (im.tmpdir_mounted) umount2(im.tmpdir.c_str(), MNT_DETACH);
    rmdir(im.tmpdir.c_str());
  }
  if (--g_subreaper_users == 0) prctl(PR_SET_CHILD_SUBREAPER, g_subreaper_previous);
}

std::chrono::milliseconds ProcTree::timeout() const { return impl_->timeout; }

SpawnResult ProcTree::try_spawn(pid_t parent_host_pid, int clone_flags) {
  if (clone_flags & ~kAllowedCloneFlags)
    throw std::invalid_argument("pidns::testing: spawn: only CLONE_NEW* flags are supported");
  Impl& im = *impl_;
  Impl::Agent* parent = parent_host_pid ? &im.live(parent_host_pid) : nullptr;

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    throw_errno("pidns::testing: socketpair", errno);
  UniqueFd mine(sv[0]), theirs(sv[1]);
  int one = 1;
  if (setsockopt(mine.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0 ||
      setsockopt(theirs.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0)
    throw_errno("pidns::testing: SO_PASSCRED", errno);

  pid_t direct_pid = 0;
  if (!parent) {
    g_agent_timeout = im.timeout * 3 / 4;
    pid_t r = create_agent(theirs.get(), clone_flags, true);
    theirs.reset();
    if (r < 0) return SpawnResult{0, -r};
    direct_pid = r;
  } else {
    Request req{Op::Spawn, clone_flags, 0, 0};
    im.send(*parent, req, theirs.get());
    theirs.reset();
    Reply rep = im.await(*parent, "spawn");
    if (rep.err) return SpawnResult{0, rep.err};
  }

  auto fail = [&](const std::string& why) -> SpawnResult {
    if (direct_pid > 0) {
      kill(direct_pid, SIGKILL);
      waitpid(direct_pid, nullptr, __WALL);
    }
    throw HarnessError("pidns::testing: spawn(" + pid_str(parent_host_pid) + "): " + why);
  };
  if (!wait_readable(mine.get(), im.deadline()))
    return fail("the new agent did not say hello within " + std::to_string(im.timeout.count()) + " ms");
  Reply hello{};
  Received in = recv_msg(mine.get(), &hello, sizeof hello);
  UniqueFd pidfd;
  if (!in.fds.empty()) {
    pidfd.reset(in.fds[0]);
    for (std::size_t i = 1; i < in.fds.size(); ++i) close(in.fds[i]);
  }
  if (in.n <= 0) return fail("the new agent died before saying hello");
  if (in.n != static_cast<ssize_t>(sizeof hello) || hello.kind != ReplyKind::Hello || !in.cred)
    return fail("malformed hello from the new agent");
  pid_t pid = in.cred->pid;
  if (pid <= 0) return fail("the new agent's pid is not visible from the test process");
  if (!pidfd) {
    pidfd.reset(static_cast<int>(sys_pidfd_open(pid, 0)));
    if (!pidfd) return fail("pidfd_open(" + pid_str(pid) + "): " + errno_text(errno));
  }

  auto agent = std::make_unique<Impl::Agent>();
  agent->pid = pid;
  agent->parent = parent_host_pid;
  agent->ctl = std::move(mine);
  agent->pidfd = std::move(pidfd);
  im.by_pid[pid] = agent.get();
  im.agents.push_back(std::move(agent));
  im.every_pid.push_back(pid);
  return SpawnResult{pid, 0};
}

pid_t ProcTree::spawn(pid_t parent_host_pid, int clone_flags) {
  SpawnResult r = try_spawn(parent_host_pid, clone_flags);
  if (!r)
    throw_errno("pidns::testing: spawn(parent " + pid_str(parent_host_pid) + ", flags 0x" +
                    [&] {
                      char b[16];
                      std::snprintf(b, sizeof b, "%x", static_cast<unsigned>(clone_flags));
                      return std::string(b);
                    }() + ") failed in clone3",
                r.err);
  return r.pid;
}

pid_t ProcTree::spawn_thread(pid_t agent) {
  Impl& im = *impl_;
  Impl::Agent& a = im.live(agent);
  Received raw;
  Reply rep = im.command(a, Request{Op::SpawnThread, 0, 0, 0}, "spawn_thread", -1, nullptr, &raw);
  close_all(raw.fds);
  if (rep.err) throw_errno("pidns::testing: spawn_thread in agent " + pid_str(agent), rep.err);
  pid_t tid = 0;
  if (rep.kind == ReplyKind::Thread && raw.cred) {
    tid = raw.cred->pid;
  } else if (rep.kind == ReplyKind::ThreadLocalTid) {
    // Fallback: find the task of the agent whose innermost pid is the thread's local tid.
    std::string dir = "/proc/" + pid_str(agent) + "/task/";
    if (DIR* d = opendir(dir.c_str())) {
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        pid_t candidate = static_cast<pid_t>(std::atoi(e->d_name));
        auto chain = oracle_nspid(candidate);
        if (!chain.empty() && chain.back() == static_cast<pid_t>(rep.value2)) tid = candidate;
      }
      closedir(d);
    }
  }
  if (tid <= 0) throw HarnessError("pidns::testing: spawn_thread: could not learn the thread's host tid");
  a.threads[tid] = static_cast<std::int32_t>(rep.value);
  im.thread_owner[tid] = agent;
  im.every_pid.push_back(tid);
  return tid;
}

void ProcTree::exit_thread(pid_t tid) {
  Impl& im = *impl_;
  pid_t owner = owner_of_thread(tid);
  Impl::Agent& a = im.live(owner);
  Reply rep = im.command(a, Request{Op::ThreadExit, a.threads.at(tid), 0, 0}, "exit_thread");
  if (rep.err) throw_errno("pidns::testing: exit_thread " + pid_str(tid), rep.err);
  a.threads.erase(tid);
  im.thread_owner.erase(tid);
  auto dl = im.deadline();
  while (syscall(SYS_tgkill, owner, tid, 0) == 0) {
    if (Clock::now() >= dl)
      throw HarnessError("pidns::testing: thread " + pid_str(tid) + " still exists after exit_thread");
    usleep(500);
  }
}

void ProcTree::unshare_in(pid_t agent, int flags) {
  Impl& im = *impl_;
  Reply rep = im.command(im.live(agent), Request{Op::Unshare, flags, 0, 0}, "unshare");
  if (rep.err) throw_errno("pidns::testing: unshare in agent " + pid_str(agent), rep.err);
}

void ProcTree::setns_in(pid_t agent, const std::string& ns_path, int nstype) {
  Impl& im = *impl_;
  Impl::Agent& a = im.live(agent);
  UniqueFd fd = open_path(ns_path);
  Reply rep = im.command(a, Request{Op::Setns, 0, nstype, 0}, "setns", fd.get());
  if (rep.err) throw_errno("pidns::testing: setns(" + ns_path + ") in agent " + pid_str(agent), rep.err);
}

void ProcTree::thread_setns(pid_t tid, const std::string& ns_path) {
  Impl& im = *impl_;
  pid_t owner = owner_of_thread(tid);
  Impl::Agent& a = im.live(owner);
  UniqueFd fd = open_path(ns_path);
  Reply rep = im.command(a, Request{Op::ThreadSetns, a.threads.at(tid), 0, 0}, "thread_setns", fd.get());
  if (rep.err) throw_errno("pidns::testing: setns(" + ns_path + ") in thread " + pid_str(tid), rep.err);
}

int ProcTree::hold_ns_fd(pid_t agent, const std::string& ns_path) {
  Impl& im = *impl_;
  Impl::Agent& a = im.live(agent);
  UniqueFd fd = open_path(ns_path);
  Reply rep = im.command(a, Request{Op::HoldFd, 0, 0, 0}, "hold_ns_fd", fd.get());
  if (rep.err) throw_errno("pidns::testing: hold_ns_fd(" + ns_path + ") in agent " + pid_str(agent), rep.err);
  return static_cast<int>(rep.value);
}

void ProcTree::close_fd(pid_t agent, int fd) {
  Impl& im = *impl_;
  Reply rep = im.command(im.live(agent), Request{Op::CloseFd, fd, 0, 0}, "close_fd");
  if (rep.err)
    throw_errno("pidns::testing: close(" + std::to_string(fd) + ") in agent " + pid_str(agent), rep.err);
}

void ProcTree::exit_agent(pid_t agent) {
  Impl& im = *impl_;
  Impl::Agent& a = im.live(agent);
  im.send(a, Request{Op::Exit, 0, 0, 0});
  // The ack may race with the exit; EOF is fine too.
  if (wait_readable(a.ctl.get(), im.deadline())) {
    Reply rep{};
    Received in = recv_msg(a.ctl.get(), &rep, sizeof rep);
    close_all(in.fds);
  }
  im.wait_reaped(a, "exit_agent");
}

void ProcTree::kill_agent(pid_t agent) {
  Impl& im = *impl_;
  Impl::Agent& a = im.live(agent);
  if (sys_pidfd_send_signal(a.pidfd.get(), SIGKILL) != 0 && errno != ESRCH)
    throw_errno("pidns::testing: SIGKILL agent " + pid_str(agent), errno);
  im.wait_reaped(a, "SIGKILL");
}

pid_t ProcTree::pid_seen_by(pid_t observer, pid_t host_pid) {
  Impl& im = *impl_;
  Impl::Agent& a = im.live(observer);
  ucred cred{host_pid, 0, 0};
  Request req{Op::Translate, 0, 0, 0};
  int r = send_msg(a.ctl.get(), &req, sizeof req, nullptr, 0, &cred);
  if (r == -ESRCH) throw_errno("pidns::testing: pid_seen_by: no task " + pid_str(host_pid), ESRCH);
  if (r == -EPIPE || r == -ECONNRESET || r == -ENOTCONN) im.gone(a, "sending pid_seen_by");
  if (r != 0) throw_errno("pidns::testing: pid_seen_by: sendmsg", -r);
  Reply rep = im.await(a, "pid_seen_by");
  if (rep.err) throw_errno("pidns::testing: pid_seen_by", rep.err);
  return static_cast<pid_t>(rep.value);
}

std::string ProcTree::bind_mount_ns(pid_t host_pid, const std::string& type) {
  Impl& im = *impl_;
  if (im.tmpdir.empty()) {
    char tmpl[] = "/tmp/pidns-nstree-XXXXXX";
    if (!mkdtemp(tmpl)) throw_errno("pidns::testing: mkdtemp", errno);
    im.tmpdir = tmpl;
    // A private mount of its own, so the ns bind mounts neither propagate nor receive.
    if (mount(im.tmpdir.c_str(), im.tmpdir.c_str(), nullptr, MS_BIND, nullptr) != 0)
      throw_errno("pidns::testing: bind-mount " + im.tmpdir, errno);
    im.tmpdir_mounted = true;
    if (mount(nullptr, im.tmpdir.c_str(), nullptr, MS_PRIVATE, nullptr) != 0)
      throw_errno("pidns::testing: make-private " + im.tmpdir, errno);
  }
  std::string path = im.tmpdir + "/" + type + "-" + pid_str(host_pid) + "-" + std::to_string(im.mount_counter++);
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw_errno("pidns::testing: create " + path, errno);
  close(fd);
  std::string src = "/proc/" + pid_str(host_pid) + "/ns/" + type;
  if (mount(src.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    int err = errno;
    unlink(path.c_str());
    throw_errno("pidns::testing: bind-mount " + src + " on " + path, err);
  }
  im.mounts.push_back(path);
  return path;
}

void ProcTree::unmount_ns(const std::string& path) {
  Impl& im = *impl_;
  auto it = std::find(im.mounts.begin(), im.mounts.end(), path);
  if (it == im.mounts.end()) throw HarnessError("pidns::testing: " + path + " is not a mount of this ProcTree");
  if (umount2(path.c_str(), MNT_DETACH) != 0) throw_errno("pidns::testing: umount " + path, errno);
  unlink(path.c_str());
  im.mounts.erase(it);
}

bool ProcTree::alive(pid_t host_pid) {
  Impl& im = *impl_;
  auto owner = im.thread_owner.find(host_pid);
  if (owner != im.thread_owner.end()) {
    if (!alive(owner->second)) return false;
    return syscall(SYS_tgkill, owner->second, host_pid, 0) == 0;
  }
  if (im.by_pid.find(host_pid) == im.by_pid.end()) {
    if (std::find(im.every_pid.begin(), im.every_pid.end(), host_pid) != im.every_pid.end())
      return false;  // a thread that exited (or died with its agent)
    im.find(host_pid);  // throws: unknown pid
  }
  Impl::Agent& a = im.find(host_pid);
  if (a.alive && Impl::try_reap(a)) im.mark_dead(a);
  return a.alive;
}

pid_t ProcTree::parent_of(pid_t agent) const {
  auto it = impl_->by_pid.find(agent);
  if (it == impl_->by_pid.end())
    throw HarnessError("pidns::testing: pid " + pid_str(agent) + " is not an agent of this ProcTree");
  return it->second->parent;
}

pid_t ProcTree::owner_of_thread(pid_t tid) const {
  auto it = impl_->thread_owner.find(tid);
  if (it == impl_->thread_owner.end())
    throw AgentGone("pidns::testing: " + pid_str(tid) + " is not a live thread made by spawn_thread");
  return it->second;
}

std::vector<pid_t> ProcTree::live_agents() {
  impl_->sweep();
  std::vector<pid_t> out;
  for (auto& a : impl_->agents)
    if (a->alive) out.push_back(a->pid);
  return out;
}

std::vector<pid_t> ProcTree::threads_of(pid_t agent) const {
  auto it = impl_->by_pid.find(agent);
  std::vector<pid_t> out;
  if (it == impl_->by_pid.end()) return out;
  for (auto& [tid, index] : it->second->threads) out.push_back(tid);
  return out;
}

std::vector<pid_t> ProcTree::all_pids() const { return impl_->every_pid; }

// ------------------------------- ready-made trees ---------------------------------------

Seed000Tree make_seed000_tree(ProcTree& tree) {
  Seed000Tree t;
  t.t1 = tree.spawn(0, 0);
  t.t2 = tree.spawn(t.t1, CLONE_NEWPID);
  t.t3 = tree.spawn(t.t2, 0);
  t.t4 = tree.spawn(t.t3, CLONE_NEWPID);
  t.t5 = tree.spawn(t.t4, 0);
  return t;
}

const NsMembers& Hierarchy5::ns(int i) const {
  switch (i) {
    case 1: return ns1;
    case 2: return ns2;
    case 3: return ns3;
    case 4: return ns4;
    case 5: return ns5;
    default: throw std::out_of_range("Hierarchy5::ns: index must be 1..5");
  }
}

Hierarchy5 make_ns_hierarchy5(ProcTree& tree) {
  Hierarchy5 h;
  h.root = tree.spawn(0, 0);
  auto make = [&](pid_t creator) {
    NsMembers m;
    m.init = tree.spawn(creator, CLONE_NEWPID);
    m.extra = tree.spawn(m.init, 0);
    return m;
  };
  h.ns1 = make(h.root);
  h.ns2 = make(h.root);
  h.ns3 = make(h.ns2.init);
  h.ns4 = make(h.ns3.init);
  h.ns5 = make(h.ns3.init);
  return h;
}

std::vector<pid_t> make_chain(ProcTree& tree, int depth, pid_t parent) {
  std::vector<pid_t> chain;
  pid_t prev = parent;
  for (int i = 0; i < depth; ++i) {
    prev = tree.spawn(prev, CLONE_NEWPID);
    chain.push_back(prev);
  }
  return chain;
}

int max_extra_pid_ns_levels() {
  auto chain = oracle_nspid(getpid());
  if (chain.empty()) throw HarnessError("pidns::testing: no NSpid for the test process");
  // MAX_PID_NS_LEVEL = 32; levels are counted from init_pid_ns (0). NSpid starts at the
  // /proc mount's pid ns, which is assumed to be the test process's ancestor-or-self.
  return 32 - static_cast<int>(chain.size() - 1);
}

// ------------------------------- holders ------------------------------------------------

namespace {

std::string fd_path(pid_t pid, int fd) { return "/proc/" + pid_str(pid) + "/fd/" + std::to_string(fd); }

void expect_inode(ino_t got, ino_t want, const std::string& what) {
  if (got != want)
    throw HarnessError("pidns::testing: " + what + ": inode " + std::to_string(got) + ", expected " +
                       std::to_string(want));
}

}  // namespace

HeldNs hold_ns_by_fd(ProcTree& tree) {
  HeldNs h;
  h.kind = HoldKind::Fd;
  h.type = "net";
  pid_t x = tree.spawn(0, CLONE_NEWNET);
  h.inode = oracle_ns_inode(x, "net");
  h.holder_pid = tree.spawn(0, 0);
  h.holder_fd = tree.hold_ns_fd(h.holder_pid, "/proc/" + pid_str(x) + "/ns/net");
  tree.exit_agent(x);
  UniqueFd fd = open_held_ns(h);
  expect_inode(oracle_fd_inode(fd.get()), h.inode, "hold_ns_by_fd");
  return h;
}

HeldNs hold_ns_by_bind_mount(ProcTree& tree) {
  HeldNs h;
  h.kind = HoldKind::BindMount;
  h.type = "net";
  pid_t x = tree.spawn(0, CLONE_NEWNET);
  h.inode = oracle_ns_inode(x, "net");
  h.mount_path = tree.bind_mount_ns(x, "net");
  tree.exit_agent(x);
  UniqueFd fd = open_held_ns(h);
  expect_inode(oracle_fd_inode(fd.get()), h.inode, "hold_ns_by_bind_mount");
  return h;
}

HeldNs hide_user_ns_ancestor(ProcTree& tree) {
  HeldNs h;
  h.kind = HoldKind::ParentOnly;
  h.type = "user";
  h.child_type = "user";
  pid_t x = tree.spawn(0, CLONE_NEWUSER);
  h.inode = oracle_ns_inode(x, "user");
  tree.unshare_in(x, CLONE_NEWUSER);
  h.holder_pid = x;
  h.child_inode = oracle_ns_inode(x, "user");
  if (h.child_inode == h.inode) throw HarnessError("pidns::testing: unshare(CLONE_NEWUSER) did not change the user ns");
  UniqueFd fd = open_held_ns(h);
  expect_inode(oracle_fd_inode(fd.get()), h.inode, "hide_user_ns_ancestor (NS_GET_PARENT)");
  return h;
}

HeldNs hide_pid_ns_ancestor(ProcTree& tree) {
  HeldNs h;
  h.kind = HoldKind::ParentOnly;
  h.type = "pid";
  h.child_type = "pid";
  h.holder_pid = tree.spawn(0, 0);
  pid_t n1 = tree.spawn(0, CLONE_NEWPID);
  pid_t n2 = tree.spawn(n1, CLONE_NEWPID);
  h.inode = oracle_ns_inode(n1, "pid");
  h.child_inode = oracle_ns_inode(n2, "pid");
  h.holder_fd = tree.hold_ns_fd(h.holder_pid, "/proc/" + pid_str(n2) + "/ns/pid");
  tree.exit_agent(n1);  // init of ns1: the kernel kills n2 too
  if (tree.alive(n2)) throw HarnessError("pidns::testing: ns2's init survived the death of ns1's init");
  UniqueFd fd = open_held_ns(h);
  expect_inode(oracle_fd_inode(fd.get()), h.inode, "hide_pid_ns_ancestor (NS_GET_PARENT)");
  return h;
}

HeldNs hide_user_ns_owner(ProcTree& tree) {
  HeldNs h;
  h.kind = HoldKind::OwnerOnly;
  h.type = "user";
  h.child_type = "net";
  h.holder_pid = tree.spawn(0, 0);
  pid_t x = tree.spawn(0, CLONE_NEWUSER | CLONE_NEWNET);
  h.inode = oracle_ns_inode(x, "user");
  h.child_inode = oracle_ns_inode(x, "net");
  h.holder_fd = tree.hold_ns_fd(h.holder_pid, "/proc/" + pid_str(x) + "/ns/net");
  tree.exit_agent(x);
  UniqueFd fd = open_held_ns(h);
  expect_inode(oracle_fd_inode(fd.get()), h.inode, "hide_user_ns_owner (NS_GET_USERNS)");
  return h;
}

UniqueFd open_held_ns(const HeldNs& held) {
  switch (held.kind) {
    case HoldKind::Fd:
      return open_path(fd_path(held.holder_pid, held.holder_fd));
    case HoldKind::BindMount:
      return open_path(held.mount_path);
    case HoldKind::ParentOnly:
    case HoldKind::OwnerOnly: {
      UniqueFd child = held.holder_fd >= 0 ? open_path(fd_path(held.holder_pid, held.holder_fd))
                                           : open_ns(held.holder_pid, held.child_type.c_str());
      unsigned long op = held.kind == HoldKind::ParentOnly ? kNsGetParent : kNsGetUserns;
      int fd = ioctl(child.get(), op);
      if (fd < 0)
        throw_errno(held.kind == HoldKind::ParentOnly ? "pidns::testing: NS_GET_PARENT" : "pidns::testing: NS_GET_USERNS",
                    errno);
      return UniqueFd(fd);
    }
  }
  throw std::logic_error("open_held_ns: bad kind");
}

// ------------------------------- oracles ------------------------------------------------

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
