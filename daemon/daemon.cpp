// pidnsd's start-up and event loop: bus, proc connector and signals on one epoll set.
#include "daemon.h"

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include "clients.h"
#include "engine_state.h"
#include "errors.h"
#include "quotas.h"
#include "manager.h"
#include "model.h"
#include "kernel_version.h"
#include "machines.h"
#include "ns_link.h"
#include "peer_ping.h"
#include "polkit.h"
#include "proc_connector.h"
#include "signals.h"
#include "updater.h"

namespace pidnsd {
namespace {

using Clock = std::chrono::steady_clock;
using pidns::Errc;
using pidns::make_error;

constexpr std::chrono::microseconds kEventBudget{1000};   // netlink work per loop turn
constexpr std::chrono::microseconds kVerifyBudget{2000};  // verify-pass work per loop turn
// A pass runs at most a tenth of the time: after a slice of T, the next starts 9T later. A pass
// reads ten links of every process (30-80 us each, more on bigger hosts): unpaced, 100,000
// processes kept pidnsd at 45% of a core with nothing happening; paced, 5-9% (and a pass takes
// ten times its reading time: over a minute there, ~0.3 s per 1,000 on a host of 10,000).
constexpr int kVerifyDutyDivisor = 10;
constexpr std::size_t kMaxBatchEvents = 16384;
// How long a fork with nothing after it waits for its child's next event (its exit, mostly).
constexpr std::chrono::milliseconds kForkGrace{1};

enum : std::uint64_t { kTagBus = 1, kTagNetlink = 2, kTagSignal = 3, kTagRescanDone = 4, kTagMount = 5, kTagPing = 6 };

pidns::Status epoll_add(int epfd, int fd, std::uint32_t events, std::uint64_t tag, const char* what = "epoll_ctl") {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) return make_error(Errc::io, what, errno);
    return pidns::Ok{};
}

std::uint64_t mnt_inode_of(const std::string& pid) {
    char buf[64];
    const ssize_t n = ::readlink(("/proc/" + pid + "/ns/mnt").c_str(), buf, sizeof buf);
    if (n <= 0) return 0;
    auto link = pidns::parse_ns_link(std::string_view(buf, static_cast<std::size_t>(n)));
    return link && link->type == pidns::NsType::mnt ? link->inode : 0;
}

std::uint32_t poll_to_epoll(short events) {
    std::uint32_t e = 0;
    if (events & POLLIN) e |= EPOLLIN;
    if (events & POLLOUT) e |= EPOLLOUT;
    if (events & POLLPRI) e |= EPOLLPRI;
    return e;
}

const char* event_source_name(bool connector) { return connector ? "proc-connector" : "polling"; }

// Another connection to the bus pidnsd serves on, for Peer.Ping (daemon/peer_ping.h); nullptr
// when it cannot be made (logged).
sd_bus* open_ping_connection(const Options& o) {
    sd_bus* b = nullptr;
    int r = -EINVAL;
    switch (o.bus) {
    case BusKind::system: r = sd_bus_open_system(&b); break;
    case BusKind::session: r = sd_bus_open_user(&b); break;
    case BusKind::address:
        if ((r = sd_bus_new(&b)) < 0) break;
        if ((r = sd_bus_set_address(b, o.bus_address.c_str())) >= 0 && (r = sd_bus_set_bus_client(b, 1)) >= 0)
            r = sd_bus_start(b);
        break;
    }
    if (r < 0) {
        spdlog::warn("cannot open a connection for pinging subscribers: {}", std::strerror(-r));
        if (b != nullptr) sd_bus_unref(b);
        return nullptr;
    }
    return b;
}

// The work of one loop turn, phase by phase, so that a slow turn can say what it was doing.
class TurnClock {
public:
    void begin(const char* phase) {
        end();
        phase_ = phase;
        started_ = Clock::now();
    }
    void end() {
        if (phase_ == nullptr) return;
        const auto d = Clock::now() - started_;
        busy_ += d;
        if (n_ < phases_.size()) phases_[n_++] = {phase_, d};
        phase_ = nullptr;
    }
    void note(std::string what) { notes_ += notes_.empty() ? what : ", " + what; }
    [[nodiscard]] Clock::duration busy() const { return busy_; }
    [[nodiscard]] std::string describe() const {
        std::string out;
        for (std::size_t i = 0; i < n_; ++i) {
            const auto ms = std::chrono::duration<double, std::milli>(phases_[i].second).count();
            if (ms < 1) continue;
            out += out.empty() ? "" : ", ";
            out += std::string(phases_[i].first) + " " + std::to_string(static_cast<long long>(ms)) + " ms";
        }
        if (!notes_.empty()) out += " (" + notes_ + ")";
        return out;
    }

private:
    const char* phase_ = nullptr;
    Clock::time_point started_{};
    Clock::duration busy_{};
    std::array<std::pair<const char*, Clock::duration>, 16> phases_{};
    std::size_t n_ = 0;
    std::string notes_;
};

}  // namespace

