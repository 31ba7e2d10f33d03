// The in-memory index of namespaces and processes: O(1) lookups, member lists, holder refcounts, translation.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "ns_type.h"
#include "result.h"

namespace pidns {

using NsId = std::uint64_t;  // NS_GET_ID, or an id assigned by the library (>= 2^32)

// What keeps a namespace alive; a namespace with none of these but being the parent or
// owner of a live namespace is a "hidden ancestor".
enum HolderBit : std::uint8_t {
    kHeldByProcess = 1,    // a thread-group leader has it among its 8 namespaces
    kHeldByTask = 2,       // a non-leader thread has it (it setns()ed alone), or pid/time_for_children
    kHeldByFd = 4,         // an open fd refers to it
    kHeldByMount = 8,      // an nsfs bind mount refers to it
    kHeldAsAncestor = 16,  // it is the parent or owning user namespace of a namespace in the index
};
std::string holders_to_string(std::uint8_t holders);

// Metadata of a namespace, as resolved by discovery.
struct NamespaceMeta {
    NsId id = 0;
    NsType type = NsType::pid;
    std::uint64_t inode = 0;
    std::uint64_t dev = 0;
    NsId parent = 0;              // pid/user: parent namespace, 0 if none visible
    NsId owner = 0;               // owning user namespace (for a user ns: its parent), 0 if none visible
    std::uint32_t owner_uid = 0;  // creator uid of the owning user ns (user ns: its own), in our user ns
    std::uint32_t level = 0;      // pid/user: depth below the observer's namespace of that type
};

struct Namespace {
    NamespaceMeta meta;
    std::vector<std::int32_t> members;  // thread-group leaders holding it, unordered
    std::uint32_t task_refs = 0;        // threads, pid_for_children, time_for_children
    std::uint32_t fd_refs = 0;
    std::uint32_t mount_refs = 0;
    std::uint32_t child_refs = 0;       // namespaces naming it as parent or owner

    [[nodiscard]] std::uint8_t holders() const noexcept;
    [[nodiscard]] bool referenced() const noexcept {
        return !members.empty() || task_refs || fd_refs || mount_refs || child_refs;
    }
};

// Four NS* chains (tgid, pid, pgid, sid) of equal length, stored in one allocation.
class PidChains {
public:
    PidChains() = default;
    PidChains(std::span<const std::int32_t> tgid, std::span<const std::int32_t> pid,
              std::span<const std::int32_t> pgid, std::span<const std::int32_t> sid);
    PidChains(PidChains&&) noexcept = default;
    PidChains& operator=(PidChains&&) noexcept = default;
    [[nodiscard]] std::size_t depth() const noexcept { return n_; }
    [[nodiscard]] std::span<const std::int32_t> nstgid() const noexcept { return {data_.get(), n_}; }
    [[nodiscard]] std::span<const std::int32_t> nspid() const noexcept { return {data_.get() + n_, n_}; }
    [[nodiscard]] std::span<const std::int32_t> nspgid() const noexcept { return {data_.get() + 2 * n_, n_}; }
    [[nodiscard]] std::span<const std::int32_t> nssid() const noexcept { return {data_.get() + 3 * n_, n_}; }

private:
    std::unique_ptr<std::int32_t[]> data_;
    std::uint8_t n_ = 0;
};

// A thread other than its group's leader.
struct ThreadRecord {
    std::int32_t tid = 0;
    std::vector<std::int32_t> nspid;
    std::vector<std::pair<NsType, NsId>> ns_overrides;  // namespaces where it differs from its leader
};

// Input to Index::upsert_process: a process with its namespaces resolved to ids.
struct ProcessData {
    std::int32_t tgid = 0;
    std::int32_t ppid = 0;
    std::array<std::uint32_t, 4> uid{};  // real, effective, saved, fs
    std::array<std::uint32_t, 4> gid{};
    std::uint64_t cap_prm = 0;
    std::uint64_t cap_eff = 0;
    std::uint64_t start_time = 0;
    bool dumpable = true;
    // 0: the leader is alive. Otherwise the leader exited (pthread_exit() in main) while threads
    // live on, and ns, credentials, dumpability, *_for_children and fds were read through this
    // live thread's /proc/TGID/task/TID; the chains and start time stay the leader's.
    std::int32_t ns_tid = 0;
    std::array<NsId, kNsTypeCount> ns{};
    NsId pid_for_children = 0;   // 0 when equal to ns[pid] or unknown
    NsId time_for_children = 0;  // 0 when equal to ns[time] or unknown
    std::vector<std::int32_t> nstgid, nspid, nspgid, nssid;
    std::vector<ThreadRecord> threads;
    std::vector<std::pair<std::int32_t, NsId>> ns_fds;  // (fd number, namespace)
};

struct Process {
    std::int32_t tgid = 0;
    std::int32_t ppid = 0;
    std::array<std::uint32_t, 4> uid{};
    std::array<std::uint32_t, 4> gid{};
    std::uint64_t cap_prm = 0;
    std::uint64_t cap_eff = 0;
    std::uint64_t start_time = 0;
    bool dumpable = true;
    std::int32_t ns_tid = 0;  // as ProcessData::ns_tid: the live thread of a zombie leader, or 0
    std::array<NsId, kNsTypeCount> ns{};
    std::array<std::uint32_t, kNsTypeCount> slot{};  // position in each namespace's member list
    NsId pid_for_children = 0;
    NsId time_for_children = 0;
    PidChains chains;
    std::unique_ptr<std::vector<ThreadRecord>> threads;     // null when single-threaded
    std::unique_ptr<std::vector<std::pair<std::int32_t, NsId>>> ns_fds;  // null when none

