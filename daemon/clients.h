// The bus connections pidnsd serves: who each one is (asked of the bus without blocking), its quotas, its calls.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "bucket.h"
#include "caller.h"
#include "nsfs.h"
#include "quota.h"
#include "quotas.h"
#include "raw_message.h"
#include "run_queue.h"
#include "call.h"
#include "signal_credit.h"
#include "subscription.h"

namespace pidns {
class Model;
}

namespace pidnsd {

struct Client;

struct Client {
    enum class Identity : std::uint8_t { unknown, asking, known };
    // A Peer.Ping to it: none, or waiting for its answer (signal back-pressure).
    enum class Ping : std::uint8_t { none, in_flight };
    std::string name;             // unique bus name
    Identity identity = Identity::unknown;
    std::uint32_t uid = 0;        // valid once identity == known: the uid the bus authenticated
    Principal principal;          // valid once identity == known: whom its usage is charged to
    std::optional<pidns::Caller> caller;
    pidns::Fd pidfd;              // pins the caller's process
    pidns::CallerFiles caller_files;  // its status and ns held open (2 fds): calls re-read it cheaply
    std::deque<std::unique_ptr<Call>> queue;                    // runnable or waiting for the identity
    std::unordered_map<std::uint64_t, std::unique_ptr<Call>> parked;  // waiting for polkit
    Usage unidentified;           // what it holds while identity != known (its calls, pids, itself)
    bool scheduled = false;       // in the scheduler's run queue
    bool subscribed = false;
    std::unique_ptr<Subscription> subscription;  // while subscribed
    SignalCredit credit{limits::kSignalWindow};  // signals sent, and how many it has read (Ping)
    Ping ping = Ping::none;
    Principal ping_charged;       // whose share of Pings in flight it takes
    Clock::time_point ping_not_before{};  // after a Ping that could not go
    bool limit_logged = false;
    bool owner_asking = false;    // NameHasOwner asked (revalidation)
    std::size_t deferred = 0;     // refusals waiting to be sent to it
    Clock::time_point last_active = Clock::now();
    Clock::time_point owner_checked = Clock::now();  // last time it was known to be on the bus
    std::uint64_t calls_total = 0, calls_limited = 0;

    [[nodiscard]] std::size_t in_flight() const noexcept { return queue.size() + parked.size(); }
    // Whether a listing it is being answered holds its signals back (Call::holds_signals).
    [[nodiscard]] bool holding_signals() const noexcept;
    // Nothing that would be lost if it were forgotten (it calls again: identified again).
    [[nodiscard]] bool idle() const noexcept {
        return in_flight() == 0 && !subscribed && identity != Identity::asking && ping == Ping::none &&
               credit.unacknowledged() == 0 && !owner_asking;
    }
};

class Clients {
public:
    // Subscribes to NameOwnerChanged on `conn`: connection appearance times (for pid-reuse checks)
    // and forgetting connections that leave.
    Clients(sdbus::IConnection& conn, pidns::Model& model);
    ~Clients();
    Clients(const Clients&) = delete;
    Clients& operator=(const Clients&) = delete;

    // Whether polkit said yes to org.pidns.inspect for a connection of this uid lately: such
    // callers are privileged (Principal). Unset: nobody is, by polkit.
    void set_polkit_grants(std::function<bool(std::uint32_t uid)> granted) { polkit_granted_ = std::move(granted); }

    // Takes a method call of `sender`: queued, and run by the scheduler once the sender is
    // identified. When a quota is exceeded (or the sender cannot be served) the call is dropped
    // unanswered and the error to answer it with is returned: the caller sends it, for
    // LimitsExceeded later (refuse_later).
    [[nodiscard]] std::optional<sdbus::Error> submit(const std::string& sender, std::unique_ptr<Call> call);
    // Answers a call refused for a quota only after limits::kRefusalDelay: a client that pipelines
    // beyond its quota is slowed to that pace instead of keeping the bus busy with calls refused
    // in microseconds (each queued on the one socket every caller's messages reach pidnsd by).
    // Sent at once beyond kDeferredRefusalsPerClient waiting for the client, or kDeferredRefusals in all.
    // `bytes`: about what the refused call carried (its pids), for the pace of sending.
    void refuse_later(const std::string& sender, DeferredError reply, std::size_t bytes);
    // Sends the deferred refusals that are due, paced (limits::kRefusalsPerSecond and
    // kRefusalBytesPerSecond); when the next one may go.
    void send_due_refusals();
    [[nodiscard]] std::optional<Clock::time_point> next_refusal() const;
    [[nodiscard]] std::size_t deferred_refusals() const noexcept { return deferred_.size(); }

