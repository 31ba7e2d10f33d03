// Who a connection is: asked of the bus without blocking, pinned by a pidfd, re-checked, and charged to its principal.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

#include "clients.h"
#include "errors.h"
#include "model.h"
#include "view.h"
#include "wire.h"

namespace pidnsd {
namespace {

using pidns::bus::kBusDriverName;

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

constexpr std::uint64_t kCapSysPtrace = 1ull << 19;

}  // namespace

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
        throw limit_error(&c, c.name, quotas_.refusal(v, p, c.unidentified));
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

void Clients::ask_identity(Client& c) {
    c.identity = Client::Identity::asking;
    try {
        dbus_->callMethodAsync("GetConnectionCredentials")
            .onInterface(kBusDriverName)
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
        throw unidentified(Unidentified::no_credentials, c.name);
    const auto pid = pid_it->second.get<std::uint32_t>();
    const auto uid = uid_it->second.get<std::uint32_t>();
    if (!pidns::is_valid_pid(pid)) throw unidentified(Unidentified::invalid_pid, c.name);
    pidns::Fd pidfd;
    // dbus-broker hands out a pidfd for the connection's process: no pid-reuse window at all.
    if (auto fd_it = creds.find("ProcessFD"); fd_it != creds.end()) {
        try {
            const auto ufd = fd_it->second.get<sdbus::UnixFd>();
            pidfd = pidns::Fd(::fcntl(ufd.get(), F_DUPFD_CLOEXEC, 3));
        } catch (const sdbus::Error&) {
        }
        if (pidfd.valid() && pid_of_pidfd(pidfd.get()) != static_cast<std::int64_t>(pid))
            throw unidentified(Unidentified::process_fd_other, c.name, pid);
    }
    std::uint64_t started = 0;
    if (!pidfd.valid()) {
        const int raw = static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
        if (raw < 0)
            throw unidentified(Unidentified::exited, c.name, pid);
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
            throw unidentified(Unidentified::bus_failed, name, 0, error->getMessage());
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
            call->fail(limit_error(&c, c.name, quotas_.refusal(v, c.principal, c.unidentified)));
            continue;
        }
        charge(c, *call);
        keep.push_back(std::move(call));
    }
    c.queue = std::move(keep);
    schedule(c);
}

pidns::Caller Clients::caller_for_property(const std::string& sender) {
    if (sender.empty()) throw unidentified(Unidentified::no_sender);
    Client& c = client_of(sender);
    const auto now = Clock::now();
    c.last_active = now;
    c.owner_checked = now;
    if (c.identity != Client::Identity::known) {
        if (!sync_identify_.has(now))
            throw limit_error(&c, sender, Refusal{Refusal::Kind::sync_identify, {}, {}, 0, 0});
        std::map<std::string, sdbus::Variant> creds;
        const auto t0 = Clock::now();
        try {
            dbus_->callMethod("GetConnectionCredentials")
                .onInterface(kBusDriverName)
                .withTimeout(limits::kSyncIdentifyTimeout)
                .withArguments(sender)
                .storeResultsTo(creds);
        } catch (const sdbus::Error& e) {
            sync_identify_.charge(Clock::now(), seconds_since(t0));
            throw unidentified(Unidentified::bus_failed, sender, 0, e.getMessage());
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
        throw limit_error(&c, sender,
                          Refusal{Refusal::Kind::property_time, {}, c.principal, 0,
                                  static_cast<std::size_t>(limits::kPropertySecondsPerSecond * 1000)});
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

}  // namespace pidnsd
