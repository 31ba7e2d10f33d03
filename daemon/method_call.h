// The call framework: what a method computes (Work), run in slices as a queued Call that asks polkit
// (parking meanwhile) when the kernel's rule refused the caller something, and replies once.
#pragma once

#include <sdbus-c++/sdbus-c++.h>
#include <spdlog/spdlog.h>

#include <array>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <tuple>

#include "clients.h"
#include "errors.h"
#include "model.h"
#include "polkit.h"
#include "view.h"
#include "wire.h"

namespace pidnsd {

// What one method computes, possibly in pieces.
template <class... R>
class Work {
public:
    virtual ~Work() = default;
    // The answer once complete; nothing when `deadline` came first (run is called again later,
    // with a new view of the same caller). Throws sdbus::Error.
    virtual std::optional<std::tuple<R...>> run(pidns::CallerView& view, Client& client, Clock::time_point deadline) = 0;
    // Start over: polkit widened what the caller may see.
    virtual void restart() {}
};

// A method computed at once (its cost does not grow with what the caller sends).
template <class... R>
class OneShot final : public Work<R...> {
public:
    using Fn = std::function<std::tuple<R...>(pidns::CallerView&, Client&)>;
    explicit OneShot(Fn fn) : fn_(std::move(fn)) {}
    std::optional<std::tuple<R...>> run(pidns::CallerView& v, Client& c, Clock::time_point) override { return fn_(v, c); }

private:
    Fn fn_;
};

// What polkit is told about a call beside its method (the namespaces, types, pids it names): kept
// as up to four pairs, turned into polkit's map only when polkit is asked, which most calls never
// are (a map built for every TranslatePid was ~1% of pidnsd's CPU under bench_calls).
class CallDetails {
public:
    CallDetails() = default;
    CallDetails(std::initializer_list<std::pair<const char*, std::string>> pairs) {
        for (const auto& [key, value] : pairs)
            if (n_ < pairs_.size()) pairs_[n_++] = {key, value};
    }
    [[nodiscard]] Polkit::Details map(const char* method) const {
        Polkit::Details d;
        for (std::size_t i = 0; i < n_; ++i) d[pairs_[i].first] = pairs_[i].second;
        d[pidns::bus::detail::kMethod] = method;
        return d;
    }

private:
    std::array<std::pair<const char*, std::string>, 4> pairs_{};  // no method names more than two
    std::size_t n_ = 0;
};

struct CallEnv {
    pidns::Model& model;
    Clients& clients;
    Polkit& polkit;
};

// A queued method call: runs its Work in slices; when the kernel's rule refused the caller
// something, asks polkit (parking the call meanwhile) and, if authorized, computes again widened.
template <class... R>
class MethodCall final : public Call {
public:
    MethodCall(const char* method, sdbus::Result<R...>&& result, std::unique_ptr<Work<R...>> work, CallEnv env,
               CallDetails details, bool names_target, std::size_t pids = 0, bool dump = false)
        : Call(method, pids, dump),
          result_(std::move(result)),
          work_(std::move(work)),
          env_(env),
          details_(std::move(details)),
          names_target_(names_target) {}

    Step step(Client& c, Clock::time_point deadline) override {
        if (final_) {
            reply(*final_);
            return Step::done;
        }
        Outcome o;
        try {
            guarded(method(), [&] {
                pidns::CallerView view(env_.model, *c.caller);
                if (widened_) view.widen();
                view.set_translate_scratch(&scratch_);
                try {
                    o.value = work_->run(view, c, deadline);
                } catch (...) {
                    absorb(view);
                    throw;
                }
                absorb(view);
            });
        } catch (const sdbus::Error& e) {
            o.error = e;
        }
        if (!o.value && !o.error) return Step::more;
        if (widened_ || !denied_ || !env_.polkit.enabled()) {
            reply(o);
            return Step::done;
        }
        first_ = std::move(o);
        // Ask polkit; its answer may come at once (cached) or later (then the call is parked).
        struct Answer {
            bool in_step = true;
            std::optional<bool> now;
        };
        auto answer = std::make_shared<Answer>();
        env_.polkit.check(Polkit::Asker{c.name, c.principal.uid, c.uid, c.caller ? c.caller->pid : 0}, pidns::bus::kInspectAction,
                          polkit_details(),
                          [answer, clients = &env_.clients, name = c.name, call = id](bool ok) {
                              if (answer->in_step)
                                  answer->now = ok;
                              else
                                  clients->resume(name, call, ok);
                          });
        answer->in_step = false;
        if (!answer->now) return Step::parked;
        resume(*answer->now);
        if (final_) {
            reply(*final_);
            return Step::done;
        }
        return Step::more;
    }

    void resume(bool authorized) override {
        if (authorized) {
            widened_ = true;
            denied_ = false;
            scratch_ = pidns::TranslateScratch{};
            work_->restart();
        } else {
            final_ = std::move(first_);
        }
    }

    void fail(const sdbus::Error& error) noexcept override {
        Outcome o;
        o.error = error;
        reply(o);
    }

private:
    struct Outcome {
        std::optional<std::tuple<R...>> value;
        std::optional<sdbus::Error> error;
    };

    void absorb(const pidns::CallerView& view) {
        denied_ = denied_ || view.denied_any();
        if (!denial_ && view.first_denial()) denial_ = view.first_denial();
    }

    // What polkit is asked about, so that rules can name it: the method, the namespaces it
    // names, and for a single target its pid (in pidnsd's pid namespace), uid and pid namespace.
    Polkit::Details polkit_details() const {
        auto d = details_.map(method());
        if (names_target_ && denial_) {
            d[pidns::bus::detail::kPid] = std::to_string(denial_->pid);
            d[pidns::bus::detail::kUid] = std::to_string(denial_->uid);
            d[pidns::bus::detail::kNamespace] = std::to_string(denial_->pidns);
        }
        return d;
    }

    void reply(const Outcome& o) noexcept {
        try {
            if (o.error)
                result_.returnError(*o.error);
            else
                std::apply([&](const auto&... v) { result_.returnResults(v...); }, *o.value);
        } catch (const std::exception& e) {
            spdlog::debug("could not send a reply: {}", e.what());
        }
    }

    sdbus::Result<R...> result_;
    std::unique_ptr<Work<R...>> work_;
    CallEnv env_;
    CallDetails details_;
    bool names_target_;
    pidns::TranslateScratch scratch_;
    bool widened_ = false;
    bool denied_ = false;
    std::optional<pidns::Denial> denial_;
    std::optional<Outcome> first_;  // the answer on the kernel's rule while polkit is asked
    std::optional<Outcome> final_;  // to be sent at the next step
};

// The queued call of a handler: `work` answers `result`; `details` and `names_target` are what
// polkit is told; `pids`, `dump`: what it holds against the caller's quotas while answered.
template <class... R>
std::unique_ptr<Call> make_call(const char* method, sdbus::Result<R...>&& result, std::unique_ptr<Work<R...>> work,
                                CallEnv env, CallDetails details = {}, bool names_target = false,
                                std::size_t pids = 0, bool dump = false) {
    return std::make_unique<MethodCall<R...>>(method, std::move(result), std::move(work), env, std::move(details),
                                              names_target, pids, dump);
}

// Work computed at once.
template <class... R>
std::unique_ptr<Work<R...>> one_shot(typename OneShot<R...>::Fn fn) {
    return std::make_unique<OneShot<R...>>(std::move(fn));
}

}  // namespace pidnsd
