// The calls of identified connections: admitted against quotas, run round-robin in slices, refusals paced.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "clients.h"
#include "errors.h"

namespace pidnsd {

std::optional<sdbus::Error> Clients::submit(const std::string& sender, std::unique_ptr<Call> call) {
    if (sender.empty()) return unidentified(Unidentified::no_sender);
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
    std::optional<Refusal> over;
    if (c->identity == Client::Identity::known) {
        reclassify(*c);
        if (c->in_flight() >= limits::kCallsPerClient)
            over = Refusal{Refusal::Kind::connection_calls, {}, c->principal, c->in_flight(), limits::kCallsPerClient};
        else if (const Verdict v = quotas_.admit(c->principal, add); !v.ok())
            over = quotas_.refusal(v, c->principal, c->unidentified);
    } else if (const Verdict v = quotas_.admit_unidentified(c->unidentified, add); !v.ok()) {
        over = quotas_.refusal(v, Principal{}, c->unidentified);
    }
    if (over) return limit_error(c, sender, *over);
    call->id = next_call_id_++;
    charge(*c, *call);
    c->queue.push_back(std::move(call));
    if (c->identity == Client::Identity::known)
        schedule(*c);
    else if (c->identity == Client::Identity::unknown)
        ask_identity(*c);
    return std::nullopt;
}

void Clients::refuse_later(const std::string& sender, DeferredError reply, std::size_t bytes) {
    Client* c = find(sender);
    if (!reply.valid()) return;
    if (deferred_.size() >= limits::kDeferredRefusals ||
        (c != nullptr && c->deferred >= limits::kDeferredRefusalsPerClient)) {
        reply.send();  // too many waiting: this one goes at once
        return;
    }
    if (c != nullptr) ++c->deferred;
    deferred_.push_back(Deferred{Clock::now() + limits::kRefusalDelay, sender, std::move(reply),
                                 std::min<std::size_t>(bytes, static_cast<std::size_t>(limits::kRefusalBytesBurst))});
}

void Clients::send_due_refusals() {
    const auto now = Clock::now();
    while (!deferred_.empty() && deferred_.front().due <= now) {
        const auto bytes = static_cast<double>(deferred_.front().bytes);
        if (refusal_pace_.when(now) > now || refusal_bytes_.when(now, bytes) > now) break;  // paced
        (void)refusal_pace_.take(now);
        (void)refusal_bytes_.take(now, bytes);
        auto d = std::move(deferred_.front());
        deferred_.pop_front();
        if (Client* c = find(d.sender); c != nullptr && c->deferred > 0) --c->deferred;
        d.reply.send();
    }
}

std::optional<Clock::time_point> Clients::next_refusal() const {
    if (deferred_.empty()) return std::nullopt;
    const auto now = Clock::now();
    const auto& d = deferred_.front();
    if (d.due > now) return d.due;
    return std::max(refusal_pace_.when(now), refusal_bytes_.when(now, static_cast<double>(d.bytes)));
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

bool Clients::run(std::chrono::microseconds budget, const std::function<std::size_t()>& unread_sent) {
    const auto until = Clock::now() + budget;
    bool unprivileged_ran = false;
    held_back_ = false;
    // One unprivileged slice, unless the bus has yet to read what was sent (see run's comment).
    auto unprivileged_slice = [&](Clock::time_point by) {
        const std::size_t before = unread_sent();
        if (before > limits::kUnreadReplyBytes && !last_big_) {
            held_back_ = true;
            ++held_runs_;
            return false;
        }
        const auto replies = replies_;
        if (!run_slice(false, by)) return false;
        if (replies_ == replies) return true;  // it replied nothing (yet): no size to judge
        const std::size_t after = unread_sent();
        if (after == limits::kSentQueued)  // the socket had no room for it all: large, unless it was full before
            last_big_ = before != limits::kSentQueued || last_big_;
        else
            last_big_ = before != limits::kSentQueued && after > before + limits::kBigReplyBytes;
        return true;
    };
    while (Clock::now() < until) {
        if (run_slice(true, until)) continue;
        if (!run_queue_.has(false) || !unprivileged_slice(until)) break;
        unprivileged_ran = true;
    }
    // Privileged calls may have taken the whole budget: unprivileged ones still get a slice.
    if (!unprivileged_ran && !held_back_ && run_queue_.has(false)) unprivileged_slice(Clock::now() + limits::kSliceBudget);
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
        ++replies_;
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
        call->fail(unidentified(Unidentified::changed_identity));
        return;
    }
    call->resume(authorized);
    c->queue.push_front(std::move(call));
    schedule(*c);
}

}  // namespace pidnsd
