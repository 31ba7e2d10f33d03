// A helper thread that reads ahead of the event loop: the items of a loop of independent /proc
// reads, taken from the far end while the owner works through them in slices from the front.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace pidns {

class ReadAhead;

// One thread, started at its first use and asleep when no ReadAhead is open; it serves one
// ReadAhead at a time (a second one open at the same time runs on its owner alone). Owned by the
// Model, whose thread is the only one to open ReadAheads.
//
// Why in the background and not a loop shared at each slice: a thread woken (or made) at the
// moment a slice needs it is often put on the waker's own CPU, and only runs once the waker
// blocks (seen on a 2-vCPU KVM guest with Linux 6.18: half of such shared slices ran serially).
// A thread that stays runnable for the whole read is moved to the idle CPU by the kernel.
class HelperThread {
public:
    static constexpr const char* kThreadName = "pidns-readahead";  // its comm (15 characters at most), for ps -L, top -H

    HelperThread() = default;
    HelperThread(const HelperThread&) = delete;
    HelperThread& operator=(const HelperThread&) = delete;
    ~HelperThread();

    // Whether a ReadAhead opened now would be served: no other is open, and the thread exists or
    // has not been asked for yet. Only the owner's thread opens ReadAheads, so this holds until it
    // opens one.
    [[nodiscard]] bool available() noexcept;
    // Items this thread has run, over all ReadAheads (tests, statistics).
    [[nodiscard]] std::uint64_t items() const noexcept { return items_.load(std::memory_order_relaxed); }

private:
    friend class ReadAhead;
    // Gives `job` to the thread; false when it serves another or could not be made.
    bool attach(ReadAhead* job) noexcept;
    // Takes `job` back: on return the thread no longer touches it.
    void detach(ReadAhead* job) noexcept;
    void main() noexcept;

    std::mutex mutex_;
    std::condition_variable wake_;  // the thread waits for a job (or stop)
    std::condition_variable idle_;  // detach waits for the thread to leave the job
    ReadAhead* job_ = nullptr;
    std::uint64_t generation_ = 0;  // one per attach (a new job may have an old one's address)
    bool in_job_ = false;  // the thread is running items of job_
    bool stop_ = false;
    bool tried_ = false;  // the thread was asked for (once)
    std::optional<std::thread> thread_;
    std::atomic<std::uint64_t> items_{0};
};

// fn(i) for every i in [0, n), each exactly once: the owner asks for them in order (take), and
// the helper thread, while it serves this ReadAhead, runs them from the last one down. fn runs on
// both threads at once (for different i), must touch nothing else they share, and must not throw.
class ReadAhead {
public:
    ReadAhead(HelperThread& helper, std::size_t n, std::function<void(std::size_t)> fn);
    ReadAhead(const ReadAhead&) = delete;
    ReadAhead& operator=(const ReadAhead&) = delete;
    // Stops the helper's part: it finishes the item it is running, if any, and runs no more.
    ~ReadAhead();

    // On return fn(i) has run: here (unless the helper ran it or is running it: then after it).
    void take(std::size_t i) noexcept;
    // Whether the helper thread serves this ReadAhead (false: it serves another one, or none
    // could be made; take() then runs every item).
    [[nodiscard]] bool helped() const noexcept { return attached_; }

private:
    friend class HelperThread;
    // On the helper thread: unclaimed items from the last down, until none is left or stopped.
    void run_helper() noexcept;
    enum State : int { kFree = 0, kHelper = 1, kOwner = 2, kDone = 3 };

    HelperThread& helper_;
    std::size_t n_;
    std::function<void(std::size_t)> fn_;
    std::unique_ptr<std::atomic<int>[]> state_;
    std::atomic<bool> stop_{false};
    bool attached_ = false;
};

}  // namespace pidns
