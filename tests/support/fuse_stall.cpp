// A FUSE server on /dev/fuse that answers INIT, LOOKUP, GETATTR, OPEN, FLUSH and RELEASE, and never READ.
#include "fuse_stall.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace pidns::testing {
namespace {

constexpr std::uint64_t kFile = 2;  // the node id of "f"

fuse_attr attr_of(std::uint64_t node) {
    fuse_attr a{};
    a.ino = node;
    a.nlink = node == FUSE_ROOT_ID ? 2 : 1;
    a.mode = node == FUSE_ROOT_ID ? (S_IFDIR | 0755) : (S_IFREG | 0644);
    a.size = node == FUSE_ROOT_ID ? 0 : 1 << 20;
    a.blocks = a.size / 512;
    a.blksize = 4096;
    return a;
}

}  // namespace

FuseStall::FuseStall() {
    char tmpl[] = "/tmp/pidns-fuse.XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);  // the process that opens the file may be another user
    fd_ = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error(std::string("open /dev/fuse: ") + std::strerror(errno));
    const std::string opts = "fd=" + std::to_string(fd_) + ",rootmode=40000,user_id=0,group_id=0,allow_other";
    if (::mount("pidns-stall", dir_.c_str(), "fuse", MS_NOSUID | MS_NODEV, opts.c_str()) != 0)
        throw std::runtime_error(std::string("mount fuse: ") + std::strerror(errno));
    mounted_ = true;
    stop_ = ::eventfd(0, EFD_CLOEXEC);
    server_ = std::thread([this] { serve(); });
}

FuseStall::~FuseStall() {
    abort();
    if (server_.joinable()) server_.join();
    if (stop_ >= 0) ::close(stop_);
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    ::rmdir(dir_.c_str());
}

void FuseStall::abort() {
    if (stop_ >= 0) {
        const std::uint64_t one = 1;
        (void)!::write(stop_, &one, sizeof one);
    }
    if (server_.joinable()) server_.join();
    // The last /dev/fuse fd of the connection: closing it aborts the connection.
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

bool FuseStall::wait_read(std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (reads_.load() == 0) {
        if (std::chrono::steady_clock::now() >= end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

void FuseStall::serve() {
    std::vector<char> buf(FUSE_MIN_READ_BUFFER + (1 << 20));
    auto reply = [&](const fuse_in_header& in, int error, const void* body, std::size_t size) {
        fuse_out_header out{};
        out.len = static_cast<std::uint32_t>(sizeof out + (error == 0 ? size : 0));
        out.error = error;
        out.unique = in.unique;
        std::vector<char> msg(out.len);
        std::memcpy(msg.data(), &out, sizeof out);
        if (error == 0 && size) std::memcpy(msg.data() + sizeof out, body, size);
        (void)!::write(fd_, msg.data(), msg.size());
    };
    for (;;) {
        pollfd p[2] = {{fd_, POLLIN, 0}, {stop_, POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (p[1].revents) return;
        const ssize_t n = ::read(fd_, buf.data(), buf.size());
        if (n < 0 && (errno == EINTR || errno == ENOENT || errno == EAGAIN)) continue;
        if (n < static_cast<ssize_t>(sizeof(fuse_in_header))) return;  // unmounted or aborted
        fuse_in_header in{};
        std::memcpy(&in, buf.data(), sizeof in);
        const char* arg = buf.data() + sizeof in;
        switch (in.opcode) {
        case FUSE_INIT: {
            fuse_init_out out{};
            out.major = FUSE_KERNEL_VERSION;
            out.minor = FUSE_KERNEL_MINOR_VERSION;
            out.max_readahead = 4096;
            out.max_write = 4096;
            out.max_background = 16;
            out.congestion_threshold = 12;
            out.time_gran = 1;
            reply(in, 0, &out, sizeof out);
            break;
        }
        case FUSE_LOOKUP: {
            if (in.nodeid != FUSE_ROOT_ID || std::strcmp(arg, "f") != 0) {
                reply(in, -ENOENT, nullptr, 0);
                break;
            }
            fuse_entry_out out{};
            out.nodeid = kFile;
            out.generation = 1;
            out.entry_valid = out.attr_valid = 3600;
            out.attr = attr_of(kFile);
            reply(in, 0, &out, sizeof out);
            break;
        }
        case FUSE_GETATTR: {
            fuse_attr_out out{};
            out.attr_valid = 3600;
            out.attr = attr_of(in.nodeid);
            reply(in, 0, &out, sizeof out);
            break;
        }
        case FUSE_OPEN: {
            fuse_open_out out{};
            out.fh = static_cast<std::uint64_t>(++opens_);
            out.open_flags = out.fh == 1 ? FOPEN_KEEP_CACHE : FOPEN_DIRECT_IO;
            reply(in, 0, &out, sizeof out);
            break;
        }
        case FUSE_READ:
            ++reads_;  // never answered
            break;
        case FUSE_FLUSH:
        case FUSE_RELEASE:
            reply(in, 0, nullptr, 0);
            break;
        case FUSE_FORGET:
        case FUSE_BATCH_FORGET:
        case FUSE_INTERRUPT:
            break;  // no answer expected
        default:
            reply(in, -ENOSYS, nullptr, 0);
        }
    }
}

}  // namespace pidns::testing
