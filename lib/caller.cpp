// Identifies a caller's process: pidfd pinning, its namespaces, credentials and uid_map.
#include "caller.h"

#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "model.h"
#include "ns_link.h"
#include "pidfd_creds.h"
#include "proc_reader.h"
#include "proc_status.h"

namespace pidns {
namespace {

Error denied(std::int32_t pid, const std::string& why, int err = 0) {
    return make_error(Errc::unidentified, "cannot identify the calling process " + std::to_string(pid) + ": " + why, err);
}

// The pidfd becomes readable when its process exits.
bool exited(int pidfd) {
    pollfd pfd{pidfd, POLLIN, 0};
    return ::poll(&pfd, 1, 0) != 0;
}

Error wrong_uid(std::int32_t pid, std::uint32_t euid, std::uint32_t bus_uid) {
    return denied(pid, "its effective uid " + std::to_string(euid) + " is not the uid the bus authenticated (" +
                           std::to_string(bus_uid) + "); reconnect after changing identity");
}

// The user namespace link of /proc/PID, as an inode (0 when unreadable).
std::uint64_t userns_inode_of(int proc_fd, std::int32_t pid) {
    return ns_link_inode_at(proc_fd, (std::to_string(pid) + "/ns/user").c_str(), NsType::user);
}

}  // namespace

std::uint32_t principal_uid(NsId userns, NsId root_userns, std::uint32_t bus_uid,
                            const std::function<std::optional<UserNsLink>(NsId)>& link) {
    // User namespaces nest at most 32 deep (kernel/user_namespace.c): a longer walk is a loop in
    // a corrupt table, and the caller's own uid stands.
    constexpr int kMaxDepth = 33;
    NsId at = userns;
    for (int depth = 0; depth < kMaxDepth && at != 0 && at != root_userns; ++depth) {
        const auto l = link(at);
        if (!l) return bus_uid;
        if (l->parent == root_userns) return l->owner_uid;
        at = l->parent;
    }
    return bus_uid;
}

std::uint32_t principal_uid(const Index& index, NsId userns, std::uint32_t bus_uid) {
    return principal_uid(userns, index.root_userns(), bus_uid, [&](NsId id) -> std::optional<UserNsLink> {
        const Namespace* ns = index.find_namespace(id);
        if (ns == nullptr || ns->meta.type != NsType::user) return std::nullopt;
        return UserNsLink{ns->meta.parent, ns->meta.owner_uid};
    });
}

std::uint64_t boottime_ticks() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    static const long hz = [] {
        const long v = ::sysconf(_SC_CLK_TCK);
        return v > 0 ? v : 100;
    }();
    return static_cast<std::uint64_t>(ts.tv_sec) * static_cast<std::uint64_t>(hz) +
           static_cast<std::uint64_t>(ts.tv_nsec) / (1'000'000'000ull / static_cast<std::uint64_t>(hz));
}

Result<Caller> identify_caller(Model& model, int pidfd, std::int32_t pid, std::uint32_t bus_uid,
                               std::uint64_t started_by) {
    if (pid <= 0) return denied(pid, "the bus gave no process id");
    if (auto s = model.add_process(pid); !s) return denied(pid, s.error().message);
    // Every decision for this caller rests on its pid and user namespaces: their identity is
    // confirmed with the kernel, not taken from an inode the index may hold for a dead one.
    if (auto s = model.confirm_process(pid); !s) return denied(pid, s.error().message);
    const Process* p = model.index().find_process(pid);
    if (!p) return denied(pid, "it is not readable in /proc");

    Caller c;
    c.pid = pid;
    c.bus_uid = bus_uid;
    c.pidns = p->ns_of(NsType::pid);
    c.userns = p->ns_of(NsType::user);
    c.start_time = p->start_time;
    c.uid = p->uid;
    c.gid = p->gid;
    c.cap_eff = p->cap_eff;
    if (c.pidns == 0 || c.userns == 0) return denied(pid, "its pid or user namespace is unreadable");
    if (const auto* u = model.index().find_namespace(c.userns)) c.userns_inode = u->meta.inode;
    if (started_by != 0 && c.start_time > started_by)
        return denied(pid, "that pid now names a process started after the bus connection was made (the pid was "
                           "reused)");

    const std::string rel = std::to_string(pid) + "/uid_map";
    auto text = read_file_at(model.proc_fd(), rel.c_str());
    if (!text) return denied(pid, "its uid_map is unreadable");
    auto map = parse_id_map(*text);
    if (!map) return denied(pid, map.error().message);
    c.uid_map = std::move(*map);
    c.principal_uid = principal_uid(model.index(), c.userns, bus_uid);

    // Everything above may belong to a process that reused the pid once the pinned one exited.
    if (exited(pidfd)) return denied(pid, "it exited while being identified");
    if (c.uid[1] != bus_uid) return wrong_uid(pid, c.uid[1], bus_uid);
    return c;
}

namespace {

// Opens `files` for process `pid` (see CallerFiles); false, with `files` empty, when it cannot.
bool open_files(int proc_fd, int pidfd, std::int32_t pid, CallerFiles& files) {
    files = CallerFiles{};
    const Fd dir(::openat(proc_fd, std::to_string(pid).c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir.valid()) return false;
    Fd status(::openat(dir.get(), "status", O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    Fd ns(::openat(dir.get(), "ns", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    // Opened while the pinned process lived: /proc/PID was that process, not one that reused its pid.
    if (!status.valid() || !ns.valid() || exited(pidfd)) return false;
    files.pid = pid;
    files.status = std::move(status);
    files.ns = std::move(ns);
    return true;
}

// What one read of a caller gives: its credentials now and the inode of its user namespace
// (read after them).
struct Current {
    std::array<std::uint32_t, 4> uid{}, gid{};
    std::uint64_t cap_eff = 0;
    std::uint64_t userns_inode = 0;
};

enum class Read : std::uint8_t { ok, gone, slow };

// Through `files`: the status text with one pread (at offset 0 the kernel prints it afresh),
// then the user namespace link. Read::slow for what only the path through /proc/PID decides: a
// zombie leader (whose live threads hold the credentials), a status that does not fit or parse.
Read read_files(const CallerFiles& files, Current& now) {
    static thread_local char buf[16384];
    ssize_t n;
    do n = ::pread(files.status.get(), buf, sizeof buf, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) return errno == ESRCH || errno == ENOENT ? Read::gone : Read::slow;
    if (static_cast<std::size_t>(n) == sizeof buf) return Read::slow;
    auto creds = parse_status_credentials(std::string_view(buf, static_cast<std::size_t>(n)));
    if (!creds || creds->state == 'Z' || creds->state == 'X') return Read::slow;
    auto link = read_ns_link_at(files.ns.get(), "user");
    if (!link) return link.error().code == Errc::not_found ? Read::gone : Read::slow;
    if (link->type != NsType::user) return Read::slow;
    now.uid = creds->uid;
    now.gid = creds->gid;
    now.cap_eff = creds->cap_eff;
    now.userns_inode = link->inode;
    return Read::ok;
}

// Through the pidfd (PIDFD_GET_INFO, Linux 6.13) and capget, then the user namespace link: what
// read_files reads, without the kernel rendering the whole status text. Read::slow for a leader
// that has exited (a zombie whose live threads hold the credentials, or one exiting): it releases
// its namespaces before it becomes a zombie, so its mnt link, read after the credentials, no
// longer reads; a link that does not read for any other reason is left to the slow path too.
Read read_pidfd(int pidfd, std::int32_t pid, const CallerFiles& files, Current& now) {
    auto creds = pidfd_creds(pidfd);
    if (!creds) return creds.error().code == Errc::not_found ? Read::gone : Read::slow;
    auto caps = effective_capabilities(pid);
    if (!caps) return caps.error().code == Errc::not_found ? Read::gone : Read::slow;
    if (!read_ns_link_at(files.ns.get(), "mnt")) return Read::slow;
    auto link = read_ns_link_at(files.ns.get(), "user");
    if (!link || link->type != NsType::user) return Read::slow;
    now.uid = creds->uid;
    now.gid = creds->gid;
    now.cap_eff = *caps;
    now.userns_inode = link->inode;
    return Read::ok;
}

// The same through /proc/PID (by its number: the pidfd, polled after, says it was the caller).
Read read_by_pid(int proc_fd, int pidfd, const Caller& caller, Current& now, std::optional<Error>& why) {
    auto creds = read_credentials(proc_fd, caller.pid);
    if (!creds || exited(pidfd)) return Read::gone;
    if (creds->start_time != caller.start_time) {
        why = denied(caller.pid, "its pid now names another process");
        return Read::gone;
    }
    now.uid = creds->uid;
    now.gid = creds->gid;
    now.cap_eff = creds->cap_eff;
    // The link is read after the credentials: the user namespace they are (at the latest) in.
    now.userns_inode = userns_inode_of(proc_fd, caller.pid);
    return now.userns_inode == 0 ? Read::gone : Read::ok;
}

}  // namespace

Result<CallerCheck> refresh_caller(Model& model, int pidfd, Caller& caller, CallerFiles& files) {
    Current now;
    std::optional<Error> why;  // why it cannot be read, when not "it exited" (built only then)
    Read r = Read::slow;
    if (files.pid == caller.pid || open_files(model.proc_fd(), pidfd, caller.pid, files))
        r = model.features().pidfd_info ? read_pidfd(pidfd, caller.pid, files, now) : read_files(files, now);
    // Through `files` (and the pidfd), every read was of the pinned process, alive at the last of
    // them (its mnt link, or a status not yet a zombie's): no poll needed. By number, the user
    // namespace link was read after read_by_pid's poll, so poll again.
    if (r == Read::slow) {
        r = read_by_pid(model.proc_fd(), pidfd, caller, now, why);
        if (r == Read::ok && exited(pidfd)) r = Read::gone;
    }
    if (r != Read::ok) return why ? std::move(*why) : denied(caller.pid, "it exited");
    if (now.uid[1] != caller.bus_uid) return wrong_uid(caller.pid, now.uid[1], caller.bus_uid);
    // By inode, at every call: identify_caller confirmed the namespace's identity, and a caller
    // cannot have left it for another with the same inode since unless it had CAP_SYS_ADMIN over
    // its parent (to leave a user namespace is to enter one it holds CAP_SYS_ADMIN in: one below
    // it, which keeps it alive, unless it had that capability above it).
    if (now.userns_inode != caller.userns_inode) return CallerCheck::changed_ns;
    caller.uid = now.uid;
    caller.gid = now.gid;
    caller.cap_eff &= now.cap_eff;  // the weaker of then and now: never more than when it was identified
    return CallerCheck::same;
}

}  // namespace pidns
