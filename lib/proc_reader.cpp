// Reads one process's state from /proc through a directory fd.
#include "proc_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <type_traits>

#include "nsfs.h"
#include "parse_util.h"

namespace pidns {
namespace {

// The kernel (task_dump_owner) makes a non-dumpable task's /proc/PID entries belong to root (of
// its mm's user namespace) whatever its euid; but not the world-readable /proc/PID directory
// itself, so look at "status". An owner other than the task's euid/egid means "not dumpable". A
// task whose euid and egid are 0 cannot be told apart this way and counts as dumpable.
bool dumpable_at(int dirfd, std::uint32_t euid, std::uint32_t egid) {
    struct stat st {};
    if (::fstatat(dirfd, "status", &st, 0) != 0) return true;
    return st.st_uid == euid && st.st_gid == egid;
}

Error vanished(std::int32_t pid) {
    return make_error(Errc::not_found, "process " + std::to_string(pid) + " vanished while being read", ESRCH);
}

bool is_gone(int e) { return e == ENOENT || e == ESRCH; }

// readlinkat(dirfd, path) parsed as a namespace link; 0 inode if unreadable.
Result<NsLink> read_ns_link_at(int dirfd, const char* path) {
    char buf[128];
    ssize_t n = ::readlinkat(dirfd, path, buf, sizeof buf);
    if (n < 0) return make_error(is_gone(errno) ? Errc::not_found : Errc::io, std::string("readlink ") + path, errno);
    return parse_ns_link(std::string_view(buf, static_cast<std::size_t>(n)));
}

constexpr std::array<const char*, kNsTypeCount> kNsPaths = {"ns/pid", "ns/user",   "ns/mnt", "ns/net",
                                                            "ns/uts", "ns/ipc", "ns/cgroup", "ns/time"};

Status read_ns_set(int dirfd, NsInodes& out, std::int32_t pid) {
    for (auto t : kAllNsTypes) {
        auto link = read_ns_link_at(dirfd, kNsPaths[ns_type_index(t)]);
        if (!link) {
            if (link.error().code == Errc::not_found) {
                // A zombie keeps its /proc dir but its ns links fail; the task is on its way out.
                return vanished(pid);
            }
            out[ns_type_index(t)] = 0;  // unreadable (permissions): leave unknown
            continue;
        }
        if (link->type != t) return make_error(Errc::parse, "namespace link of unexpected type");
        out[ns_type_index(t)] = link->inode;
    }
    return Ok{};
}

Result<Fd> open_dir_at(int dirfd, const char* name) {
    int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return make_error(is_gone(errno) ? Errc::not_found : Errc::io, std::string("open ") + name, errno);
    return Fd(fd);
}

template <class F>
Status for_each_dirent(int dirfd, F&& f) {
    // A fresh open file description: a dup would share (and leave at the end) the read offset.
    int dup = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dup < 0) return make_error(is_gone(errno) ? Errc::not_found : Errc::io, "open directory", errno);
    DIR* d = ::fdopendir(dup);
    if (!d) {
        ::close(dup);
        return make_error(Errc::io, "fdopendir", errno);
    }
    while (auto* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        if constexpr (std::is_same_v<decltype(f(std::string_view())), bool>) {
            if (!f(std::string_view(e->d_name))) break;  // the callback asked to stop
        } else {
            f(std::string_view(e->d_name));
        }
    }
    ::closedir(d);
    return Ok{};
}

// DIRFD/ID opened (a /proc/PID or task/TID directory), with its status parsed.
struct StatusEntry {
    Fd dir;
    ProcStatus status;
};

// A vanished task gives Errc::not_found.
Result<StatusEntry> open_with_status(int dirfd, std::int32_t id) {
    auto dir = open_dir_at(dirfd, std::to_string(id).c_str());
    if (!dir) return vanished(id);
    auto text = read_file_at(dir->get(), "status");
    if (!text) return text.error().code == Errc::not_found ? vanished(id) : text.error();
    auto status = parse_proc_status(*text);
    if (!status) return status.error();
    return StatusEntry{std::move(*dir), std::move(*status)};
}

// One thread's NSpid chain and namespace links, from its /proc/.../task/TID directory.
Result<RawThread> read_thread_at(int taskdir, std::int32_t tid) {
    auto entry = open_with_status(taskdir, tid);
    if (!entry) return entry.error();
    RawThread t;
    t.tid = tid;
    t.nspid = std::move(entry->status.nspid);
    if (auto s = read_ns_set(entry->dir.get(), t.ns, tid); !s) return s.error();
    return t;
}

void read_threads(int dirfd, std::int32_t pid, RawProcess& p) {
    auto task = open_dir_at(dirfd, "task");
    if (!task) return;
    std::vector<std::int32_t> tids;
    (void)for_each_dirent(task->get(), [&](std::string_view name) {
        auto v = parse_u64(name);
        if (v && *v != static_cast<std::uint64_t>(pid) && *v <= 0x7fffffff) tids.push_back(static_cast<std::int32_t>(*v));
    });
    std::sort(tids.begin(), tids.end());
    for (auto tid : tids)
        if (auto t = read_thread_at(task->get(), tid)) p.threads.push_back(std::move(*t));  // else: exited meanwhile
}

void read_fds(int dirfd, RawProcess& p, std::size_t max_fds) {
    auto fddir = open_dir_at(dirfd, "fd");
    if (!fddir) return;
    std::size_t seen = 0;
    (void)for_each_dirent(fddir->get(), [&](std::string_view name) -> bool {
        if (max_fds != 0 && seen++ >= max_fds) {
            p.fds_truncated = true;
            return false;
        }
        auto v = parse_u64(name);
        if (!v || *v > 0x7fffffff) return true;
        std::string n(name);
        char buf[128];
        ssize_t len = ::readlinkat(fddir->get(), n.c_str(), buf, sizeof buf);
        if (len <= 0) return true;
        std::string_view target(buf, static_cast<std::size_t>(len));
        // Namespace fds read as "net:[4026532000]"; everything else is skipped cheaply.
        if (target.empty() || target.front() == '/' || target.back() != ']') return true;
        auto link = parse_ns_link(target);
        if (link) p.ns_fds.push_back(RawFdNs{static_cast<std::int32_t>(*v), *link});
        return true;
    });
}

}  // namespace

