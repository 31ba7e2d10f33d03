// The model: discovers namespaces and processes from /proc and nsfs into an Index and keeps it current.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "index.h"
#include "kernel_version.h"
#include "nsfs.h"
#include "nsfs_fd_iter.h"
#include "proc_reader.h"
#include "read_ahead.h"
#include "result.h"
#include "safe_open.h"

namespace pidns {

// Which sources discovery reads. Each can be switched off.
struct DiscoveryOptions {
    bool processes = true;    // /proc/PID/ns/* of every thread-group leader
    bool tasks = true;        // /proc/PID/task/TID/ns/*: threads that setns()ed alone
    bool fds = true;          // /proc/PID/fd/*: open namespace fds
    // A rescan finds the namespace fds with a BPF task_file iterator (nsfs_fd_iter.h) when it
    // loads, reading /proc only for the fds it names; else (or false) it lists every /proc/PID/fd.
    bool fds_by_bpf = true;
    bool bind_mounts = true;  // nsfs entries of /proc/PID/mountinfo, one reader per mount namespace
    bool ancestors = true;    // parents and owners that nothing else holds
    bool kernel_ids = true;   // NS_GET_ID where the kernel has it; false: library-assigned ids, as on older kernels
    // How long verify_process takes an entry's identity, once confirmed with the kernel, as
    // settled before it confirms it again through one of the process's links.
    std::chrono::seconds confirm_interval{10};
    // Use only the kernel interfaces this version has (kernel_version.h), as on such a kernel;
    // unset: whatever the running kernel has (probed).
    std::optional<KernelVersion> assume_kernel;
    std::string proc_root = "/proc";
};

struct RescanReport {
    std::vector<NsChange> changes;  // namespaces added/removed compared with the index before
    std::size_t processes = 0;
    std::size_t namespaces = 0;
    std::size_t unreadable = 0;     // processes skipped because their /proc entries could not be parsed
    std::chrono::microseconds duration{0};  // reading /proc and building the index
    std::chrono::microseconds build{0};     // building the index alone (rescan_from)
};

// Every process of /proc read without touching the model (see Model::read_snapshot).
struct ProcSnapshot {
    std::vector<std::int32_t> pids;
    std::vector<std::optional<Result<RawProcess>>> raws;  // one per pid
    std::chrono::steady_clock::time_point started;
    bool fd_pass_failed = false;  // the BPF fd pass failed: every /proc/PID/fd was listed instead
};

// The steady clock in ns (credential freshness stamps).
inline std::int64_t steady_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// What the translations of one request share (its owner keeps it between the request's slices):
// namespace fds opened for the kernel's check, whether it has had its /proc listing, and when it
// was received.
struct TranslateScratch {
    NsId from = 0;
    Fd from_fd;
    NsId to = 0;
    Fd to_fd;
    bool listed = false;  // the one /proc listing a request may cause
    std::size_t misses = 0;  // with the pid ioctls: index misses the kernel was asked about
    bool whole = false;      // with the pid ioctls: the index is whole for this request (a miss is final)
    std::unordered_set<std::int32_t> read;  // processes read because of a miss in this request
    // When the request was received (steady_clock ns): credentials read fresh after it are fresh
    // for it (CallerView::decide).
    std::int64_t begun_ns = steady_ns();
};

class Model {
public:
    // Opens /proc and registers the observer's own namespaces; does not scan.
    static Result<std::unique_ptr<Model>> create(const DiscoveryOptions& opts = {});
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    // Full scan into a fresh index, replacing the current one; reports what changed.
    // Equivalent to rescan_from(read_snapshot()).
    Result<RescanReport> rescan();
    // The expensive half of a rescan: reads every process listed in /proc (up to 4 threads).
    // Reads only the /proc fd and the options, so it may run on another thread while this
    // model keeps being used and changed; the model must outlive the call.
    [[nodiscard]] Result<ProcSnapshot> read_snapshot() const;
    // The other half: builds a fresh index from the snapshot and replaces the current one.
    // Processes that changed after they were read are not seen: the owner replays the events
    // received meanwhile afterwards.
    Result<RescanReport> rescan_from(ProcSnapshot&& snapshot);
    // Reads one new non-leader thread (thread fork) into its process; reads the whole process
    // when it is not indexed yet. Errc::not_found if the thread is gone.
    Status add_thread(std::int32_t tgid, std::int32_t tid);
    // Compares the namespace links of an indexed process and its indexed threads with the index
    // (unshare/setns send no event) and re-reads the process when they differ. True when they
    // differed (counted in verify_mismatches()). Errc::not_found if it is gone (then removed).
    Result<bool> verify_process(std::int32_t tgid);
    [[nodiscard]] std::uint64_t verify_mismatches() const noexcept { return verify_mismatches_; }
    // Opens refused for safety (see nsfs.h): the object was not an nsfs file (a FIFO, device,
    // socket, symlink...), reaching it took a symlink, or a mount path's walk was abandoned at its
    // deadline or skipped because an earlier one still hangs (MountPathOpener). The namespace is then
    // simply not reached that way: never an error of a scan.
    [[nodiscard]] std::uint64_t unsafe_paths_skipped() const noexcept { return unsafe_paths_skipped_; }
    // Mount path walks abandoned at MountPathOpener::kDeadline (a filesystem that never answered).
    [[nodiscard]] std::uint64_t mount_walks_abandoned() const noexcept { return mount_opener_.abandoned(); }
    // Mount namespaces whose mountinfo showed nsfs bind mounts at the last read, with the pid
    // their mountinfo was read through (a thread's tid when that process's leader exited).
    [[nodiscard]] std::vector<std::pair<NsId, std::int32_t>> nsfs_mount_namespaces() const;
    // Reads (or re-reads) one thread-group leader: fork and exec. A vanished process is
    // removed and gives Errc::not_found. A leader that exited while threads live on is read
    // through a live thread (Process::ns_tid).
    Status add_process(std::int32_t tgid);
    // Exit of a task: removes the thread when tid != tgid, the process when tid == tgid. But a
    // process lives while one of its threads does: a leader's exit while other threads live
    // (pthread_exit() in main; one listing of /proc/TGID/task tells) re-reads the process
    // through them instead, and so does the exit of the live thread it was read through; the
    // exit of its last thread removes it. True when it re-read the process.
    bool remove_task(std::int32_t tid, std::int32_t tgid);
    // Re-reads a process's credentials and dumpability into the index, in place: they change
    // without events. Errc::not_found if it is gone, or its pid now names another process (the
    // entry is then left for the exit event or the next rescan to remove); Errc::moved if it is in
    // another user namespace than the index shows (queued for reread_stale).
    Status refresh_credentials(std::int32_t tgid);
    // Processes refresh_credentials found in another user namespace than the index shows:
    // re-read them (call where no one walks the index). Returns how many.
    std::size_t reread_stale();
    [[nodiscard]] bool has_stale() const noexcept { return !stale_.empty(); }
    // Re-reads the nsfs bind mounts of every known mount namespace.
    Status refresh_mounts();
    // The nsfs bind mounts holding namespace `id` as last read: (a pid in the mount namespace
    // they are in, the mount point there).
    [[nodiscard]] std::vector<std::pair<std::int32_t, std::string>> mounts_of(NsId id) const;