    // Runs queued calls until `budget` is spent: privileged principals' first, then unprivileged
    // ones' (at least one slice of theirs per run, so that privileged load never starves them,
    // unless they wait for the bus as below), round-robin principal by principal and then
    // connection by connection, one slice each. Returns true when calls are still waiting to run.
    // Unprivileged calls wait while more than limits::kUnreadReplyBytes that pidnsd sent is unread
    // by the bus (`unread_sent`, BusReader::unread_sent), unless the last unprivileged reply was
    // itself large: dbus-daemon reads a connection a few KiB per main-loop iteration, so a
    // privileged reply queues behind everything sent before it, and many small replies (a crowd's
    // listings) cost the bus far more per byte than one large one. held_back() says the last run
    // left calls for that reason: the loop looks again after limits::kUnreadRecheck.
    bool run(std::chrono::microseconds budget, const std::function<std::size_t()>& unread_sent);
    [[nodiscard]] bool held_back() const noexcept { return held_back_; }
    [[nodiscard]] std::uint64_t held_runs() const noexcept { return held_runs_; }
    [[nodiscard]] bool runnable() const noexcept { return !run_queue_.empty(); }
    [[nodiscard]] bool privileged_waiting() const noexcept { return run_queue_.has(true); }

    // A parked call (polkit) answered: back to its connection's queue.
    void resume(const std::string& sender, std::uint64_t call_id, bool authorized);

    // The client of a known sender (nullptr if it has none; never creates one).
    Client* find(const std::string& sender);
    // For a synchronous property read (sdbus-c++ 1.2 cannot answer those later): the caller of
    // `sender`, re-checked. A connection not identified yet is identified synchronously, within a
    // time budget (the bus may be slow: at most kSyncIdentifyTimeout per call and
    // kSyncIdentifyBudget per second in all). Throws sdbus::Error: AccessDenied, or LimitsExceeded
    // when the principal's property budget or the synchronous identification budget is spent.
    pidns::Caller caller_for_property(const std::string& sender);
    // What a property read cost: charged to the principal's property budget (time, not reads: a
    // count costs microseconds for some callers and milliseconds for others).
    void charge_property(const std::string& sender, Clock::duration spent);

    // Whether subscriber `c` may still be judged as it was: its credentials are re-read at most
    // every kSubscriberRecheck; false (and unsubscribed) when it exited or changed its uid.
    bool recheck(Client& c);
    // Subscriptions (Subscribe/Unsubscribe): LimitsExceeded beyond the quotas.
    void subscribe(Client& c);
    void unsubscribe(Client& c);
    // Connections forgotten since the last call (left the bus, or idle ones dropped at the cap),
    // so other per-connection state (polkit answers) goes with them.
    std::vector<std::string> take_departed();
    template <class F>
    void for_each_subscriber(F&& f) {
        for (auto& [name, c] : clients_)
            if (c->subscription) f(*c);
    }
    // The privileged subscribers only (a few: their signals are decided first). `f` may
    // unsubscribe the one it is given.
    template <class F>
    void for_each_privileged_subscriber(F&& f) {
        if (privileged_subscribers_.empty()) return;
        const std::vector<Client*> now(privileged_subscribers_.begin(), privileged_subscribers_.end());
        for (Client* c : now)
            if (privileged_subscribers_.contains(c) && c->subscription) f(*c);
    }

    // A Peer.Ping to subscriber `c` (signal back-pressure): whether one may go now (none is in
    // flight to it, and its principal's and class's share of Pings in flight has room: as many
    // as their subscriptions, since a connection that never reads holds its Ping for as long as it
    // stays, subscribed or not); marks it. end_ping: the Ping charged to `charged` was answered
    // (or failed: the connection left, the bus refused it); its client, if still there.
    bool start_ping(Client& c);
    Client* end_ping(const std::string& name, const Principal& charged, bool answered);

    // Departures the bus did not announce (a NameOwnerChanged it dropped, e.g. while pidnsd's
    // queue on the bus was full): connections idle for kRevalidateIdle, or every one when a cap
    // was reached, are asked about (NameHasOwner, a few per turn) and forgotten when gone.
    void revalidate();
    // When revalidate() has work to do next (nullopt: nothing planned).
    [[nodiscard]] std::optional<Clock::time_point> next_revalidation() const;

    // Limits exceeded: the D-Bus error, counted and logged (once per client, rate-limited).
    sdbus::Error limit_error(Client* c, const std::string& sender, const Refusal& refusal);

