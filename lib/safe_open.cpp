// Opening nsfs bind mounts by their mount point: no symlinks, nsfs only, and a deadline on the walk.
#include "safe_open.h"

#include <fcntl.h>

#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

namespace pidns {

// Everything a walk's thread touches: shared with the caller, freed by whichever lets go last.
struct MountPathOpener::Walk {
    Fd dir;
    std::string path;
    std::mutex mu;
    std::condition_variable done_cv;
    std::optional<Result<Fd>> result;  // set once, when the walk returns
};

Result<Fd> MountPathOpener::open(int proc_fd, std::int32_t pid, const std::string& mount_point) {
    // /proc/PID/root is a magic link: the kernel jumps to PID's root, no walk.
    const std::string root = std::to_string(pid) + "/root";
    int fd = ::openat(proc_fd, root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        return make_error(e == ENOENT || e == ESRCH ? Errc::not_found : Errc::io, "cannot open /proc/" + root, e);
    }
    auto opath = walk(Fd(fd), mount_point);
    if (!opath) return opath.error();
    return reopen_nsfs(proc_fd, opath->get());
}

bool MountPathOpener::stuck() const {
    if (!stuck_) return false;
    std::lock_guard lock(stuck_->mu);
    return !stuck_->result;
}

Result<Fd> MountPathOpener::walk(Fd dir, std::string path) {
    if (stuck())
        return make_error(Errc::access_denied, "skipped " + path + ": an earlier walk still waits for its filesystem",
                          EBUSY);
    stuck_.reset();
    auto w = std::make_shared<Walk>();
    w->dir = std::move(dir);
    w->path = std::move(path);
    try {
        std::thread([w] {
            auto r = open_beneath(w->dir.get(), w->path);
            std::lock_guard lock(w->mu);
            w->result.emplace(std::move(r));
            w->done_cv.notify_all();
        }).detach();
    } catch (const std::system_error& e) {
        return make_error(Errc::io, "cannot start a thread to open " + w->path, e.code().value());
    }
    std::unique_lock lock(w->mu);
    if (!w->done_cv.wait_for(lock, deadline_, [&] { return w->result.has_value(); })) {
        ++abandoned_;
        stuck_ = w;
        return make_error(Errc::access_denied,
                          "gave up opening " + w->path + " after " + std::to_string(deadline_.count()) +
                              " ms: its filesystem does not answer",
                          ETIMEDOUT);
    }
    return std::move(*w->result);
}

}  // namespace pidns
