// Applies process events and rescans to the model.
#include "updater.h"

#include <algorithm>

#include "model.h"

namespace pidns {

namespace {
// Events kept for replay during an asynchronous rescan; beyond this the snapshot is as good as
// stale and the replay is replaced by another rescan.
constexpr std::size_t kMaxReplay = 1u << 20;
}  // namespace

std::vector<ProcEvent> take_last_forks(std::vector<ProcEvent>& batch, std::size_t from) {
    std::vector<ProcEvent> taken;
    if (from >= batch.size()) return taken;
    // Backwards: a fork is taken when no later event names its task (exec, exit, or a fork of
    // the same pid, reused after an exit).
    std::unordered_set<std::int32_t> named_later;
    std::vector<char> take(batch.size(), 0);
    for (std::size_t i = batch.size(); i-- > from;) {
        const auto& ev = batch[i];
        if (ev.kind == ProcEventKind::fork && !named_later.contains(ev.pid)) take[i] = 1;
        named_later.insert(ev.pid);
    }
    std::size_t keep = from;
    for (std::size_t i = from; i < batch.size(); ++i) {
        if (take[i])
            taken.push_back(batch[i]);
        else
            batch[keep++] = batch[i];
    }
    batch.resize(keep);
    return taken;
}

void Updater::apply(std::span<const ProcEvent> events) {
    if (events.empty()) return;
    model_.note_events();
    stats_.events += events.size();
    if (rescanning_) {
        if (replay_.size() + events.size() <= kMaxReplay) {
            replay_.insert(replay_.end(), events.begin(), events.end());
        } else {
            replay_ = {};
            replay_overflow_ = true;
        }
    }
    // Backwards: a read is pointless when the task exits later in the batch (a pid is reused
    // only after its exit, so "later" is exact), or when its process is read later anyway. Not
    // when just its leader exits later: the leader may pthread_exit() while its threads live on
    // (each thread's own exit comes as its own event).
    skip_.assign(events.size(), 0);
    exited_later_.clear();
    read_later_.clear();
    for (std::size_t i = events.size(); i-- > 0;) {
        const auto& ev = events[i];
        if (ev.kind == ProcEventKind::exit) {
            exited_later_.insert(ev.pid);
            continue;
        }
        const bool leader = ev.pid == ev.tgid;
        if (exited_later_.contains(ev.pid) || read_later_.contains(ev.tgid)) {
            skip_[i] = 1;
            continue;
        }
        if (leader) read_later_.insert(ev.tgid);
    }
    // A thread's read is also pointless when its whole process is read in this batch (at any
    // position: every read sees the present, after all these events).
    for (std::size_t i = 0; i < events.size(); ++i) {
        const auto& ev = events[i];
        if (ev.kind == ProcEventKind::exit) {
            // A leader's exit while threads live on re-reads the process instead (counted).
            if (model_.remove_task(ev.pid, ev.tgid)) ++stats_.reads;
            continue;
        }
        const bool leader = ev.pid == ev.tgid;
        if (skip_[i] || (!leader && read_later_.contains(ev.tgid))) {
            ++stats_.coalesced;
            continue;
        }
        ++stats_.reads;
        // Failures mean the task is already gone (not_found) or unreadable; the exit event or
        // the next verify pass settles either.
        (void)(leader ? model_.add_process(ev.tgid) : model_.add_thread(ev.tgid, ev.pid));
    }
}

void Updater::record_rescan(Result<RescanReport>&& r) {
    if (!r) {
        ++stats_.rescan_failures;
        return;
    }
    ++stats_.rescans;
    stats_.last_rescan = r->duration;
    stats_.last_rescan_build = r->build;
    pending_.insert(pending_.end(), r->changes.begin(), r->changes.end());
}

void Updater::collect_model_changes() {
    auto now = model_.take_changes();
    pending_.insert(pending_.end(), now.begin(), now.end());
}

Status Updater::rescan() {
    collect_model_changes();  // the incremental ones come first
    auto r = model_.rescan();
    Status st = r ? Status(Ok{}) : Status(r.error());
    record_rescan(std::move(r));
    return st;
}

void Updater::begin_rescan() {
    rescanning_ = true;
    replay_.clear();
    replay_overflow_ = false;
}

Status Updater::finish_rescan(Result<ProcSnapshot>&& snapshot) {
    rescanning_ = false;
    std::vector<ProcEvent> replay;
    replay.swap(replay_);
    if (!snapshot) {
        ++stats_.rescan_failures;
        return snapshot.error();
    }
    collect_model_changes();
    auto r = model_.rescan_from(std::move(*snapshot));
    Status st = r ? Status(Ok{}) : Status(r.error());
    record_rescan(std::move(r));
    if (!st) return st;
    if (replay_overflow_) {
        replay_overflow_ = false;
        return make_error(Errc::io, "more than " + std::to_string(kMaxReplay) +
                                        " events arrived while /proc was read: the snapshot is stale");
    }
    // What happened while /proc was being read, on top of the new index (every step re-reads
    // the present or removes, so applying one twice is harmless). Not counted again.
    const auto events_before = stats_.events;
    apply(replay);
    stats_.events = events_before;
    return Ok{};
}

std::vector<NsChange> Updater::take_changes() {
    collect_model_changes();
    std::vector<NsChange> out;
    out.swap(pending_);
    return out;
}

}  // namespace pidns