    [[nodiscard]] std::size_t count() const noexcept { return clients_.size(); }
    [[nodiscard]] std::size_t calls_in_flight() const noexcept {
        return quotas_.pool(false).calls + quotas_.pool(true).calls + quotas_.unidentified().calls;
    }
    [[nodiscard]] const Quotas& quotas() const noexcept { return quotas_; }
    [[nodiscard]] std::uint64_t limits_exceeded() const noexcept { return limited_; }
    [[nodiscard]] std::size_t subscribers() const noexcept {
        return quotas_.pool(false).subscribers + quotas_.pool(true).subscribers;
    }
    [[nodiscard]] std::size_t tracked_connections() const noexcept { return appeared_.size(); }
    [[nodiscard]] std::uint64_t identify_failures() const noexcept { return identify_failures_; }
    [[nodiscard]] std::uint64_t revalidated_gone() const noexcept { return revalidated_gone_; }
    [[nodiscard]] std::uint64_t revalidations() const noexcept { return revalidations_; }

private:
    // The client of `sender`, made if new; throws LimitsExceeded at the cap.
    Client& client_of(const std::string& sender);
    void note_appeared(const std::string& name);
    // When `name` connected at the latest (boottime ticks): processes that started later did not make it.
    [[nodiscard]] std::uint64_t started_by(const std::string& name) const;
    void forget(const std::string& name);
    void drop_client(const std::string& name, bool left_bus);
    // Re-reads the caller of an identified client; throws sdbus::Error (after failing its calls).
    void check_caller(Client& c);
    void forget_identity(Client& c);
    void run_one(Client& c, Clock::time_point deadline);
    // One slice for the next connection of that class; false when none waited.
    bool run_slice(bool privileged, Clock::time_point until);
    void ask_identity(Client& c);
    void identified(const std::string& name, const sdbus::Error* error, const std::map<std::string, sdbus::Variant>& creds);
    // Pins and reads the process the bus credentials name; throws sdbus::Error (AccessDenied).
    void pin(Client& c, const std::map<std::string, sdbus::Variant>& creds);
    // Charges an identified client to its principal (it was charged to the unidentified pool);
    // throws LimitsExceeded, leaving it unidentified, when the principal or its pool is full.
    void admit_client(Client& c, const Principal& p);
    // Whom an identified caller is charged to now: privileged by the kernel's rule (uid 0, or
    // CAP_SYS_PTRACE in pidnsd's user namespace) or by polkit, or not.
    [[nodiscard]] Principal principal_of(const pidns::Caller& caller) const;
    // Moves a known client to its principal's current class (polkit may have granted it since).
    void reclassify(Client& c);
    void fail_all(Client& c, const sdbus::Error& e);
    void schedule(Client& c);
    // Accounts an admitted call; release() undoes it, whatever happened to its client since.
    void charge(Client& c, Call& call);
    void release(Client& c, Call& call);
    // Forgets the least recently active idle clients of a class (or the unidentified ones);
    // returns how many.
    std::size_t evict_idle(std::optional<bool> privileged, std::optional<Principal> of = std::nullopt);
    // A cap was reached: ask the bus about every connection soon (bounded per turn).
    void pressure();
    // Whether the calls of a just-identified client fit its principal's quotas; the excess is refused.
    void admit_identified(Client& c);
    void check_owner(const std::string& name);
    void compact_ring();

    pidns::Model& model_;
    std::unique_ptr<sdbus::IProxy> dbus_;
    sdbus::Slot name_owner_changed_;
    std::uint64_t subscribed_at_ = 0;  // boottime ticks when NameOwnerChanged tracking began
    std::unordered_map<std::string, std::unique_ptr<Client>> clients_;
    Quotas quotas_;
    std::function<bool(std::uint32_t)> polkit_granted_;
    // Unique names seen connecting, with the time (boottime ticks), oldest first.
    std::list<std::pair<std::string, std::uint64_t>> appeared_order_;
    std::unordered_map<std::string, std::list<std::pair<std::string, std::uint64_t>>::iterator> appeared_;
    bool appeared_overflow_ = false;
    RunQueue run_queue_;
    std::unordered_set<Client*> privileged_subscribers_;
    Slots pings_{limits::kSubscribersPerPrincipal, limits::kSubscribers, limits::kPrivilegedSubscribers};
    Bucket sync_identify_{0.05, 0.05};  // seconds of synchronous identification: 50 ms per second
    std::vector<std::string> departed_;
    struct Deferred {
        Clock::time_point due;
        std::string sender;
        DeferredError reply;
        std::size_t bytes = 0;
    };
    std::deque<Deferred> deferred_;  // in order of due time (one fixed delay)
    mutable Bucket refusal_pace_{limits::kRefusalsBurst, limits::kRefusalsPerSecond};
    bool held_back_ = false;      // the last run() left unprivileged calls for the bus to catch up
    std::uint64_t held_runs_ = 0;  // runs that did (statistics)
    bool last_big_ = false;       // the last unprivileged reply was large (kBigReplyBytes)
    std::uint64_t replies_ = 0;   // calls answered, to tell a slice that replied
    mutable Bucket refusal_bytes_{limits::kRefusalBytesBurst, limits::kRefusalBytesPerSecond};
    // Revalidation: every client's name once, in turn (stale names are skipped and dropped).
    std::deque<std::string> revalidate_ring_;
    Clock::time_point next_revalidate_ = Clock::now();
    Clock::time_point pressure_until_{};  // a cap was reached: every client is asked about until then
    std::size_t owner_checks_ = 0;        // NameHasOwner calls waiting for an answer
    std::uint64_t next_call_id_ = 1;
    std::uint64_t limited_ = 0, identify_failures_ = 0, revalidated_gone_ = 0, revalidations_ = 0;
    std::size_t limit_logs_ = 0;
    Clock::time_point limit_window_ = Clock::now();
};

}  // namespace pidnsd
