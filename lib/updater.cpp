// Applies process events and rescans to the model.
#include "updater.h"

#include <algorithm>

#include "model.h"

namespace pidns {

void Updater::apply(std::span<const ProcEvent> events) {
    for (const auto& ev : events) {
        ++stats_.events;
        switch (ev.kind) {
        case ProcEventKind::fork:
        case ProcEventKind::exec:
            // A new thread re-reads its group too, so its tid becomes known. Failures mean the
            // task is already gone (not_found) or unreadable; the next rescan settles either.
            if (model_.add_process(ev.tgid)) touched_.push_back(ev.tgid);
            break;
        case ProcEventKind::exit:
            model_.remove_task(ev.pid, ev.tgid);
            break;
        }
    }
}

Status Updater::rescan() {
    auto before = model_.take_changes();
    pending_.insert(pending_.end(), before.begin(), before.end());
    auto r = model_.rescan();
    if (!r) {
        ++stats_.rescan_failures;
        return r.error();
    }
    ++stats_.rescans;
    stats_.last_rescan = r->duration;
    pending_.insert(pending_.end(), r->changes.begin(), r->changes.end());
    return Ok{};
}

std::vector<std::int32_t> Updater::take_touched() {
    std::vector<std::int32_t> out;
    out.swap(touched_);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::vector<NsChange> Updater::take_changes() {
    auto now = model_.take_changes();
    pending_.insert(pending_.end(), now.begin(), now.end());
    std::vector<NsChange> out;
    out.swap(pending_);
    return out;
}

}  // namespace pidns