    [[nodiscard]] NsId ns_of(NsType t) const noexcept { return ns[ns_type_index(t)]; }
};

// A task (leader or thread) found by host tid.
struct TaskView {
    const Process* process;                  // its thread group
    std::span<const std::int32_t> nspid;     // the task's own NSpid chain
    std::int32_t tid;
};

struct NsChange {
    NsId id;
    NsType type;
    bool added;  // false: removed
};

class Index {
public:
    Index() = default;
    Index(const Index&) = delete;
    Index& operator=(const Index&) = delete;
    Index(Index&&) noexcept = default;
    Index& operator=(Index&&) noexcept = default;

    // The observer's own namespaces, indexed by ns_type_index: its pid and user namespaces are
    // the roots (level 0) and none of the eight is ever dropped.
    void set_self(const std::array<NsId, kNsTypeCount>& self) noexcept { self_ = self; }
    [[nodiscard]] NsId self_ns(NsType t) const noexcept { return self_[ns_type_index(t)]; }
    [[nodiscard]] NsId root_pidns() const noexcept { return self_ns(NsType::pid); }
    [[nodiscard]] NsId root_userns() const noexcept { return self_ns(NsType::user); }

    // Registers a namespace; its parent and owner (when non-zero) must already be present.
    // A namespace nobody references is dropped by the next collect() or reference drop.
    Status add_namespace(const NamespaceMeta& meta);
    // Adds or replaces a process; every namespace it names must be present.
    Status upsert_process(ProcessData&& p);
    // Replaces a process's credentials in place (no structural change). False if unknown.
    bool update_credentials(std::int32_t tgid, const std::array<std::uint32_t, 4>& uid,
                            const std::array<std::uint32_t, 4>& gid, std::uint64_t cap_prm, std::uint64_t cap_eff,
                            bool dumpable);
    // Removes a process (exit). Returns false if unknown.
    bool remove_process(std::int32_t tgid);
    // Removes a single non-leader thread (thread exit).
    bool remove_thread(std::int32_t tgid, std::int32_t tid);
    // Adds or replaces one non-leader thread of an indexed process (thread fork): its NSpid chain
    // must be as deep as its leader's, its namespace overrides present.
    Status upsert_thread(std::int32_t tgid, ThreadRecord&& th);
    // Bind-mount holders are replaced wholesale (from mountinfo).
    Status set_mount_refs(const std::unordered_map<NsId, std::uint32_t>& refs);
    // Drops namespaces nothing references (cascading to parents/owners).
    void collect();