Result<std::string> read_file_at(int dirfd, const char* name) {
    int fd = ::openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(is_gone(errno) ? Errc::not_found : Errc::io, std::string("open ") + name, errno);
    Fd owner(fd);
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error(is_gone(errno) ? Errc::not_found : Errc::io, std::string("read ") + name, errno);
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > (1u << 20)) return make_error(Errc::parse, std::string(name) + " larger than 1 MiB");
    }
    return out;
}

namespace {

// /proc/PID opened, with its status and stat parsed: what every read of a live process starts with.
struct LiveEntry {
    Fd dir;
    ProcStatus status;
    ProcStat stat;
};

// A vanished process, or a zombie, gives Errc::not_found.
Result<LiveEntry> open_live(int proc_fd, std::int32_t pid) {
    if (pid <= 0) return make_error(Errc::invalid_argument, "pid must be positive");
    auto entry = open_with_status(proc_fd, pid);
    if (!entry) return entry.error();
    auto stat_text = read_file_at(entry->dir.get(), "stat");
    if (!stat_text) return vanished(pid);
    auto stat = parse_proc_stat(*stat_text);
    if (!stat) return stat.error();
    if (stat->state == 'Z' || stat->state == 'X') return vanished(pid);
    return LiveEntry{std::move(entry->dir), std::move(entry->status), *stat};
}

}  // namespace

