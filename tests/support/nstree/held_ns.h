// Namespaces kept alive without any process in them: by an fd, a bind mount, only as a parent or only as an owner.
#pragma once

#include <sys/types.h>

#include <string>

#include "errors.h"
#include "proc_tree.h"

namespace pidns::testing {

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

}  // namespace pidns::testing
