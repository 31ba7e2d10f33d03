// Bus connections: identity from the bus without blocking, pid-reuse checks, quotas, round-robin calls.
#include "clients.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <string_view>

#include "errors.h"
#include "quotas.h"
#include "model.h"
#include "view.h"

namespace pidnsd {
namespace {

constexpr const char* kDbusName = "org.freedesktop.DBus";

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The pid a pidfd refers to (its fdinfo "Pid:" line); -1 if unreadable.
std::int64_t pid_of_pidfd(int fd) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    auto text = pidns::read_file_at(AT_FDCWD, path);
    if (!text) return -1;
    const auto at = text->find("\nPid:\t");
    if (at == std::string::npos) return -1;
    return std::strtoll(text->c_str() + at + 6, nullptr, 10);
}

std::string who(const Client& c) {
    if (c.identity != Client::Identity::known || !c.caller) return c.name;
    std::string s = c.name + " (uid " + std::to_string(c.uid) + ", pid " + std::to_string(c.caller->pid);
    if (c.principal.uid != c.uid) s += ", of uid " + std::to_string(c.principal.uid) + "'s user namespace";
    return s + ")";
}

constexpr std::uint64_t kCapSysPtrace = 1ull << 19;

}  // namespace

Clients::Clients(sdbus::IConnection& conn, pidns::Model& model)
    : model_(model), dbus_(sdbus::createProxy(conn, kDbusName, "/org/freedesktop/DBus")) {
    name_owner_changed_ = conn.addMatch(
        "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged'",
        [this](sdbus::Message& m) {
            try {
                std::string name, old_owner, new_owner;
                m >> name >> old_owner >> new_owner;
                if (name.empty() || name[0] != ':') return;  // unique names only
                if (old_owner.empty() && !new_owner.empty())
                    note_appeared(name);
                else if (new_owner.empty())
                    forget(name);
            } catch (const std::exception& e) {
                spdlog::warn("malformed NameOwnerChanged signal: {}", e.what());
            }
        });
    // Connections that appear from now on are announced; older ones connected before this.
    subscribed_at_ = pidns::boottime_ticks();
    sync_identify_ = Bucket(limits::kSyncIdentifySecondsPerSecond, limits::kSyncIdentifySecondsPerSecond);
}

Clients::~Clients() = default;

void Clients::note_appeared(const std::string& name) {
    if (appeared_.contains(name)) return;
    if (appeared_.size() >= limits::kTrackedConnections) {
        appeared_.erase(appeared_order_.front().first);
        appeared_order_.pop_front();
        appeared_overflow_ = true;
    }
    appeared_order_.emplace_back(name, pidns::boottime_ticks());
    appeared_.emplace(name, std::prev(appeared_order_.end()));
}

std::uint64_t Clients::started_by(const std::string& name) const {
    if (auto it = appeared_.find(name); it != appeared_.end()) return it->second->second;
    // Not announced: it connected before we listened, unless its record was dropped at the cap
    // (then all we know is that it connected before now).
    return appeared_overflow_ ? pidns::boottime_ticks() : subscribed_at_;
}

Client* Clients::find(const std::string& sender) {
    auto it = clients_.find(sender);
    return it == clients_.end() ? nullptr : it->second.get();
}

Client& Clients::client_of(const std::string& sender) {
    if (auto* c = find(sender)) return *c;
    const Usage one{0, 0, 0, 1, 0};
    const Usage fresh;
    Verdict v = quotas_.admit_unidentified(fresh, one);
    if (!v.ok() && evict_idle(std::nullopt) > 0) v = quotas_.admit_unidentified(fresh, one);
    if (!v.ok()) {
        pressure();
        throw limit_error(nullptr, sender, quotas_.describe(v, Principal{}, fresh));
    }
    auto c = std::make_unique<Client>();
    c->name = sender;
    quotas_.charge_unidentified(c->unidentified, one);
    compact_ring();
    revalidate_ring_.push_back(sender);
    return *clients_.emplace(sender, std::move(c)).first->second;
}

