// Test support: builds real process/namespace trees with the kernel (agent processes, ready-made trees, namespace holders) plus naive kernel oracles.
#pragma once

#include <sys/ioctl.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

// Everything here talks to the real kernel: clone3(), unshare(), setns(), nsfs ioctls, /proc.
// Nothing from lib/ is used, so the oracles stay independent of the code under test.
// Requirements: run as root in the initial user namespace (the suite does); Linux 6.11+ for
// the pid-translation ioctls, 6.18+ for NS_GET_ID.
namespace pidns::testing {

// nsfs ioctls missing from Debian 12's <linux/nsfs.h> (values from Linux 6.18 uapi).
inline constexpr unsigned long kNsGetPidFromPidns = _IOR(0xb7, 0x6, int);   // pid in fd's ns -> caller's ns
inline constexpr unsigned long kNsGetTgidFromPidns = _IOR(0xb7, 0x7, int);
inline constexpr unsigned long kNsGetPidInPidns = _IOR(0xb7, 0x8, int);     // pid in caller's ns -> fd's ns
inline constexpr unsigned long kNsGetTgidInPidns = _IOR(0xb7, 0x9, int);
inline constexpr unsigned long kNsGetId = _IOR(0xb7, 13, std::uint64_t);

// The kernel refused something (an agent's clone3/unshare/setns..., or a test-side syscall).
class KernelError : public std::runtime_error {
 public:
  KernelError(const std::string& what, int err);
  int err() const noexcept { return err_; }

 private:
  int err_;
};

// The harness itself failed: timeout, protocol error, unknown pid.
class HarnessError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A command was sent to an agent (or agent thread) that has exited or was killed.
class AgentGone : public HarnessError {
 public:
  using HarnessError::HarnessError;
};

// Owning file descriptor (closed on destruction).
class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const noexcept { return fd_; }
  int release() noexcept;
  void reset(int fd = -1) noexcept;
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

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

// ---------------------------------------------------------------------------------------
// Ready-made trees. All pids are host pids.

// From the pid-namespace mailing-list thread: t1 in the test's pid ns; t2 = init of ns1
// (created by t1); t3 a child of t2 in ns1; t4 = init of ns2 nested in ns1 (created by
// t3); t5 a child of t4 in ns2. NSpid lengths (from the test's ns): 1,2,2,3,3.
struct Seed000Tree {
  pid_t t1 = 0, t2 = 0, t3 = 0, t4 = 0, t5 = 0;
};
Seed000Tree make_seed000_tree(ProcTree& tree);

struct NsMembers {
  pid_t init = 0;   // pid 1 of the namespace
  pid_t extra = 0;  // a child of `init`, a non-init member
};
// test ns -> ns1, ns2 (siblings); ns2 -> ns3; ns3 -> ns4, ns5 (siblings).
// `root` is an agent in the test's pid ns that created ns1 and ns2.
struct Hierarchy5 {
  pid_t root = 0;
  NsMembers ns1, ns2, ns3, ns4, ns5;
  const NsMembers& ns(int i) const;  // 1..5
};
Hierarchy5 make_ns_hierarchy5(ProcTree& tree);

// `depth` pid namespaces nested in each other below `parent` (0 = the test process);
// element i is the init agent of level i+1. Throws KernelError (ENOSPC) past the kernel's
// 32 levels (MAX_PID_NS_LEVEL).
std::vector<pid_t> make_chain(ProcTree& tree, int depth, pid_t parent = 0);
// How many more pid namespaces can nest below the test process (32 - its own level).
int max_extra_pid_ns_levels();

// ---------------------------------------------------------------------------------------
// Namespaces kept alive without any process in them.

enum class HoldKind {
  Fd,         // an agent in another namespace holds an fd to it: /proc/<holder_pid>/fd/<holder_fd>
  BindMount,  // bind-mounted in the test's mount ns: mount_path
  ParentOnly, // only the parent of a live namespace (pid/user): NS_GET_PARENT on the child
  OwnerOnly,  // only the owning user ns of a live namespace: NS_GET_USERNS on the child
};

struct HeldNs {
  HoldKind kind = HoldKind::Fd;
  std::string type;         // "net", "pid", "user"
  ino_t inode = 0;          // the held namespace
  pid_t holder_pid = 0;     // Fd: the agent holding it. Parent/OwnerOnly: the process (or
                            // fd holder) keeping the child alive
  int holder_fd = -1;       // fd number in holder_pid, or -1 (then the child is reached via
                            // /proc/<holder_pid>/ns/<child_type>)
  std::string mount_path;   // BindMount
  ino_t child_inode = 0;    // Parent/OwnerOnly: the live namespace
  std::string child_type;   // Parent/OwnerOnly: its type
};

// A net ns whose only process exited, held by an fd in an agent of the test's net ns.
HeldNs hold_ns_by_fd(ProcTree& tree);
// A net ns whose only process exited, held by a bind mount (ProcTree::bind_mount_ns).
HeldNs hold_ns_by_bind_mount(ProcTree& tree);
// User ns U1 whose only process unshared U2 (parent U1): U1 is held only as U2's parent.
HeldNs hide_user_ns_ancestor(ProcTree& tree);
// Pid ns ns1 whose processes all died while a nested pid ns ns2 is held by an fd in an
// agent outside ns1: ns1 is held only as ns2's parent.
HeldNs hide_pid_ns_ancestor(ProcTree& tree);
// User ns U whose only process exited while a net ns it owns is held by an fd in an agent
// outside U: U is held only as the net ns's owner.
HeldNs hide_user_ns_owner(ProcTree& tree);
// Opens the held namespace through its holder (fd / mount / NS_GET_PARENT / NS_GET_USERNS).
UniqueFd open_held_ns(const HeldNs& held);

// ---------------------------------------------------------------------------------------
// Oracles: naive, straight from the kernel, independent of lib/.

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
