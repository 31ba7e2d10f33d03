// pidnsd's start-up and event loop: bus, proc connector and signals on one epoll set.
#include "daemon.h"

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "callers.h"
#include "errors.h"
#include "manager.h"
#include "model.h"
#include "polkit.h"
#include "proc_connector.h"
#include "updater.h"

namespace pidnsd {
namespace {

using Clock = std::chrono::steady_clock;
using pidns::Errc;
using pidns::make_error;

constexpr int kMaxBusMessagesPerTurn = 64;
constexpr std::chrono::microseconds kEventBudget{1000};  // netlink work per loop turn

enum : std::uint64_t { kTagBus = 1, kTagNetlink = 2, kTagSignal = 3 };

std::uint32_t poll_to_epoll(short events) {
    std::uint32_t e = 0;
    if (events & POLLIN) e |= EPOLLIN;
    if (events & POLLOUT) e |= EPOLLOUT;
    if (events & POLLPRI) e |= EPOLLPRI;
    return e;
}

const char* event_source_name(bool connector) { return connector ? "proc-connector" : "polling"; }

}  // namespace

Daemon::Daemon(const Options& opts) : opts_(opts) {}

Daemon::~Daemon() {
    manager_.reset();
    polkit_.reset();
    callers_.reset();
    conn_.reset();
}

pidns::Result<std::unique_ptr<Daemon>> Daemon::start(const Options& opts) {
    std::unique_ptr<Daemon> d(new Daemon(opts));

    const auto& f = pidns::kernel_features();
    spdlog::info("kernel: NS_GET_ID {}, pid ioctls {}, NS_GET_OWNER_UID {}", f.ns_get_id ? "yes" : "no",
                 f.pid_ioctls ? "yes" : "no", f.owner_uid ? "yes" : "no");

    auto model = pidns::Model::create();
    if (!model) return model.error();
    d->model_ = std::move(*model);
    d->updater_ = std::make_unique<pidns::Updater>(*d->model_);

    // Subscribe before the scan, so nothing that happens during the scan is missed; the events
    // that arrive meanwhile are applied after it (all of them are idempotent).
    if (opts.proc_connector) {
        auto pc = pidns::ProcConnector::open();
        if (pc) {
            d->connector_ = std::move(*pc);
            spdlog::info("event source: proc connector (receive buffer {} bytes, kernel filter {})",
                         d->connector_->rcvbuf(), d->connector_->filtered() ? "on" : "off");
        } else {
            spdlog::warn("proc connector unavailable ({}); polling /proc every {} ms instead",
                         pc.error().describe(), opts.poll_interval.count());
        }
    } else {
        spdlog::info("event source: polling /proc every {} ms (--no-proc-connector)", opts.poll_interval.count());
    }

    if (auto s = d->updater_->rescan(); !s) return s.error();
    (void)d->updater_->take_changes();  // nobody is listening yet
    spdlog::info("indexed {} processes and {} namespaces in {} ms", d->model_->index().process_count(),
                 d->model_->index().namespace_count(), d->updater_->stats().last_rescan.count() / 1000.0);

    if (auto s = d->setup_signals(); !s) return s.error();
    if (auto s = d->connect_bus(); !s) return s.error();

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
    if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return make_error(Errc::io, "sigprocmask", errno);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) return make_error(Errc::io, "signalfd", errno);
    signal_fd_ = pidns::Fd(fd);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return make_error(Errc::io, "epoll_create1", errno);
    epoll_ = pidns::Fd(ep);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTagSignal;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, signal_fd_.get(), &ev) != 0) return make_error(Errc::io, "epoll_ctl", errno);
    if (connector_) {
        ev.data.u64 = kTagNetlink;
        if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, connector_->fd(), &ev) != 0)
            return make_error(Errc::io, "epoll_ctl", errno);
    }
    return pidns::Ok{};
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
        callers_ = std::make_unique<CallerRegistry>(*conn_, *model_);
        polkit_ = std::make_unique<Polkit>(*conn_, opts_.polkit);
        manager_ = std::make_unique<Manager>(*conn_, *model_, *callers_, *polkit_,
                                             event_source_name(connector_ != nullptr));
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
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTagBus;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, conn_->getEventLoopPollData().fd, &ev) != 0)
        return make_error(Errc::io, "epoll_ctl (bus)", errno);
    return pidns::Ok{};
}