    // Index translation; on a miss the kernel is asked before answering not-found, and the
    // task is then added to the index. Without the pid ioctls the kernel's answer is a /proc
    // listing, at most one per request (`scratch`), that reads the processes the index lacks;
    // those it could not index are not read again while their start time stays the same.
    Result<std::int32_t> translate(std::int32_t nr, NsId from, NsId to, TranslateScratch* scratch = nullptr);
    // Whether translate() of a pid the index lacks would answer not-found without a look at the
    // kernel, as `s` stands (its listing made, or the index whole for the request); false when it
    // has yet to decide (then ask translate(): it counts the miss, lists or asks the kernel). For
    // a batch's absent pids, which cost translate() an error each.
    [[nodiscard]] bool miss_known_final(std::int32_t nr, NsId from, const TranslateScratch& s) const;
    // The listing's negative cache. `current` says that no process event waits unread and none
    // was lost since the index was last made whole (the daemon asks its proc connector); without
    // it (polling) every miss lists. Applying events (note_events) ends the cache.
    void set_event_check(std::function<bool()> current) { current_ = std::move(current); }
    void note_events() noexcept { listing_current_ = false; }
    [[nodiscard]] std::uint64_t proc_listings() const noexcept { return listings_; }
    [[nodiscard]] std::uint64_t proc_listings_skipped() const noexcept { return listings_skipped_; }
    // With the pid ioctls: misses asked of the kernel (NS_GET_PID_FROM_PIDNS), one per pid.
    [[nodiscard]] std::uint64_t kernel_pid_lookups() const noexcept { return kernel_lookups_; }
    // Open fds looked at per process outside a full rescan (their namespace fds beyond are seen
    // by the next rescan); fd_scans_truncated() counts the reads it cut short.
    static constexpr std::size_t kMaxInlineFds = 4096;
    [[nodiscard]] std::uint64_t fd_scans_truncated() const noexcept { return fd_scans_truncated_; }
    // Whether a rescan finds namespace fds with the BPF pass (DiscoveryOptions::fds_by_bpf, and
    // the iterator loaded), else by listing every /proc/PID/fd; fd_source_reason() says why not
    // BPF (empty when it is). fd_pass_failures() counts rescans whose BPF pass failed and that
    // listed /proc instead.
    [[nodiscard]] bool fd_pass_in_use() const noexcept { return fd_iter_ != nullptr; }
    [[nodiscard]] const std::string& fd_source_reason() const noexcept { return fd_source_reason_; }
    [[nodiscard]] std::uint64_t fd_pass_failures() const noexcept { return fd_pass_failures_; }
    // Whether the BPF fd pass can be started now, with the calling thread's capabilities.
    [[nodiscard]] bool fd_pass_startable() const { return fd_iter_ && fd_iter_->startable(); }

