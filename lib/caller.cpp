// Identifies a caller's process: pidfd pinning, its namespaces, credentials and uid_map.
#include "caller.h"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "model.h"

namespace pidns {
namespace {

Error denied(std::int32_t pid, const std::string& why, int err = 0) {
    return make_error(Errc::access_denied,
                      "cannot identify the calling process " + std::to_string(pid) + ": " + why +
                          "; call again from a live process in pidnsd's pid namespace or below it",
                      err);
}

}  // namespace

Result<Caller> identify_caller(Model& model, std::int32_t pid, std::uint32_t bus_uid) {
    if (pid <= 0) return denied(pid, "the bus gave no process id");
    // glibc 2.36's <sys/pidfd.h> does not link from C++ as is; the raw syscall is enough.
    const int raw = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (raw < 0) return denied(pid, "pidfd_open failed", errno);
    Fd pidfd(raw);

    if (auto s = model.add_process(pid); !s) return denied(pid, s.error().message);
    const Process* p = model.index().find_process(pid);
    if (!p) return denied(pid, "it is not readable in /proc");

    Caller c;
    c.pid = pid;
    c.bus_uid = bus_uid;
    c.pidns = p->ns_of(NsType::pid);
    c.userns = p->ns_of(NsType::user);
    c.uid = p->uid;
    c.gid = p->gid;
    c.cap_eff = p->cap_eff;
    if (c.pidns == 0 || c.userns == 0) return denied(pid, "its pid or user namespace is unreadable");

    const std::string rel = std::to_string(pid) + "/uid_map";
    auto text = read_file_at(model.proc_fd(), rel.c_str());
    if (!text) return denied(pid, "its uid_map is unreadable");
    auto map = parse_id_map(*text);
    if (!map) return denied(pid, map.error().message);
    c.uid_map = std::move(*map);

    // The pidfd becomes readable when the process exits: then everything read above may
    // belong to a process that reused the pid.
    pollfd pfd{pidfd.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 0) != 0) return denied(pid, "it exited while being identified");
    if (c.uid[1] != bus_uid)
        return denied(pid, "its effective uid " + std::to_string(c.uid[1]) + " is not the uid the bus authenticated (" +
                               std::to_string(bus_uid) + ")");
    return c;
}

}  // namespace pidns
