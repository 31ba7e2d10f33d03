// Keeps the model current from process events (fork/exec/exit) and full rescans, with counters.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <unordered_set>
#include <vector>

#include "index.h"
#include "model.h"
#include "proc_event.h"
#include "result.h"

namespace pidns {

// Takes out of `batch`, from index `from` on, the fork events whose task has no later event in
// the batch, and returns them in order (the rest keep theirs). A caller that applies them with
// its next batch (a moment later) reads nothing for a child that exits meanwhile: most children
// of a fork storm, or of a shell script, live for microseconds. Applying them later is safe: an
// event only says which task to read (or remove), and a read sees the present.
std::vector<ProcEvent> take_last_forks(std::vector<ProcEvent>& batch, std::size_t from);

struct UpdaterStats {
    std::uint64_t events = 0;          // fork/exec/exit events received
    std::uint64_t reads = 0;           // processes and threads read because of an event
    std::uint64_t coalesced = 0;       // reads skipped: the task exited (or was read) later in the same batch
    std::uint64_t lost = 0;            // times the event stream reported a loss (ENOBUFS)
    std::uint64_t rescans = 0;         // full rescans done (start, loss, SIGHUP, polling)
    std::uint64_t rescan_failures = 0;
    std::chrono::microseconds last_rescan{0};
    std::chrono::microseconds last_rescan_build{0};  // of which building the index (the loop waits for it)
};

class Updater {
public:
    explicit Updater(Model& model) : model_(model) {}

    // A batch of events in arrival order. Only the net effect is applied: a task that exits
    // later in the batch is not read, a process is read once however many of its events came.
    // Process fork/exec: (re-)reads the thread group (exec after unshare changes namespaces);
    // thread fork: reads just that thread; exit: removes the task (Model::remove_task: a
    // leader's exit while its threads live on re-reads the process, its last thread's exit
    // removes it). Tasks gone before they are read are skipped.
    void apply(std::span<const ProcEvent> events);
    // Full synchronous scan replacing the index. Namespace changes go to the pending list.
    Status rescan();

    // Asynchronous rescan: between begin_rescan() and finish_rescan(), a snapshot of /proc is
    // read elsewhere (Model::read_snapshot on another thread) while apply() goes on; events
    // applied meanwhile are kept and applied again on top of the new index. Returns
    // the snapshot's error if it failed (the old index stays), Errc::io if too many events
    // arrived meanwhile to replay (the caller should rescan again).
    void begin_rescan();
    Status finish_rescan(Result<ProcSnapshot>&& snapshot);
    [[nodiscard]] bool rescanning() const noexcept { return rescanning_; }

    // Namespaces added and removed since the last call, in order.
    std::vector<NsChange> take_changes();

    [[nodiscard]] const UpdaterStats& stats() const noexcept { return stats_; }
    void count_loss() noexcept { ++stats_.lost; }

private:
    void record_rescan(Result<RescanReport>&& r);
    // Moves the model's incremental namespace changes to pending_, keeping their order.
    void collect_model_changes();

    Model& model_;
    UpdaterStats stats_;
    std::vector<NsChange> pending_;
    bool rescanning_ = false;
    std::vector<ProcEvent> replay_;  // events applied while a snapshot was being read
    bool replay_overflow_ = false;
    // Scratch for apply(): reused between batches.
    std::vector<std::uint8_t> skip_;
    std::unordered_set<std::int32_t> exited_later_, read_later_;
};

}  // namespace pidns