    // An fd for a namespace in the index, opened through whatever holds it and checked to be it
    // (same_namespace). A holder found to reach another namespace with its inode shows the
    // entry is gone: it is dropped (Errc::no_such_namespace).
    Result<Fd> open_namespace(NsId id);
    // The namespace behind `fd`: the index's entry for it, checked to be it (same_namespace; an
    // entry found to be another namespace is dropped), else registered (with its parent/owner
    // chain). Returns its id.
    Result<NsId> resolve_fd(int fd);
    // The namespace behind the nsfs link /proc/<rel> ("PID/ns/pid", "PID/task/TID/ns/user") seen
    // as (type, inode): the index's entry when its identity is confirmed by the kernel (an entry
    // of another type or found to be another namespace is dropped), else opened and registered.
    // For callers outside the model's own reads (DumpPidTree). Errc::changed when it changed while read (opening it may give Errc::not_found).
    Result<NsId> resolve_ns_link(const std::string& rel, NsType type, std::uint64_t inode);
    // Checks with the kernel, through the process's own links, that the index's pid and user
    // namespaces of `tgid` are still what it names (what access decisions about and by it rest
    // on); an entry found to be another namespace is dropped and the process read again.
    // Errc::not_found when the process is gone.
    Status confirm_process(std::int32_t tgid);
    // Entries the kernel showed to be gone (their inode given to another namespace, or of
    // another type than an nsfs link now names): dropped with what they held, counted here.
    [[nodiscard]] std::uint64_t stale_namespaces() const noexcept { return stale_namespaces_; }

