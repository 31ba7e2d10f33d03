// Ready-made trees of agents: the seed tree, the five-namespace hierarchy, chains of nested pid namespaces.
#include "seed_trees.h"

#include <sched.h>
#include <unistd.h>

#include <stdexcept>

#include "kernel_oracles.h"

namespace pidns::testing {

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

}  // namespace pidns::testing