Daemon::Daemon(const Options& opts) : opts_(opts) {}

Daemon::~Daemon() {
    if (rescan_thread_.joinable()) rescan_thread_.join();  // it reads through the model
    fanout_.reset();
    peer_ping_.reset();
    manager_.reset();
    machines_.reset();
    polkit_.reset();
    clients_.reset();
    conn_.reset();
}

pidns::Result<std::unique_ptr<Daemon>> Daemon::start(const Options& opts) {
    std::unique_ptr<Daemon> d(new Daemon(opts));

    const auto& f = pidns::kernel_features();
    spdlog::info("kernel: NS_GET_ID {}, pid ioctls {}, NS_GET_OWNER_UID {}", f.ns_get_id ? "yes" : "no",
                 f.pid_ioctls ? "yes" : "no", f.owner_uid ? "yes" : "no");

    pidns::DiscoveryOptions discovery;
    discovery.assume_kernel = opts.assume_kernel;
    auto model = pidns::Model::create(discovery);
    if (!model) return model.error();
    if (opts.assume_kernel) {
        const auto& a = (*model)->features();
        spdlog::info("--assume-kernel={}: using NS_GET_ID {}, pid ioctls {}, proc connector event filter {}, "
                     "as on Linux {}",
                     opts.assume_kernel->str(), a.ns_get_id ? "yes" : "no", a.pid_ioctls ? "yes" : "no",
                     pidns::has_event_filter(*opts.assume_kernel) ? "if the kernel has it" : "no",
                     opts.assume_kernel->str());
    }
    d->model_ = std::move(*model);
    d->updater_ = std::make_unique<pidns::Updater>(*d->model_);

    // Subscribe before the scan, so nothing that happens during the scan is missed; the events
    // that arrive meanwhile are applied after it (all of them are idempotent).
    if (opts.proc_connector) {
        pidns::ProcConnectorOptions pco;
        pco.rcvbuf_bytes = static_cast<int>(opts.netlink_buffer);
        pco.use_event_filter = !opts.assume_kernel || pidns::has_event_filter(*opts.assume_kernel);
        auto pc = pidns::ProcConnector::open(pco);
        if (pc) {
            d->connector_ = std::move(*pc);
            spdlog::info("event source: proc connector (receive buffer {} bytes, kernel filter {})",
                         d->connector_->rcvbuf(), d->connector_->filtered() ? "on" : "off");
        } else {
            spdlog::warn("event source: polling /proc every {} ms, because the proc connector is unavailable: {}",
                         opts.poll_interval.count(), pc.error().describe());
        }
    } else {
        spdlog::info("event source: polling /proc every {} ms (--no-proc-connector)", opts.poll_interval.count());
    }

    if (d->connector_) d->model_->set_event_check([raw = d.get()] { return raw->events_current(); });
    if (auto s = d->updater_->rescan(); !s) return s.error();
    (void)d->updater_->take_changes();  // nobody is listening yet
    ::malloc_trim(0);                          // the scan's scratch
    spdlog::info("indexed {} processes and {} namespaces in {} ms", d->model_->index().process_count(),
                 d->model_->index().namespace_count(), d->updater_->stats().last_rescan.count() / 1000.0);

    if (auto s = d->setup_signals(); !s) return s.error();
    d->reconcile_mount_watches();
    if (auto s = d->connect_bus(); !s) return s.error();
    d->manager_->set_statistics([raw = d.get()](bool everything) { return raw->statistics(everything); });
    d->manager_->set_event_sequence([raw = d.get()] { return raw->updater_->stats().events; });
    d->next_verify_ = Clock::now() + opts.verify_interval;
    if (d->connector_ && opts.verify_interval.count() > 0)
        spdlog::info("verify pass every {} ms; {} mountinfo watch(es)", opts.verify_interval.count(),
                     d->mount_watches_.size());

    std::uint64_t wd_usec = 0;
    if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) d->watchdog_period_ = std::chrono::microseconds(wd_usec / 2);
    spdlog::info("serving org.pidns on the {} bus", opts.bus == BusKind::system    ? "system"
                                                    : opts.bus == BusKind::session ? "session"
                                                                                   : opts.bus_address.c_str());
    sd_notifyf(0, "READY=1\nSTATUS=Serving org.pidns: %zu processes, %zu namespaces",
               d->model_->index().process_count(), d->model_->index().namespace_count());
    return d;
}

