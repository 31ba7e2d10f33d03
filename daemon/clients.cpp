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
    return c.name + " (uid " + std::to_string(c.uid) + ", pid " + std::to_string(c.caller->pid) + ")";
}

}  // namespace

void Bucket::refill(Clock::time_point now) {
    const double dt = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    if (dt > 0) tokens_ = std::min(burst_, tokens_ + dt * rate_);
}

bool Bucket::take(Clock::time_point now, double n) {
    refill(now);
    if (tokens_ < n) return false;
    tokens_ -= n;
    return true;
}

void Bucket::charge(Clock::time_point now, double n) {
    refill(now);
    tokens_ -= n;
}

bool Bucket::has(Clock::time_point now) {
    refill(now);
    return tokens_ > 0;
}

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

UidUsage& Clients::usage(std::uint32_t uid) {
    auto [it, fresh] = uids_.try_emplace(uid);
    if (fresh) it->second.properties = Bucket(limits::kPropertyBurstSeconds, limits::kPropertySecondsPerSecond);
    return it->second;
}

Client* Clients::find(const std::string& sender) {
    auto it = clients_.find(sender);
    return it == clients_.end() ? nullptr : it->second.get();
}

Client& Clients::client_of(const std::string& sender) {
    if (auto* c = find(sender)) return *c;
    if (clients_.size() >= limits::kClients) evict_idle();
    if (clients_.size() >= limits::kClients)
        throw limit_error(nullptr, sender,
                          "pidnsd is serving " + std::to_string(limits::kClients) + " connections, its maximum");
    auto c = std::make_unique<Client>();
    c->name = sender;
    return *clients_.emplace(sender, std::move(c)).first->second;
}

void Clients::evict_idle() {
    // The least recently active connections with nothing in flight and no subscription: forgetting
    // them costs only a new identification if they call again.
    std::vector<std::pair<Clock::time_point, std::string>> idle;
    for (const auto& [name, c] : clients_)
        if (c->in_flight() == 0 && !c->subscribed && c->identity != Client::Identity::asking)
            idle.emplace_back(c->last_active, name);
    const std::size_t drop = std::min(idle.size(), std::max<std::size_t>(1, limits::kClients / 16));
    std::partial_sort(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(drop), idle.end());
    for (std::size_t i = 0; i < drop; ++i) drop_client(idle[i].second, false);
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
    return sdbus::Error(kErrorLimitsExceeded, what + "; wait for your earlier calls to be answered, or make fewer "
                                                     "connections (pidnsd's limits: man pidnsd, SECURITY)");
}

std::string Clients::uid_quota(const UidUsage& u, std::uint32_t uid, const Call& call) const {
    if (u.calls >= limits::kCallsPerUid)
        return std::to_string(u.calls) + " calls of uid " + std::to_string(uid) + " are being answered (at most " +
               std::to_string(limits::kCallsPerUid) + " over all its connections)";
    if (calls_ >= limits::kCalls) return "pidnsd is answering " + std::to_string(calls_) + " calls, its maximum";
    if (u.pids + call.pids() > limits::kQueuedPidsPerUid)
        return "the TranslatePids calls of uid " + std::to_string(uid) + " being answered hold " + std::to_string(u.pids) +
               " pids (at most " + std::to_string(limits::kQueuedPidsPerUid) + ")";
    if (call.dumps() == 0) return {};
    if (u.dumps >= limits::kDumpsPerUid)
        return std::to_string(u.dumps) + " DumpPidTree calls of uid " + std::to_string(uid) +
               " are being answered (at most " + std::to_string(limits::kDumpsPerUid) + " over all its connections)";
    if (dumps_ >= limits::kDumps)
        return "pidnsd is answering " + std::to_string(dumps_) + " DumpPidTree calls, its maximum";
    return {};
}

