// Keeps the model current from process events (fork/exec/exit) and full rescans, with counters.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "index.h"
#include "proc_event.h"
#include "result.h"

namespace pidns {

class Model;

struct UpdaterStats {
    std::uint64_t events = 0;          // fork/exec/exit events applied
    std::uint64_t lost = 0;            // times the event stream reported a loss (ENOBUFS)
    std::uint64_t rescans = 0;         // full rescans done (start, loss, SIGHUP, polling)
    std::uint64_t rescan_failures = 0;
    std::chrono::microseconds last_rescan{0};
};

class Updater {
public:
    explicit Updater(Model& model) : model_(model) {}

    // fork: reads the new task's thread group; exec: re-reads it (unshare+exec changes its
    // namespaces); exit: removes the task. A task gone before it is read is simply skipped.
    void apply(std::span<const ProcEvent> events);
    // Full scan replacing the index. Namespace changes go to the pending list.
    Status rescan();
    // Namespaces added and removed since the last call, in order.
    std::vector<NsChange> take_changes();
    // Processes read since the last call (fork, exec): a namespace can become visible to a caller
    // after it was added (a process it may inspect joins it, credentials change), so the
    // namespaces of these processes are re-checked.
    std::vector<std::int32_t> take_touched();

    [[nodiscard]] const UpdaterStats& stats() const noexcept { return stats_; }
    void count_loss() noexcept { ++stats_.lost; }

private:
    Model& model_;
    UpdaterStats stats_;
    std::vector<NsChange> pending_;
    std::vector<std::int32_t> touched_;
};

}  // namespace pidns
