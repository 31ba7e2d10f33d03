// The v1 API's answers as one caller sees them: pids in its pid namespace, levels below its own
// namespaces, and only the namespaces and processes in its scope.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "access.h"
#include "caller.h"
#include "index.h"
#include "labels.h"
#include "result.h"

namespace pidns {

class Model;
struct TranslateScratch;

struct NamespaceEntry {
    NsId id = 0;
    std::uint64_t inode = 0;
    NsType type = NsType::pid;
    NsId parent = 0;              // 0: none, or not visible to the caller
    NsId owner = 0;               // 0: not visible to the caller
    std::uint32_t level = 0;      // pid/user: depth below the caller's own namespace of that type
    std::uint32_t init_pid = 0;   // pid ns: its init; others: lowest pid in it; caller's view; 0: none
    std::uint32_t nprocs = 0;     // thread-group leaders in it the caller may inspect
    std::uint32_t owner_uid = 0;  // in the caller's user namespace, kOverflowId when unmapped
    // Whose labels describe it (DescribeNamespace): a pid namespace's init when the caller may
    // inspect it, else its oldest member the caller may inspect (host tgid, start time); 0: none.
    std::int32_t rep_tgid = 0;
    std::uint64_t rep_start = 0;
};

// The first task the kernel's rule refused the caller during a request (what polkit is asked about).
struct Denial {
    std::int32_t pid = 0;          // host pid (pidnsd's pid namespace)
    std::uint32_t uid = 0;         // its effective uid, as pidnsd sees it
    NsId pidns = 0;                // its pid namespace
};

struct ProcessEntry {
    std::vector<std::uint32_t> nspid, nstgid, nspgid, nssid;  // first: caller's view; last: own
    std::array<NsId, kNsTypeCount> ns{};                      // 0 where not visible to the caller
};

// DescribeProcess: GetProcess's answer, its owner, and its labels.
struct ProcessDescription {
    ProcessEntry entry;
    std::int32_t tgid = 0;          // its thread group, in pidnsd's pid namespace
    std::uint64_t start_time = 0;
    std::uint32_t uid = 0;          // effective uid in the caller's user namespace (kOverflowId: unmapped)
    std::uint32_t host_uid = 0;     // effective uid as pidnsd sees it
    std::vector<std::uint32_t> threads;  // its tasks' ids in the caller's pid namespace, the leader first
    Labels labels;
};

// A non-zero namespace reference among the namespaces `visible` accepts: the namespace with
// that id, or the one with that nsfs inode (on device `nsfs_dev`). Errc::ambiguous when the two
// differ; Errc::no_such_namespace when neither is visible (an invisible candidate is ignored, so
// its existence does not leak through the error).
Result<NsId> resolve_reference(const Index& index, std::uint64_t nsfs_dev, std::uint64_t ref,
                               const std::function<bool(NsId)>& visible);

// A ListNamespaces type argument: "" (all) or a type name. Errc::invalid_argument otherwise.
Result<std::optional<NsType>> parse_type_filter(std::string_view type);
// ListNamespaces order: by type (pid user mnt net uts ipc cgroup time), then level, then id.
void sort_entries(std::vector<NamespaceEntry>& entries);

// A pid as the API takes it: 1 to 2^31-1.
inline constexpr bool is_valid_pid(std::uint32_t pid) noexcept { return pid != 0 && pid <= 0x7fffffffu; }

// Largest TranslatePids batch; check_batch: Errc::invalid_argument beyond it.
inline constexpr std::size_t kMaxBatch = 65536;
Status check_batch(std::size_t pids);

// Answers for one caller over the model's index. Short-lived: build one per request.
//
// Scope: a pid namespace at or below the caller's; a user namespace at or below the caller's;
// any other namespace owned by a user namespace at or below the caller's. A namespace in scope is
// visible when the caller may inspect at least one process in it; one with no processes at all
// (held by an fd, a bind mount, or as an ancestor) is visible only to a caller in the daemon's own
// pid namespace that has CAP_SYS_PTRACE over the namespace's owner. A process may be inspected
// when ptrace_may_read() allows it (lib/access.h). Anything else does not exist for the caller:
// the same error as an unknown id.
class CallerView {
public:
    CallerView(Model& model, const Caller& caller);

    // A namespace reference: 0 = the caller's own namespace of `dflt`, else a visible namespace's
    // id or nsfs inode. Errc::no_such_namespace, Errc::ambiguous.
    Result<NsId> resolve(std::uint64_t ref, NsType dflt = NsType::pid);

