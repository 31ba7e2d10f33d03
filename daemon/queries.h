// The sliced queries pidnsd's methods run (method_call.h's Work): translations, namespace
// listings and entries, process listings and pid tree dumps, each resumable at a deadline.
#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "method_call.h"
#include "pid_dump.h"
#include "signals.h"
#include "wire.h"

namespace pidnsd {

using DumpTuple = pidns::bus::WireDumpEntry;

inline bool past(Clock::time_point deadline) { return Clock::now() >= deadline; }
// The deadline as looked at after step `pos` of a loop: after every step, or, when each step is
// cheap (O(1), no read), after every 16th.
inline bool past_after(std::size_t pos, bool cheap, Clock::time_point deadline) {
    return (!cheap || (pos & 15) == 0) && past(deadline);
}

// TranslatePids: a slice of pids at a time.
class TranslateMany final : public Work<std::vector<uint32_t>> {
public:
    TranslateMany(std::vector<uint32_t> pids, uint64_t from, uint64_t to) : pids_(std::move(pids)), from_(from), to_(to) {}
    std::optional<std::tuple<std::vector<uint32_t>>> run(pidns::CallerView& v, Client&, Clock::time_point deadline) override {
        if (!resolved_) {
            f_ = unwrap(v.resolve_pidns(from_));
            t_ = unwrap(v.resolve_pidns(to_));
            out_.reserve(pids_.size());
            resolved_ = true;
        }
        while (pos_ < pids_.size()) {
            pos_ += unwrap(v.translate_some(std::span<const uint32_t>(pids_).subspan(pos_), f_, t_, out_, deadline));
            if (pos_ < pids_.size() && past(deadline)) return std::nullopt;
        }
        return std::make_tuple(std::move(out_));
    }
    void restart() override {
        resolved_ = false;
        out_.clear();
        pos_ = 0;
    }

private:
    std::vector<uint32_t> pids_;
    uint64_t from_, to_;
    bool resolved_ = false;
    pidns::NsId f_ = 0, t_ = 0;
    std::vector<uint32_t> out_;
    std::size_t pos_ = 0;
};

// ListNamespaces and GetNamespace: entries built namespace by namespace, member by member.
class Entries final {
public:
    // One step over `ids`; true when every entry is built (or skipped as invisible or gone).
    bool run(pidns::CallerView& v, Clock::time_point deadline) {
        // For a caller who sees everything an entry is O(1) (the index's per-namespace summary).
        const bool cheap = v.sees_everything();
        while (pos_ < ids_.size()) {
            if (!in_entry_) {
                if (!v.can_see(ids_[pos_])) {
                    ++pos_;
                    if (past_after(pos_, cheap, deadline)) return false;
                    continue;
                }
                build_ = pidns::CallerView::EntryBuild{};
                build_.id = ids_[pos_];
                in_entry_ = true;
            }
            pidns::NamespaceEntry e;
            const auto r = v.build_entry(build_, e, deadline);
            if (r == pidns::CallerView::Built::more) return false;
            if (r == pidns::CallerView::Built::done) entries_.push_back(e);
            in_entry_ = false;
            ++pos_;
            if (pos_ < ids_.size() && past_after(pos_, cheap, deadline)) return false;
        }
        return true;
    }
    void start(std::vector<pidns::NsId> ids) {
        ids_ = std::move(ids);
        entries_.clear();
        pos_ = 0;
        in_entry_ = false;
    }
    std::vector<pidns::NamespaceEntry>& entries() { return entries_; }

private:
    std::vector<pidns::NsId> ids_;
    std::size_t pos_ = 0;
    bool in_entry_ = false;
    pidns::CallerView::EntryBuild build_;
    std::vector<pidns::NamespaceEntry> entries_;
};

// ListNamespaces and DescribeNamespaces: the entries of the namespaces of a type (or all), sorted,
// each made into the answer by `make` (a tuple, or a description that reads /proc), a slice at a time.
template <class T>
class ListWork final : public Work<std::vector<T>> {
public:
    // `labels`: the entry's representative's, read ahead (may be moved from); nullptr: not read.
    using Make = std::function<T(pidns::CallerView&, const pidns::NamespaceEntry&, pidns::Result<pidns::Labels>* labels)>;
    // `cheap`: `make` reads nothing (the clock is then read every 16 answers, not after each).
    // `labels_from`: read the representatives' labels ahead on its helper thread (DescribeNamespaces).
    ListWork(std::string type, Make make, bool cheap, pidns::Model* labels_from = nullptr)
        : type_(std::move(type)), make_(std::move(make)), cheap_(cheap), labels_from_(labels_from) {}
    std::optional<std::tuple<std::vector<T>>> run(pidns::CallerView& v, Client& c, Clock::time_point deadline) override {
        if (!started_) {
            const auto only = unwrap(pidns::parse_type_filter(type_));
            entries_.start(v.namespaces_of_type(only));
            out_.clear();
            pos_ = 0;
            started_ = true;
            sorted_ = false;
        }
        if (!entries_.run(v, deadline)) return std::nullopt;
        auto& list = entries_.entries();
        if (!sorted_) {
            pidns::sort_entries(list);
            out_.reserve(list.size());
            sorted_ = true;
            start_read_ahead(list);
        }
        while (pos_ < list.size()) {
            pidns::Result<pidns::Labels>* labels = nullptr;
            if (ahead_) {
                ahead_->take(pos_);
                if (labels_[pos_]) labels = &*labels_[pos_];
            }
            out_.push_back(make_(v, list[pos_], labels));
            SignalFanout::told(c, list[pos_].id);
            ++pos_;
            if (pos_ < list.size() && past_after(pos_, cheap_, deadline)) return std::nullopt;
        }
        ahead_.reset();
        labels_ = {};
        return std::make_tuple(std::move(out_));
    }
    void restart() override {
        started_ = false;
        ahead_.reset();
        labels_ = {};
    }

private:
    // Not for a few entries, nor while the helper thread serves another call.
    static constexpr std::size_t kReadAheadMin = 16;
    void start_read_ahead(const std::vector<pidns::NamespaceEntry>& list) {
        if (!labels_from_ || list.size() < kReadAheadMin || !labels_from_->helper_thread().available()) return;
        labels_.assign(list.size(), std::nullopt);
        // Only the /proc reads of read_labels on the helper thread, on a copy of the
        // representatives and into labels_, which neither moves nor is read here before take().
        std::vector<std::pair<std::int32_t, std::uint64_t>> reps;
        reps.reserve(list.size());
        for (const auto& e : list) reps.emplace_back(e.rep_tgid, e.rep_start);
        auto read = [proc = labels_from_->proc_fd(), reps = std::move(reps), out = labels_.data()](std::size_t k) {
            if (reps[k].first == 0) return;  // none it may inspect: make_ says so
            try {
                out[k] = pidns::read_labels(proc, reps[k].first, reps[k].second);
            } catch (...) {
                out[k].reset();  // out of memory: make_ reads them itself
            }
        };
        ahead_.emplace(labels_from_->helper_thread(), list.size(), std::move(read));
        if (!ahead_->helped()) {  // no thread could be made: read as without it
            ahead_.reset();
            labels_ = {};
        }
    }

