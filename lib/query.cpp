// The query engine: TranslatePids, ListNamespaces, GetNamespace and ListProcesses, resumable in slices.
#include "query.h"

#include <algorithm>
#include <span>
#include <utility>

namespace pidns {
namespace {

// Runs `q` to its end; its answer moved out.
template <class Q>
auto run_to_end(Q& q, CallerView& v) -> Result<std::decay_t<decltype(q.answer())>> {
    auto done = q.step(v, kNoDeadline);
    if (!done) return done.error();
    return std::move(q.answer());
}

}  // namespace

Result<bool> TranslateQuery::step(CallerView& v, Deadline deadline) {
    if (!resolved_) {
        if (auto s = check_batch(pids_.size()); !s) return s.error();
        auto f = v.resolve_pidns(from_);
        if (!f) return f.error();
        auto t = v.resolve_pidns(to_);
        if (!t) return t.error();
        f_ = *f;
        t_ = *t;
        out_.reserve(pids_.size());
        resolved_ = true;
    }
    while (pos_ < pids_.size()) {
        auto n = v.translate_some(std::span<const std::uint32_t>(pids_).subspan(pos_), f_, t_, out_, deadline);
        if (!n) return n.error();
        pos_ += *n;
        if (pos_ < pids_.size() && past(deadline)) return false;
    }
    return true;
}

void TranslateQuery::restart() {
    resolved_ = false;
    out_.clear();
    pos_ = 0;
}

void EntryBuilder::start(std::vector<NsId> ids) {
    ids_ = std::move(ids);
    entries_.clear();
    pos_ = 0;
    in_entry_ = false;
}

bool EntryBuilder::step(CallerView& v, Deadline deadline) {
    // For a caller who sees everything an entry is O(1) (the index's per-namespace summary).
    const bool cheap = v.sees_everything();
    while (pos_ < ids_.size()) {
        if (!in_entry_) {
            if (!v.can_see(ids_[pos_])) {
                ++pos_;
                if (past_after(pos_, cheap, deadline)) return false;
                continue;
            }
            build_ = CallerView::EntryBuild{};
            build_.id = ids_[pos_];
            in_entry_ = true;
        }
        NamespaceEntry e;
        const auto r = v.build_entry(build_, e, deadline);
        if (r == CallerView::Built::more) return false;
        if (r == CallerView::Built::done) entries_.push_back(e);
        in_entry_ = false;
        ++pos_;
        if (pos_ < ids_.size() && past_after(pos_, cheap, deadline)) return false;
    }
    return true;
}

Result<bool> NamespaceListQuery::step(CallerView& v, Deadline deadline) {
    if (!started_) {
        auto only = parse_type_filter(type_);
        if (!only) return only.error();
        entries_.start(v.namespaces_of_type(*only));
        started_ = true;
    }
    if (!entries_.step(v, deadline)) return false;
    sort_entries(entries_.entries());
    return true;
}

Result<bool> NamespaceQuery::step(CallerView& v, Deadline deadline) {
    if (!started_) {
        auto id = v.resolve(ref_);
        if (!id) return id.error();
        entries_.start({*id});
        started_ = true;
    }
    if (!entries_.step(v, deadline)) return false;
    if (entries_.entries().empty())
        return make_error(Errc::no_such_namespace, "namespace " + std::to_string(ref_) +
                                                       " left the index while being described; list the namespaces again");
    return true;
}

Result<bool> ProcessListQuery::step(CallerView& v, Deadline deadline) {
    if (!started_) {
        auto id = v.resolve(ref_);
        if (!id) return id.error();
        members_ = v.members_of(*id);
        out_.clear();
        pos_ = 0;
        started_ = true;
    }
    while (pos_ < members_.size()) {
        if (const auto pid = v.listed_pid(members_[pos_++])) out_.push_back(pid);
        if ((pos_ & 15) == 0 && past(deadline)) return false;
    }
    std::sort(out_.begin(), out_.end());
    return true;
}

Result<std::vector<std::uint32_t>> translate_many(CallerView& v, std::vector<std::uint32_t> pids, std::uint64_t from,
                                                  std::uint64_t to) {
    TranslateQuery q(std::move(pids), from, to);
    return run_to_end(q, v);
}

Result<std::vector<NamespaceEntry>> list_namespaces(CallerView& v, std::string_view type) {
    NamespaceListQuery q{std::string(type)};
    return run_to_end(q, v);
}

Result<NamespaceEntry> get_namespace(CallerView& v, std::uint64_t ref) {
    NamespaceQuery q(ref);
    return run_to_end(q, v);
}

Result<std::vector<std::uint32_t>> list_processes(CallerView& v, std::uint64_t ref) {
    ProcessListQuery q(ref);
    return run_to_end(q, v);
}

}  // namespace pidns
