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

#include "capabilities.h"
#include "clients.h"
#include "engine_state.h"
#include "errors.h"
#include "quotas.h"
#include "manager.h"
#include "model.h"
#include "kernel_version.h"
#include "machines.h"
#include "ns_link.h"
#include "bus_reader.h"
#include "peer_ping.h"
#include "polkit.h"
#include "proc_connector.h"
#include "signals.h"
#include "updater.h"
#include "upkeep.h"
#include "turn_clock.h"

namespace pidnsd {
namespace {

namespace stat = pidns::bus::stat;

using Clock = std::chrono::steady_clock;
using pidns::Errc;
using pidns::make_error;

constexpr std::chrono::microseconds kEventBudget{1000};   // netlink work per loop turn
constexpr std::chrono::microseconds kVerifyBudget{2000};  // verify-pass work per loop turn

enum : std::uint64_t { kTagBus = 1, kTagNetlink = 2, kTagSignal = 3, kTagRescanDone = 4, kTagMount = 5, kTagPing = 6 };

pidns::Status epoll_add(int epfd, int fd, std::uint32_t events, std::uint64_t tag, const char* what = "epoll_ctl") {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) return make_error(Errc::io, what, errno);
    return pidns::Ok{};
}

std::uint32_t poll_to_epoll(short events) {
    std::uint32_t e = 0;
    if (events & POLLIN) e |= EPOLLIN;
    if (events & POLLOUT) e |= EPOLLOUT;
    if (events & POLLPRI) e |= EPOLLPRI;
    return e;
}


}  // namespace

Daemon::Daemon(const Options& opts) : opts_(opts) {}

Daemon::~Daemon() {
    upkeep_.reset();  // waits for its rescan thread: it reads through the model
    fanout_.reset();
    bus_reader_.reset();
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
    discovery.fds_by_bpf = opts.bpf;
    auto model = pidns::Model::create(discovery);
    if (!model) return model.error();
    const bool bpf = (*model)->fd_pass_in_use();
    if (bpf)
        spdlog::info("namespace fds: found by a BPF task_file iterator in each rescan");
    else
        spdlog::info("namespace fds: every /proc/PID/fd listed in each rescan (BPF iterator not used: {})",
                     (*model)->fd_source_reason());
    // The iterator is loaded: what only its load needed goes (still one thread here).
    if (const auto kept = drop_bpf_capabilities(bpf, [&m = **model] { return m.fd_pass_startable(); }); !kept.empty())
        spdlog::info("capabilities: {}", kept);
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
            spdlog::warn("event source: polling /proc every {} ms, because the proc connector is unavailable: {} "
                         "(run pidnsd in the initial pid, user and network namespace, or pass --no-proc-connector)",
                         opts.poll_interval.count(), pc.error().describe());
        }
    } else {
        spdlog::info("event source: polling /proc every {} ms (--no-proc-connector)", opts.poll_interval.count());
    }

    auto upkeep = pidns::Upkeep::create(
        *d->model_, *d->updater_, d->connector_.get(), d->connector_ ? opts.verify_interval : std::chrono::milliseconds(0),
        [raw = d.get()](int fd) { return static_cast<bool>(epoll_add(raw->epoll_.get(), fd, EPOLLPRI, kTagMount)); },
        [raw = d.get()](pidns::UpkeepNote note, const char* why, const pidns::Error* error, std::int32_t tgid) {
            raw->log_upkeep(note, why, error, tgid);
        });
    if (!upkeep) return upkeep.error();
    d->upkeep_ = std::move(*upkeep);
    if (d->connector_) d->model_->set_event_check([raw = d.get()] { return raw->upkeep_->events_current(); });
    if (auto s = d->updater_->rescan(); !s) return s.error();
    (void)d->updater_->take_changes();  // nobody is listening yet
    ::malloc_trim(0);                          // the scan's scratch
    spdlog::info("indexed {} processes and {} namespaces in {} ms", d->model_->index().process_count(),
                 d->model_->index().namespace_count(), d->updater_->stats().last_rescan.count() / 1000.0);

    if (auto s = d->setup_signals(); !s) return s.error();
    d->upkeep_->reconcile_mount_watches();
    if (auto s = d->connect_bus(); !s) return s.error();
    d->manager_->set_statistics([raw = d.get()](bool everything) { return raw->statistics(everything); });
    d->manager_->set_event_sequence([raw = d.get()] { return raw->updater_->stats().events; });
    d->upkeep_->schedule_verify();
    if (d->connector_ && opts.verify_interval.count() > 0)
        spdlog::info("verify pass every {} ms; {} mountinfo watch(es)", opts.verify_interval.count(),
                     d->upkeep_->mount_watches());

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
    return epoll_add(epoll_.get(), upkeep_->rescan_fd(), EPOLLIN, kTagRescanDone);
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
                                             event_source());
        peer_ping_ = std::make_unique<PeerPing>(*conn_, [this] { return open_ping_connection(opts_); });
        bus_reader_ = std::make_unique<BusReader>(*conn_);
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
        conn_->requestName(pidns::bus::kServiceName);
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
            upkeep_->start_rescan("SIGHUP");
            if (polkit_->enabled()) polkit_->reload_rules();
        } else if (si.ssi_signo == SIGUSR1) {
            test_slow_pending_ = test_slow_turn_.count() > 0;
        } else {
            spdlog::info("{}: exiting", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            stop = true;
        }
    }
}