std::optional<sdbus::Error> Clients::submit(const std::string& sender, std::unique_ptr<Call> call) {
    if (sender.empty()) return sdbus::Error(kErrorAccessDenied, "the message has no sender; call through the bus");
    Client* c = nullptr;
    try {
        c = &client_of(sender);
    } catch (const sdbus::Error& e) {
        return e;
    }
    c->last_active = Clock::now();
    ++c->calls_total;
    const std::size_t pids = call->pids();
    const bool known = c->identity == Client::Identity::known;
    std::string over;
    if (pids_ + pids > limits::kQueuedPids) {
        over = "pidnsd holds " + std::to_string(pids_) + " pids of waiting TranslatePids calls, its maximum is " +
               std::to_string(limits::kQueuedPids);
    } else if (known) {
        const auto& u = usage(c->uid);
        if (c->in_flight() >= limits::kCallsPerClient)
            over = std::to_string(c->in_flight()) + " calls of this connection are being answered (at most " +
                   std::to_string(limits::kCallsPerClient) + ")";
        else
            over = uid_quota(u, c->uid, *call);
    } else if (c->queue.size() >= limits::kCallsPerUnidentifiedClient) {
        over = "this connection sent " + std::to_string(c->queue.size()) +
               " calls before the bus told pidnsd who it is (at most " +
               std::to_string(limits::kCallsPerUnidentifiedClient) + ")";
    } else if (unidentified_calls_ >= limits::kUnidentifiedCalls) {
        over = "pidnsd holds " + std::to_string(unidentified_calls_) + " calls of connections not identified yet";
    }
    if (!over.empty()) return limit_error(c, sender, over);
    call->id = next_call_id_++;
    pids_ += pids;
    c->pids += pids;
    if (known) {
        charge(usage(c->uid), *call);
    } else {
        ++unidentified_calls_;
    }
    c->queue.push_back(std::move(call));
    if (known)
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
    auto& u = usage(uid);
    if (u.clients >= limits::kClientsPerUid)
        throw limit_error(&c, c.name, "uid " + std::to_string(uid) + " has " + std::to_string(u.clients) +
                                          " connections with calls to pidnsd (at most " +
                                          std::to_string(limits::kClientsPerUid) + ")");
    ++u.clients;
    c.caller = std::move(*caller);
    c.pidfd = std::move(pidfd);
    c.uid = uid;
    c.identity = Client::Identity::known;
    spdlog::debug("caller {}: pid {} uid {} pidns {} userns {}", c.name, c.caller->pid, uid, c.caller->pidns,
                  c.caller->userns);
}

void Clients::identified(const std::string& name, const sdbus::Error* error,
                         const std::map<std::string, sdbus::Variant>& creds) {
    Client* c = find(name);
    if (c == nullptr || c->identity != Client::Identity::asking) return;  // gone, or identified meanwhile
    unidentified_calls_ -= c->queue.size();
    try {
        if (error != nullptr)
            throw sdbus::Error(kErrorAccessDenied, "the bus could not tell who " + name + " is (" + error->getMessage() + ")");
        guarded("identification", [&] { pin(*c, creds); });
    } catch (const sdbus::Error& e) {
        ++identify_failures_;
        c->identity = Client::Identity::unknown;  // the next call tries again
        for (auto& call : c->queue) {
            pids_ -= call->pids();
            call->fail(e);
        }
        c->queue.clear();
        c->pids = 0;
        return;
    }
    admit_identified(*c);
}

void Clients::admit_identified(Client& c) {
    // Its calls waited outside the uid quotas; now that the uid is known they count, or are refused.
    auto& u = usage(c.uid);
    std::deque<std::unique_ptr<Call>> keep;
    for (auto& call : c.queue) {
        const std::string over = uid_quota(u, c.uid, *call);
        if (!over.empty()) {
            pids_ -= call->pids();
            c.pids -= call->pids();
            call->fail(limit_error(&c, c.name, over));
            continue;
        }
        charge(u, *call);
        keep.push_back(std::move(call));
    }
    c.queue = std::move(keep);
    if (!c.queue.empty()) schedule(c);
}

pidns::Caller Clients::caller_for_property(const std::string& sender) {
    if (sender.empty()) throw sdbus::Error(kErrorAccessDenied, "the message has no sender; call through the bus");
    Client& c = client_of(sender);
    const auto now = Clock::now();
    c.last_active = now;
    if (c.identity != Client::Identity::known) {
        if (!sync_identify_.has(now))
            throw limit_error(&c, sender, "pidnsd is spending its time for reading properties of new connections");
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
            const bool was_asking = c.identity == Client::Identity::asking;
            if (was_asking) unidentified_calls_ -= c.queue.size();
            try {
                pin(c, creds);
            } catch (const sdbus::Error&) {
                ++identify_failures_;
                if (was_asking) unidentified_calls_ += c.queue.size();  // the pending answer settles them
                throw;
            }
            admit_identified(c);
        }
    }
    if (!usage(c.uid).properties.has(now))
        throw limit_error(&c, sender, "the property reads of uid " + std::to_string(c.uid) + " took more than " +
                                          std::to_string(static_cast<int>(limits::kPropertySecondsPerSecond * 1000)) +
                                          " ms per second of pidnsd's time");
    check_caller(c);
    return *c.caller;
}

