// util-linux lsns as an outside oracle, standing aside where a hostile process elsewhere on the host
// makes it fail: the test's own reading of /proc then takes its place, with a warning.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace pidns::testing {

// `lsns -J` with every column the tests compare (NS, TYPE, NPROCS, PID, PNS, ONS): an object
// {"namespaces": [{"ns", "type", "nprocs", "pid", "pns", "ons"}...]}. util-linux 2.38's lsns exits
// 1 with no output while any process on the host has a newline in its comm, which any user can
// arrange (prctl PR_SET_NAME). When lsns fails (a non-zero exit, or output that is not its JSON)
// this WARNs with its exit status and message and returns own_lsns_listing() instead.
nlohmann::json lsns_listing();

// What lsns lists, read by the test from /proc without anything a user writes (no comm, no
// cmdline): for each process, its /proc/PID/ns/{cgroup,ipc,mnt,net,pid,time,user,uts} links;
// per namespace the number of processes, the lowest pid, and through the nsfs ioctls the inode
// of its parent (NS_GET_PARENT, pid and user namespaces) and owning user namespace
// (NS_GET_USERNS), 0 where there is none or it may not be opened.
nlohmann::json own_lsns_listing();

}  // namespace pidns::testing
