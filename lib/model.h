// The model: discovers namespaces and processes from /proc and nsfs into an Index and keeps it current.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "index.h"
#include "kernel_version.h"
#include "nsfs.h"
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
    bool bind_mounts = true;  // nsfs entries of /proc/PID/mountinfo, one reader per mount namespace
    bool ancestors = true;    // parents and owners that nothing else holds
    bool kernel_ids = true;   // NS_GET_ID where the kernel has it; false: library-assigned ids, as on older kernels
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
};

// What the translations of one request share (its owner keeps it between the request's slices):
// namespace fds opened for the kernel's check, and whether it has had its /proc listing.
struct TranslateScratch {
    NsId from = 0;
    Fd from_fd;
    NsId to = 0;
    Fd to_fd;
    bool listed = false;  // without the pid ioctls: the one /proc listing a request may cause
    std::unordered_set<std::int32_t> read;  // processes read because of a miss in this request
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
    // entry is then left for the exit event or the next rescan to remove).
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
    // The listing's negative cache. `current` says that no process event waits unread and none
    // was lost since the index was last made whole (the daemon asks its proc connector); without
    // it (polling) every miss lists. Applying events (note_events) ends the cache.
    void set_event_check(std::function<bool()> current) { current_ = std::move(current); }
    void note_events() noexcept { listing_current_ = false; }
    [[nodiscard]] std::uint64_t proc_listings() const noexcept { return listings_; }
    [[nodiscard]] std::uint64_t proc_listings_skipped() const noexcept { return listings_skipped_; }
    // Open fds looked at per process outside a full rescan (their namespace fds beyond are seen
    // by the next rescan); fd_scans_truncated() counts the reads it cut short.
    static constexpr std::size_t kMaxInlineFds = 4096;
    [[nodiscard]] std::uint64_t fd_scans_truncated() const noexcept { return fd_scans_truncated_; }

    // An fd for a namespace in the index, opened through whatever holds it, verified by inode.
    Result<Fd> open_namespace(NsId id);
    // Registers the namespace behind `fd` (and its parent/owner chain); returns its id.
    Result<NsId> resolve_fd(int fd);

    [[nodiscard]] const Index& index() const noexcept { return index_; }
    [[nodiscard]] NsId self_ns(NsType t) const noexcept { return self_[ns_type_index(t)]; }
    [[nodiscard]] const DiscoveryOptions& options() const noexcept { return opts_; }
    [[nodiscard]] const KernelFeatures& features() const noexcept { return features_; }
    // The open /proc directory every read goes through.
    [[nodiscard]] int proc_fd() const noexcept { return proc_.get(); }
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
    // Counts a refusal (Errc::access_denied) in unsafe_paths_skipped_.
    Result<Fd> counted(Result<Fd> fd);
    // Checks an opened namespace against the type and inode expected (0: any) and resolves it.
    Result<NsId> resolve_opened(Result<Fd> fd, NsType expect, std::uint64_t expect_inode);
    // The namespace behind /proc/PID/<rel> (an ns link, task link or fd): from the index when
    // its inode is known, else opened, checked against `inode` and resolved.
    Result<NsId> resolve_link(std::int32_t pid, std::string_view rel, NsType type, std::uint64_t inode);
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
    // stat field 22 of /proc/PID; 0 when it is gone.
    [[nodiscard]] std::uint64_t start_time_of(std::int32_t pid) const;
    NsId assign_id(std::uint64_t dev, std::uint64_t inode);
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
    std::uint64_t listings_ = 0, listings_skipped_ = 0;
    static constexpr std::size_t kMaxStale = 4096;  // beyond: left to the verify pass
    std::vector<std::int32_t> stale_;
    MountPathOpener mount_opener_;
    std::uint64_t unsafe_paths_skipped_ = 0;
    std::unordered_map<std::int32_t, std::uint64_t> unindexable_;  // pid -> start time (read_unindexed)
    std::uint64_t fd_scans_truncated_ = 0;
    HelperThread helper_thread_;
};

}  // namespace pidns