    [[nodiscard]] const Namespace* find_namespace(NsId id) const;
    [[nodiscard]] std::optional<NsId> find_by_inode(std::uint64_t dev, std::uint64_t inode) const;
    [[nodiscard]] const Process* find_process(std::int32_t tgid) const;
    [[nodiscard]] std::optional<TaskView> find_task(std::int32_t host_tid) const;
    // The task whose pid is `nr` in pid namespace `pidns` (host tid), if indexed.
    [[nodiscard]] std::optional<std::int32_t> host_tid(NsId pidns, std::int32_t nr) const;

    // translate: the pid of the task `nr` (of pid namespace `from`) in pid namespace `to`;
    // 0 if it has none there; Errc::not_found if the index has no such task;
    // Errc::no_such_namespace / not_pid_namespace for bad namespace ids.
    [[nodiscard]] Result<std::int32_t> translate(std::int32_t nr, NsId from, NsId to) const;
    // Pid of a task (by host tid) in pid namespace `to`, 0 if none.
    [[nodiscard]] std::int32_t pid_in(const TaskView& t, NsId to) const;
    // Whether pid namespace `ns` is `ancestor` or below it.
    [[nodiscard]] bool pidns_is_descendant(NsId ns, NsId ancestor) const;

    [[nodiscard]] std::size_t namespace_count() const noexcept { return namespaces_.size(); }
    [[nodiscard]] std::size_t process_count() const noexcept { return processes_.size(); }
    [[nodiscard]] const std::unordered_map<NsId, Namespace>& namespaces() const noexcept { return namespaces_; }
    [[nodiscard]] const std::unordered_map<std::int32_t, Process>& processes() const noexcept { return processes_; }

    // Namespaces added and removed since the last call, in order.
    std::vector<NsChange> take_changes();

private:
    struct PidKey {
        NsId ns;
        std::int32_t nr;
        bool operator==(const PidKey&) const = default;
    };
    struct PidKeyHash {
        std::size_t operator()(const PidKey& k) const noexcept;
    };
    struct InodeKey {
        std::uint64_t dev, inode;
        bool operator==(const InodeKey&) const = default;
    };
    struct InodeKeyHash {
        std::size_t operator()(const InodeKey& k) const noexcept;
    };

    void link_process(Process& p);
    void unlink_process(Process& p, std::vector<NsId>& released);
    bool detach_thread(std::int32_t tgid, std::int32_t tid, std::vector<NsId>& released);
    void index_task_pids(std::span<const std::int32_t> nspid, NsId pidns, std::int32_t host_tid, bool add);
    void ref(NsId id, std::uint32_t Namespace::*counter);
    void unref(NsId id, std::uint32_t Namespace::*counter);
    void maybe_drop(NsId id);
    Status check_present(NsId id, const char* what) const;

    std::unordered_map<NsId, Namespace> namespaces_;
    std::unordered_map<InodeKey, NsId, InodeKeyHash> by_inode_;
    std::unordered_map<std::int32_t, Process> processes_;
    struct ThreadRef {
        std::int32_t tgid;
        std::uint32_t pos;  // index in the leader's threads vector
    };
    std::unordered_map<std::int32_t, ThreadRef> thread_leader_;  // non-leader tid -> its leader
    std::unordered_map<PidKey, std::int32_t, PidKeyHash> by_nspid_;  // (pidns below root, nr) -> host tid
    std::vector<NsChange> changes_;
    std::array<NsId, kNsTypeCount> self_{};
};

}  // namespace pidns
