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
// itself, so look at "status" (as it was when opened to be read: the owner pid_revalidate gave it
// then). An owner other than the task's euid/egid means "not dumpable". A task whose euid and
// egid are 0 cannot be told apart this way and counts as dumpable.
struct FileOwner {
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    bool known = false;
};
bool dumpable_by_owner(const FileOwner& owner, std::uint32_t euid, std::uint32_t egid) {
    return !owner.known || (owner.uid == euid && owner.gid == egid);
}

bool is_gone(int e) { return e == ENOENT || e == ESRCH; }

// How a file below /proc/PID ends.
enum class Ends {
    at_eof,        // where read() returns 0
    at_short_read, // one seq_file record (single_open: status, stat): a read that did not fill
                   // the buffer returned all that was left, no need to ask again
};

// Reads the small file `name` below dirfd (at most 1 MiB); `opened(fd)` is called once it is open.
template <class F>
Result<std::string> read_text_at(int dirfd, const char* name, F&& opened, Ends ends = Ends::at_eof) {
    int fd = ::openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(is_gone(errno) ? Errc::not_found : Errc::io, std::string("open ") + name, errno);
    Fd owner(fd);
    opened(fd);
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
        if (ends == Ends::at_short_read && static_cast<std::size_t>(n) < sizeof buf) break;
    }
    return out;
}

Error vanished(std::int32_t pid) {
    return make_error(Errc::not_found, "process " + std::to_string(pid) + " vanished while being read", ESRCH);
}

