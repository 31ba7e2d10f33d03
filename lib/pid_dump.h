// DumpPidTree's model: every task of a pid namespace subtree with its pid at every level, read fresh from /proc.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "index.h"
#include "nsfs.h"
#include "read_ahead.h"
#include "result.h"

namespace pidns {

class Model;
class CallerView;

// DumpEntry::flags (the values are API: dbus/org.pidns.Manager1.xml documents them).
enum DumpFlag : std::uint32_t {
    kDumpThread = 1u,               // not its thread group's leader
    kDumpZombie = 2u,               // exited and not yet reaped (state Z or X)
    kDumpEnteredFromOutside = 4u,   // its parent is outside the subtree and it is not the subtree's init
    kDumpUnsharedPid = 8u,          // its pid_for_children is another namespace than its own pid namespace
};

// Most tasks (threads included) one dump may hold; beyond, Errc::too_large.
inline constexpr std::size_t kMaxDumpTasks = 65536;
// Rounds of re-reading a dump may take to reach a consistent picture of a running tree
// (every listed task's parent listed, or outside the subtree); beyond, Errc::unstable.
inline constexpr int kMaxDumpRounds = 16;

// One task as read from /proc. Chains as pidnsd's /proc prints them: pidnsd's pid namespace
// first, the task's own last; ppid is a thread-group id in pidnsd's pid namespace.
struct DumpTask {
    std::int32_t tid = 0;
    std::int32_t tgid = 0;
    std::int32_t ppid = 0;
    char state = 0;  // status "State:" letter
    std::uint32_t threads = 0;  // status "Threads:" (live tasks of its group; 0 when not shown)
    std::vector<std::int32_t> nspid, nstgid, nspgid, nssid;
    std::array<std::uint32_t, 4> uid{}, gid{};
    std::uint64_t cap_prm = 0, cap_eff = 0;
    NsId pidns = 0;             // 0: not known (yet)
    NsId pid_for_children = 0;  // 0: unreadable (a zombie; a namespace that has no init yet)
    // A leader's: the user namespace its credentials were in when read (the index's record of
    // it, or its ns/user link): what its access is decided on if it exits before that. 0: unknown.
    NsId userns = 0;
    [[nodiscard]] bool zombie() const noexcept { return state == 'Z' || state == 'X'; }
};

// One DumpPidTree entry (see the XML for each field).
struct DumpEntry {
    std::uint32_t rpid = 0;
    std::uint32_t depth = 0;
    std::vector<std::uint32_t> vpids;  // pid in the dumped namespace first, the task's own namespace last
    std::uint32_t vtgid = 0, vppid = 0, vpgid = 0, vsid = 0;
    NsId pidns = 0, pid_for_children = 0;
    std::uint32_t flags = 0;
    bool operator==(const DumpEntry&) const = default;
};

// The text of /proc/PID/status as a DumpTask (pidns and pid_for_children left 0). Errc::parse
// naming the field when one is missing or malformed (State too).
Result<DumpTask> parse_dump_status(std::string_view text);

// The pid namespace of a task whose own ns/pid link could not be read, from its parent's (read
// fresh): a child with as many levels as its parent is in its parent's pid namespace; one with
// one level more is in the namespace its parent's pid_for_children names (which the parent may
// have changed since the fork: the caller checks the answer's level). 0 when neither holds.
NsId pidns_from_parent(const DumpTask& task, const DumpTask& parent) noexcept;

// The entries of a consistent set of tasks of the subtree rooted at the pid namespace at
// `root_level` (levels as pidnsd's index counts them, its own namespace 0), in the order a
// restorer creates them: each task after its parent, a thread right after its leader, siblings
// by their pid in the subtree's root namespace. rpid is the pid at `caller_level`.
std::vector<DumpEntry> order_dump(const std::vector<DumpTask>& tasks, std::size_t root_level, std::size_t caller_level);

// The tasks whose parent is neither in `tasks` nor known to be outside the subtree: what a
// consistent dump must not hold. `outside(ppid)` says whether a thread-group id is known to be
// outside the subtree. The subtree's init (pid 1 at `root_level`, depth 0) has its parent
// outside by definition.
std::vector<std::int32_t> dangling_tasks(const std::vector<DumpTask>& tasks, std::size_t root_level,
                                         const std::function<bool(std::int32_t)>& outside);

// Reads the subtree of one pid namespace from /proc, in pieces (step), for DumpPidTree. The
// index only says where to look: the processes it holds in the namespace and below, and those
// /proc lists that it lacks (exited-unreaped processes and new ones); every task is then read
// fresh (status, its pid and pid_for_children links, its process's task list). A running tree is
// read until consistent: a task whose parent is missing is read again with its parent.
class PidTreeDump {
public:
    // `root`: a pid namespace in the model's index (resolved and checked by the caller).
    PidTreeDump(Model& model, NsId root);
    // Drops the namespaces it registered that nothing in the index holds (those of tasks not
    // indexed: exited, or made since): Model::collect.
    ~PidTreeDump();
    PidTreeDump(const PidTreeDump&) = delete;
    PidTreeDump& operator=(const PidTreeDump&) = delete;

