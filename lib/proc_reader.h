// Reads one process's state from /proc through a directory fd, so every read refers to the same task.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ns_link.h"
#include "nsfs_fd_iter.h"
#include "ns_type.h"
#include "proc_stat.h"
#include "proc_status.h"
#include "result.h"

namespace pidns {

using NsInodes = std::array<std::uint64_t, kNsTypeCount>;  // indexed by ns_type_index; 0 = unreadable

struct RawThread {
    std::int32_t tid = 0;
    std::vector<std::int32_t> nspid;
    NsInodes ns{};
};

struct RawFdNs {
    std::int32_t fd;
    NsLink ns;
};

struct RawProcess {
    ProcStatus status;  // the leader's; for a zombie leader, credentials (Uid, Gid, CapPrm, CapEff) are ns_tid's
    ProcStat stat;      // the leader's (its start time tells a reused pid apart)
    NsInodes ns{};
    std::uint64_t pid_for_children = 0;   // inode; 0 when it cannot be read (not yet set)
    std::uint64_t time_for_children = 0;
    bool dumpable = true;
    // 0: the leader is alive and the above was read from /proc/PID. Otherwise the leader exited
    // (pthread_exit() in main) while threads live on: its own links are gone, so the namespaces,
    // *_for_children, credentials, dumpability and fds were read from this live thread's
    // /proc/PID/task/TID (the lowest tid that is neither a zombie nor exiting).
    std::int32_t ns_tid = 0;
    std::vector<RawThread> threads;       // other threads than the leader (when ReadOptions::tasks)
    std::vector<RawFdNs> ns_fds;          // open fds that are namespaces (when ReadOptions::fds)
    bool fds_truncated = false;           // ReadOptions::max_fds stopped the fd scan
};

struct ReadOptions {
    bool tasks = true;
    bool fds = true;
    // At most this many entries of /proc/PID/fd are looked at (0: all). A process may hold up to
    // RLIMIT_NOFILE fds (524288 under systemd): reading them all costs a second.
    std::size_t max_fds = 0;
    // Instead of listing /proc/PID/fd (`fds` is then ignored): the fds a BPF pass named as
    // namespaces (NsfsFdIter::list), each read through this process's /proc directory and kept
    // when it is a namespace link now, whatever it was in the pass. A process it does not name
    // holds none.
    const NsfsFdsByPid* listed_fds = nullptr;
};

// Reads /proc/PID (a thread-group leader). proc_fd is an open fd of the /proc directory.
// A vanished process gives Errc::not_found. A leader that exited while other threads live on is
// read through a live thread (RawProcess::ns_tid); Errc::not_found when none lives.
Result<RawProcess> read_process(int proc_fd, std::int32_t pid, const ReadOptions& opts);

// What the access check needs, re-read at decision time: credentials change without any process
// event (setuid(), prctl(PR_SET_DUMPABLE)).
struct RawCredentials {
    std::array<std::uint32_t, 4> uid{};
    std::array<std::uint32_t, 4> gid{};
    std::uint64_t cap_prm = 0;
    std::uint64_t cap_eff = 0;
    std::uint64_t start_time = 0;  // to tell a reused pid apart
    std::uint64_t user_inode = 0;  // its user namespace, read after the credentials (0: unreadable)
    std::uint64_t user_id = 0;     // that namespace's id, when asked for (nsfs handles), else 0
    bool dumpable = true;
};
// Errc::not_found when the process is gone (or a zombie with no live thread). A leader that
// exited while threads live on gives a live thread's credentials and dumpability, and its own
// start time. `user_id`: read the user namespace as an nsfs file handle (Linux 6.18: its id
// too, in one call) instead of its link.
Result<RawCredentials> read_credentials(int proc_fd, std::int32_t pid, bool user_id = false);

// One non-leader thread, from /proc/TGID/task/TID. Errc::not_found when it is gone.
Result<RawThread> read_thread(int proc_fd, std::int32_t tgid, std::int32_t tid);

// A process's namespace links only (no status, no fds): what the verify pass compares with the
// index. `tids`: threads whose links to read too, returned in that order (threads that exited
// are left out).
struct NsLinks {
    NsInodes ns{};
    std::uint64_t pid_for_children = 0;  // 0: unreadable
    std::uint64_t time_for_children = 0;
    std::int32_t ns_tid = 0;             // as RawProcess::ns_tid: the live thread read for an exited leader
    std::vector<std::pair<std::int32_t, NsInodes>> threads;
};
// Errc::not_found when the process is gone (or a zombie with no live thread: its links fail).
Result<NsLinks> read_ns_links(int proc_fd, std::int32_t tgid, std::span<const std::int32_t> tids);

// Whether /proc shows task `tid` and it is neither a zombie nor dead nor exiting (a zombie's
// namespace links are gone: it is as good as exited).
bool is_live_task(int proc_fd, std::int32_t tid);

// Whether thread group `tgid` has a live task (as is_live_task) other than its leader and
// `except`: what decides whether a leader's exit, or a thread's, ends the process. One listing
// of /proc/TGID/task (none when the process is gone).
bool has_live_thread(int proc_fd, std::int32_t tgid, std::int32_t except = 0);

// Reads the small file `name` relative to dirfd into a string (at most 1 MiB).
Result<std::string> read_file_at(int dirfd, const char* name);

// Thread-group leaders currently listed in /proc, ascending.
Result<std::vector<std::int32_t>> list_proc_pids(int proc_fd);

}  // namespace pidns