pidns::Status Daemon::setup_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (const char* v = std::getenv("PIDNSD_TEST_SLOW_TURN_MS"); v != nullptr && *v != 0) {
        test_slow_turn_ = std::chrono::milliseconds(std::strtoul(v, nullptr, 10));
        sigaddset(&set, SIGUSR1);
        spdlog::warn("test hook: SIGUSR1 makes one loop turn {} ms slow (PIDNSD_TEST_SLOW_TURN_MS)", test_slow_turn_.count());
    }
    if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return make_error(Errc::io, "sigprocmask", errno);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) return make_error(Errc::io, "signalfd", errno);
    signal_fd_ = pidns::Fd(fd);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return make_error(Errc::io, "epoll_create1", errno);
    epoll_ = pidns::Fd(ep);
    if (auto s = epoll_add(epoll_.get(), signal_fd_.get(), EPOLLIN, kTagSignal); !s) return s;
    if (connector_)
        if (auto s = epoll_add(epoll_.get(), connector_->fd(), EPOLLIN, kTagNetlink); !s) return s;
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) return make_error(Errc::io, "eventfd", errno);
    rescan_done_fd_ = pidns::Fd(efd);
    return epoll_add(epoll_.get(), efd, EPOLLIN, kTagRescanDone);
}

pidns::Status Daemon::connect_bus() {
    const std::string where = opts_.bus == BusKind::system    ? std::string("system bus")
                              : opts_.bus == BusKind::session ? std::string("session bus")
                                                              : "bus at " + opts_.bus_address;
    try {
        switch (opts_.bus) {
        case BusKind::system: conn_ = sdbus::createSystemBusConnection(); break;
        case BusKind::session: conn_ = sdbus::createSessionBusConnection(); break;
        case BusKind::address: conn_ = sdbus::createSessionBusConnectionWithAddress(opts_.bus_address); break;
        }
    } catch (const sdbus::Error& e) {
        return make_error(Errc::io, "cannot connect to the " + where + " (" + e.getMessage() +
                                        "); is dbus-daemon running there? choose another with --bus");
    }
    try {
        clients_ = std::make_unique<Clients>(*conn_, *model_);
        polkit_ = std::make_unique<Polkit>(*conn_, opts_.polkit);
        clients_->set_polkit_grants([p = polkit_.get()](std::uint32_t uid) { return p->granted_uid(uid); });
        manager_ = std::make_unique<Manager>(*conn_, *model_, *clients_, *polkit_,
                                             event_source_name(connector_ != nullptr));
        peer_ping_ = std::make_unique<PeerPing>(*conn_, [this] { return open_ping_connection(opts_); });
        fanout_ = std::make_unique<SignalFanout>(
            *model_, *clients_,
            [m = manager_.get()](const std::string& to, const char* member, std::uint64_t id, pidns::NsType type) {
                m->send_signal(to, member, id, type);
            },
            [p = peer_ping_.get()](const std::string& to, std::function<void(PeerPing::Result)> done) {
                return p->ping(to, std::move(done));
            });
        manager_->set_fanout(fanout_.get());
        machines_ = std::make_unique<Machines>(*conn_);
        manager_->set_machines(machines_.get());
        auto roots = pidns::engine_roots(opts_.container_state);  // checked by parse_options
        engines_ = std::make_unique<pidns::EngineState>(roots ? std::move(*roots) : pidns::EngineRoots{});
        manager_->set_engines(engines_.get());
    } catch (const sdbus::Error& e) {
        return make_error(Errc::io, "cannot set up /org/pidns on the " + where + " (" + e.getMessage() + ")");
    }
    try {
        conn_->requestName(kBusName);
    } catch (const sdbus::Error& e) {
        return make_error(Errc::io, "cannot own the name org.pidns on the " + where + " (" + e.getName() + ": " +
                                        e.getMessage() +
                                        "); is another pidnsd running, and is org.pidns.conf in the bus's "
                                        "policy directory (/usr/share/dbus-1/system.d)?");
    }
    return epoll_add(epoll_.get(), conn_->getEventLoopPollData().fd, EPOLLIN, kTagBus, "epoll_ctl (bus)");
}