    std::string type_;
    Make make_;
    bool cheap_;
    pidns::Model* labels_from_;
    bool started_ = false, sorted_ = false;
    Entries entries_;
    std::vector<T> out_;
    std::size_t pos_ = 0;
    std::vector<std::optional<pidns::Result<pidns::Labels>>> labels_;  // list's, as read ahead; sized once
    std::optional<pidns::ReadAhead> ahead_;                            // after labels_: stopped before it goes
};

// GetNamespace and DescribeNamespace: one namespace reference, its entry made into the answer.
template <class T>
class OneWork final : public Work<T> {
public:
    using Make = std::function<T(pidns::CallerView&, const pidns::NamespaceEntry&)>;
    OneWork(uint64_t ref, Make make) : ref_(ref), make_(std::move(make)) {}
    std::optional<std::tuple<T>> run(pidns::CallerView& v, Client& c, Clock::time_point deadline) override {
        if (!started_) {
            entries_.start({unwrap(v.resolve(ref_))});
            started_ = true;
        }
        if (!entries_.run(v, deadline)) return std::nullopt;
        if (entries_.entries().empty())
            throw to_dbus_error(pidns::make_error(pidns::Errc::no_such_namespace,
                                                  "namespace " + std::to_string(ref_) +
                                                      " left the index while being described; list the namespaces again"));
        const auto& e = entries_.entries().front();
        SignalFanout::told(c, e.id);
        return std::make_tuple(make_(v, e));
    }
    void restart() override { started_ = false; }

private:
    uint64_t ref_;
    Make make_;
    bool started_ = false;
    Entries entries_;
};

class ListProcessesWork final : public Work<std::vector<uint32_t>> {
public:
    explicit ListProcessesWork(uint64_t ref) : ref_(ref) {}
    std::optional<std::tuple<std::vector<uint32_t>>> run(pidns::CallerView& v, Client&, Clock::time_point deadline) override {
        if (!started_) {
            const auto id = unwrap(v.resolve(ref_));
            members_ = v.members_of(id);
            out_.clear();
            pos_ = 0;
            started_ = true;
        }
        while (pos_ < members_.size()) {
            if (const auto pid = v.listed_pid(members_[pos_++])) out_.push_back(pid);
            if ((pos_ & 15) == 0 && past(deadline)) return std::nullopt;
        }
        std::sort(out_.begin(), out_.end());
        return std::make_tuple(std::move(out_));
    }
    void restart() override { started_ = false; }

private:
    uint64_t ref_;
    bool started_ = false;
    std::vector<std::int32_t> members_;
    std::size_t pos_ = 0;
    std::vector<uint32_t> out_;
};

// DumpPidTree: the subtree read from /proc in slices (lib/pid_dump.h), then whether the caller
// may inspect every task of it; the answer with the event sequence it was read at.
class DumpTree {
public:
    using Answer = std::pair<uint64_t, std::vector<DumpTuple>>;
    DumpTree(pidns::Model& model, uint64_t ref, std::function<std::uint64_t()> sequence)
        : model_(model), ref_(ref), sequence_(std::move(sequence)) {}