void Daemon::handle_signals(bool& stop) {
    signalfd_siginfo si{};
    while (::read(signal_fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo == SIGHUP) {
            rescan("SIGHUP");
        } else {
            spdlog::info("{}: exiting", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            stop = true;
        }
    }
}

void Daemon::rescan(const char* why) {
    if (auto s = updater_->rescan(); !s) {
        spdlog::error("rescan ({}) failed: {}", why, s.error().describe());
        return;
    }
    spdlog::log(std::string_view(why) == "poll" ? spdlog::level::debug : spdlog::level::info,
                "rescan ({}): {} processes, {} namespaces in {} ms", why, model_->index().process_count(),
                model_->index().namespace_count(), updater_->stats().last_rescan.count() / 1000.0);
}

bool Daemon::drain_events(std::chrono::microseconds budget) {
    const auto until = Clock::now() + budget;
    bool lost = false;
    bool more = true;
    while (more && Clock::now() < until) {
        auto r = connector_->read_some(16);
        if (!r) {
            spdlog::error("proc connector read failed: {}", r.error().describe());
            return false;
        }
        updater_->apply(r->events);
        lost = lost || r->lost;
        more = !r->would_block;
    }
    if (lost) {
        updater_->count_loss();
        spdlog::warn("proc connector lost events (ENOBUFS, {} so far): rescanning /proc", updater_->stats().lost);
        rescan("events lost");
    }
    return more;
}

void Daemon::publish_changes() {
    auto changes = updater_->take_changes();
    auto touched = updater_->take_touched();
    if (changes.empty() && touched.empty()) return;
    try {
        manager_->emit_changes(changes, touched);
    } catch (const sdbus::Error& e) {
        spdlog::warn("could not emit namespace signals: {}", e.getMessage());
    }
}

void Daemon::watchdog_ping() { sd_notify(0, "WATCHDOG=1"); }

int Daemon::run() {
    bool stop = false;
    bool events_pending = false;
    auto next_poll = Clock::now() + opts_.poll_interval;
    auto next_watchdog = Clock::now() + watchdog_period_;
    const int bus_fd = conn_->getEventLoopPollData().fd;
    while (!stop) {
        // Bus first: bounded, so a flood of calls cannot starve the event stream and vice versa.
        bool bus_pending = false;
        try {
            int n = 0;
            while (n < kMaxBusMessagesPerTurn && conn_->processPendingRequest()) ++n;
            bus_pending = n == kMaxBusMessagesPerTurn;
        } catch (const sdbus::Error& e) {
            spdlog::critical("lost the bus connection ({}): exiting", e.getMessage());
            return kExitFailure;
        }
        publish_changes();

        const auto pd = conn_->getEventLoopPollData();
        epoll_event ev{};
        ev.events = poll_to_epoll(pd.events);
        ev.data.u64 = kTagBus;
        if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, bus_fd, &ev) != 0) {
            spdlog::critical("epoll_ctl on the bus fd failed: {}", std::strerror(errno));
            return kExitFailure;
        }

        auto now = Clock::now();
        long long timeout_ms = -1;
        auto until = [&](Clock::time_point t) {
            const auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - now).count();
            const long long v = std::max<long long>(ms, 0);
            timeout_ms = timeout_ms < 0 ? v : std::min(timeout_ms, v);
        };
        if (auto rel = pd.getRelativeTimeout()) until(now + *rel);
        if (!connector_) until(next_poll);
        if (watchdog_period_.count() > 0) until(next_watchdog);
        if (events_pending || bus_pending) timeout_ms = 0;

        epoll_event out[8];
        const int n = epoll_wait(epoll_.get(), out, 8, static_cast<int>(std::min<long long>(timeout_ms, 60'000)));
        if (n < 0 && errno != EINTR) {
            spdlog::critical("epoll_wait failed: {}", std::strerror(errno));
            return kExitFailure;
        }
        bool netlink_ready = events_pending;
        for (int i = 0; i < n; ++i) {
            if (out[i].data.u64 == kTagSignal) handle_signals(stop);
            if (out[i].data.u64 == kTagNetlink) netlink_ready = true;
        }
        if (connector_ && netlink_ready) events_pending = drain_events(kEventBudget);

        now = Clock::now();
        if (!connector_ && now >= next_poll) {
            rescan("poll");
            next_poll = Clock::now() + opts_.poll_interval;
        }
        if (watchdog_period_.count() > 0 && now >= next_watchdog) {
            watchdog_ping();
            next_watchdog = now + watchdog_period_;
        }
        publish_changes();
    }
    sd_notify(0, "STOPPING=1");
    return kExitOk;
}

}  // namespace pidnsd