void Daemon::handle_signals(bool& stop) {
    signalfd_siginfo si{};
    while (::read(signal_fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo == SIGHUP) {
            start_rescan("SIGHUP");
            if (polkit_->enabled()) polkit_->reload_rules();
        } else if (si.ssi_signo == SIGUSR1) {
            test_slow_pending_ = test_slow_turn_.count() > 0;
        } else {
            spdlog::info("{}: exiting", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            stop = true;
        }
    }
}

void Daemon::start_rescan(const char* why) {
    if (updater_->rescanning()) {
        rescan_again_ = why;
        return;
    }
    rescan_why_ = why;
    updater_->begin_rescan();
    snapshot_.reset();
    rescan_thread_ = std::thread([this] {
        snapshot_.emplace(model_->read_snapshot());
        const std::uint64_t one = 1;
        (void)!::write(rescan_done_fd_.get(), &one, sizeof one);
    });
}

void Daemon::finish_rescan() {
    std::uint64_t n = 0;
    (void)!::read(rescan_done_fd_.get(), &n, sizeof n);
    if (!rescan_thread_.joinable()) return;
    rescan_thread_.join();
    auto snap = std::move(*snapshot_);
    snapshot_.reset();
    if (auto s = updater_->finish_rescan(std::move(snap)); !s) {
        spdlog::error("rescan ({}) failed: {}; trying again", rescan_why_, s.error().describe());
        if (!rescan_again_) rescan_again_ = rescan_why_;
    } else {
        log_rescan(rescan_why_);
    }
    // The old index and the snapshot (read on another thread: another malloc arena) are freed;
    // give their pages back, or RSS keeps both sizes after the first rescan.
    ::malloc_trim(0);
    reconcile_mount_watches();
    if (const char* again = std::exchange(rescan_again_, nullptr)) start_rescan(again);
}

void Daemon::log_rescan(const char* why) const {
    spdlog::log(std::string_view(why) == "poll" ? spdlog::level::debug : spdlog::level::info,
                "rescan ({}): {} processes, {} namespaces in {} ms (of which {} ms building the index)", why,
                model_->index().process_count(), model_->index().namespace_count(),
                updater_->stats().last_rescan.count() / 1000.0, updater_->stats().last_rescan_build.count() / 1000.0);
}

bool Daemon::events_current() const {
    // Not while a rescan's snapshot is being read (events wait for replay), nor with events (or
    // an overflow, POLLERR) waiting in the socket.
    if (!connector_ || updater_->rescanning()) return false;
    if (!held_.empty()) return false;
    pollfd p{connector_->fd(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
}

bool Daemon::drain_events(std::chrono::microseconds budget) {
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
            spdlog::error("proc connector read failed: {}", r.error().describe());
            break;
        }
        batch_.insert(batch_.end(), r->events.begin(), r->events.end());
        lost = lost || r->lost;
        more = !r->would_block;
    }
    // Forks read now with nothing after them wait for the next batch (at most kForkGrace), once.
    held_ = pidns::take_last_forks(batch_, carried);
    if (!held_.empty()) held_at_ = Clock::now();
    updater_->apply(batch_);
    if (lost) {
        updater_->count_loss();
        spdlog::warn("proc connector lost events (ENOBUFS, {} so far): rescanning /proc", updater_->stats().lost);
        start_rescan("events lost");
    }
    return more;
}

void Daemon::verify_some(std::chrono::microseconds budget) {
    if (verify_queue_.empty() && verify_pos_ == 0) {
        verify_queue_.reserve(model_->index().process_count());
        for (const auto& [tgid, p] : model_->index().processes()) verify_queue_.push_back(tgid);
    }
    const auto start = Clock::now();
    const auto until = start + budget;
    while (verify_pos_ < verify_queue_.size()) {
        const std::int32_t tgid = verify_queue_[verify_pos_++];
        if (model_->index().find_process(tgid) == nullptr) continue;  // exited meanwhile
        auto r = model_->verify_process(tgid);
        if (r && *r) spdlog::debug("verify: process {} changed namespaces without an event; re-read", tgid);
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
    next_verify_ = Clock::now() + opts_.verify_interval;
}

void Daemon::refresh_mounts(const char* why) {
    ++mount_refreshes_;
    if (auto s = model_->refresh_mounts(); !s) spdlog::warn("re-reading nsfs bind mounts ({}): {}", why, s.error().describe());
    reconcile_mount_watches();
}

void Daemon::reconcile_mount_watches() {
    // Each open mountinfo keeps its mount namespace alive: watch only what the index still has.
    std::vector<std::pair<pidns::NsId, std::string>> want;
    const auto& index = model_->index();
    want.emplace_back(model_->self_ns(pidns::NsType::mnt), "self");
    if (const auto* init = index.find_process(1)) want.emplace_back(init->ns_of(pidns::NsType::mnt), "1");
    for (const auto& [mntns, reader] : model_->nsfs_mount_namespaces()) want.emplace_back(mntns, std::to_string(reader));
    for (auto it = mount_watches_.begin(); it != mount_watches_.end();) {
        const bool keep = index.find_namespace(it->first) != nullptr &&
                          std::any_of(want.begin(), want.end(), [&](const auto& w) { return w.first == it->first; });
        it = keep ? std::next(it) : mount_watches_.erase(it);  // closing the fd leaves the epoll set
    }
    for (const auto& [mntns, pid] : want) {
        if (mount_watches_.contains(mntns)) continue;
        const auto* ns = index.find_namespace(mntns);
        if (!ns) continue;
        // Open, then check the reader is still in that mount namespace (it may have exited or moved).
        int fd = ::open(("/proc/" + pid + "/mountinfo").c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        pidns::Fd owner(fd);
        if (mnt_inode_of(pid) != ns->meta.inode) continue;
        if (!epoll_add(epoll_.get(), fd, EPOLLPRI, kTagMount)) continue;
        mount_watches_.emplace(mntns, std::move(owner));
    }
}

std::map<std::string, sdbus::Variant> Daemon::statistics(bool everything) const {
    const auto& st = updater_->stats();
    auto usec = [](auto d) { return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()); };
    auto u64 = [](auto v) { return sdbus::Variant(static_cast<std::uint64_t>(v)); };
    std::map<std::string, sdbus::Variant> m;
    m["EventSource"] = sdbus::Variant(std::string(event_source_name(connector_ != nullptr)));
    m["ReceiveBufferBytes"] = u64(connector_ ? std::max(connector_->rcvbuf(), 0) : 0);
    m["UptimeUSec"] = sdbus::Variant(usec(Clock::now() - started_));
    m["Scope"] = sdbus::Variant(std::string(everything ? "all" : "caller"));
    // Which kernel interfaces are in use: all the kernel has, or those of --assume-kernel's version.
    m["KernelMode"] = sdbus::Variant(opts_.assume_kernel ? "assume " + opts_.assume_kernel->str() : std::string("native"));
    std::string interfaces;
    auto add = [&](bool on, const char* name) {
        if (on) interfaces += (interfaces.empty() ? "" : " ") + std::string(name);
    };
    add(model_->features().ns_get_id, "ns-get-id");
    add(model_->features().pid_ioctls, "pid-ioctls");
    add(connector_ && connector_->filtered(), "event-filter");
    m["KernelInterfaces"] = sdbus::Variant(interfaces);
    if (!everything) return m;  // the rest tells of other users' activity
    m["EventsReceived"] = sdbus::Variant(st.events);
    m["EventReads"] = sdbus::Variant(st.reads);
    m["EventReadsCoalesced"] = sdbus::Variant(st.coalesced);
    m["EventsLost"] = sdbus::Variant(st.lost);
    m["Rescans"] = sdbus::Variant(st.rescans);
    m["RescanFailures"] = sdbus::Variant(st.rescan_failures);
    m["LastRescanUSec"] = sdbus::Variant(usec(st.last_rescan));
    m["LastRescanBuildUSec"] = sdbus::Variant(usec(st.last_rescan_build));
    m["RescanInProgress"] = sdbus::Variant(updater_->rescanning());
    m["VerifyPasses"] = sdbus::Variant(verify_passes_);
    m["VerifyMismatches"] = sdbus::Variant(model_->verify_mismatches());
    m["MountRefreshes"] = sdbus::Variant(mount_refreshes_);
    m["MountWatches"] = u64(mount_watches_.size());
    m["MalformedEvents"] = sdbus::Variant(connector_ ? connector_->malformed() : std::uint64_t{0});
    m["Clients"] = u64(clients_->count());
    m["Subscribers"] = u64(clients_->subscribers());
    m["CallsInFlight"] = u64(clients_->calls_in_flight());
    m["DeferredRefusals"] = u64(clients_->deferred_refusals());
    m["LimitsExceeded"] = u64(clients_->limits_exceeded());
    m["IdentifyFailures"] = u64(clients_->identify_failures());
    m["SignalsSent"] = u64(fanout_->sent());
    m["Resyncs"] = u64(fanout_->resyncs());
    m["SignalBacklog"] = u64(fanout_->backlog());
    m["SignalPings"] = u64(fanout_->pings());
    m["SignalPingsAnswered"] = u64(fanout_->pings_answered());
    m["SignalStalls"] = u64(fanout_->stalls());
    m["SubscribersStalled"] = u64(fanout_->stalled());
    m["ClientsGoneUnannounced"] = u64(clients_->revalidated_gone());
    // What each class's pool holds (daemon/quota.h): unprivileged principals', privileged ones',
    // and connections not identified yet.
    for (const bool privileged : {false, true}) {
        const auto& p = clients_->quotas().pool(privileged);
        const std::string cls = privileged ? "Privileged" : "Unprivileged";
        m[cls + "Calls"] = u64(p.calls);
        m[cls + "Pids"] = u64(p.pids);
        m[cls + "Dumps"] = u64(p.dumps);
        m[cls + "Clients"] = u64(p.clients);
        m[cls + "Subscribers"] = u64(p.subscribers);
    }
    m["UnidentifiedCalls"] = u64(clients_->quotas().unidentified().calls);
    m["UnidentifiedClients"] = u64(clients_->quotas().unidentified().clients);
    m["Principals"] = u64(clients_->quotas().principals());
    m["PolkitCached"] = u64(polkit_->cached());
    m["PolkitPending"] = u64(polkit_->pending());
    m["PolkitWaiting"] = u64(polkit_->waiting());
    m["PolkitAsked"] = u64(polkit_->asked());
    m["PolkitSkippedBudget"] = u64(polkit_->skipped_budget());
    m["PolkitNegativeCached"] = u64(polkit_->negative_cached());
    m["PolkitSkippedCannotGrant"] = u64(polkit_->skipped_cannot_grant());
    m["PolkitRulesNameAction"] = sdbus::Variant(polkit_->rules().rules_name_action());
    m["MachinedUnits"] = u64(machines_->size());
    m["UnsafePathsSkipped"] = u64(model_->unsafe_paths_skipped());
    m["FdScansTruncated"] = u64(model_->fd_scans_truncated());
    m["ProcListings"] = u64(model_->proc_listings());
    m["ProcListingsSkipped"] = u64(model_->proc_listings_skipped());
    m["SlowLoopTurns"] = sdbus::Variant(slow_turns_);
    return m;
}

bool Daemon::publish_changes() {
    // A watched mount namespace that left the index took its nsfs bind mounts with it.
    bool watched_gone = false;
    for (const auto& [mntns, fd] : mount_watches_) watched_gone = watched_gone || !model_->index().find_namespace(mntns);
    if (watched_gone) refresh_mounts("mount namespace gone");
    if (model_->has_stale()) model_->reread_stale();  // before the changes are taken: they are among them
    fanout_->push(updater_->take_changes());
    for (const auto& name : clients_->take_departed()) polkit_->forget(name);
    return fanout_->run(limits::kSignalBudget);
}

void Daemon::watchdog_ping() { sd_notify(0, "WATCHDOG=1"); }

void Daemon::watch_ping_connections() {
    std::unordered_set<int> open;
    for (const auto& p : peer_ping_->poll_fds()) {
        open.insert(p.fd);
        epoll_event ev{};
        ev.events = poll_to_epoll(p.events);
        ev.data.u64 = kTagPing;
        // A number seen before may be a new connection's (the old one's close left the set).
        if (!ping_fds_.contains(p.fd) || epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, p.fd, &ev) != 0)
            (void)epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, p.fd, &ev);
    }
    ping_fds_ = std::move(open);
}