std::size_t Clients::evict_idle(std::optional<bool> privileged, std::optional<Principal> of) {
    // The least recently active idle connections of that class (or not identified): forgetting
    // them costs only a new identification if they call again.
    std::vector<std::pair<Clock::time_point, std::string>> idle;
    for (const auto& [name, c] : clients_) {
        if (!c->idle()) continue;
        const bool known = c->identity == Client::Identity::known;
        if (!privileged ? known : (!known || c->principal.privileged != *privileged)) continue;
        if (of && c->principal != *of) continue;
        idle.emplace_back(c->last_active, name);
    }
    const std::size_t drop = std::min(idle.size(), std::max<std::size_t>(1, limits::kClients / 16));
    std::partial_sort(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(drop), idle.end());
    for (std::size_t i = 0; i < drop; ++i) drop_client(idle[i].second, false);
    return drop;
}

sdbus::Error Clients::limit_error(Client* c, const std::string& sender, const std::string& what) {
    ++limited_;
    if (c) ++c->calls_limited;
    const auto now = Clock::now();
    if (now - limit_window_ > limits::kLimitLogWindow) {
        limit_window_ = now;
        limit_logs_ = 0;
    }
    if ((!c || !c->limit_logged) && limit_logs_ < limits::kLimitLogsPerWindow) {
        ++limit_logs_;
        if (c) c->limit_logged = true;
        spdlog::warn("client {} exceeded a limit: {}; refusing its excess (logged once per client)",
                     c ? who(*c) : sender, what);
    }
    return sdbus::Error(kErrorLimitsExceeded, what + " (pidnsd's limits: man pidnsd, SECURITY)");
}

Principal Clients::principal_of(const pidns::Caller& caller) const {
    // Root, or a caller the kernel lets read every process of pidnsd's user namespace.
    const bool kernel = caller.bus_uid == 0 ||
                        (caller.userns == model_.index().root_userns() && (caller.cap_eff & kCapSysPtrace) != 0);
    const bool polkit = !kernel && polkit_granted_ && polkit_granted_(caller.bus_uid);
    return Principal{caller.principal_uid, kernel || polkit};
}

void Clients::admit_client(Client& c, const Principal& p) {
    const Usage one{0, 0, 0, 1, 0};
    Verdict v = quotas_.admit(p, one);
    if (!v.ok() && evict_idle(p.privileged, v.over == Over::principal ? std::optional<Principal>(p) : std::nullopt) > 0)
        v = quotas_.admit(p, one);
    if (!v.ok()) {
        pressure();
        throw limit_error(&c, c.name, quotas_.describe(v, p, c.unidentified));
    }
    quotas_.release_unidentified(c.unidentified, one);
    quotas_.charge(p, one);
    c.principal = p;
}

void Clients::reclassify(Client& c) {
    if (c.identity != Client::Identity::known || !c.caller) return;
    const Principal p = principal_of(*c.caller);
    if (p == c.principal) return;
    // Its connection and subscription move; calls stay charged where they were admitted.
    const Usage moving{0, 0, 0, 1, c.subscribed ? std::size_t{1} : std::size_t{0}};
    quotas_.release(c.principal, moving);
    quotas_.charge(p, moving);
    spdlog::debug("client {}: now charged to uid {} ({})", c.name, p.uid, p.privileged ? "privileged" : "unprivileged");
    c.principal = p;
    if (c.subscribed && p.privileged)
        privileged_subscribers_.insert(&c);
    else
        privileged_subscribers_.erase(&c);
}

