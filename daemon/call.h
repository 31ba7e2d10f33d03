// One method call being answered: what the scheduler (scheduler.cpp) runs, resumable in slices.
#pragma once

#include <sdbus-c++/Error.h>

#include <cstddef>
#include <cstdint>

#include "bucket.h"
#include "quota.h"

namespace pidnsd {

struct Client;

// One method call being answered: a resumable computation that replies when it is done.
class Call {
public:
    // `pids`: what a TranslatePids holds; `dump`: a DumpPidTree (each holds its tasks as it reads).
    explicit Call(const char* method, std::size_t pids = 0, bool dump = false)
        : method_(method), pids_(pids), dump_(dump) {}
    virtual ~Call() = default;
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;

    enum class Step : std::uint8_t {
        more,    // the deadline came first: call step() again later
        done,    // replied
        parked,  // waiting for an outside answer (polkit); resume() makes it runnable again
    };
    // Works on until `deadline` (checked between pieces of work). Must not throw.
    virtual Step step(Client& client, Clock::time_point deadline) = 0;
    // Replies with this error instead (the caller could not be identified, limits). Must not throw.
    virtual void fail(const sdbus::Error& error) noexcept = 0;
    // The outside answer a parked call waited for.
    virtual void resume(bool authorized) { (void)authorized; }

    [[nodiscard]] const char* method() const noexcept { return method_; }
    [[nodiscard]] std::size_t pids() const noexcept { return pids_; }
    [[nodiscard]] std::size_t dumps() const noexcept { return dump_ ? 1 : 0; }
    // What it holds while it is answered: one call, its pids, its dump.
    [[nodiscard]] Usage holding() const noexcept { return Usage{1, pids_, dumps(), 0, 0}; }
    std::uint64_t id = 0;        // set by the registry
    bool checked = false;        // the caller's credentials were re-read for this call (it has started)
    // A listing whose entries its subscriber is told of as it collects them: the subscriber's
    // signals wait while it is answered, so that none describes a change the reply, sent later,
    // may or may not include (signals.h).
    bool holds_signals = false;
    // Whom it is charged to: nobody yet, its connection (before identification), or a principal.
    enum class Charged : std::uint8_t { none, connection, principal } charged = Charged::none;
    Principal charged_to;

private:
    const char* method_;
    std::size_t pids_;
    bool dump_;
};

}  // namespace pidnsd
