// Namespaces kept alive without processes, made with agents and checked against the kernel's inode.
#include "held_ns.h"

#include <sched.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <stdexcept>
#include <utility>

#include "kernel_oracles.h"
#include "wire.h"

namespace pidns::testing {

using detail::pid_str;
using detail::throw_errno;

namespace {

std::string fd_path(pid_t pid, int fd) { return "/proc/" + pid_str(pid) + "/fd/" + std::to_string(fd); }

// `h` once its namespace, opened through its holder, is the one it names (else HarnessError).
HeldNs checked(HeldNs h, const std::string& what) {
  const ino_t got = oracle_fd_inode(open_held_ns(h).get());
  if (got != h.inode)
    throw HarnessError("pidns::testing: " + what + ": inode " + std::to_string(got) + ", expected " +
                       std::to_string(h.inode));
  return h;
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
  return checked(std::move(h), "hold_ns_by_fd");
}

HeldNs hold_ns_by_bind_mount(ProcTree& tree) {
  HeldNs h;
  h.kind = HoldKind::BindMount;
  h.type = "net";
  pid_t x = tree.spawn(0, CLONE_NEWNET);
  h.inode = oracle_ns_inode(x, "net");
  h.mount_path = tree.bind_mount_ns(x, "net");
  tree.exit_agent(x);
  return checked(std::move(h), "hold_ns_by_bind_mount");
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
  return checked(std::move(h), "hide_user_ns_ancestor (NS_GET_PARENT)");
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
  return checked(std::move(h), "hide_pid_ns_ancestor (NS_GET_PARENT)");
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
  return checked(std::move(h), "hide_user_ns_owner (NS_GET_USERNS)");
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

}  // namespace pidns::testing
