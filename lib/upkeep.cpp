// Keeping the index current around the events: the rescan thread, forks held back, the paced verify pass, mount watches.
#include "upkeep.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <string_view>
#include <utility>

#include "ns_link.h"
#include "proc_connector.h"
#include "updater.h"

namespace pidns {
namespace {

using Clock = Upkeep::Clock;

// A pass runs at most a tenth of the time: after a slice of T, the next starts 9T later. A pass
// reads ten links of every process (30-80 us each, more on bigger hosts): unpaced, 100,000
// processes kept pidnsd at 45% of a core with nothing happening; paced, 5-9% (and a pass takes
// ten times its reading time: over a minute there, ~0.3 s per 1,000 on a host of 10,000).
constexpr int kVerifyDutyDivisor = 10;
constexpr std::size_t kMaxBatchEvents = 16384;
// How long a fork with nothing after it waits for its child's next event (its exit, mostly).
constexpr std::chrono::milliseconds kForkGrace{1};

}  // namespace

Result<std::unique_ptr<Upkeep>> Upkeep::create(Model& model, Updater& updater, ProcConnector* connector,
                                               std::chrono::milliseconds verify_interval, Watch watch, Notify notify) {
    const int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) return make_error(Errc::io, "eventfd", errno);
    return std::unique_ptr<Upkeep>(
        new Upkeep(model, updater, connector, verify_interval, std::move(watch), std::move(notify), Fd(efd)));
}

Upkeep::Upkeep(Model& model, Updater& updater, ProcConnector* connector, std::chrono::milliseconds verify_interval,
               Watch watch, Notify notify, Fd rescan_done)
    : model_(model),
      updater_(updater),
      connector_(connector),
      verify_interval_(verify_interval),
      watch_(std::move(watch)),
      notify_(std::move(notify)),
      rescan_done_(std::move(rescan_done)),
      next_verify_(Clock::now() + verify_interval) {}

Upkeep::~Upkeep() {
    if (rescan_thread_.joinable()) rescan_thread_.join();
}

void Upkeep::notify(UpkeepNote note, const char* why, const Error* error, std::int32_t tgid) const {
    if (notify_) notify_(note, why, error, tgid);
}

void Upkeep::start_rescan(const char* why) {
    if (updater_.rescanning()) {
        rescan_again_ = why;
        return;
    }
    rescan_why_ = why;
    updater_.begin_rescan();
    snapshot_.reset();
    rescan_thread_ = std::thread([this] {
        snapshot_.emplace(model_.read_snapshot());
        const std::uint64_t one = 1;
        (void)!::write(rescan_done_.get(), &one, sizeof one);
    });
}

void Upkeep::finish_rescan() {
    std::uint64_t n = 0;
    (void)!::read(rescan_done_.get(), &n, sizeof n);
    if (!rescan_thread_.joinable()) return;
    rescan_thread_.join();
    auto snap = std::move(*snapshot_);
    snapshot_.reset();
    if (auto s = updater_.finish_rescan(std::move(snap)); !s) {
        notify(UpkeepNote::rescan_failed, rescan_why_, &s.error());
        if (!rescan_again_) rescan_again_ = rescan_why_;
    } else {
        notify(UpkeepNote::rescanned, rescan_why_);
    }
    // The old index and the snapshot (read on another thread: another malloc arena) are freed;
    // give their pages back, or RSS keeps both sizes after the first rescan.
    ::malloc_trim(0);
    reconcile_mount_watches();
    if (const char* again = std::exchange(rescan_again_, nullptr)) start_rescan(again);
}

