// The in-memory index of namespaces and processes: O(1) lookups, member lists, holder refcounts, translation.
#pragma once

#include <algorithm>
#include <array>
#include <iterator>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
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

struct Namespace;

// The namespaces a group of thread-group leaders share, interned: every process holds one
// pointer to its set instead of eight ids and eight member-list slots.
struct NsSet {
    std::array<NsId, kNsTypeCount> ns{};
    std::array<Namespace*, kNsTypeCount> nss{};      // the eight namespaces (nodes are stable)
    std::array<std::uint32_t, kNsTypeCount> pos{};   // its position in each namespace's member sets
    std::vector<std::int32_t> members;                // tgids, unordered
};

// The thread-group leaders holding a namespace, unordered: the members of every interned set
// that names it. A forward range; copy it into a vector to sort or index it.
class MemberList {
public:
    class iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = std::int32_t;
        using difference_type = std::ptrdiff_t;
        using pointer = const std::int32_t*;
        using reference = const std::int32_t&;
        iterator() = default;
        reference operator*() const noexcept { return (*set_)->members[i_]; }
        pointer operator->() const noexcept { return &**this; }
        iterator& operator++() noexcept {
            if (++i_ == (*set_)->members.size()) {
                ++set_;
                i_ = 0;
                skip_empty();
            }
            return *this;
        }
        iterator operator++(int) noexcept {
            auto old = *this;
            ++*this;
            return old;
        }
        bool operator==(const iterator& o) const noexcept { return set_ == o.set_ && i_ == o.i_; }

    private:
        friend class MemberList;
        iterator(NsSet* const* set, NsSet* const* end) noexcept : set_(set), end_(end) { skip_empty(); }
        void skip_empty() noexcept {
            while (set_ != end_ && (*set_)->members.empty()) ++set_;
        }
        NsSet* const* set_ = nullptr;
        NsSet* const* end_ = nullptr;
        std::size_t i_ = 0;
    };
    [[nodiscard]] iterator begin() const noexcept { return {sets_.data(), sets_.data() + sets_.size()}; }
    [[nodiscard]] iterator end() const noexcept { return {sets_.data() + sets_.size(), sets_.data() + sets_.size()}; }
    [[nodiscard]] std::size_t size() const noexcept { return count_; }
    [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
    // In iteration order.
    bool operator==(const std::vector<std::int32_t>& v) const noexcept {
        return count_ == v.size() && std::equal(v.begin(), v.end(), begin());
    }
    [[nodiscard]] std::vector<std::int32_t> to_vector() const { return {begin(), end()}; }
    [[nodiscard]] std::span<NsSet* const> sets() const noexcept { return sets_; }

private:
    friend class Index;
    std::vector<NsSet*> sets_;
    std::uint32_t count_ = 0;
};

// What ListNamespaces shows of a namespace's members when the caller may see them all, kept by
// the index (O(1); recomputed over the members only after the lowest or oldest one left).
struct MemberSummary {
    std::uint32_t count = 0;
    std::int32_t lowest = 0;         // lowest tgid in the observer's pid namespace (NStgid[0])
    std::int32_t oldest = 0;         // lowest (start time, tgid)
    std::uint64_t oldest_start = 0;
};

struct Namespace {
    NamespaceMeta meta;
    MemberList members;                 // thread-group leaders holding it, unordered
    std::uint32_t task_refs = 0;        // threads, pid_for_children, time_for_children
    std::uint32_t fd_refs = 0;
    std::uint32_t mount_refs = 0;
    std::uint32_t child_refs = 0;       // namespaces naming it as parent or owner
    // When its owner (the model) last confirmed with the kernel that this entry is still this
    // namespace (its own clock; 0: never). The kernel reuses an nsfs inode as soon as its
    // namespace is gone, across types: an inode alone is not an identity.
    std::uint32_t confirmed = 0;

    [[nodiscard]] std::uint8_t holders() const noexcept;
    [[nodiscard]] bool referenced() const noexcept {
        return !members.empty() || task_refs || fd_refs || mount_refs || child_refs;
    }

private:
    friend class Index;
    mutable MemberSummary summary_;
    mutable bool summary_valid_ = true;
};

