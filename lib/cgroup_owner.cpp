// The owners of the cgroup directories a label's name was chosen in.
#include "cgroup_owner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <string>

#include "cgroup.h"
#include "id_map.h"
#include "nsfs.h"
#include "proc_reader.h"

namespace pidns {
namespace {

constexpr long kCgroupMagic = 0x27e0eb;      // CGROUP_SUPER_MAGIC (cgroup v1)
constexpr long kCgroup2Magic = 0x63677270;   // CGROUP2_SUPER_MAGIC

// `path` opened O_PATH when it is a directory of filesystem type `magic`; -1 otherwise.
int open_hierarchy(const char* path, long magic) {
    const int fd = ::open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct statfs sf {};
    if (::fstatfs(fd, &sf) != 0 || static_cast<long>(sf.f_type) != magic) {
        ::close(fd);
        return -1;
    }
    return fd;
}

int find_hierarchy() {
    bool v1_systemd = false;
    if (auto text = read_file_at(AT_FDCWD, "/proc/self/cgroup"))
        if (auto lines = parse_proc_cgroup(*text))
            for (const auto& l : *lines) v1_systemd = v1_systemd || (l.hierarchy != 0 && l.controllers == "name=systemd");
    if (v1_systemd) return open_hierarchy("/sys/fs/cgroup/systemd", kCgroupMagic);
    const int fd = open_hierarchy("/sys/fs/cgroup", kCgroup2Magic);
    return fd >= 0 ? fd : open_hierarchy("/sys/fs/cgroup/unified", kCgroup2Magic);
}

// What one directory above a label says about who may name what it holds: nullopt when only
// root may, else the uid that may (kOverflowId: more than one user).
std::optional<std::uint32_t> writer_of(const struct stat& st) {
    if (st.st_uid != 0) return static_cast<std::uint32_t>(st.st_uid);
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) return kOverflowId;
    return std::nullopt;
}

}  // namespace

int systemd_hierarchy_fd() {
    static const int fd = find_hierarchy();  // kept open for the life of the process
    return fd;
}

std::optional<std::uint32_t> cgroup_label_owner(int root_fd, std::string_view path, std::size_t depth) {
    if (depth == 0) return std::nullopt;
    if (root_fd < 0) return kOverflowId;
    struct stat st {};
    if (::fstat(root_fd, &st) != 0 || !S_ISDIR(st.st_mode)) return kOverflowId;
    const dev_t dev = st.st_dev;
    Fd held;            // the directory being looked at (none: root_fd)
    int dir = root_fd;
    std::size_t seen = 0;  // components opened so far
    std::size_t i = 0;
    for (;;) {
        if (auto w = writer_of(st)) return w;
        // The next component, unless `dir` is the label's parent.
        while (i < path.size() && path[i] == '/') ++i;
        if (i >= path.size() || seen + 1 >= depth) return std::nullopt;
        const auto j = path.find('/', i);
        const std::string name(path.substr(i, (j == std::string_view::npos ? path.size() : j) - i));
        i += name.size();
        if (name == "." || name == "..") return kOverflowId;  // never in a path the kernel prints
        const int next = ::openat(dir, name.c_str(), O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
        if (next < 0) return kOverflowId;
        held = Fd(next);
        dir = next;
        ++seen;
        if (::fstat(dir, &st) != 0 || st.st_dev != dev) return kOverflowId;
    }
}

}  // namespace pidns
