// HelperThread and ReadAhead: /proc reads run ahead of the owner on a second thread.
#include "read_ahead.h"

#include <pthread.h>

#include <system_error>

namespace pidns {

HelperThread::~HelperThread() {
    if (!thread_) return;
    {
        const std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_one();
    thread_->join();
}

bool HelperThread::attach(ReadAhead* job) noexcept {
    if (!tried_) {
        tried_ = true;
        try {
            thread_.emplace([this] { main(); });
            // Named by its maker, so that it has its name before it first runs (a loaded host may
            // run the owner through a whole job first; tests/dbus/test_names.cpp looks for it).
            (void)::pthread_setname_np(thread_->native_handle(), kThreadName);
        } catch (const std::system_error&) {
            // No thread to be had (RLIMIT_NPROC, TasksMax): every ReadAhead runs on its owner.
        }
    }
    if (!thread_) return false;
    {
        const std::lock_guard lock(mutex_);
        if (job_ != nullptr) return false;
        job_ = job;
        ++generation_;
    }
    wake_.notify_one();
    return true;
}

bool HelperThread::available() noexcept {
    if (tried_ && !thread_) return false;
    const std::lock_guard lock(mutex_);
    return job_ == nullptr;
}

void HelperThread::detach(ReadAhead* job) noexcept {
    std::unique_lock lock(mutex_);
    if (job_ != job) return;
    job_ = nullptr;
    idle_.wait(lock, [&] { return !in_job_; });
}

void HelperThread::main() noexcept {
    std::uint64_t served = 0;  // the generation of the last job run: each is run once
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [&] { return stop_ || (job_ != nullptr && generation_ != served); });
        if (stop_) return;
        served = generation_;
        ReadAhead* job = job_;
        in_job_ = true;
        lock.unlock();
        job->run_helper();
        lock.lock();
        in_job_ = false;
        idle_.notify_all();
    }
}

ReadAhead::ReadAhead(HelperThread& helper, std::size_t n, std::function<void(std::size_t)> fn)
    : helper_(helper), n_(n), fn_(std::move(fn)), state_(std::make_unique<std::atomic<int>[]>(n)) {
    for (std::size_t i = 0; i < n_; ++i) state_[i].store(kFree, std::memory_order_relaxed);
    if (n_ > 0) attached_ = helper_.attach(this);
}

ReadAhead::~ReadAhead() {
    if (!attached_) return;
    stop_.store(true, std::memory_order_relaxed);
    helper_.detach(this);
}

void ReadAhead::run_helper() noexcept {
    std::uint64_t ran = 0;
    for (std::size_t i = n_; i-- > 0 && !stop_.load(std::memory_order_relaxed);) {
        int expected = kFree;
        if (!state_[i].compare_exchange_strong(expected, kHelper, std::memory_order_acquire)) continue;  // the owner's
        fn_(i);
        state_[i].store(kDone, std::memory_order_release);
        state_[i].notify_one();
        ++ran;
    }
    helper_.items_.fetch_add(ran, std::memory_order_relaxed);
}

void ReadAhead::take(std::size_t i) noexcept {
    if (i >= n_) return;
    int expected = kFree;
    if (state_[i].compare_exchange_strong(expected, kOwner, std::memory_order_acquire)) {
        fn_(i);
        state_[i].store(kDone, std::memory_order_relaxed);
        return;
    }
    // The helper has it: wait for it to finish (one item at most; blocking, not spinning, in case
    // the helper waits for this very CPU).
    for (int s = expected; s != kDone; s = state_[i].load(std::memory_order_acquire)) state_[i].wait(s, std::memory_order_acquire);
}

}  // namespace pidns