// Four NS* chains (tgid, pid, pgid, sid) of equal length: inline up to depth 2 (the host and one
// level of containers), else in one allocation.
class PidChains {
public:
    PidChains() noexcept {}
    PidChains(std::span<const std::int32_t> tgid, std::span<const std::int32_t> pid,
              std::span<const std::int32_t> pgid, std::span<const std::int32_t> sid);
    PidChains(PidChains&& o) noexcept;
    PidChains& operator=(PidChains&& o) noexcept;
    PidChains(const PidChains&) = delete;
    PidChains& operator=(const PidChains&) = delete;
    ~PidChains();
    [[nodiscard]] std::size_t depth() const noexcept { return n_; }
    [[nodiscard]] std::span<const std::int32_t> nstgid() const noexcept { return {data(), n_}; }
    [[nodiscard]] std::span<const std::int32_t> nspid() const noexcept { return {data() + n_, n_}; }
    [[nodiscard]] std::span<const std::int32_t> nspgid() const noexcept { return {data() + 2 * n_, n_}; }
    [[nodiscard]] std::span<const std::int32_t> nssid() const noexcept { return {data() + 3 * n_, n_}; }
    [[nodiscard]] bool on_heap() const noexcept { return n_ > kInline; }

    static constexpr std::size_t kInline = 2;

private:
    [[nodiscard]] const std::int32_t* data() const noexcept { return n_ > kInline ? heap_ : inline_; }
    union {
        std::int32_t inline_[4 * kInline];
        std::int32_t* heap_;
    };
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

// A process's eight namespace ids (its interned set): p.ns[i], or a copy as an array. A process
// built outside an index (tests) may be given its own ids by assignment.
class NsIds {
public:
    NsIds() noexcept = default;
    NsIds(const NsIds&) = delete;
    NsIds& operator=(const NsIds&) = delete;
    NsIds(NsIds&& o) noexcept : p_(std::exchange(o.p_, 0)) {}
    NsIds& operator=(NsIds&& o) noexcept {
        if (this != &o) {
            release();
            p_ = std::exchange(o.p_, 0);
        }
        return *this;
    }
    NsIds& operator=(const std::array<NsId, kNsTypeCount>& ids) {
        auto* own = new NsSet;
        own->ns = ids;
        release();
        p_ = reinterpret_cast<std::uintptr_t>(own) | 1u;
        return *this;
    }
    ~NsIds() { release(); }