void Daemon::log_upkeep(pidns::UpkeepNote note, const char* why, const pidns::Error* error, std::int32_t tgid) const {
    const std::string what = error ? error->describe() : std::string();
    switch (note) {
    case pidns::UpkeepNote::rescanned:
        spdlog::log(std::string_view(why) == "poll" ? spdlog::level::debug : spdlog::level::info,
                    "rescan ({}): {} processes, {} namespaces in {} ms (of which {} ms building the index)", why,
                    model_->index().process_count(), model_->index().namespace_count(),
                    updater_->stats().last_rescan.count() / 1000.0, updater_->stats().last_rescan_build.count() / 1000.0);
        break;
    case pidns::UpkeepNote::rescan_failed: spdlog::error("rescan ({}) failed: {}; trying again", why, what); break;
    case pidns::UpkeepNote::read_failed: spdlog::error("proc connector read failed: {}", what); break;
    case pidns::UpkeepNote::events_lost:
        spdlog::warn("proc connector lost events (ENOBUFS, {} so far): rescanning /proc", updater_->stats().lost);
        break;
    case pidns::UpkeepNote::verify_reread:
        spdlog::debug("verify: process {} changed namespaces without an event; re-read", tgid);
        break;
    case pidns::UpkeepNote::mounts_unreadable: spdlog::warn("re-reading nsfs bind mounts ({}): {}", why, what); break;
    }
}

bool Daemon::publish_changes() {
    // A watched mount namespace that left the index took its nsfs bind mounts with it.
    if (upkeep_->watched_namespace_gone()) upkeep_->refresh_mounts("mount namespace gone");
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
    std::uint32_t bus_events = 0;  // as last given to epoll (level-triggered: kept until changed)
    bool bus_armed = false;
    while (!stop) {
        TurnClock turn;
        // Bus messages: handlers only parse and queue, so they are dispatched within a time budget,
        // the rest of a message sd-bus has begun included (bus_reader.h). Messages left unread
        // get the next turn at once: those the budget left, or that sd-bus holds, by a zero epoll
        // timeout (bus_pending); those in the socket after a privileged call to answer first, by
        // the epoll, which reports the socket readable.
        turn.begin("bus");
        bool bus_pending = false;
        try {
            const auto read = bus_reader_->read(Clock::now() + limits::kBusBudget,
                                                [this] { return clients_->privileged_waiting(); });
            bus_pending = read.pending;
            turn.note_bus(read.messages, read.waits);
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
        const bool calls_pending =
            clients_->run(limits::kCallBudget, [this] { return bus_reader_->unread_sent(); });
        // Unprivileged calls left for the bus to read what was sent: no zero timeout for them.
        const bool calls_held = clients_->held_back() && !clients_->privileged_waiting();
        turn.begin("signals");
        const bool signals_pending = publish_changes();
        turn.end();

        const auto pd = conn_->getEventLoopPollData();
        if (const std::uint32_t want = poll_to_epoll(pd.events); !bus_armed || want != bus_events) {
            epoll_event ev{};
            ev.events = want;
            ev.data.u64 = kTagBus;
            if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, bus_fd, &ev) != 0) {
                spdlog::critical("epoll_ctl on the bus fd failed: {}", std::strerror(errno));
                return kExitFailure;
            }
            bus_events = want;
            bus_armed = true;
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
        const bool verifying = upkeep_->verifying();
        if (verifying) until(upkeep_->next_verify());
        if (watchdog_period_.count() > 0) until(next_watchdog);
        if (signals_pending) until(now + std::chrono::milliseconds(10));  // paced: tokens refill
        if (auto due = clients_->next_refusal()) until(*due);
        if (auto due = clients_->next_revalidation()) until(*due);
        if (auto due = polkit_->next_wake()) until(*due);
        const auto held = upkeep_->held_until();
        if (held) until(*held);
        if (calls_held) until(now + limits::kUnreadRecheck);
        if (events_pending || bus_pending || (calls_pending && !calls_held) || test_slow_pending_ || model_->has_stale())
            timeout_ms = 0;

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
                upkeep_->finish_rescan();
                turn.end();
                break;
            case kTagMount: mounts_changed = true; break;
            default: break;
            }
        }
        if (held && Clock::now() >= *held) netlink_ready = true;  // apply them
        if (connector_ && netlink_ready) {
            turn.begin("process events");
            events_pending = upkeep_->drain_events(kEventBudget);
        }
        if (mounts_changed) {
            turn.begin("nsfs mounts");
            upkeep_->refresh_mounts("mountinfo changed");
        }
        turn.end();

        now = Clock::now();
        if (!connector_ && !updater_->rescanning() && now >= next_poll) {
            upkeep_->start_rescan("poll");
            next_poll = now + opts_.poll_interval;
        }
        if (verifying && now >= upkeep_->next_verify()) {
            turn.begin("verify pass");
            upkeep_->verify_some(kVerifyBudget);
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
