// The agent: a process in a command loop on its control socket that clones agents, unshares, setns()es,
// keeps fds and runs threads for the test, answering each command with an errno.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>
#include <thread>

#include "wire.h"

namespace pidns::testing::detail {

namespace {

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

[[noreturn]] void agent_main(int ctl, bool direct_child_of_test) noexcept;

}  // namespace

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

namespace {

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

}  // namespace

}  // namespace pidns::testing::detail