    NsId operator[](std::size_t i) const noexcept { return ids()[i]; }
    // For a process built outside an index (a const Process from the index never gets here):
    // its own ids, copied from what it had, to set one by one.
    NsId& operator[](std::size_t i) {
        if (!(p_ & 1u)) {
            auto* own = new NsSet;
            own->ns = ids();
            p_ = reinterpret_cast<std::uintptr_t>(own) | 1u;  // a linked set is the index's: not released
        }
        return reinterpret_cast<NsSet*>(p_ & ~std::uintptr_t{1})->ns[i];
    }
    operator const std::array<NsId, kNsTypeCount>&() const noexcept { return ids(); }
    [[nodiscard]] const std::array<NsId, kNsTypeCount>& ids() const noexcept {
        static constexpr std::array<NsId, kNsTypeCount> kNone{};
        const NsSet* s = set();
        return s ? s->ns : kNone;
    }
    [[nodiscard]] const NsSet* set() const noexcept { return reinterpret_cast<const NsSet*>(p_ & ~std::uintptr_t{1}); }
    bool operator==(const NsIds& o) const noexcept { return ids() == o.ids(); }
    bool operator==(const std::array<NsId, kNsTypeCount>& o) const noexcept { return ids() == o; }

private:
    friend class Index;
    NsSet* linked() const noexcept { return reinterpret_cast<NsSet*>(p_); }
    void link(NsSet* s) noexcept {
        release();
        p_ = reinterpret_cast<std::uintptr_t>(s);
    }
    void release() noexcept {
        if (p_ & 1u) delete reinterpret_cast<NsSet*>(p_ & ~std::uintptr_t{1});
        p_ = 0;
    }
    std::uintptr_t p_ = 0;  // the interned set; low bit: owned (outside an index)
};

// A process's open namespace fds, (fd number, namespace), in one allocation (a count, then the
// pairs): 32 bytes for one fd where a pointer to a vector took 64. Null when none.
class NsFdList {
public:
    using Entry = std::pair<std::int32_t, NsId>;
    NsFdList() noexcept = default;
    explicit NsFdList(std::span<const Entry> fds);
    NsFdList(NsFdList&& o) noexcept : block_(std::exchange(o.block_, nullptr)) {}
    NsFdList& operator=(NsFdList&& o) noexcept {
        if (this != &o) {
            reset();
            block_ = std::exchange(o.block_, nullptr);
        }
        return *this;
    }
    NsFdList(const NsFdList&) = delete;
    NsFdList& operator=(const NsFdList&) = delete;
    ~NsFdList() { reset(); }
    explicit operator bool() const noexcept { return block_ != nullptr; }
    // The entries (iterate `*p.ns_fds`).
    std::span<const Entry> operator*() const noexcept {
        if (!block_) return {};
        return {reinterpret_cast<const Entry*>(block_ + kHeader), *reinterpret_cast<const std::size_t*>(block_)};
    }
    [[nodiscard]] std::size_t heap_bytes() const noexcept { return block_ ? kHeader + (**this).size() * sizeof(Entry) : 0; }

private:
    static constexpr std::size_t kHeader = alignof(Entry) > sizeof(std::size_t) ? alignof(Entry) : sizeof(std::size_t);
    void reset() noexcept;
    std::byte* block_ = nullptr;
};

struct Process {
    std::int32_t tgid = 0;
    std::int32_t ppid = 0;
    std::array<std::uint32_t, 4> uid{};
    std::array<std::uint32_t, 4> gid{};
    std::uint64_t cap_prm = 0;
    std::uint64_t cap_eff = 0;
    std::uint64_t start_time = 0;
    NsIds ns;                    // its interned namespace set
    std::int32_t ns_tid = 0;     // as ProcessData::ns_tid: the live thread of a zombie leader, or 0
    std::uint32_t slot = 0;      // position in its set's member list
    bool dumpable = true;
    // steady_clock ns when a request read its credentials fresh (Model::refresh_credentials),
    // taken before the read; 0: not since it was indexed.
    std::int64_t creds_read_ns = 0;
    NsId pid_for_children = 0;
    NsId time_for_children = 0;
    PidChains chains;
    std::unique_ptr<std::vector<ThreadRecord>> threads;     // null when single-threaded
    NsFdList ns_fds;                                        // null when none

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

// (pid namespace, nr) -> host tid: open addressing with linear probing and backward-shift
// deletion, 16 bytes a slot, at most 4/5 full (namespace id 0 marks an empty slot).
class PidMap {
public:
    [[nodiscard]] const std::int32_t* find(NsId ns, std::int32_t nr) const noexcept;
    void set(NsId ns, std::int32_t nr, std::int32_t tid);
    // Removes the entry if it maps to `tid`.
    void erase_if(NsId ns, std::int32_t nr, std::int32_t tid) noexcept;
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return slots_.size(); }
    [[nodiscard]] std::size_t heap_bytes() const noexcept { return slots_.capacity() * sizeof(Slot); }

private:
    struct Slot {
        NsId ns = 0;
        std::int32_t nr = 0;
        std::int32_t tid = 0;
    };
    [[nodiscard]] std::size_t home(NsId ns, std::int32_t nr) const noexcept;
    void rehash(std::size_t capacity);
    std::vector<Slot> slots_;
    std::size_t size_ = 0;
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
    // Adds or replaces a process; every namespace it names must be present, and of the type of
    // the slot it is named in (Errc::invalid_argument).
    Status upsert_process(ProcessData&& p);
    // Replaces a process's credentials in place (no structural change). False if unknown.
    bool update_credentials(std::int32_t tgid, const std::array<std::uint32_t, 4>& uid,
                            const std::array<std::uint32_t, 4>& gid, std::uint64_t cap_prm, std::uint64_t cap_eff,
                            bool dumpable, std::int64_t read_ns = 0);
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
    // Removes namespace `id`, found not to be what the index holds under it (the kernel gave its
    // inode to another namespace, so it is gone), with every namespace below it by parent or
    // owner (gone too: a namespace keeps its parent and owner alive) and every process holding
    // any of them (a member, a thread, pid/time_for_children, an fd): their records are stale,
    // their tgids appended to `stale` for the caller to read again. Their mount holds go with
    // them. False, and nothing changes, for an unknown id or one of the observer's own (alive).
    bool evict(NsId id, std::vector<std::int32_t>& stale);
    void set_confirmed(NsId id, std::uint32_t stamp) noexcept;

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