    // TranslatePid: pid in `from` -> pid in `to` (0 if none there).
    Result<std::uint32_t> translate(std::uint32_t pid, std::uint64_t from, std::uint64_t to);
    // TranslatePids in slices (lib/query.h: TranslateQuery); element-wise, 0 for absent,
    // out-of-range, untranslatable or uninspectable: appends the answers for `pids` (namespaces already resolved by
    // resolve_pidns) to `out`, until `deadline`; returns how many pids it answered (at least one).
    // Errc::no_such_namespace if `from` or `to` left the index meanwhile.
    Result<std::size_t> translate_some(std::span<const std::uint32_t> pids, NsId from, NsId to,
                                       std::vector<std::uint32_t>& out,
                                       std::chrono::steady_clock::time_point deadline =
                                           std::chrono::steady_clock::time_point::max());
    // A pid namespace reference (0: the caller's own). Errc::not_pid_namespace for another type.
    Result<NsId> resolve_pidns(std::uint64_t ref);
    // Per-request state for the model's translation (cached namespace fds, the /proc listing
    // allowance) and when the request was received (a target's credentials read since are fresh
    // for it: decide()); the owner keeps it across the slices of one request.
    void set_translate_scratch(TranslateScratch* s) noexcept { scratch_ = s; }
    Result<ProcessEntry> get_process(std::uint32_t pid);
    // DescribeProcess: GetProcess's checks, then its labels read fresh from /proc.
    Result<ProcessDescription> describe_process(std::uint32_t pid);
    // The labels of a namespace entry's representative (rep_tgid), read now; nothing when it has
    // none (no process of it may be inspected) or it exited (or the pid names another process)
    // since the entry was built.
    std::optional<Labels> labels_of(const NamespaceEntry& e) const;
    // What holds namespace `id`, as (kind, path): one entry per holder kind (process, task, fd,
    // ancestor), and one per nsfs bind mount ("mount", its mount point) in a mount namespace
    // whose reader process the caller may inspect (other mounts are counted as a "mount" entry
    // with an empty path).
    std::vector<std::pair<std::string, std::string>> holders_of(NsId id);
    // The names `ip netns list` shows for a net namespace: its bind mounts at /run/netns/NAME in
    // the mount namespace of pidnsd's pid 1 (the host's, whatever pidnsd's own sandbox is;
    // pidnsd's own when pid 1 is not indexed).
    std::vector<std::string> netns_names(NsId id) const;
    // An effective uid as pidnsd sees it, in the caller's user namespace (kOverflowId: unmapped).
    [[nodiscard]] std::uint32_t caller_uid(std::uint32_t host_uid) const;
    // Whether the caller's user namespace is pidnsd's (host user names mean something to it).
    [[nodiscard]] bool in_root_userns() const;
    std::uint32_t namespace_count();
    // polkit authorized the caller: rules 2 and 3 count as passed (rule 1 still holds).
    void widen() noexcept { widened_ = true; }
    // Whether the kernel's rule (2 or 3) refused anything during this request: then polkit may be asked.
    [[nodiscard]] bool denied_any() const noexcept { return denied_any_; }
    // The first task the kernel's rule refused during this request, if any was a task.
    [[nodiscard]] const std::optional<Denial>& first_denial() const noexcept { return first_denial_; }
    // Whether the caller may inspect this process; an allowed answer is confirmed on fresh
    // credentials (once per process and view).
    [[nodiscard]] bool may_inspect(const Process& p);
    // The same for a thread group that exited and is not reaped (not in the index): decided on
    // `p` as made from its status just read (a zombie has no mm: dumpability does not apply).
    [[nodiscard]] bool may_inspect_exited(const Process& p) { return access(p) == Access::allowed; }
    // may_inspect for a process read a while ago that may have exited or moved since
    // (DumpPidTree's): `gone` when its pid no longer names it (refused nothing: the caller decides
    // on what it read), `moved` when its user namespace is no longer the index's (read it again).
    enum class Fresh : std::uint8_t { allowed, denied, gone, moved };
    [[nodiscard]] Fresh inspect_now(const Process& p);
    // Whether the caller can see namespace `id` (what NamespaceAdded may tell it).
    [[nodiscard]] bool can_see(NsId id) { return visible(id); }
    // Whether the index still holds the namespace (whoever may see it).
    [[nodiscard]] bool exists(NsId id) const { return index_.find_namespace(id) != nullptr; }
    std::uint32_t process_count();