Result<RawProcess> read_process(int proc_fd, std::int32_t pid, const ReadOptions& opts) {
    auto live = open_live(proc_fd, pid);
    if (!live) return live.error();
    if (live->status.pid != live->status.tgid)
        return make_error(Errc::invalid_argument, std::to_string(pid) + " is a thread, not a thread-group leader");
    const Fd& dir = live->dir;
    RawProcess p;
    p.status = std::move(live->status);
    p.stat = live->stat;
    if (auto s = read_ns_set(dir.get(), p.ns, pid); !s) return s.error();
    // Without all eight links the process cannot be indexed: skip its threads and fds.
    if (std::find(p.ns.begin(), p.ns.end(), 0) != p.ns.end())
        return make_error(Errc::io, "the namespace links of process " + std::to_string(pid) + " are unreadable");
    if (auto l = read_ns_link_at(dir.get(), "ns/pid_for_children")) p.pid_for_children = l->inode;
    if (auto l = read_ns_link_at(dir.get(), "ns/time_for_children")) p.time_for_children = l->inode;
    p.dumpable = dumpable_at(dir.get(), p.status.uid[1], p.status.gid[1]);
    if (opts.tasks) read_threads(dir.get(), pid, p);
    if (opts.fds) read_fds(dir.get(), p, opts.max_fds);
    return p;
}

Result<RawCredentials> read_credentials(int proc_fd, std::int32_t pid) {
    auto live = open_live(proc_fd, pid);
    if (!live) return live.error();
    RawCredentials c;
    c.uid = live->status.uid;
    c.gid = live->status.gid;
    c.cap_prm = live->status.cap_prm;
    c.cap_eff = live->status.cap_eff;
    c.start_time = live->stat.start_time;
    c.dumpable = dumpable_at(live->dir.get(), c.uid[1], c.gid[1]);
    return c;
}

Result<RawThread> read_thread(int proc_fd, std::int32_t tgid, std::int32_t tid) {
    if (tgid <= 0 || tid <= 0) return make_error(Errc::invalid_argument, "pid must be positive");
    auto task = open_dir_at(proc_fd, (std::to_string(tgid) + "/task").c_str());
    if (!task) return vanished(tgid);
    return read_thread_at(task->get(), tid);
}

Result<NsLinks> read_ns_links(int proc_fd, std::int32_t tgid, std::span<const std::int32_t> tids) {
    if (tgid <= 0) return make_error(Errc::invalid_argument, "pid must be positive");
    auto dir = open_dir_at(proc_fd, std::to_string(tgid).c_str());
    if (!dir) return vanished(tgid);
    NsLinks out;
    if (auto s = read_ns_set(dir->get(), out.ns, tgid); !s) return s.error();
    if (auto l = read_ns_link_at(dir->get(), "ns/pid_for_children")) out.pid_for_children = l->inode;
    if (auto l = read_ns_link_at(dir->get(), "ns/time_for_children")) out.time_for_children = l->inode;
    for (auto tid : tids) {
        NsInodes t{};
        std::string base = "task/" + std::to_string(tid) + "/";
        bool gone = false;
        for (auto type : kAllNsTypes) {
            auto link = read_ns_link_at(dir->get(), (base + kNsPaths[ns_type_index(type)]).c_str());
            if (!link) {
                gone = gone || link.error().code == Errc::not_found;
                continue;
            }
            if (link->type == type) t[ns_type_index(type)] = link->inode;
        }
        if (!gone) out.threads.emplace_back(tid, t);  // an exited thread is left to its exit event
    }
    return out;
}

bool is_live_task(int proc_fd, std::int32_t tid) {
    if (tid <= 0) return false;
    auto dir = open_dir_at(proc_fd, std::to_string(tid).c_str());
    if (!dir) return false;
    auto text = read_file_at(dir->get(), "stat");
    if (!text) return false;
    auto stat = parse_proc_stat(*text);
    return stat && stat->state != 'Z' && stat->state != 'X';
}

Result<std::vector<std::int32_t>> list_proc_pids(int proc_fd) {
    std::vector<std::int32_t> pids;
    auto s = for_each_dirent(proc_fd, [&](std::string_view name) {
        auto v = parse_u64(name);
        if (v && *v > 0 && *v <= 0x7fffffff) pids.push_back(static_cast<std::int32_t>(*v));
    });
    if (!s) return s.error();
    std::sort(pids.begin(), pids.end());
    return pids;
}

}  // namespace pidns
