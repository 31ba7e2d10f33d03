// Opening nsfs bind mounts by their mount point: no symlinks, nsfs only, and a deadline on the walk.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "nsfs.h"
#include "result.h"

namespace pidns {

// A mount point read from /proc/PID/mountinfo names a path in PID's mount namespace, made of
// directories that users may own and mount over. It is walked below /proc/PID/root by
// open_beneath (no symlink, no escape, O_PATH: nothing is opened on the way) and the result must
// be an nsfs file (reopen_nsfs). Even so a walk can wait forever: a FUSE server may never answer
// a LOOKUP. So each walk runs on a thread of its own that owns everything it touches; the
// caller waits one deadline at most, and at most one thread is ever left waiting.
// Not thread-safe: one owner calls it.
class MountPathOpener {
public:
    static constexpr std::chrono::milliseconds kDeadline{100};

    explicit MountPathOpener(std::chrono::milliseconds deadline = kDeadline) : deadline_(deadline) {}
    MountPathOpener(const MountPathOpener&) = delete;
    MountPathOpener& operator=(const MountPathOpener&) = delete;

    // The nsfs file mounted at `mount_point` in the mount namespace of `pid`, opened for the
    // ioctls. Refusals (Errc::access_denied, nothing opened) are those of open_beneath and
    // reopen_nsfs, and those of walk(). A vanished process is Errc::not_found.
    Result<Fd> open(int proc_fd, std::int32_t pid, const std::string& mount_point);

    // open_beneath(dir, path) on a helper thread. If it has not returned within the deadline the
    // thread is abandoned (it finishes, or waits forever, on its own; its late result is
    // dropped) and the walk is refused: Errc::access_denied, ETIMEDOUT. While an abandoned walk
    // has not returned, every call is refused at once (Errc::access_denied, EBUSY), no thread.
    Result<Fd> walk(Fd dir, std::string path);

    // An abandoned walk has not returned yet.
    [[nodiscard]] bool stuck() const;
    // Walks abandoned at their deadline so far.
    [[nodiscard]] std::uint64_t abandoned() const noexcept { return abandoned_; }

private:
    struct Walk;
    std::chrono::milliseconds deadline_;
    std::shared_ptr<Walk> stuck_;  // the last walk abandoned, kept to see when it returns
    std::uint64_t abandoned_ = 0;
};

}  // namespace pidns