    [[nodiscard]] const Index& index() const noexcept { return index_; }
    [[nodiscard]] NsId self_ns(NsType t) const noexcept { return self_[ns_type_index(t)]; }
    [[nodiscard]] const DiscoveryOptions& options() const noexcept { return opts_; }
    [[nodiscard]] const KernelFeatures& features() const noexcept { return features_; }
    // The open /proc directory every read goes through.
    [[nodiscard]] int proc_fd() const noexcept { return proc_.get(); }
    // Drops the namespaces nothing in the index holds: those registered for a lookup of a task the
    // index does not hold (resolve_fd, resolve_ns_link: DumpPidTree's exited or new tasks).
    void collect() { index_.collect(); }
    // Namespaces added/removed by incremental operations since the last call.
    std::vector<NsChange> take_changes() { return index_.take_changes(); }
    // The second thread that reads /proc ahead of the model's thread (DumpPidTree's ReadAhead):
    // started at its first use, asleep when nothing is read ahead.
    [[nodiscard]] HelperThread& helper_thread() noexcept { return helper_thread_; }

private:
    Model(const DiscoveryOptions& opts, Fd proc);
    Status register_self();
    // An nsfs fd through the magic link /proc/<rel> ("PID/ns/net", "PID/fd/N", "self/ns/pid").
    Result<Fd> open_link(const std::string& rel);
    // An nsfs fd through a mount point of PID's mount namespace (MountPathOpener).
    Result<Fd> open_mount(std::int32_t pid, const std::string& mount_point);
    // open_namespace without its drop: `gone` set when a holder reached another namespace with
    // its inode.
    Result<Fd> open_namespace_at(NsId id, bool& gone);
    // resolve_fd within a public call (no settle()).
    Result<NsId> resolve_fd_at(int fd);
    // Counts a refusal (Errc::access_denied) in unsafe_paths_skipped_.
    Result<Fd> counted(Result<Fd> fd);
    // Checks an opened namespace against the type and inode expected (0: any) and resolves it.
    Result<NsId> resolve_opened(Result<Fd> fd, NsType expect, std::uint64_t expect_inode);
    // The kind of a link below /proc: an nsfs link always reaches nsfs; an fd may be any file.
    enum class LinkKind : std::uint8_t { ns, fd };
    // The namespace behind /proc/PID/<rel> (an ns link, task link or fd) seen as (type, inode):
    // the index's entry for that inode when it is confirmed to be it, else opened, checked
    // against `inode` and registered. Confirmed without asking the kernel when rescanning (the
    // index is being built from this very read) or when `held` names it: namespaces the
    // process, or its parent, held already in the index (a fork inherits them, a re-read finds
    // them); otherwise asked (same_link). See pidnsd(8), IDENTITY.
    Result<NsId> resolve_link(std::int32_t pid, std::string_view rel, NsType type, std::uint64_t inode,
                              std::span<const NsId> held = {}, LinkKind kind = LinkKind::ns);

    // --- identity (model_identity.cpp) ---
    enum class Same : std::uint8_t {
        yes,      // it is that namespace
        moved,    // another inode or type: what was read changed since (not the entry's fault)
        other,    // the entry's inode, but another namespace: the entry's namespace is gone
        unknown,  // the kernel could not be asked (gone, refused)
    };
    // Whether the namespace open as `fd` is index entry `id`. With NS_GET_ID: its id. Without:
    // type, inode, owner uid (a user namespace) and, the same way up to one of the observer's own
    // namespaces, its parent and owner: a namespace may then be taken for a dead one only if
    // they are alike in all of these (pidnsd(8), IDENTITY).
    Same same_namespace(NsId id, int fd, int depth = 0);
    // The same for the nsfs file behind /proc/<rel>: an ns link by its nsfs file handle where the
    // kernel has them (one call, nothing opened), anything else opened.
    Same same_link(NsId id, const std::string& rel, LinkKind kind);
    // The entry of the namespace seen as (type, inode), not yet confirmed: nullopt on a miss. An
    // entry of another type is gone (the inode is the other type's now): dropped.
    std::optional<NsId> lookup(NsType type, std::uint64_t inode);
    // Drops `id` (Index::evict) and queues the processes it held for a re-read (settle()).
    void evict(NsId id);
    void confirmed(NsId id);
    [[nodiscard]] std::uint32_t stamp() const;  // the confirmation clock: seconds since create(), from 1
    // The ids process `p` holds (its set, *_for_children, threads' and fds'), for resolve_link.
    static void add_held(const Process& p, std::vector<NsId>& out);
    // Confirms the entries `p` holds that were not confirmed for confirm_interval, through its
    // links; false when one was found gone (dropped; its holders are queued for a re-read).
    bool confirm_held(const Process& p);
    // Re-reads the processes evictions left stale (the outermost public call does, at its end).
    void settle();
    class Busy;
    // Reads made on the caller's thread (events, verify, calls) look at no more than
    // kMaxInlineFds fds of a process; read_snapshot (a rescan, on its own thread) reads them all.
    [[nodiscard]] ReadOptions read_options(bool inline_read = true) const noexcept {
        return ReadOptions{opts_.tasks, opts_.fds, inline_read ? kMaxInlineFds : 0};
    }
    Result<ProcessData> to_process_data(std::int32_t pid, RawProcess& raw);
    // Reads (unless `first` holds a read already made) and stores one process.
    Status read_and_upsert(std::int32_t pid, std::optional<Result<RawProcess>> first = std::nullopt);
    Status scan_mounts();
    // Reads every process /proc lists that the index lacks (translation without the pid ioctls).
    void read_unindexed();
    // With the pid ioctls: whether a miss of the index needs no question to the kernel (the
    // negative cache), deciding once per request whether the index is whole for it.
    bool miss_is_final(std::int32_t nr, NsId from, TranslateScratch& s);
    static constexpr std::size_t kMissesBeforeListing = 256;
    // stat field 22 of /proc/PID; 0 when it is gone.
    [[nodiscard]] std::uint64_t start_time_of(std::int32_t pid) const;
    // Without NS_GET_ID: the id a namespace about to be registered gets, `meta` complete but for
    // it. A rescan carries an id over from the index it replaces for a namespace alike in inode,
    // type, parent, owner and owner uid (see same_namespace); else a new one.
    NsId assign_id(const NamespaceMeta& meta);
    std::uint32_t count_levels(int fd);