std::optional<sdbus::Error> Clients::submit(const std::string& sender, std::unique_ptr<Call> call) {
    if (sender.empty()) return sdbus::Error(kErrorAccessDenied, "the message has no sender; call through the bus");
    Client* c = nullptr;
    try {
        c = &client_of(sender);
    } catch (const sdbus::Error& e) {
        return e;
    }
    const auto now = Clock::now();
    c->last_active = now;
    c->owner_checked = now;  // it just sent a message: it is on the bus
    ++c->calls_total;
    const Usage add = call->holding();
    std::string over;
    if (c->identity == Client::Identity::known) {
        reclassify(*c);
        if (c->in_flight() >= limits::kCallsPerClient)
            over = "this connection has " + std::to_string(c->in_flight()) + " calls being answered (at most " +
                   std::to_string(limits::kCallsPerClient) + ")";
        else if (const Verdict v = quotas_.admit(c->principal, add); !v.ok())
            over = quotas_.describe(v, c->principal, c->unidentified);
    } else if (const Verdict v = quotas_.admit_unidentified(c->unidentified, add); !v.ok()) {
        over = quotas_.describe(v, Principal{}, c->unidentified);
    }
    if (!over.empty()) return limit_error(c, sender, over);
    call->id = next_call_id_++;
    charge(*c, *call);
    c->queue.push_back(std::move(call));
    if (c->identity == Client::Identity::known)
        schedule(*c);
    else if (c->identity == Client::Identity::unknown)
        ask_identity(*c);
    return std::nullopt;
}

void Clients::refuse_later(const std::string& sender, DeferredError reply) {
    Client* c = find(sender);
    if (!reply.valid()) return;
    if (deferred_.size() >= limits::kDeferredRefusals ||
        (c != nullptr && c->deferred >= limits::kDeferredRefusalsPerClient)) {
        reply.send();  // too many waiting: this one goes at once
        return;
    }
    if (c != nullptr) ++c->deferred;
    deferred_.push_back(Deferred{Clock::now() + limits::kRefusalDelay, sender, std::move(reply)});
}

void Clients::send_due_refusals() {
    const auto now = Clock::now();
    while (!deferred_.empty() && deferred_.front().due <= now) {
        auto d = std::move(deferred_.front());
        deferred_.pop_front();
        if (Client* c = find(d.sender); c != nullptr && c->deferred > 0) --c->deferred;
        d.reply.send();
    }
}

std::optional<Clock::time_point> Clients::next_refusal() const {
    if (deferred_.empty()) return std::nullopt;
    return deferred_.front().due;
}

void Clients::ask_identity(Client& c) {
    c.identity = Client::Identity::asking;
    try {
        dbus_->callMethodAsync("GetConnectionCredentials")
            .onInterface(kDbusName)
            .withArguments(c.name)
            .uponReplyInvoke([this, name = c.name](const sdbus::Error* error,
                                                   const std::map<std::string, sdbus::Variant>& creds) {
                identified(name, error, creds);
            });
    } catch (const sdbus::Error& e) {
        identified(c.name, &e, {});
    }
}

void Clients::pin(Client& c, const std::map<std::string, sdbus::Variant>& creds) {
    auto pid_it = creds.find("ProcessID");
    auto uid_it = creds.find("UnixUserID");
    if (pid_it == creds.end() || uid_it == creds.end())
        throw sdbus::Error(kErrorAccessDenied, "the bus gave no process id or uid for " + c.name);
    const auto pid = pid_it->second.get<std::uint32_t>();
    const auto uid = uid_it->second.get<std::uint32_t>();
    if (!pidns::is_valid_pid(pid)) throw sdbus::Error(kErrorAccessDenied, "the bus gave an invalid process id for " + c.name);
    pidns::Fd pidfd;
    // dbus-broker hands out a pidfd for the connection's process: no pid-reuse window at all.
    if (auto fd_it = creds.find("ProcessFD"); fd_it != creds.end()) {
        try {
            const auto ufd = fd_it->second.get<sdbus::UnixFd>();
            pidfd = pidns::Fd(::fcntl(ufd.get(), F_DUPFD_CLOEXEC, 3));
        } catch (const sdbus::Error&) {
        }
        if (pidfd.valid() && pid_of_pidfd(pidfd.get()) != static_cast<std::int64_t>(pid))
            throw sdbus::Error(kErrorAccessDenied, "the bus's ProcessFD for " + c.name + " is not process " +
                                                       std::to_string(pid) + " (it exited?); call again");
    }
    std::uint64_t started = 0;
    if (!pidfd.valid()) {
        const int raw = static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
        if (raw < 0)
            throw sdbus::Error(kErrorAccessDenied, "cannot identify the calling process " + std::to_string(pid) +
                                                       ": it exited; call again from a live process");
        pidfd = pidns::Fd(raw);
        started = started_by(c.name);  // without ProcessFD: a process newer than the connection is a reused pid
    }
    auto caller = pidns::identify_caller(model_, pidfd.get(), static_cast<std::int32_t>(pid), uid, started);
    if (!caller) throw to_dbus_error(caller.error());
    admit_client(c, principal_of(*caller));
    c.caller = std::move(*caller);
    c.pidfd = std::move(pidfd);
    c.uid = uid;
    c.identity = Client::Identity::known;
    spdlog::debug("caller {}: pid {} uid {} pidns {} userns {}; charged to uid {} ({})", c.name, c.caller->pid, uid,
                  c.caller->pidns, c.caller->userns, c.principal.uid, c.principal.privileged ? "privileged" : "unprivileged");
}