    // Count, lowest tgid and oldest member of a namespace, all members counted.
    [[nodiscard]] MemberSummary member_summary(const Namespace& ns) const;
    [[nodiscard]] std::size_t set_count() const noexcept { return sets_.size(); }

    // Heap bytes the index's containers hold, from their sizes and capacities (glibc chunk
    // sizes: 16-byte granules, 8 bytes of header, 32 at least), by part.
    struct Memory {
        std::size_t processes = 0;   // process map: nodes and buckets
        std::size_t chains = 0;      // NS* chains deeper than the inline ones
        std::size_t threads = 0;     // thread records, their chains, the tid -> leader map; ns fds
        std::size_t sets = 0;        // interned namespace sets and their member lists
        std::size_t namespaces = 0;  // namespace map, member-set lists, inode map
        std::size_t pid_map = 0;     // (pid namespace, nr) -> host tid
        [[nodiscard]] std::size_t total() const noexcept {
            return processes + chains + threads + sets + namespaces + pid_map;
        }
    };
    [[nodiscard]] Memory memory() const;

private:
    struct InodeKey {
        std::uint64_t dev, inode;
        bool operator==(const InodeKey&) const = default;
    };
    struct InodeKeyHash {
        std::size_t operator()(const InodeKey& k) const noexcept;
    };

    void link_process(Process& p, const std::array<NsId, kNsTypeCount>& ids);
    void unlink_process(Process& p, std::vector<NsId>& released);
    bool detach_thread(std::int32_t tgid, std::int32_t tid, std::vector<NsId>& released);
    void index_task_pids(std::span<const std::int32_t> nspid, NsId pidns, std::int32_t host_tid, bool add);
    void ref(NsId id, std::uint32_t Namespace::*counter);
    void unref(NsId id, std::uint32_t Namespace::*counter);
    void maybe_drop(NsId id);
    [[nodiscard]] bool is_self(NsId id) const noexcept;
    // Removes the namespace (its inode, its parent's and owner's counts), whatever holds it.
    void erase_namespace(std::unordered_map<NsId, Namespace>::iterator it);
    Status check_present(NsId id, const char* what) const;
    // check_present, and a non-zero id must name a namespace of `type`: Errc::invalid_argument.
    Status check_typed(NsId id, NsType type, const char* what) const;

    struct NsSetHash {
        std::size_t operator()(const std::array<NsId, kNsTypeCount>& k) const noexcept;
    };

    std::unordered_map<NsId, Namespace> namespaces_;
    std::unordered_map<std::array<NsId, kNsTypeCount>, NsSet, NsSetHash> sets_;
    std::unordered_map<InodeKey, NsId, InodeKeyHash> by_inode_;
    std::unordered_map<std::int32_t, Process> processes_;
    struct ThreadRef {
        std::int32_t tgid;
        std::uint32_t pos;  // index in the leader's threads vector
    };
    std::unordered_map<std::int32_t, ThreadRef> thread_leader_;  // non-leader tid -> its leader
    PidMap by_nspid_;  // (pidns below root, nr) -> host tid
    std::vector<NsChange> changes_;
    std::array<NsId, kNsTypeCount> self_{};
};

}  // namespace pidns
