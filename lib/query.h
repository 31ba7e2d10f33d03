// The query engine: TranslatePids, ListNamespaces, GetNamespace and ListProcesses over a caller's view, resumable in slices.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "result.h"
#include "view.h"

namespace pidns {

using Deadline = std::chrono::steady_clock::time_point;
inline constexpr Deadline kNoDeadline = Deadline::max();

inline bool past(Deadline deadline) { return std::chrono::steady_clock::now() >= deadline; }
// The deadline as looked at after step `pos` of a loop: after every step, or, when each step is
// cheap (O(1), no read), after every 16th.
inline bool past_after(std::size_t pos, bool cheap, Deadline deadline) {
    return (!cheap || (pos & 15) == 0) && past(deadline);
}

// Each query works in steps: step(view, deadline) goes on until the deadline (looked at between
// pieces of work) and gives true once its answer is complete, false when the deadline came first
// (call again, with a new view of the same caller if need be), or the error that ends it.
// restart() starts it over (the caller's view was widened). pidnsd runs a step per loop turn; the
// functions at the end run one to its end at once.

// TranslatePids: a slice of pids at a time. Errc::invalid_argument beyond kMaxBatch.
class TranslateQuery {
public:
    TranslateQuery(std::vector<std::uint32_t> pids, std::uint64_t from, std::uint64_t to)
        : pids_(std::move(pids)), from_(from), to_(to) {}
    Result<bool> step(CallerView& v, Deadline deadline);
    void restart();
    // The answer, once complete: one pid (or 0) per pid asked, in order.
    std::vector<std::uint32_t>& answer() noexcept { return out_; }

private:
    std::vector<std::uint32_t> pids_;
    std::uint64_t from_, to_;
    bool resolved_ = false;
    NsId f_ = 0, t_ = 0;
    std::vector<std::uint32_t> out_;
    std::size_t pos_ = 0;
};

// Namespace entries built namespace by namespace, member by member; the invisible and the gone
// are left out.
class EntryBuilder {
public:
    void start(std::vector<NsId> ids);
    // True when every entry is built (or skipped).
    bool step(CallerView& v, Deadline deadline);
    std::vector<NamespaceEntry>& entries() noexcept { return entries_; }

private:
    std::vector<NsId> ids_;
    std::size_t pos_ = 0;
    bool in_entry_ = false;
    CallerView::EntryBuild build_;
    std::vector<NamespaceEntry> entries_;
};

// ListNamespaces: the namespaces of a type ("" for all) the caller may see, sorted by type,
// level and id (sort_entries). Errc::invalid_argument for an unknown type.
class NamespaceListQuery {
public:
    explicit NamespaceListQuery(std::string type) : type_(std::move(type)) {}
    Result<bool> step(CallerView& v, Deadline deadline);
    void restart() { started_ = false; }
    std::vector<NamespaceEntry>& answer() noexcept { return entries_.entries(); }

private:
    std::string type_;
    bool started_ = false;
    EntryBuilder entries_;
};

// GetNamespace: one namespace reference (resolve()'s errors). Errc::no_such_namespace when it
// left the index while it was built.
class NamespaceQuery {
public:
    explicit NamespaceQuery(std::uint64_t ref) : ref_(ref) {}
    Result<bool> step(CallerView& v, Deadline deadline);
    void restart() { started_ = false; }
    NamespaceEntry& answer() noexcept { return entries_.entries().front(); }

private:
    std::uint64_t ref_;
    bool started_ = false;
    EntryBuilder entries_;
};

// ListProcesses: the pids, in the caller's pid namespace, of the processes of a namespace it may
// inspect, sorted.
class ProcessListQuery {
public:
    explicit ProcessListQuery(std::uint64_t ref) : ref_(ref) {}
    Result<bool> step(CallerView& v, Deadline deadline);
    void restart() { started_ = false; }
    std::vector<std::uint32_t>& answer() noexcept { return out_; }

private:
    std::uint64_t ref_;
    bool started_ = false;
    std::vector<std::int32_t> members_;
    std::size_t pos_ = 0;
    std::vector<std::uint32_t> out_;
};

// The same queries run to their end at once.
Result<std::vector<std::uint32_t>> translate_many(CallerView& v, std::vector<std::uint32_t> pids, std::uint64_t from,
                                                  std::uint64_t to);
Result<std::vector<NamespaceEntry>> list_namespaces(CallerView& v, std::string_view type);
Result<NamespaceEntry> get_namespace(CallerView& v, std::uint64_t ref);
Result<std::vector<std::uint32_t>> list_processes(CallerView& v, std::uint64_t ref);

}  // namespace pidns