bool Upkeep::events_current() const {
    // Not while a rescan's snapshot is being read (events wait for replay), nor with events (or
    // an overflow, POLLERR) waiting in the socket.
    if (!connector_ || updater_.rescanning()) return false;
    if (!held_.empty()) return false;
    pollfd p{connector_->fd(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
}

std::optional<Clock::time_point> Upkeep::held_until() const {
    if (held_.empty()) return std::nullopt;
    return held_at_ + kForkGrace;
}

bool Upkeep::drain_events(std::chrono::microseconds budget) {
    const auto until = Clock::now() + budget;
    bool lost = false;
    bool more = true;
    // One batch for everything read in this turn: a child that forks and exits within it is
    // never read (most of a fork storm), a process with many events is read once. The forks
    // held back by the last turn come first: they happened before anything read now.
    batch_.clear();
    batch_.swap(held_);
    const std::size_t carried = batch_.size();
    while (more && Clock::now() < until && batch_.size() < kMaxBatchEvents + carried) {
        auto r = connector_->read_some(64);
        if (!r) {
            notify(UpkeepNote::read_failed, "", &r.error());
            break;
        }
        batch_.insert(batch_.end(), r->events.begin(), r->events.end());
        lost = lost || r->lost;
        more = !r->would_block;
    }
    // Forks read now with nothing after them wait for the next batch (at most kForkGrace), once.
    held_ = take_last_forks(batch_, carried);
    if (!held_.empty()) held_at_ = Clock::now();
    updater_.apply(batch_);
    if (lost) {
        updater_.count_loss();
        notify(UpkeepNote::events_lost, "events lost");
        start_rescan("events lost");
    }
    return more;
}

bool Upkeep::verifying() const {
    return connector_ != nullptr && verify_interval_.count() > 0 && !updater_.rescanning();
}

void Upkeep::verify_some(std::chrono::microseconds budget) {
    if (verify_queue_.empty() && verify_pos_ == 0) {
        verify_queue_.reserve(model_.index().process_count());
        for (const auto& [tgid, p] : model_.index().processes()) verify_queue_.push_back(tgid);
    }
    const auto start = Clock::now();
    const auto until = start + budget;
    while (verify_pos_ < verify_queue_.size()) {
        const std::int32_t tgid = verify_queue_[verify_pos_++];
        if (model_.index().find_process(tgid) == nullptr) continue;  // exited meanwhile
        auto r = model_.verify_process(tgid);
        if (r && *r) notify(UpkeepNote::verify_reread, "verify pass", nullptr, tgid);
        if ((verify_pos_ & 15) == 0) {
            const auto now = Clock::now();
            if (now >= until) {
                verify_resume_ = now + (now - start) * (kVerifyDutyDivisor - 1);
                return;
            }
        }
    }
    verify_queue_.clear();
    verify_pos_ = 0;
    ++verify_passes_;
    refresh_mounts("verify pass");
    next_verify_ = Clock::now() + verify_interval_;
}

void Upkeep::refresh_mounts(const char* why) {
    ++mount_refreshes_;
    if (auto s = model_.refresh_mounts(); !s) notify(UpkeepNote::mounts_unreadable, why, &s.error());
    reconcile_mount_watches();
}

bool Upkeep::watched_namespace_gone() const {
    return std::any_of(mount_watches_.begin(), mount_watches_.end(),
                       [&](const auto& w) { return model_.index().find_namespace(w.first) == nullptr; });
}

void Upkeep::reconcile_mount_watches() {
    // Each open mountinfo keeps its mount namespace alive: watch only what the index still has.
    std::vector<std::pair<NsId, std::string>> want;
    const auto& index = model_.index();
    want.emplace_back(model_.self_ns(NsType::mnt), "self");
    if (const auto* init = index.find_process(1)) want.emplace_back(init->ns_of(NsType::mnt), "1");
    for (const auto& [mntns, reader] : model_.nsfs_mount_namespaces()) want.emplace_back(mntns, std::to_string(reader));
    for (auto it = mount_watches_.begin(); it != mount_watches_.end();) {
        const bool keep = index.find_namespace(it->first) != nullptr &&
                          std::any_of(want.begin(), want.end(), [&](const auto& w) { return w.first == it->first; });
        it = keep ? std::next(it) : mount_watches_.erase(it);  // closing the fd leaves the poll set
    }
    for (const auto& [mntns, pid] : want) {
        if (mount_watches_.contains(mntns)) continue;
        const auto* ns = index.find_namespace(mntns);
        if (!ns) continue;
        // Open, then check the reader is still in that mount namespace (it may have exited or moved).
        int fd = ::openat(model_.proc_fd(), (pid + "/mountinfo").c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        Fd owner(fd);
        if (ns_link_inode_at(model_.proc_fd(), (pid + "/ns/mnt").c_str(), NsType::mnt) != ns->meta.inode) continue;
        if (watch_ && !watch_(fd)) continue;
        mount_watches_.emplace(mntns, std::move(owner));
    }
}

}  // namespace pidns
