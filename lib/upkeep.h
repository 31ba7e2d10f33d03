// Keeping the index current around the events: the rescan thread, forks held back a moment, the paced verify pass, nsfs mount watches.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "index.h"
#include "model.h"
#include "nsfs.h"
#include "proc_event.h"
#include "result.h"

namespace pidns {

class ProcConnector;
class Updater;

// What upkeep did that its front end may want to log (the library logs nothing itself).
enum class UpkeepNote : std::uint8_t {
    rescanned,          // a rescan for `why` replaced the index (Updater::stats() has its figures)
    rescan_failed,      // a rescan for `why` failed (`error`); another one follows
    read_failed,        // reading the proc connector failed (`error`)
    events_lost,        // the proc connector lost events: a rescan was started
    verify_reread,      // the verify pass found process `tgid` in other namespaces than indexed: re-read
    mounts_unreadable,  // the nsfs bind mounts could not be read again for `why` (`error`)
};

// An index's upkeep for one event loop: the front end polls rescan_fd() (readable: call
// finish_rescan()), the proc connector's fd (drain_events()) and the mountinfo fds it is given to
// watch (POLLPRI: refresh_mounts()), and calls verify_some() when next_verify() is due.
class Upkeep {
public:
    using Clock = std::chrono::steady_clock;
    // Adds an open /proc/PID/mountinfo to the front end's poll set (POLLPRI when its mounts
    // change); false when it cannot be watched. Closing the fd takes it out again.
    using Watch = std::function<bool(int fd)>;
    using Notify = std::function<void(UpkeepNote note, const char* why, const Error* error, std::int32_t tgid)>;

    // `connector`: nullptr when the front end polls /proc (rescans) instead. `verify_interval`:
    // 0 for no verify pass.
    static Result<std::unique_ptr<Upkeep>> create(Model& model, Updater& updater, ProcConnector* connector,
                                                  std::chrono::milliseconds verify_interval, Watch watch, Notify notify);
    ~Upkeep();  // waits for the rescan thread (it reads through the model)
    Upkeep(const Upkeep&) = delete;
    Upkeep& operator=(const Upkeep&) = delete;

    // Full rescan without stopping the loop: /proc is read on another thread, the new index is
    // built when it is done (finish_rescan, once rescan_fd() is readable); asked again
    // meanwhile, one more follows.
    void start_rescan(const char* why);
    void finish_rescan();
    [[nodiscard]] int rescan_fd() const noexcept { return rescan_done_.get(); }

    // Reads proc-connector events for at most `budget` and applies them as one batch; returns
    // true if more are waiting. Forks with nothing after them wait for the next batch (at most
    // kForkGrace): a child that exits meanwhile is never read.
    bool drain_events(std::chrono::microseconds budget);
    // When forks held back are to be applied (drain_events), if any are.
    [[nodiscard]] std::optional<Clock::time_point> held_until() const;
    // No process event waits unread and no rescan is under way (the /proc listing's negative cache).
    [[nodiscard]] bool events_current() const;

    // The verify pass: every indexed process's namespace links against the index, a slice of
    // `budget` at a time, paced to a tenth of the time; at the end of a pass the nsfs bind
    // mounts are read again and the next pass is due verify_interval later.
    [[nodiscard]] bool verifying() const;
    [[nodiscard]] Clock::time_point next_verify() const noexcept { return verify_pos_ > 0 ? verify_resume_ : next_verify_; }
    void verify_some(std::chrono::microseconds budget);
    // The first pass is due verify_interval from now (once serving).
    void schedule_verify() { next_verify_ = Clock::now() + verify_interval_; }

    // nsfs bind mounts: re-read them (a watched mountinfo changed, or `why`), and keep the watch
    // set to our own mount namespace, pid 1's and every one that holds nsfs mounts.
    void refresh_mounts(const char* why);
    void reconcile_mount_watches();
    // A watched mount namespace left the index (it took its nsfs bind mounts with it).
    [[nodiscard]] bool watched_namespace_gone() const;

    [[nodiscard]] std::uint64_t verify_passes() const noexcept { return verify_passes_; }
    [[nodiscard]] std::uint64_t mount_refreshes() const noexcept { return mount_refreshes_; }
    [[nodiscard]] std::size_t mount_watches() const noexcept { return mount_watches_.size(); }

private:
    Upkeep(Model& model, Updater& updater, ProcConnector* connector, std::chrono::milliseconds verify_interval,
           Watch watch, Notify notify, Fd rescan_done);
    void notify(UpkeepNote note, const char* why, const Error* error = nullptr, std::int32_t tgid = 0) const;

    Model& model_;
    Updater& updater_;
    ProcConnector* connector_;
    std::chrono::milliseconds verify_interval_;
    Watch watch_;
    Notify notify_;

    // Asynchronous rescan.
    Fd rescan_done_;  // eventfd the reader thread signals
    std::thread rescan_thread_;
    std::optional<Result<ProcSnapshot>> snapshot_;
    const char* rescan_why_ = "";
    const char* rescan_again_ = nullptr;  // asked for while one was running

    std::vector<ProcEvent> batch_;  // events of one loop turn
    // Forks with no later event in their turn's batch, applied with the next batch or after
    // kForkGrace (take_last_forks).
    std::vector<ProcEvent> held_;
    Clock::time_point held_at_{};

    // Verify pass.
    std::vector<std::int32_t> verify_queue_;
    std::size_t verify_pos_ = 0;
    Clock::time_point next_verify_{};
    Clock::time_point verify_resume_{};  // a pass's next slice, paced
    std::uint64_t verify_passes_ = 0;

    // mountinfo watches: mount namespace -> open /proc/PID/mountinfo (POLLPRI on change).
    std::unordered_map<NsId, Fd> mount_watches_;
    std::uint64_t mount_refreshes_ = 0;
};

}  // namespace pidns
