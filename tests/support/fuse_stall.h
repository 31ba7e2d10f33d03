// A FUSE file system (spoken directly on /dev/fuse, no libfuse) that never answers a READ: what
// any user with fusermount3 can mount. Its one file "f", opened twice by a process (a page-cache
// open, then one the server marks FOPEN_DIRECT_IO), lets that process keep its own mmap lock held
// for writing: one thread's read of the first open waits for the server with a page-cache folio
// locked; the mmap() of the second (fuse_file_mmap: invalidate_inode_pages2 under the mmap lock
// taken for writing) then waits on that folio. Every reader of the process's /proc/PID/cmdline
// (mmap_read_lock) waits behind it, for as long as the server likes. (argv itself on a FUSE or
// userfaultfd page does not stall a reader: /proc reads argv with FOLL_ANON and no fault retry.)
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace pidns::testing {

class FuseStall {
public:
    // Mounts the file system on a new temporary directory (root only).
    FuseStall();
    // Aborts the connection first (every waiter gets an error), then unmounts.
    ~FuseStall();
    FuseStall(const FuseStall&) = delete;
    FuseStall& operator=(const FuseStall&) = delete;

    // The file to open: first open page-cached, every later one FOPEN_DIRECT_IO.
    [[nodiscard]] std::string file() const { return dir_ + "/f"; }
    // Waits until a READ is pending (unanswered) at the server.
    bool wait_read(std::chrono::milliseconds timeout);
    // Ends the connection: every request waiting fails (ECONNABORTED), nothing waits on it after.
    void abort();

private:
    void serve();
    std::string dir_;
    int fd_ = -1;
    int stop_ = -1;  // eventfd
    std::atomic<int> opens_{0}, reads_{0};
    std::thread server_;
    bool mounted_ = false;
};

}  // namespace pidns::testing
