// The owners of the cgroup directories a label's name was chosen in.
#include "cgroup_owner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "cgroup.h"
#include "id_map.h"
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

std::vector<std::optional<std::uint32_t>> cgroup_label_owners(int root_fd, std::string_view path, std::size_t depth) {
    std::vector<std::optional<std::uint32_t>> out;
    if (depth == 0) return out;
    out.reserve(depth);
    // Once a directory could be written by someone else, every name below it is theirs too.
    auto fill = [&](std::optional<std::uint32_t> who) {
        while (out.size() < depth) out.push_back(who);
        return out;
    };
    if (root_fd < 0) return fill(kOverflowId);
    struct stat st {};
    if (::fstat(root_fd, &st) != 0 || !S_ISDIR(st.st_mode)) return fill(kOverflowId);
    const dev_t dev = st.st_dev;
    std::string prefix;  // components 1..i, relative to root_fd
    std::size_t i = 0;
    for (;;) {
        // `st` is the directory the next name is made in: it decides that name's owner.
        if (auto w = writer_of(st)) return fill(w);
        out.push_back(std::nullopt);
        if (out.size() == depth) return out;
        while (i < path.size() && path[i] == '/') ++i;
        if (i >= path.size()) return fill(std::nullopt);  // shorter than `depth`: nothing more to judge
        const auto j = std::min(path.find('/', i), path.size());
        const auto name = path.substr(i, j - i);
        i = j;
        if (name == "." || name == "..") return fill(kOverflowId);  // never in a path the kernel prints
        if (!prefix.empty()) prefix += '/';
        prefix += name;
        // The directory itself, not followed if it were a link (cgroupfs has none: no one can make
        // one there), checked to be a directory on the hierarchy's filesystem before anything
        // below it is looked up through it.
        if (::fstatat(root_fd, prefix.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) ||
            st.st_dev != dev)
            return fill(kOverflowId);
    }
}

std::optional<std::uint32_t> cgroup_label_owner(int root_fd, std::string_view path, std::size_t depth) {
    const auto owners = cgroup_label_owners(root_fd, path, depth);
    return owners.empty() ? std::nullopt : owners.back();
}

}  // namespace pidns
