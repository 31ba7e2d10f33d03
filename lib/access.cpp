// ptrace_may_access(PTRACE_MODE_READ_FSCREDS) mirrored over the index.
#include "access.h"

namespace pidns {

bool has_capability_in(const Index& index, NsId caller_userns, std::uint64_t cap_eff, std::uint32_t euid,
                       NsId target, int cap) {
    const Namespace* mine = index.find_namespace(caller_userns);
    if (mine == nullptr) return false;
    NsId ns = target;
    for (int guard = 0; guard < 64 && ns != 0; ++guard) {
        if (ns == caller_userns) return (cap_eff >> cap) & 1u;
        const Namespace* n = index.find_namespace(ns);
        if (n == nullptr || n->meta.level <= mine->meta.level) return false;
        // The creator of a user namespace (made from the caller's) has every capability in it.
        if (n->meta.parent == caller_userns && n->meta.owner_uid == euid) return true;
        ns = n->meta.parent;
    }
    return false;
}

bool passes_credentials(const Index& index, const Caller& c, const Process& t) {
    // kernel/ptrace.c __ptrace_may_access: its own thread group may always look.
    if (c.pid == t.tgid) return true;
    const NsId t_userns = t.ns_of(NsType::user);
    const auto ptrace_cap = [&] {
        return has_capability_in(index, c.userns, c.cap_eff, c.uid[1], t_userns, kCapSysPtrace);
    };
    // Rule 2, with FSCREDS: fsuid/fsgid against all three of T's ids.
    const std::uint32_t fsuid = c.uid[3], fsgid = c.gid[3];
    const bool same_ids = fsuid == t.uid[0] && fsuid == t.uid[1] && fsuid == t.uid[2] && fsgid == t.gid[0] &&
                          fsgid == t.gid[1] && fsgid == t.gid[2];
    if (!same_ids && !ptrace_cap()) return false;
    // Rule 3.
    if (!t.dumpable && !ptrace_cap()) return false;
    // security/commoncap.c cap_ptrace_access_check, which every kernel runs: in the same user
    // namespace T's permitted capabilities must be a subset of the caller's effective ones,
    // otherwise the caller needs CAP_SYS_PTRACE in T's user namespace.
    if (c.userns == t_userns && (t.cap_prm & ~c.cap_eff) == 0) return true;
    return ptrace_cap();
}

Access ptrace_may_read(const Index& index, const Caller& c, const Process& t) {
    if (!index.pidns_is_descendant(t.ns_of(NsType::pid), c.pidns)) return Access::invisible;
    return passes_credentials(index, c, t) ? Access::allowed : Access::denied;
}

}  // namespace pidns
