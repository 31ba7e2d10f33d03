// The works pidnsd's methods run (method_call.h): the lib/query.h engine's queries, namespace
// answers made entry by entry (labels read ahead), and pid tree dumps, each resumable at a deadline.
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
#include "query.h"
#include "signals.h"
#include "wire.h"

namespace pidnsd {

using DumpTuple = pidns::bus::WireDumpEntry;

// A lib/query.h query as a method's Work: a step per slice, its answer once complete.
template <class Q, class T>
class QueryWork final : public Work<T> {
public:
    explicit QueryWork(Q query) : q_(std::move(query)) {}
    std::optional<std::tuple<T>> run(pidns::CallerView& v, Client&, Clock::time_point deadline) override {
        if (!unwrap(q_.step(v, deadline))) return std::nullopt;
        return std::make_tuple(std::move(q_.answer()));
    }
    void restart() override { q_.restart(); }

private:
    Q q_;
};

// TranslatePids: a slice of pids at a time.
using TranslateMany = QueryWork<pidns::TranslateQuery, std::vector<uint32_t>>;
// ListProcesses.
using ListProcessesWork = QueryWork<pidns::ProcessListQuery, std::vector<uint32_t>>;

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
        : entries_(std::move(type)), make_(std::move(make)), cheap_(cheap), labels_from_(labels_from) {}
    std::optional<std::tuple<std::vector<T>>> run(pidns::CallerView& v, Client& c, Clock::time_point deadline) override {
        if (!started_) {
            out_.clear();
            pos_ = 0;
            started_ = true;
            sorted_ = false;
        }
        if (!sorted_ && !unwrap(entries_.step(v, deadline))) return std::nullopt;
        auto& list = entries_.answer();
        if (!sorted_) {
            out_.reserve(list.size());
            sorted_ = true;
            // The entries were collected over slices: those gone meanwhile are left out, and the
            // subscriber is told of the others now, at once, so that each one's end, however soon,
            // reaches it as a NamespaceRemoved (sent after this reply: Call::holds_signals).
            gone_.assign(list.size(), false);
            for (std::size_t k = 0; k < list.size(); ++k) {
                if (v.exists(list[k].id))
                    SignalFanout::told(c, list[k].id);
                else
                    gone_[k] = true;
            }
            start_read_ahead(list);
        }
        while (pos_ < list.size()) {
            pidns::Result<pidns::Labels>* labels = nullptr;
            if (ahead_) {
                ahead_->take(pos_);
                if (labels_[pos_]) labels = &*labels_[pos_];
            }
            if (!gone_[pos_]) out_.push_back(make_(v, list[pos_], labels));
            ++pos_;
            if (pos_ < list.size() && pidns::past_after(pos_, cheap_, deadline)) return std::nullopt;
        }
        ahead_.reset();
        labels_ = {};
        return std::make_tuple(std::move(out_));
    }
    void restart() override {
        started_ = false;
        entries_.restart();
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

    pidns::NamespaceListQuery entries_;
    Make make_;
    bool cheap_;
    pidns::Model* labels_from_;
    bool started_ = false, sorted_ = false;
    std::vector<T> out_;
    std::vector<bool> gone_;  // list's entries no longer indexed when the list was complete
    std::size_t pos_ = 0;
    std::vector<std::optional<pidns::Result<pidns::Labels>>> labels_;  // list's, as read ahead; sized once
    std::optional<pidns::ReadAhead> ahead_;                            // after labels_: stopped before it goes
};

// GetNamespace and DescribeNamespace: one namespace reference, its entry made into the answer.
template <class T>
class OneWork final : public Work<T> {
public:
    using Make = std::function<T(pidns::CallerView&, const pidns::NamespaceEntry&)>;
    OneWork(uint64_t ref, Make make) : query_(ref), make_(std::move(make)) {}
    std::optional<std::tuple<T>> run(pidns::CallerView& v, Client& c, Clock::time_point deadline) override {
        if (!unwrap(query_.step(v, deadline))) return std::nullopt;
        const auto& e = query_.answer();
        SignalFanout::told(c, e.id);
        return std::make_tuple(make_(v, e));
    }
    void restart() override { query_.restart(); }

private:
    pidns::NamespaceQuery query_;
    Make make_;
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