void Clients::identified(const std::string& name, const sdbus::Error* error,
                         const std::map<std::string, sdbus::Variant>& creds) {
    Client* c = find(name);
    if (c == nullptr || c->identity != Client::Identity::asking) return;  // gone, or identified meanwhile
    try {
        if (error != nullptr)
            throw sdbus::Error(kErrorAccessDenied, "the bus could not tell who " + name + " is (" + error->getMessage() + ")");
        guarded("identification", [&] { pin(*c, creds); });
    } catch (const sdbus::Error& e) {
        ++identify_failures_;
        c->identity = Client::Identity::unknown;  // the next call tries again
        auto queue = std::move(c->queue);
        c->queue.clear();
        for (auto& call : queue) {
            release(*c, *call);
            call->fail(e);
        }
        return;
    }
    admit_identified(*c);
}

void Clients::admit_identified(Client& c) {
    // Its calls were charged to the connection; now that its principal is known they are charged
    // to it, or refused.
    std::deque<std::unique_ptr<Call>> keep;
    for (auto& call : c.queue) {
        release(c, *call);
        if (const Verdict v = quotas_.admit(c.principal, call->holding()); !v.ok()) {
            call->fail(limit_error(&c, c.name, quotas_.describe(v, c.principal, c.unidentified)));
            continue;
        }
        charge(c, *call);
        keep.push_back(std::move(call));
    }
    c.queue = std::move(keep);
    schedule(c);
}

pidns::Caller Clients::caller_for_property(const std::string& sender) {
    if (sender.empty()) throw sdbus::Error(kErrorAccessDenied, "the message has no sender; call through the bus");
    Client& c = client_of(sender);
    const auto now = Clock::now();
    c.last_active = now;
    c.owner_checked = now;
    if (c.identity != Client::Identity::known) {
        if (!sync_identify_.has(now))
            throw limit_error(&c, sender, "pidnsd is spending its time for reading properties of new connections; "
                                          "call a method first, or read again in a moment");
        std::map<std::string, sdbus::Variant> creds;
        const auto t0 = Clock::now();
        try {
            dbus_->callMethod("GetConnectionCredentials")
                .onInterface(kDbusName)
                .withTimeout(limits::kSyncIdentifyTimeout)
                .withArguments(sender)
                .storeResultsTo(creds);
        } catch (const sdbus::Error& e) {
            sync_identify_.charge(Clock::now(), seconds_since(t0));
            throw sdbus::Error(kErrorAccessDenied, "the bus could not tell who " + sender + " is (" + e.getMessage() + ")");
        }
        sync_identify_.charge(Clock::now(), seconds_since(t0));
        if (c.identity != Client::Identity::known) {  // an asynchronous answer may have come meanwhile
            try {
                pin(c, creds);
            } catch (const sdbus::Error&) {
                ++identify_failures_;
                throw;
            }
            admit_identified(c);
        }
    }
    reclassify(c);
    if (Bucket* time = quotas_.property_time(c.principal); time != nullptr && !time->has(now))
        throw limit_error(&c, sender, "the property reads of uid " + std::to_string(c.principal.uid) + " took more than " +
                                          std::to_string(static_cast<int>(limits::kPropertySecondsPerSecond * 1000)) +
                                          " ms per second of pidnsd's time; read again in a few seconds");
    check_caller(c);
    return *c.caller;
}

