// Real process and namespace trees built with the kernel, for the tests (tests/support/nstree/, one job a file):
#pragma once

#include "nstree/errors.h"          // what it throws, the fds it hands out
#include "nstree/held_ns.h"         // namespaces kept alive without processes
#include "nstree/kernel_oracles.h"  // naive answers straight from the kernel, independent of lib/
#include "nstree/proc_tree.h"       // agents: processes the test commands (clone3, unshare, setns, fds, threads)
#include "nstree/seed_trees.h"      // ready-made trees of agents
// (nstree/wire.h and agent.cpp: the protocol between ProcTree and its agents, and the agents' side.)