int Daemon::run() {
    bool stop = false;
    bool events_pending = false;
    auto next_poll = Clock::now() + opts_.poll_interval;
    auto next_watchdog = Clock::now() + watchdog_period_;
    const int bus_fd = conn_->getEventLoopPollData().fd;
    while (!stop) {
        TurnClock turn;
        // Bus messages: handlers only parse and queue, so they are dispatched within a time budget.
        // Messages left unread (budget, or a privileged call to answer first) need no turn of their
        // own: the bus fd stays readable, and sd-bus's timeout is 0 while it holds read messages
        // (sd_bus_get_timeout), so epoll_wait below returns at once for them.
        turn.begin("bus");
        try {
            const auto until = Clock::now() + limits::kBusBudget;
            std::size_t n = 0;
            while (conn_->processPendingRequest()) {
                ++n;
                // A privileged caller's call, once read, runs before the rest of the queue is read.
                if (Clock::now() >= until || clients_->privileged_waiting()) break;
            }
            if (n > 0) turn.note(std::to_string(n) + " bus messages");
        } catch (const sdbus::Error& e) {
            spdlog::critical("lost the bus connection ({}): exiting", e.getMessage());
            return kExitFailure;
        }
        peer_ping_->process();  // subscribers' answers to Peer.Ping, on connections of their own
        machines_->tick();  // asks machined again after its signals (asynchronously)
        // Calls: round-robin between uids and connections, one slice each.
        turn.begin("calls");
        clients_->send_due_refusals();
        clients_->revalidate();
        polkit_->pump();
        const bool calls_pending = clients_->run(limits::kCallBudget);
        turn.begin("signals");
        const bool signals_pending = publish_changes();
        turn.end();

        const auto pd = conn_->getEventLoopPollData();
        epoll_event ev{};
        ev.events = poll_to_epoll(pd.events);
        ev.data.u64 = kTagBus;
        if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, bus_fd, &ev) != 0) {
            spdlog::critical("epoll_ctl on the bus fd failed: {}", std::strerror(errno));
            return kExitFailure;
        }

        watch_ping_connections();
        auto now = Clock::now();
        long long timeout_ms = -1;
        auto until = [&](Clock::time_point t) {
            const auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - now).count();
            const long long v = std::max<long long>(ms, 0);
            timeout_ms = timeout_ms < 0 ? v : std::min(timeout_ms, v);
        };
        if (auto rel = pd.getRelativeTimeout()) until(now + *rel);
        if (!connector_ && !updater_->rescanning()) until(next_poll);
        const bool verifying = connector_ && opts_.verify_interval.count() > 0 && !updater_->rescanning();
        if (verifying) until(verify_pos_ > 0 ? verify_resume_ : next_verify_);
        if (watchdog_period_.count() > 0) until(next_watchdog);
        if (signals_pending) until(now + std::chrono::milliseconds(10));  // paced: tokens refill
        if (auto due = clients_->next_refusal()) until(*due);
        if (auto due = clients_->next_revalidation()) until(*due);
        if (auto due = polkit_->next_wake()) until(*due);
        if (!held_.empty()) until(held_at_ + kForkGrace);
        if (events_pending || calls_pending || test_slow_pending_ || model_->has_stale()) timeout_ms = 0;

        epoll_event out[8];
        const int n = epoll_wait(epoll_.get(), out, 8, static_cast<int>(std::min<long long>(timeout_ms, 60'000)));
        if (n < 0 && errno != EINTR) {
            spdlog::critical("epoll_wait failed: {}", std::strerror(errno));
            return kExitFailure;
        }
        bool netlink_ready = events_pending;
        bool mounts_changed = false;
        for (int i = 0; i < n; ++i) {
            switch (out[i].data.u64) {
            case kTagSignal: handle_signals(stop); break;
            case kTagNetlink: netlink_ready = true; break;
            case kTagRescanDone:
                turn.begin("rescan (building the index)");
                finish_rescan();
                turn.end();
                break;
            case kTagMount: mounts_changed = true; break;
            default: break;
            }
        }
        if (!held_.empty() && Clock::now() >= held_at_ + kForkGrace) netlink_ready = true;  // apply them
        if (connector_ && netlink_ready) {
            turn.begin("process events");
            events_pending = drain_events(kEventBudget);
        }
        if (mounts_changed) {
            turn.begin("nsfs mounts");
            refresh_mounts("mountinfo changed");
        }
        turn.end();

        now = Clock::now();
        if (!connector_ && !updater_->rescanning() && now >= next_poll) {
            start_rescan("poll");
            next_poll = now + opts_.poll_interval;
        }
        if (verifying && now >= (verify_pos_ > 0 ? verify_resume_ : next_verify_)) {
            turn.begin("verify pass");
            verify_some(kVerifyBudget);
            turn.end();
        }
        if (test_slow_pending_) {
            turn.begin("test hook");
            test_slow_pending_ = false;
            std::this_thread::sleep_for(test_slow_turn_);
            turn.end();
        }
        if (watchdog_period_.count() > 0 && now >= next_watchdog) {
            watchdog_ping();
            next_watchdog = now + watchdog_period_;
        }
        if (turn.busy() > limits::kSlowTurn) {
            ++slow_turns_;
            spdlog::warn("the event loop was busy for {} ms in one turn: {}",
                         std::chrono::duration_cast<std::chrono::milliseconds>(turn.busy()).count(), turn.describe());
        }
    }
    sd_notify(0, "STOPPING=1");
    return kExitOk;
}

}  // namespace pidnsd