void Clients::charge_property(const std::string& sender, Clock::duration spent) {
    if (Client* c = find(sender); c != nullptr && c->identity == Client::Identity::known)
        if (Bucket* time = quotas_.property_time(c->principal))
            time->charge(Clock::now(), std::chrono::duration<double>(spent).count());
}

void Clients::check_caller(Client& c) {
    auto r = pidns::refresh_caller(model_, c.pidfd.get(), *c.caller, c.caller_files);
    if (!r) {
        // Exited or changed identity: refuse, and identify afresh at its next call.
        const sdbus::Error e = to_dbus_error(r.error());
        fail_all(c, e);
        forget_identity(c);
        throw e;
    }
    if (*r == pidns::CallerCheck::changed_ns) {
        // It entered another user namespace: read it again (no bus round trip: the pid is pinned).
        auto again = pidns::identify_caller(model_, c.pidfd.get(), c.caller->pid, c.uid, c.caller->start_time);
        if (!again) {
            const sdbus::Error e = to_dbus_error(again.error());
            fail_all(c, e);
            forget_identity(c);
            throw e;
        }
        c.caller = std::move(*again);  // its capabilities (and principal) are now those of its new user namespace
        reclassify(c);
    }
}

void Clients::forget_identity(Client& c) {
    if (c.subscribed) unsubscribe(c);
    if (c.identity == Client::Identity::known) {
        const Usage one{0, 0, 0, 1, 0};
        quotas_.release(c.principal, one);
        quotas_.charge_unidentified(c.unidentified, one);
    }
    c.identity = Client::Identity::unknown;
    c.caller.reset();
    c.caller_files = pidns::CallerFiles{};
    c.pidfd = pidns::Fd();
}

void Clients::fail_all(Client& c, const sdbus::Error& e) {
    auto queue = std::move(c.queue);
    auto parked = std::move(c.parked);
    c.queue.clear();
    c.parked.clear();
    for (auto& call : queue) {
        release(c, *call);
        call->fail(e);
    }
    for (auto& [id, call] : parked) {
        release(c, *call);
        call->fail(e);
    }
}

void Clients::charge(Client& c, Call& call) {
    if (c.identity == Client::Identity::known) {
        quotas_.charge(c.principal, call.holding());
        call.charged = Call::Charged::principal;
        call.charged_to = c.principal;
    } else {
        quotas_.charge_unidentified(c.unidentified, call.holding());
        call.charged = Call::Charged::connection;
    }
}

void Clients::release(Client& c, Call& call) {
    switch (call.charged) {
    case Call::Charged::principal: quotas_.release(call.charged_to, call.holding()); break;
    case Call::Charged::connection: quotas_.release_unidentified(c.unidentified, call.holding()); break;
    case Call::Charged::none: break;
    }
    call.charged = Call::Charged::none;
}

void Clients::schedule(Client& c) {
    if (c.scheduled || c.queue.empty() || c.identity != Client::Identity::known) return;
    c.scheduled = true;
    run_queue_.push(c.principal, c.name);
}

bool Clients::run(std::chrono::microseconds budget) {
    const auto until = Clock::now() + budget;
    bool unprivileged_ran = false;
    while (Clock::now() < until) {
        if (run_slice(true, until)) continue;
        if (!run_slice(false, until)) break;
        unprivileged_ran = true;
    }
    // Privileged calls may have taken the whole budget: unprivileged ones still get a slice.
    if (!unprivileged_ran) run_slice(false, Clock::now() + limits::kSliceBudget);
    return runnable();
}

