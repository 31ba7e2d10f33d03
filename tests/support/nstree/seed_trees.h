// Ready-made trees of agents: the mailing list's seed tree, a five-namespace hierarchy, chains of nested pid namespaces.
#pragma once

#include <sys/types.h>

#include <vector>

#include "proc_tree.h"

namespace pidns::testing {

// All pids are host pids.

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

}  // namespace pidns::testing