    DiscoveryOptions opts_;
    Fd proc_;
    KernelFeatures features_;
    Index index_;
    const Index* previous_ = nullptr;  // during rescan: the index being replaced (for assigned ids)
    std::array<NsId, kNsTypeCount> self_{};
    NsId next_assigned_ = NsId{1} << 32;
    // nsfs bind mounts: namespace -> (a pid in the mount namespace, mount point)
    std::unordered_map<NsId, std::vector<std::pair<std::int32_t, std::string>>> mounts_;
    std::unordered_map<NsId, std::int32_t> nsfs_mntns_;  // mount namespace -> reader pid
    std::uint64_t verify_mismatches_ = 0;
    std::function<bool()> current_;
    bool listing_current_ = false;
    std::uint64_t listings_ = 0, listings_skipped_ = 0, kernel_lookups_ = 0;
    static constexpr std::size_t kMaxStale = 4096;  // beyond: left to the verify pass
    std::vector<std::int32_t> stale_;
    MountPathOpener mount_opener_;
    std::uint64_t unsafe_paths_skipped_ = 0;
    std::unordered_map<std::int32_t, std::uint64_t> unindexable_;  // pid -> start time (read_unindexed)
    std::uint64_t fd_scans_truncated_ = 0;
    std::unique_ptr<NsfsFdIter> fd_iter_;  // immutable once made: read_snapshot may use it on its thread
    std::string fd_source_reason_;
    std::uint64_t fd_pass_failures_ = 0;
    HelperThread helper_thread_;
    std::chrono::steady_clock::time_point born_ = std::chrono::steady_clock::now();
    bool building_ = false;  // rescan_from is building a fresh index from one read of /proc
    int busy_ = 0;           // public calls in progress (Busy)
    std::vector<std::int32_t> stale_reads_;  // processes that held an evicted namespace
    std::uint64_t stale_namespaces_ = 0;
    // nsfs bind mounts read at the last scan: "mntns:mount id:inode:mount point" -> namespace.
    // A mount seen again holds what it held; a new one is confirmed through its path.
    std::unordered_map<std::string, NsId> mount_ids_;
};

// A public call of the model in progress: the outermost one re-reads, at its end, the processes
// its evictions left stale (settle()), so that no caller finds them missing afterwards.
class Model::Busy {
public:
    explicit Busy(Model& m) noexcept : m_(m) { ++m_.busy_; }
    ~Busy() {
        if (--m_.busy_ == 0 && !m_.stale_reads_.empty()) m_.settle();
    }
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;

private:
    Model& m_;
};

}  // namespace pidns