void Clients::charge_property(const std::string& sender, Clock::duration spent) {
    if (Client* c = find(sender); c != nullptr && c->identity == Client::Identity::known)
        usage(c->uid).properties.charge(Clock::now(), std::chrono::duration<double>(spent).count());
}

void Clients::check_caller(Client& c) {
    auto r = pidns::refresh_caller(model_, c.pidfd.get(), *c.caller);
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
        c.caller = std::move(*again);  // its capabilities are now those of its new user namespace
    }
}

void Clients::forget_identity(Client& c) {
    if (c.identity == Client::Identity::known && usage(c.uid).clients > 0) --usage(c.uid).clients;
    if (c.subscribed) unsubscribe(c);
    c.identity = Client::Identity::unknown;
    c.caller.reset();
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

void Clients::charge(UidUsage& u, const Call& call) {
    ++u.calls;
    ++calls_;
    u.pids += call.pids();
    u.dumps += call.dumps();
    dumps_ += call.dumps();
}

void Clients::release(Client& c, const Call& call) {
    pids_ -= call.pids();
    c.pids -= call.pids();
    if (c.identity == Client::Identity::known) {
        auto& u = usage(c.uid);
        --u.calls;
        u.pids -= call.pids();
        u.dumps -= call.dumps();
        dumps_ -= call.dumps();
        --calls_;
    } else {
        --unidentified_calls_;
    }
}

void Clients::schedule(Client& c) {
    if (c.scheduled || c.queue.empty() || c.identity != Client::Identity::known) return;
    c.scheduled = true;
    auto& q = runnable_[c.uid];
    if (q.empty()) uid_turns_.push_back(c.uid);
    q.push_back(c.name);
}

bool Clients::run(std::chrono::microseconds budget) {
    const auto until = Clock::now() + budget;
    while (!uid_turns_.empty() && Clock::now() < until) {
        const std::uint32_t uid = uid_turns_.front();
        uid_turns_.pop_front();
        auto qit = runnable_.find(uid);
        if (qit == runnable_.end() || qit->second.empty()) {
            if (qit != runnable_.end()) runnable_.erase(qit);
            continue;
        }
        const std::string name = std::move(qit->second.front());
        qit->second.pop_front();
        Client* c = find(name);
        if (c != nullptr) {
            c->scheduled = false;
            if (c->identity == Client::Identity::known && !c->queue.empty())
                run_one(*c, std::min(until, Clock::now() + limits::kSliceBudget));
        }
        // One slice per turn of the uid: its clients take turns, then the next uid.
        c = find(name);
        if (c != nullptr && !c->scheduled && c->identity == Client::Identity::known && !c->queue.empty()) {
            c->scheduled = true;
            runnable_[uid].push_back(name);
        }
        qit = runnable_.find(uid);
        if (qit != runnable_.end() && !qit->second.empty()) {
            if (std::find(uid_turns_.begin(), uid_turns_.end(), uid) == uid_turns_.end()) uid_turns_.push_back(uid);
        } else if (qit != runnable_.end()) {
            runnable_.erase(qit);
        }
    }
    return !uid_turns_.empty();
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
    auto& u = usage(c.uid);
    if (u.subscribers >= limits::kSubscribersPerUid)
        throw limit_error(&c, c.name, "uid " + std::to_string(c.uid) + " has " + std::to_string(u.subscribers) +
                                          " subscribed connections (at most " +
                                          std::to_string(limits::kSubscribersPerUid) + ")");
    if (subscribers_ >= limits::kSubscribers)
        throw limit_error(&c, c.name, "pidnsd has " + std::to_string(subscribers_) + " subscribers, its maximum");
    ++u.subscribers;
    ++subscribers_;
    c.subscribed = true;
    c.subscription = std::make_unique<Subscription>();
}

void Clients::unsubscribe(Client& c) {
    if (!c.subscribed) return;
    auto& u = usage(c.uid);
    if (u.subscribers > 0) --u.subscribers;
    --subscribers_;
    c.subscribed = false;
    c.subscription.reset();
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
    clients_.erase(name);
    departed_.push_back(name);
    if (left_bus) spdlog::trace("client {} left the bus", name);
}

std::vector<std::string> Clients::take_departed() { return std::exchange(departed_, {}); }

}  // namespace pidnsd