bool Clients::run_slice(bool privileged, Clock::time_point until) {
    auto next = run_queue_.take(privileged);
    if (!next) return false;
    const std::string& name = next->second;
    Client* c = find(name);
    if (c == nullptr || !c->scheduled) return true;  // gone since it was queued
    c->scheduled = false;
    if (c->identity == Client::Identity::known && !c->queue.empty())
        run_one(*c, std::min(until, Clock::now() + limits::kSliceBudget));
    // One slice per turn of its principal: its connections take turns, then the next principal.
    if ((c = find(name)) != nullptr) schedule(*c);
    return true;
}

void Clients::run_one(Client& c, Clock::time_point deadline) {
    Call& call = *c.queue.front();
    if (!call.checked) {
        // Credentials change without events: re-read them for every call.
        try {
            check_caller(c);
        } catch (const sdbus::Error&) {
            return;  // every call of the client was answered with the error
        }
        call.checked = true;
    }
    switch (call.step(c, deadline)) {
    case Call::Step::more: break;
    case Call::Step::done:
        release(c, call);
        c.queue.pop_front();
        break;
    case Call::Step::parked: {
        const auto id = call.id;
        c.parked.emplace(id, std::move(c.queue.front()));
        c.queue.pop_front();
        break;
    }
    }
}

void Clients::resume(const std::string& sender, std::uint64_t call_id, bool authorized) {
    Client* c = find(sender);
    if (c == nullptr) return;
    auto it = c->parked.find(call_id);
    if (it == c->parked.end()) return;
    auto call = std::move(it->second);
    c->parked.erase(it);
    if (c->identity != Client::Identity::known) {  // it lost its identity meanwhile
        release(*c, *call);
        call->fail(sdbus::Error(kErrorAccessDenied, "the calling process changed identity; call again"));
        return;
    }
    call->resume(authorized);
    c->queue.push_front(std::move(call));
    schedule(*c);
}

bool Clients::recheck(Client& c) {
    if (c.identity != Client::Identity::known || !c.caller) return false;
    const auto now = Clock::now();
    if (c.subscription && now - c.subscription->checked < limits::kSubscriberRecheck) return true;
    try {
        check_caller(c);
    } catch (const sdbus::Error& e) {
        spdlog::debug("subscriber {} dropped: {}", c.name, e.getMessage());
        return false;  // check_caller forgot its identity, and with it the subscription
    }
    if (c.subscription) c.subscription->checked = now;
    return c.subscription != nullptr;
}

void Clients::subscribe(Client& c) {
    if (c.subscribed) return;
    reclassify(c);
    const Usage one{0, 0, 0, 0, 1};
    if (const Verdict v = quotas_.admit(c.principal, one); !v.ok()) {
        pressure();  // departed subscribers the bus did not announce are found and forgotten
        throw limit_error(&c, c.name, quotas_.describe(v, c.principal, c.unidentified));
    }
    quotas_.charge(c.principal, one);
    c.subscribed = true;
    c.subscription = std::make_unique<Subscription>();
    if (c.principal.privileged) privileged_subscribers_.insert(&c);
}

void Clients::unsubscribe(Client& c) {
    if (!c.subscribed) return;
    quotas_.release(c.principal, Usage{0, 0, 0, 0, 1});
    privileged_subscribers_.erase(&c);
    c.subscribed = false;
    c.subscription.reset();
}

bool Clients::start_ping(Client& c) {
    if (c.ping != Client::Ping::none || c.identity != Client::Identity::known || !pings_.take(c.principal)) return false;
    c.ping = Client::Ping::in_flight;
    c.ping_charged = c.principal;
    return true;
}

Client* Clients::end_ping(const std::string& name, const Principal& charged, bool answered) {
    pings_.give(charged);
    Client* c = find(name);
    if (c == nullptr) return nullptr;
    c->ping = Client::Ping::none;
    if (answered) c->owner_checked = Clock::now();
    return c;
}