    std::optional<Answer> run(pidns::CallerView& v, Client& c, Clock::time_point deadline) {
        if (!dump_) dump_ = std::make_unique<pidns::PidTreeDump>(model_, unwrap(v.resolve_pidns(ref_)));
        if (!read_) {
            if (!unwrap(dump_->step(deadline))) return std::nullopt;
            read_ = true;
        }
        const auto denied = dump_->count_uninspectable(v, deadline);
        if (!denied) return std::nullopt;
        if (*denied > 0)
            throw dump_refused(*denied, dump_->tasks().size(), ref_);
        const auto* own = model_.index().find_namespace(c.caller->pidns);
        const std::size_t caller_level = own ? own->meta.level : 0;
        Answer a;
        a.first = v.sees_everything() && sequence_ ? sequence_() : 0;
        const auto entries = dump_->entries(caller_level);
        a.second.reserve(entries.size());
        for (const auto& e : entries)
            a.second.emplace_back(e.rpid, e.depth, e.vpids, e.vtgid, e.vppid, e.vpgid, e.vsid, e.pidns,
                                  e.pid_for_children, e.flags);
        return a;
    }
    void restart() {
        dump_.reset();
        read_ = false;
    }

private:
    pidns::Model& model_;
    uint64_t ref_;
    std::function<std::uint64_t()> sequence_;
    std::unique_ptr<pidns::PidTreeDump> dump_;  // not movable (its read-ahead runs on another thread)
    bool read_ = false;
};

class DumpWork final : public Work<std::vector<DumpTuple>> {
public:
    explicit DumpWork(DumpTree tree) : tree_(std::move(tree)) {}
    std::optional<std::tuple<std::vector<DumpTuple>>> run(pidns::CallerView& v, Client& c,
                                                                   Clock::time_point deadline) override {
        auto a = tree_.run(v, c, deadline);
        if (!a) return std::nullopt;
        return std::make_tuple(std::move(a->second));
    }
    void restart() override { tree_.restart(); }

private:
    DumpTree tree_;
};

class DumpSequenceWork final : public Work<uint64_t, std::vector<DumpTuple>> {
public:
    explicit DumpSequenceWork(DumpTree tree) : tree_(std::move(tree)) {}
    std::optional<std::tuple<uint64_t, std::vector<DumpTuple>>> run(pidns::CallerView& v, Client& c,
                                                                             Clock::time_point deadline) override {
        auto a = tree_.run(v, c, deadline);
        if (!a) return std::nullopt;
        return std::make_tuple(a->first, std::move(a->second));
    }
    void restart() override { tree_.restart(); }

private:
    DumpTree tree_;
};

}  // namespace pidnsd
