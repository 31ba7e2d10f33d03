// A tree of real agent processes the test commands: clone3 with namespace flags, unshare, setns, held fds, threads.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"

// Everything here talks to the real kernel: clone3(), unshare(), setns(), nsfs ioctls, /proc.
// Nothing from lib/ is used, so the oracles stay independent of the code under test.
// Requirements: run as root in the initial user namespace (the suite does); Linux 6.11+ for
// the pid-translation ioctls, 6.18+ for NS_GET_ID.
namespace pidns::testing {

struct SpawnResult {
  pid_t pid = 0;  // host pid of the new agent (valid when err == 0)
  int err = 0;    // errno of the failed clone3 (e.g. ENOSPC for a 33rd nested pid ns)
  explicit operator bool() const noexcept { return err == 0; }
};

// A tree of real "agent" processes. Each agent sits in a command loop on a unix
// SOCK_SEQPACKET socket whose other end is held by the test process; every command is
// synchronous (ack or errno) and every wait has a deadline (timeout(), default 10 s).
//
// Pids: every pid/tid taken or returned is a HOST pid, i.e. as seen from the test
// process's pid namespace (learned from SCM_CREDENTIALS, which the kernel translates into
// the receiver's pid namespace). Paths (ns_path) are opened BY THE TEST PROCESS and the fd
// is passed to the agent with SCM_RIGHTS, so "/proc/<host pid>/ns/net" and bind mounts
// made by the test work whatever the agent's own pid/mount/user namespaces are.
//
// User namespaces: an agent created with CLONE_NEWUSER (or unshare_in(CLONE_NEWUSER)) gets
// the full identity map "0 0 4294967295" in uid_map and gid_map, written by a process in
// the parent user namespace (the creating parent, or for unshare a helper forked before the
// unshare). So every agent is root with full capabilities in its own user namespace, and
// full maps nest (up to the kernel's 32 user-ns levels).
//
// Reaping: agents ignore SIGCHLD, so their children are auto-reaped. While a ProcTree is
// alive the test process is a child subreaper (PR_SET_CHILD_SUBREAPER), so agents orphaned
// in the test's pid namespace are re-parented to (and reaped by) the test process; orphans
// inside a nested pid namespace go to that namespace's init agent. If a pid namespace's init
// exits (exit_agent) or is killed, the kernel SIGKILLs every other process of that namespace
// (and of the namespaces nested in it); exit_agent returns after all of them are reaped and
// they are then reported as gone.
//
// The destructor SIGKILLs every live agent (children first), waits until each is reaped,
// then removes the bind mounts and the temp dir. It also runs when a test fails mid-way.
// If the test process itself is SIGKILLed, agents exit on their own (control socket EOF,
// PR_SET_PDEATHSIG) but bind mounts stay. A ProcTree is not thread-safe.
class ProcTree {
 public:
  explicit ProcTree(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~ProcTree();
  ProcTree(const ProcTree&) = delete;
  ProcTree& operator=(const ProcTree&) = delete;

  // Agent `parent_host_pid` (0 = the test process itself) clone3()s a new agent with
  // `clone_flags`, any combination of CLONE_NEWPID, CLONE_NEWUSER, CLONE_NEWNET,
  // CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP, CLONE_NEWTIME (other bits:
  // std::invalid_argument). With CLONE_NEWPID the child is init (pid 1) of the new pid ns.
  // If the parent did unshare_in(CLONE_NEWPID), its children land in that pid ns.
  // Returns the child's host pid; a kernel refusal throws KernelError (err(): errno).
  pid_t spawn(pid_t parent_host_pid = 0, int clone_flags = 0);
  // Same, but a kernel refusal is returned instead of thrown (harness failures still throw).
  SpawnResult try_spawn(pid_t parent_host_pid, int clone_flags);

  // The agent starts a thread that sleeps waiting for commands; returns its host tid.
  pid_t spawn_thread(pid_t agent);
  // The thread returns (the agent joins it); returns when the tid is gone.
  void exit_thread(pid_t tid);

  // The agent calls unshare(flags) itself. CLONE_NEWPID only changes pid_for_children
  // (the agent's next spawn becomes pid 1 there; a second child after that init died fails
  // with ENOMEM). CLONE_NEWUSER is mapped as described above; it, CLONE_NEWNS and
  // CLONE_FS-implying flags fail with EINVAL once the agent has threads.
  void unshare_in(pid_t agent, int flags);
  // The agent's main thread setns()es into ns_path (nstype 0 = any type).
  void setns_in(pid_t agent, const std::string& ns_path, int nstype = 0);
  // A thread made by spawn_thread setns()es alone into ns_path. Per-thread setns works for
  // net, uts, ipc, cgroup and pid (pid only changes that thread's pid_for_children); mnt
  // and user fail with EINVAL and time with EUSERS in a multi-threaded process (see the
  // self-test "threads can setns alone").
  void thread_setns(pid_t tid, const std::string& ns_path);

  // The agent keeps an fd to ns_path open; returns the fd number in the agent
  // (so "/proc/<agent>/fd/<n>" reaches the namespace).
  int hold_ns_fd(pid_t agent, const std::string& ns_path);
  // The agent closes one of its fds (e.g. one returned by hold_ns_fd).
  void close_fd(pid_t agent, int fd);

  // The agent calls _exit(0); returns once it (and, if it was a pid ns init, everything
  // the kernel killed with it) has been reaped.
  void exit_agent(pid_t agent);
  // The test process SIGKILLs the agent; returns once it is reaped (same cascade).
  void kill_agent(pid_t agent);

  // Pid of `host_pid` (a pid or tid) as seen from `observer`'s pid namespace, 0 if it is not
  // visible there. Done by sending SCM_CREDENTIALS naming host_pid to the observer, which
  // reads back the pid the kernel translated for it. KernelError(ESRCH) if host_pid does not
  // exist.
  pid_t pid_seen_by(pid_t observer, pid_t host_pid);

  // Bind-mounts /proc/<host_pid>/ns/<type> onto a new file in a private temp dir of the TEST
  // PROCESS's mount namespace (like `ip netns add`); returns the file's path. Removed by
  // unmount_ns or by the destructor. Agents created with CLONE_NEWNS after this call get a
  // copy of the mount (and so also hold the namespace): create holders after such agents.
  std::string bind_mount_ns(pid_t host_pid, const std::string& type);
  void unmount_ns(const std::string& path);

  // Whether the agent (or agent thread) is still alive; reaps it if it just died.
  bool alive(pid_t host_pid);
  // Host pid of the agent that created `agent` (0 = the test process). Not updated when the
  // agent is re-parented.
  pid_t parent_of(pid_t agent) const;
  // Agent owning a thread made by spawn_thread.
  pid_t owner_of_thread(pid_t tid) const;
  // Live agents in creation order / live threads of an agent.
  std::vector<pid_t> live_agents();
  std::vector<pid_t> threads_of(pid_t agent) const;
  // Every agent pid and thread tid this tree ever created (for leak checks).
  std::vector<pid_t> all_pids() const;
  std::chrono::milliseconds timeout() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pidns::testing
