// Test support: recreates a DumpPidTree dump in fresh pid namespaces with clone3(set_tid) at every level (the restore proof).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

// Talks to the kernel only (nothing from lib/ or the bus): the dump comes in as plain entries,
// from the client library's answer or from `pidnsctl --json=short dump` (restore_entries_from_json).
namespace pidns::testing {

// One dump entry, as DumpPidTree documents it (rpid is not needed to restore).
struct RestoreEntry {
    std::uint32_t depth = 0;
    std::vector<std::uint32_t> vpids;  // in the dumped namespace first, the task's own last
    std::uint32_t vtgid = 0, vppid = 0, vpgid = 0, vsid = 0;
    std::uint64_t pidns = 0, pid_for_children = 0;
    std::uint32_t flags = 0;  // 1 thread, 2 zombie, 4 entered-from-outside, 8 unshared-pid
};

// The "tasks" of pidnsctl's JSON dump (or a bare array of entries).
std::vector<RestoreEntry> restore_entries_from_json(const std::string& json_text);

// Recreates the dumped subtree below the test process:
//  - a restorer process R (a child of the test process, in its pid namespace) clone3()s the
//    subtree's init with CLONE_NEWPID (set_tid {1});
//  - every task then creates its own part in dump order, as the kernel's rules require: first
//    setsid() when it leads a session, setpgid() for its process group (the group's leader is
//    created and set up first: each creation waits for the child's setup); then its threads
//    (clone3 CLONE_THREAD with set_tid); then its children in its own pid namespace
//    (clone3 set_tid = vpids reversed, for every level from its own up to the subtree's root);
//    then, if it unshared CLONE_NEWPID, unshare() and the children in that namespace (its init
//    first); else a child one level down is the init of a namespace made by clone3(CLONE_NEWPID);
//  - a zombie sets up its group and session and exits; its parent never reaps it;
//  - a task entered from outside (its parent outside the subtree) is created by R, which
//    setns()es into the task's pid namespace (found through a restored task in it), clone3()s it
//    with set_tid, and setns()es back.
// Shapes the kernel cannot rebuild this way (a group led by a task not visible in the member's pid
// namespace, a session not led by its own task, a child in a nested namespace its parent did not
// make, a thread of a task that had already unshared CLONE_NEWPID) throw std::runtime_error naming
// the task. Returns once every task exists; the destructor SIGKILLs the subtree's init (the kernel
// kills the rest) and R. x86-64 only (the thread clone3 needs a few lines of assembly).
class RestoredTree {
public:
    explicit RestoredTree(const std::vector<RestoreEntry>& dump,
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));
    ~RestoredTree();
    RestoredTree(const RestoredTree&) = delete;
    RestoredTree& operator=(const RestoredTree&) = delete;

    // Host pid of the restored subtree's init (its pid namespace is the restored root).
    [[nodiscard]] pid_t init_pid() const noexcept { return init_; }
    [[nodiscard]] pid_t restorer_pid() const noexcept { return restorer_; }

private:
    void* shared_ = nullptr;
    std::size_t shared_size_ = 0;
    pid_t restorer_ = -1;
    pid_t init_ = -1;
};

}  // namespace pidns::testing