void Clients::forget(const std::string& name) {
    if (auto it = appeared_.find(name); it != appeared_.end()) {
        appeared_order_.erase(it->second);
        appeared_.erase(it);
    }
    drop_client(name, true);
}

void Clients::drop_client(const std::string& name, bool left_bus) {
    Client* c = find(name);
    if (c == nullptr) {
        if (left_bus) departed_.push_back(name);
        return;
    }
    // Its calls can no longer be answered: drop them.
    for (auto& call : c->queue) release(*c, *call);
    for (auto& [id, call] : c->parked) release(*c, *call);
    c->queue.clear();
    c->parked.clear();
    forget_identity(*c);
    quotas_.release_unidentified(c->unidentified, Usage{0, 0, 0, 1, 0});
    clients_.erase(name);
    departed_.push_back(name);
    if (left_bus) spdlog::trace("client {} left the bus", name);
}

std::vector<std::string> Clients::take_departed() { return std::exchange(departed_, {}); }

void Clients::pressure() {
    const auto now = Clock::now();
    if (now < pressure_until_) return;
    pressure_until_ = now + limits::kRevalidatePressureFor;
    next_revalidate_ = now;
}

std::optional<Clock::time_point> Clients::next_revalidation() const {
    if (clients_.empty()) return std::nullopt;
    return next_revalidate_;
}

void Clients::revalidate() {
    const auto now = Clock::now();
    if (now < next_revalidate_) return;
    const bool pressed = now < pressure_until_;
    std::size_t budget = pressed ? limits::kRevalidatePressureBatch : limits::kRevalidateBatch;
    const std::size_t asked_before = revalidations_;
    const std::size_t n = std::min<std::size_t>(revalidate_ring_.size(), 1024);
    for (std::size_t looked = 0; looked < n && budget > 0 && owner_checks_ < limits::kRevalidateInFlight; ++looked) {
        std::string name = std::move(revalidate_ring_.front());
        revalidate_ring_.pop_front();
        Client* c = find(name);
        if (c == nullptr) continue;  // dropped: its name leaves the ring
        revalidate_ring_.push_back(name);
        // Calls in flight are answered anyway; a connection asked about lately is left alone.
        if (c->owner_asking || c->in_flight() > 0 || (!pressed && now - c->owner_checked < limits::kRevalidateIdle))
            continue;
        --budget;
        check_owner(name);
    }
    // Nothing was due: look again in a while (an idle pidnsd does not wake for this every turn).
    next_revalidate_ = now + (pressed || revalidations_ != asked_before ? limits::kRevalidatePeriod
                                                                         : limits::kRevalidateIdle / 6);
}

void Clients::compact_ring() {
    if (revalidate_ring_.size() <= 2 * clients_.size() + 64) return;
    // Mostly names of clients gone since: rebuilt (amortized O(1) per client made).
    revalidate_ring_.clear();
    for (const auto& [name, c] : clients_) revalidate_ring_.push_back(name);
    revalidate_ring_.shrink_to_fit();
}

void Clients::check_owner(const std::string& name) {
    Client* c = find(name);
    if (c == nullptr) return;
    c->owner_asking = true;
    ++owner_checks_;
    ++revalidations_;
    try {
        dbus_->callMethodAsync("NameHasOwner")
            .onInterface(kDbusName)
            .withArguments(name)
            .uponReplyInvoke([this, name](const sdbus::Error* error, bool has_owner) {
                --owner_checks_;
                Client* c = find(name);
                if (c == nullptr) return;
                c->owner_asking = false;
                if (error != nullptr) return;  // asked again later
                if (has_owner) {
                    c->owner_checked = Clock::now();
                    return;
                }
                ++revalidated_gone_;
                spdlog::debug("client {} left the bus without its NameOwnerChanged reaching pidnsd: forgotten", name);
                forget(name);
            });
    } catch (const sdbus::Error& e) {
        --owner_checks_;
        c->owner_asking = false;
        spdlog::debug("cannot ask the bus about {} ({})", name, e.getMessage());
    }
}

}  // namespace pidnsd
