// Which processes hold namespaces open by fd, from a BPF task_file iterator.
#include "nsfs_fd_iter.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "nsfs.h"

// The compiled bpf/nsfs_fds.bpf.c, embedded at build time (CMakeLists.txt): no file to trust.
extern const unsigned char kNsfsFdsBpfObject[];
extern const std::size_t kNsfsFdsBpfObjectSize;

namespace pidns {

namespace {

constexpr std::uint64_t kInitialPidNsInode = 0xEFFFFFFCU;  // PROC_PID_INIT_INO, fixed since Linux 3.8

// libbpf prints to stderr by default; keep its last warning as the reason of a failed load.
thread_local std::string last_libbpf_message;
int keep_libbpf_message(enum libbpf_print_level level, const char* fmt, va_list args) {
    if (level == LIBBPF_DEBUG) return 0;
    std::array<char, 512> buf{};
    int n = std::vsnprintf(buf.data(), buf.size(), fmt, args);
    if (n > 0) {
        std::string s(buf.data());
        while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
        if (!s.empty()) last_libbpf_message = std::move(s);
    }
    return 0;
}

Error load_error(const char* what, int err) {
    std::string msg = std::string(what) + ": " + std::strerror(err);
    if (!last_libbpf_message.empty()) msg += " (libbpf: " + last_libbpf_message + ")";
    return make_error(Errc::unsupported, std::move(msg), err);
}

}  // namespace

std::size_t fold_nsfs_fd_records(std::span<const std::byte> bytes, NsfsFdsByPid& out) {
    std::size_t used = 0;
    for (; bytes.size() - used >= sizeof(NsfsFdRecord); used += sizeof(NsfsFdRecord)) {
        NsfsFdRecord r;
        std::memcpy(&r, bytes.data() + used, sizeof r);
        if (r.tgid <= 0 || r.fd < 0 || r.inode == 0) continue;
        auto& held = out[r.tgid];
        bool known = false;
        for (auto& [fd, inode] : held)
            if (inode == r.inode) {
                known = true;
                if (r.fd < fd) fd = r.fd;
                break;
            }
        if (!known) held.emplace_back(r.fd, r.inode);
    }
    return used;
}

struct NsfsFdIter::Impl {
    bpf_object* obj = nullptr;
    bpf_link* link = nullptr;
    ~Impl() {
        if (link) bpf_link__destroy(link);
        if (obj) bpf_object__close(obj);
    }
};

NsfsFdIter::NsfsFdIter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NsfsFdIter::~NsfsFdIter() = default;

Result<std::unique_ptr<NsfsFdIter>> NsfsFdIter::load() {
    static std::once_flag once;
    std::call_once(once, [] { libbpf_set_print(keep_libbpf_message); });
    last_libbpf_message.clear();
    auto impl = std::make_unique<Impl>();
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "pidnsd_nsfs_fds");
    impl->obj = bpf_object__open_mem(kNsfsFdsBpfObject, kNsfsFdsBpfObjectSize, &opts);
    if (!impl->obj) return load_error("cannot open the BPF object", errno);
    if (bpf_object__load(impl->obj) != 0) return load_error("cannot load the BPF iterator", errno);
    bpf_program* prog = bpf_object__find_program_by_name(impl->obj, "nsfs_fds");
    if (!prog) return load_error("the BPF object lacks its program", ENOENT);
    impl->link = bpf_program__attach_iter(prog, nullptr);
    if (!impl->link) return load_error("cannot attach the BPF iterator", errno);
    return std::unique_ptr<NsfsFdIter>(new NsfsFdIter(std::move(impl)));
}

Result<NsfsFdsByPid> NsfsFdIter::list() const {
    int fd = bpf_iter_create(bpf_link__fd(impl_->link));
    if (fd < 0) return make_error(Errc::io, "cannot start the BPF iterator", errno);
    Fd owner(fd);
    NsfsFdsByPid out;
    std::array<std::byte, 64 * sizeof(NsfsFdRecord)> buf;
    std::size_t have = 0;
    for (;;) {
        ssize_t n = ::read(fd, buf.data() + have, buf.size() - have);
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error(Errc::io, "cannot read the BPF iterator", errno);
        }
        if (n == 0) break;
        have += static_cast<std::size_t>(n);
        const std::size_t used = fold_nsfs_fd_records(std::span(buf.data(), have), out);
        std::memmove(buf.data(), buf.data() + used, have - used);
        have -= used;
    }
    return out;
}

bool NsfsFdIter::startable() const {
    const int fd = bpf_iter_create(bpf_link__fd(impl_->link));
    if (fd < 0) return false;
    ::close(fd);
    return true;
}

bool in_initial_pid_namespace(int proc_fd) {
    std::array<char, 32> self{};
    const ssize_t n = ::readlinkat(proc_fd, "self", self.data(), self.size() - 1);
    if (n <= 0 || std::string_view(self.data(), static_cast<std::size_t>(n)) != std::to_string(::getpid())) return false;
    struct stat st {};
    if (::fstatat(proc_fd, "self/ns/pid", &st, 0) != 0) return false;
    return st.st_ino == kInitialPidNsInode;
}

}  // namespace pidns
