// Labels of a process, read from /proc; user names from a passwd file.
#include "labels.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "parse_util.h"
#include "proc_reader.h"
#include "nsfs.h"
#include "proc_stat.h"

namespace pidns {

Result<Labels> read_labels(int proc_fd, std::int32_t pid, std::uint64_t start_time, int cgroup_root_fd) {
    const std::string dir_name = std::to_string(pid);
    const int dir = ::openat(proc_fd, dir_name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    auto gone = [&] {
        return make_error(Errc::not_found, "process " + dir_name + " exited while its labels were read", ESRCH);
    };
    if (dir < 0) return gone();
    Fd owner(dir);
    Labels l;
    if (auto comm = read_file_at(dir, "comm")) {
        l.command = std::move(*comm);
        if (!l.command.empty() && l.command.back() == '\n') l.command.pop_back();
    }
    if (auto text = read_file_at(dir, "cgroup")) {
        if (auto lines = parse_proc_cgroup(*text)) {
            if (auto path = systemd_cgroup_path(*lines)) {
                l.cgroup = *path;
                const auto placement = systemd_placement(l.cgroup);
                l.unit = placement.unit;
                l.slice = placement.slice;
                l.container = container_of(l.cgroup);
                // One walk for both: the container lies at or below the unit, or above it.
                const auto owners = cgroup_label_owners(cgroup_root_fd, l.cgroup,
                                                        std::max(placement.depth, l.container ? l.container->depth : 0));
                if (placement.depth > 0) l.unit_owner = owners[placement.depth - 1];
                if (l.container) l.container_owner = owners[l.container->depth - 1];
            }
        }
    }
    // Read last: everything above belongs to the process the caller was allowed to see.
    auto stat_text = read_file_at(dir, "stat");
    if (!stat_text) return gone();
    auto stat = parse_proc_stat(*stat_text);
    if (!stat || stat->start_time != start_time) return gone();
    return l;
}

std::string read_cgroup_path(int proc_fd, std::int32_t pid) {
    const std::string rel = std::to_string(pid) + "/cgroup";
    auto text = read_file_at(proc_fd, rel.c_str());
    if (!text) return {};
    auto lines = parse_proc_cgroup(*text);
    if (!lines) return {};
    auto path = systemd_cgroup_path(*lines);
    return path ? *path : std::string();
}

bool cgroup_within(std::string_view path, std::string_view container_path) {
    if (!path.starts_with(container_path)) return false;
    return path.size() == container_path.size() || path[container_path.size()] == '/' || container_path == "/";
}

namespace {
// The length of `path` up to the end of its first component (between slashes) for which
// `pick(component)` holds; npos when none does.
template <class Pick>
std::size_t prefix_through(std::string_view path, Pick&& pick) {
    std::size_t i = 0;
    while (i < path.size()) {
        while (i < path.size() && path[i] == '/') ++i;
        if (i >= path.size()) break;
        const auto j = path.find('/', i);
        const auto end = j == std::string_view::npos ? path.size() : j;
        if (pick(path.substr(i, end - i))) return end;
        i = end;
    }
    return std::string_view::npos;
}
}  // namespace

std::string cgroup_prefix(std::string_view path, std::size_t depth) {
    std::size_t seen = 0;
    const auto end = prefix_through(path, [&](std::string_view) { return ++seen == depth; });
    return std::string(path.substr(0, end));  // npos: the whole path
}

std::string cgroup_upto(std::string_view path, std::string_view component) {
    if (component.empty()) return {};
    const auto end = prefix_through(path, [&](std::string_view c) { return c == component; });
    return end == std::string_view::npos ? std::string() : std::string(path.substr(0, end));
}

namespace {

// A regular file of at most 16 MiB (an admin's passwd file, not a path a user controls).
std::optional<std::string> read_small_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return std::nullopt;
    Fd owner(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (16 << 20)) return std::nullopt;
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > (16u << 20)) return std::nullopt;
    }
    return out;
}

}  // namespace

std::unordered_map<std::uint32_t, std::string> parse_passwd(std::string_view text) {
    std::unordered_map<std::uint32_t, std::string> out;
    while (!text.empty() && out.size() < 65536) {
        const auto nl = text.find('\n');
        const auto line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        // name:password:uid:gid:gecos:home:shell
        const auto c1 = line.find(':');
        if (c1 == std::string_view::npos || c1 == 0) continue;
        const auto c2 = line.find(':', c1 + 1);
        if (c2 == std::string_view::npos) continue;
        const auto c3 = line.find(':', c2 + 1);
        if (c3 == std::string_view::npos) continue;
        const auto name = line.substr(0, c1);
        if (name.front() == '+' || name.front() == '-' || name.front() == '#') continue;  // NIS compat, comments
        auto uid = parse_u64(line.substr(c2 + 1, c3 - c2 - 1));
        if (!uid || *uid > 0xfffffffeu) continue;
        out.try_emplace(static_cast<std::uint32_t>(*uid), std::string(name));
    }
    return out;
}

std::optional<std::string> UserNames::name_of(std::uint32_t uid) {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const std::int64_t now_ns = static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
    if (mtime_ns_ < 0 || now_ns - checked_ns_ >= 1'000'000'000) {
        checked_ns_ = now_ns;
        struct stat st {};
        if (::stat(path_.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
            const std::int64_t mt = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
            if (mt != mtime_ns_ || st.st_size != size_) {
                if (auto text = read_small_file(path_)) names_ = parse_passwd(*text);
                mtime_ns_ = mt;
                size_ = st.st_size;
            }
        }
    }
    if (auto it = names_.find(uid); it != names_.end()) return it->second;
    return std::nullopt;
}

}  // namespace pidns