Status read_ns_set(int dirfd, NsInodes& out, std::int32_t pid) {
    for (auto t : kAllNsTypes) {
        auto link = read_ns_link_at(dirfd, ns_type_link(t));
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

// The user namespace link of DIRFD (a task directory) again: unchanged since `inode` was read?
// A task that calls unshare(CLONE_NEWUSER) (or setns) while it is being read would otherwise
// leave credentials and links from either side of the call in one record: its new caps with its
// old user namespace, which the access rule reads as a different task.
bool user_link_still(int dirfd, std::uint64_t inode) {
    auto l = read_ns_link_at(dirfd, "ns/user");
    return l && l->inode == inode;
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
    FileOwner status_owner;
};

// A vanished task gives Errc::not_found.
Result<StatusEntry> open_with_status(int dirfd, std::int32_t id) {
    auto dir = open_dir_at(dirfd, std::to_string(id).c_str());
    if (!dir) return vanished(id);
    FileOwner owner;
    auto text = read_text_at(
        dir->get(), "status",
        [&owner](int fd) {
            struct stat st {};
            if (::fstat(fd, &st) == 0) owner = FileOwner{st.st_uid, st.st_gid, true};
        },
        Ends::at_short_read);
    if (!text) return text.error().code == Errc::not_found ? vanished(id) : text.error();
    auto status = parse_proc_status(*text);
    if (!status) return status.error();
    return StatusEntry{std::move(*dir), std::move(*status), owner};
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

void read_fds(int dirfd, std::int32_t pid, RawProcess& p, const ReadOptions& opts) {
    if (opts.listed_fds) {
        const auto it = opts.listed_fds->find(pid);
        if (it == opts.listed_fds->end()) return;
        auto fddir = open_dir_at(dirfd, "fd");
        if (!fddir) return;
        // The pass only said where to look: /proc says what is there now.
        for (const auto& [fd, inode] : it->second)
            if (auto link = ns_link_at(fddir->get(), std::to_string(fd).c_str())) p.ns_fds.push_back(RawFdNs{fd, *link});
        return;
    }
    if (!opts.fds) return;
    auto fddir = open_dir_at(dirfd, "fd");
    if (!fddir) return;
    std::size_t seen = 0;
    (void)for_each_dirent(fddir->get(), [&](std::string_view name) -> bool {
        if (opts.max_fds != 0 && seen++ >= opts.max_fds) {
            p.fds_truncated = true;
            return false;
        }
        auto v = parse_u64(name);
        if (!v || *v > 0x7fffffff) return true;
        // Namespace fds read as "net:[4026532000]"; everything else is skipped cheaply.
        if (auto link = ns_link_at(fddir->get(), std::string(name).c_str()))
            p.ns_fds.push_back(RawFdNs{static_cast<std::int32_t>(*v), *link});
        return true;
    });
}

}  // namespace

Result<std::string> read_file_at(int dirfd, const char* name) {
    return read_text_at(dirfd, name, [](int) {});
}

namespace {

// DIRFD/ID (a /proc/PID or task/TID directory) opened, with its status and stat parsed.
struct TaskEntry {
    Fd dir;
    ProcStatus status;
    ProcStat stat;
    FileOwner status_owner;
};

// In any state; a vanished task gives Errc::not_found.
Result<TaskEntry> open_task(int dirfd, std::int32_t id) {
    auto entry = open_with_status(dirfd, id);
    if (!entry) return entry.error();
    auto stat_text = read_text_at(entry->dir.get(), "stat", [](int) {}, Ends::at_short_read);
    if (!stat_text) return vanished(id);
    auto stat = parse_proc_stat(*stat_text);
    if (!stat) return stat.error();
    return TaskEntry{std::move(entry->dir), std::move(entry->status), *stat, entry->status_owner};
}

bool is_zombie(const ProcStat& st) { return st.state == 'Z' || st.state == 'X'; }

// Neither a zombie nor dead nor exiting: its namespace links hold for now.
bool is_live(const ProcStat& st) { return !is_zombie(st) && (st.flags & kPfExiting) == 0; }

// The tids /proc/TGID/task lists (its "task" directory open as `taskdir`), but `tgid` and
// `except`, ascending.
std::vector<std::int32_t> other_tids(int taskdir, std::int32_t tgid, std::int32_t except) {
    std::vector<std::int32_t> tids;
    (void)for_each_dirent(taskdir, [&](std::string_view name) {
        auto v = parse_u64(name);
        if (v && *v <= 0x7fffffff && *v != static_cast<std::uint64_t>(tgid) && *v != static_cast<std::uint64_t>(except))
            tids.push_back(static_cast<std::int32_t>(*v));
    });
    std::sort(tids.begin(), tids.end());
    return tids;
}

// For a leader that exited while other threads live on (pthread_exit() in main): calls
// `use(tid, entry)` for each live thread in tid order until it returns true, and returns that
// tid; 0 when none lives (or none was accepted).
template <class F>
std::int32_t first_live_thread(int leader_dir, std::int32_t tgid, F&& use) {
    auto task = open_dir_at(leader_dir, "task");
    if (!task) return 0;
    for (auto tid : other_tids(task->get(), tgid, 0)) {
        auto entry = open_task(task->get(), tid);
        if (entry && is_live(entry->stat) && use(tid, *entry)) return tid;
    }
    return 0;
}

// The rest of read_process for a leader whose own links are gone: the namespaces, credentials,
// dumpability and fds of a live thread, and (opts.tasks) every thread.
Result<RawProcess> read_through_threads(int leader_dir, std::int32_t pid, RawProcess&& p, const ReadOptions& opts,
                                       bool& torn) {
    std::int32_t ref = 0;
    bool unreadable = false;
    auto task = open_dir_at(leader_dir, "task");
    if (!task) return vanished(pid);
    for (auto tid : other_tids(task->get(), pid, 0)) {
        if (ref != 0 && !opts.tasks) break;
        auto entry = open_task(task->get(), tid);
        if (!entry || (ref == 0 && !is_live(entry->stat))) continue;  // exited meanwhile, or on its way out
        RawThread t;
        t.tid = tid;
        if (!read_ns_set(entry->dir.get(), t.ns, tid)) continue;
        t.nspid = std::move(entry->status.nspid);
        if (ref == 0) {
            if (std::find(t.ns.begin(), t.ns.end(), 0) != t.ns.end()) {
                unreadable = true;
                continue;
            }
            ref = tid;
            p.ns_tid = tid;
            p.ns = t.ns;
            // The group's credentials are the live thread's (its status shows the group's unless
            // that thread changed its own alone); the chains stay the leader's.
            p.status.uid = entry->status.uid;
            p.status.gid = entry->status.gid;
            p.status.cap_prm = entry->status.cap_prm;
            p.status.cap_eff = entry->status.cap_eff;
            const int dir = entry->dir.get();
            if (auto l = read_ns_link_at(dir, "ns/pid_for_children")) p.pid_for_children = l->inode;
            if (auto l = read_ns_link_at(dir, "ns/time_for_children")) p.time_for_children = l->inode;
            p.dumpable = dumpable_by_owner(entry->status_owner, p.status.uid[1], p.status.gid[1]);
            if (!user_link_still(dir, p.ns[ns_type_index(NsType::user)])) {
                torn = true;
                return vanished(pid);
            }
            read_fds(dir, pid, p, opts);  // the leader's fd table is gone: the group's is here
        }
        if (opts.tasks) p.threads.push_back(std::move(t));
    }
    if (ref == 0) {
        if (unreadable)
            return make_error(Errc::io, "the namespace links of process " + std::to_string(pid) + " are unreadable");
        return vanished(pid);
    }
    return std::move(p);
}

}  // namespace

namespace {

constexpr int kReadAttempts = 4;

Result<RawProcess> read_process_once(int proc_fd, std::int32_t pid, const ReadOptions& opts, bool& torn);

}  // namespace

Result<RawProcess> read_process(int proc_fd, std::int32_t pid, const ReadOptions& opts) {
    if (pid <= 0) return make_error(Errc::invalid_argument, "pid must be positive");
    for (int attempt = 1;; ++attempt) {
        bool torn = false;
        auto r = read_process_once(proc_fd, pid, opts, torn);
        if (!torn) return r;
        if (attempt == kReadAttempts)
            return make_error(Errc::io, "process " + std::to_string(pid) + " changed its user namespace " +
                                            std::to_string(kReadAttempts) + " times while being read");
    }
}

namespace {

Result<RawProcess> read_process_once(int proc_fd, std::int32_t pid, const ReadOptions& opts, bool& torn) {
    auto entry = open_task(proc_fd, pid);
    if (!entry) return entry.error();
    if (entry->status.pid != entry->status.tgid)
        return make_error(Errc::invalid_argument, std::to_string(pid) + " is a thread, not a thread-group leader");
    if (entry->stat.state == 'X') return vanished(pid);
    const Fd& dir = entry->dir;
    RawProcess p;
    p.status = std::move(entry->status);
    p.stat = entry->stat;
    // A zombie leader, or one exiting now: the process lives on while one of its threads does.
    if (entry->stat.state == 'Z') return read_through_threads(dir.get(), pid, std::move(p), opts, torn);
    if (auto s = read_ns_set(dir.get(), p.ns, pid); !s) {
        if (s.error().code != Errc::not_found) return s.error();
        return read_through_threads(dir.get(), pid, std::move(p), opts, torn);
    }
    // Without all eight links the process cannot be indexed: skip its threads and fds.
    if (std::find(p.ns.begin(), p.ns.end(), 0) != p.ns.end())
        return make_error(Errc::io, "the namespace links of process " + std::to_string(pid) + " are unreadable");
    if (auto l = read_ns_link_at(dir.get(), "ns/pid_for_children")) p.pid_for_children = l->inode;
    if (auto l = read_ns_link_at(dir.get(), "ns/time_for_children")) p.time_for_children = l->inode;
    p.dumpable = dumpable_by_owner(entry->status_owner, p.status.uid[1], p.status.gid[1]);
    // Status was read first, the links next: the user namespace must not have changed meanwhile.
    if (!user_link_still(dir.get(), p.ns[ns_type_index(NsType::user)])) {
        torn = true;
        return vanished(pid);
    }
    // A single-threaded process (stat, read before the links) has no task/ to list: a thread it
    // makes later comes with its own fork event, as one made after the listing would.
    if (opts.tasks && p.stat.num_threads != 1) read_threads(dir.get(), pid, p);
    read_fds(dir.get(), pid, p, opts);
    return p;
}

}  // namespace

Result<RawCredentials> read_credentials(int proc_fd, std::int32_t pid, bool user_id) {
    if (pid <= 0) return make_error(Errc::invalid_argument, "pid must be positive");
    auto entry = open_task(proc_fd, pid);
    if (!entry) return entry.error();
    RawCredentials c;
    c.start_time = entry->stat.start_time;
    auto take = [&c, user_id](const TaskEntry& e) {
        c.uid = e.status.uid;
        c.gid = e.status.gid;
        c.cap_prm = e.status.cap_prm;
        c.cap_eff = e.status.cap_eff;
        c.dumpable = dumpable_by_owner(e.status_owner, c.uid[1], c.gid[1]);
        // Read after status: the user namespace these credentials are (at the latest) in.
        if (user_id)
            if (auto h = ns_handle_at(e.dir.get(), "ns/user"); h && h->type == NsType::user) {
                c.user_inode = h->inode;
                c.user_id = h->id;
                return true;
            }
        auto l = read_ns_link_at(e.dir.get(), "ns/user");
        c.user_inode = l ? l->inode : 0;
        return true;
    };
    if (!is_zombie(entry->stat)) {
        take(*entry);
        return c;
    }
    // A zombie: a leader whose threads live on has theirs; any other zombie is gone.
    if (entry->stat.state == 'X' || entry->status.pid != entry->status.tgid ||
        first_live_thread(entry->dir.get(), pid, [&](std::int32_t, const TaskEntry& e) { return take(e); }) == 0)
        return vanished(pid);
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
    int links_dir = dir->get();
    Fd thread_dir;
    if (auto s = read_ns_set(dir->get(), out.ns, tgid); !s) {
        if (s.error().code != Errc::not_found) return s.error();
        // The leader exited: the process's links are those of a live thread, if one lives.
        out.ns_tid = first_live_thread(dir->get(), tgid, [&](std::int32_t tid, TaskEntry& e) {
            if (!read_ns_set(e.dir.get(), out.ns, tid)) return false;
            thread_dir = std::move(e.dir);
            return true;
        });
        if (out.ns_tid == 0) return vanished(tgid);
        links_dir = thread_dir.get();
    }
    if (auto l = read_ns_link_at(links_dir, "ns/pid_for_children")) out.pid_for_children = l->inode;
    if (auto l = read_ns_link_at(links_dir, "ns/time_for_children")) out.time_for_children = l->inode;
    for (auto tid : tids) {
        NsInodes t{};
        std::string base = "task/" + std::to_string(tid) + "/";
        bool gone = false;
        for (auto type : kAllNsTypes) {
            auto link = read_ns_link_at(dir->get(), (base + ns_type_link(type)).c_str());
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
    return stat && is_live(*stat);
}

bool has_live_thread(int proc_fd, std::int32_t tgid, std::int32_t except) {
    if (tgid <= 0) return false;
    auto task = open_dir_at(proc_fd, (std::to_string(tgid) + "/task").c_str());
    if (!task) return false;  // reaped
    for (auto tid : other_tids(task->get(), tgid, except)) {
        auto text = read_file_at(task->get(), (std::to_string(tid) + "/stat").c_str());
        if (!text) continue;
        if (auto stat = parse_proc_stat(*text); stat && is_live(*stat)) return true;
    }
    return false;
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