    // Reads until done or `deadline`: true when done (then tasks() holds the consistent set).
    // Errc::too_large beyond kMaxDumpTasks, Errc::unstable beyond kMaxDumpRounds,
    // Errc::no_such_namespace if the namespace left the index before it was read.
    Result<bool> step(std::chrono::steady_clock::time_point deadline);

    // Whether the caller may inspect every task read (the kernel's rule through `view`, which
    // polkit may have widened): counts the tasks of the thread groups it may not inspect, until
    // `deadline`. nullopt: call again (with a new view of the same caller).
    std::optional<std::size_t> count_uninspectable(CallerView& view, std::chrono::steady_clock::time_point deadline);

    [[nodiscard]] const std::vector<DumpTask>& tasks() const noexcept { return tasks_; }
    [[nodiscard]] std::size_t root_level() const noexcept { return root_level_; }
    [[nodiscard]] int rounds() const noexcept { return rounds_; }
    [[nodiscard]] std::vector<DumpEntry> entries(std::size_t caller_level) const {
        return order_dump(tasks_, root_level_, caller_level);
    }

private:
    enum class Phase : std::uint8_t { start, read, check, done };
    // What the read-ahead read for a thread group's leader, taken by its first read_group.
    struct Prefetched {
        std::optional<Result<DumpTask>> leader;  // its status, parsed; none: gone, or not read
        std::uint64_t pid_for_children = 0;      // the link's inode, 0 if unreadable
    };
    // Reads thread group `tgid` (all its tasks) when its pid namespace is the root or below;
    // false when it is gone or outside. `indexed`: the index holds it in the subtree, so its pid
    // namespace may be settled later (resolve_pending) instead of read now. `pre`: its leader as
    // read ahead (used once), if it was.
    Result<bool> read_group(std::int32_t tgid, bool indexed = false, Prefetched* pre = nullptr);
    // The pid namespace of the groups read without it: a child with as many levels as its parent
    // is in its parent's namespace (a child's namespace is its parent's or below it), the others
    // read from their ns/pid link now. Groups found outside the subtree, or gone, are dropped.
    void resolve_pending();
    // The namespace of /proc/TGID/ns/pid, else of a live thread's; 0 when none can be read.
    NsId read_pidns(std::int32_t tgid, const DumpTask& leader);
    // The pid namespace behind /proc/<rel> (an ns link) of inode `inode`: the index's entry, taken
    // as is when `held` names it (the index's record of the task's group or of its parent) and
    // else confirmed with the kernel (Model::resolve_ns_link), or opened and registered. 0 when it
    // cannot be read.
    NsId resolve(const std::string& rel, std::uint64_t inode, std::span<const NsId> held = {},
                 NsType type = NsType::pid);
    // The ids the index's records of `tgid` (when it is the process read as `leader`) and of its
    // parent hold (Model::resolve_link's rule).
    std::vector<NsId> held_by(std::int32_t tgid, const DumpTask& leader) const;
    [[nodiscard]] bool in_subtree(NsId pidns) const;
    // One consistency round: re-reads what dangles; true when nothing did.
    Result<bool> check_round();
    void drop_group(std::int32_t tgid);
    // Whether a process /proc lists but the index lacks is known to be outside the subtree.
    [[nodiscard]] bool elsewhere(std::int32_t pid);
    // Starts reading the status (parsed) and ns/pid_for_children of the index's processes,
    // queue_[0, indexed_) (at most kMaxDumpTasks), on the model's helper thread when it is free,
    // from the last one down, while this
    // thread reads from the first one up, in slices (the kernel's /proc reads are nearly all of
    // a dump's time).
    void start_read_ahead();

    Model& model_;
    NsId root_;
    std::size_t root_level_ = 0;
    Phase phase_ = Phase::start;
    std::vector<std::int32_t> queue_;  // thread groups to read
    std::size_t indexed_ = 0;          // the first ones come from the index's namespaces
    std::unordered_set<std::uint64_t> subtree_inodes_;  // nsfs inodes of the subtree's pid namespaces
    std::size_t pos_ = 0;
    std::vector<Prefetched> pre_;     // queue_[0, pre_.size()) as read ahead; sized once
    std::optional<ReadAhead> ahead_;  // after pre_: stopped before pre_ goes
    std::unordered_set<std::int32_t> seen_;           // thread groups read (or found outside/gone)
    std::unordered_set<std::int32_t> outside_;        // thread groups read and found outside the subtree
    std::vector<DumpTask> tasks_;
    std::unordered_map<std::int32_t, std::size_t> by_tid_;  // tid -> tasks_ index
    int rounds_ = 0;
    std::size_t pending_ = 0;  // groups read without their pid namespace
    std::size_t access_pos_ = 0, uninspectable_ = 0;
    struct GroupInfo {
        std::size_t tasks = 0;
        bool live = false;  // one of its tasks is not a zombie
    };
    std::vector<std::int32_t> groups_;  // for count_uninspectable: the thread groups, in order
    std::unordered_map<std::int32_t, GroupInfo> group_info_;
};

}  // namespace pidns