    // Answers built in pieces, so that no one request holds pidnsd for long.
    // The ListNamespaces entry of one namespace: its members are walked until `deadline`.
    struct EntryBuild {
        NsId id = 0;
        bool begun = false;
        std::vector<std::int32_t> members;
        std::size_t pos = 0;
        std::uint32_t nprocs = 0, lowest = 0;
        std::int32_t oldest = 0;          // the inspectable member with the lowest start time
        std::uint64_t oldest_start = 0;
    };
    enum class Built : std::uint8_t { done, more, gone };
    // done: `out` holds the entry (shown only if visible(id) held; check that first); more:
    // call again with the same `b` (in a later view of the same caller); gone: it left the index.
    Built build_entry(EntryBuild& b, NamespaceEntry& out, std::chrono::steady_clock::time_point deadline);
    // Ids of the namespaces of one type (or all), in index order: what a listing walks.
    [[nodiscard]] std::vector<NsId> namespaces_of_type(std::optional<NsType> only) const;
    // The thread-group leaders holding namespace `id` (a copy: the index reorders them).
    [[nodiscard]] std::vector<std::int32_t> members_of(NsId id) const;
    // Whether the caller may inspect every process (CAP_SYS_PTRACE in pidnsd's user namespace,
    // in its pid namespace, or polkit's yes); when not, it counts as refused (polkit may widen).
    bool inspects_everything();
    // The same, without counting a refusal (for what is only left out, never asked of polkit).
    [[nodiscard]] bool sees_everything() const noexcept { return at_root_ && (all_creds_ || widened_); }
    // ListProcesses for one member: its tgid as the caller sees it, 0 if it may not be inspected.
    std::uint32_t listed_pid(std::int32_t tgid);
    // Counts on the credentials the index last read instead of reading them again per process
    // (for the properties, which must answer at once).
    void use_remembered_credentials() noexcept { fresh_credentials_ = false; }

private:
    // GetProcess's answer for a task the caller may inspect.
    ProcessEntry entry_of(const TaskView& task);
    // GetProcess's checks: the task `pid` names, when the caller may inspect it (re-verified).
    Result<TaskView> inspected_task(std::uint32_t pid);
    [[nodiscard]] bool in_scope(const Namespace& ns) const;
    [[nodiscard]] bool visible(NsId id);
    [[nodiscard]] bool visible(const Namespace& ns);
    // Rule 1: the process is in the caller's pid namespace or below.
    [[nodiscard]] bool in_subtree(const Process& p) const;
    [[nodiscard]] Access access(const Process& p) const;
    // `p` is the calling process itself (same pid and start time).
    [[nodiscard]] bool is_caller(const Process& p) const;
    void note_denial(const Process& p) const;
    // For one target: decided on fresh credentials.
    [[nodiscard]] Access decide(const Process& p);
    // The process's tgid as the caller sees it; 0 if it has none there.
    [[nodiscard]] std::uint32_t view_tgid(const Process& p) const;
    Result<std::int32_t> checked_pid(std::uint32_t pid) const;
    Result<std::uint32_t> translate_resolved(std::int32_t nr, NsId from, NsId to);
    // translate_resolved's decision, not yet worded: TranslatePids answers 0 for every failure, and
    // wording one for each of 65,536 absent pids cost a fifth of such a call.
    enum class Outcome : std::uint8_t { ok, absent, unreadable, exited, denied, failed };
    struct Translated {
        Outcome outcome = Outcome::ok;
        std::uint32_t pid = 0;  // ok: the answer (0: no pid in `to`)
        Error error{};          // failed: the model's
        bool found = false;     // a task was found and decided on (worth remembering in a batch)
    };
    Translated translate_decided(std::int32_t nr, NsId from, NsId to);

    Model& model_;
    const Index& index_;
    const Caller& caller_;
    std::size_t level_ = 0;       // the caller's pid namespace's level in the index
    std::uint32_t user_level_ = 0;
    bool at_root_ = false;        // the caller is in the daemon's own pid namespace
    bool all_creds_ = false;      // CAP_SYS_PTRACE in the daemon's user namespace: rules 2 and 3 always pass
    bool widened_ = false;        // polkit said yes
    bool fresh_credentials_ = true;
    mutable bool denied_any_ = false;
    mutable std::optional<Denial> first_denial_;
    TranslateScratch* scratch_ = nullptr;
    std::unordered_map<NsId, bool> visible_cache_;
    std::unordered_map<std::int32_t, bool> confirmed_;  // tgid -> allowed on fresh credentials
};

}  // namespace pidns
