// The test's side of the agents: ProcTree creates them, sends each command and awaits its answer,
// tracks their threads and bind mounts, and reaps them (the test is their subreaper).
#include "proc_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "kernel_oracles.h"
#include "wire.h"

namespace pidns::testing {

using namespace detail;

namespace {

constexpr int kAllowedCloneFlags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
                                   CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWTIME;

int g_subreaper_users = 0;
int g_subreaper_previous = 0;

}  // namespace

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

}  // namespace pidns::testing
