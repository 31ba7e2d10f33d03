// pidnsctl's NS arguments: an id, an inode, TYPE:[INODE], a namespace file's path, @PID,
// container:ID|NAME, unit:NAME or machine:NAME.
#include "ns_arg.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <iostream>
#include <optional>
#include <vector>

#include "escape.h"

namespace pidnsctl {
namespace {

constexpr unsigned long kNsGetNstype = _IO(0xb7, 0x3);  // NS_GET_NSTYPE

bool parse_u64(std::string_view s, std::uint64_t& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

bool known_type(std::string_view t) {
    for (const char* k : {"pid", "user", "mnt", "net", "uts", "ipc", "cgroup", "time"})
        if (t == k) return true;
    return false;
}

// The namespace file at `path`, opened as the user: its inode and its type (NS_GET_NSTYPE's
// CLONE_NEW* flag).
struct NsFile {
    std::uint64_t inode = 0;
    int nstype = 0;
};

NsFile ns_file(const std::string& path, const std::string& shown) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        const int code = err == ENOENT ? kNotFound : (err == EACCES || err == EPERM) ? kAccessDenied : kFailure;
        throw CtlError(code, "cannot open " + shown + ": " + std::strerror(err));
    }
    struct stat st {};
    const bool ok = ::fstat(fd, &st) == 0;
    const int nstype = ::ioctl(fd, kNsGetNstype);  // ENOTTY: not a namespace file
    ::close(fd);
    if (!ok) throw CtlError(kFailure, "cannot stat " + shown);
    if (nstype < 0)
        throw CtlError(kUsage, shown + " is not a namespace file (such as /proc/PID/ns/pid or /run/netns/NAME)");
    return {static_cast<std::uint64_t>(st.st_ino), nstype};
}

const char* type_of_nstype(int nstype) {
    switch (nstype) {
    case CLONE_NEWPID: return "pid";
    case CLONE_NEWUSER: return "user";
    case CLONE_NEWNS: return "mnt";
    case CLONE_NEWNET: return "net";
    case CLONE_NEWUTS: return "uts";
    case CLONE_NEWIPC: return "ipc";
    case CLONE_NEWCGROUP: return "cgroup";
    case CLONE_NEWTIME: return "time";
    default: return "?";
    }
}

// "--from 4120", or "4120" for a command's own argument.
std::string as_typed(const std::string& arg, const std::string& what) { return what.empty() ? arg : what + " " + arg; }

// What a namespace's labels claim for a name of `kind`, and who could have made that claim: the
// container (engine and whole id) or the unit or machine, with ContainerOwnerUid or UnitOwnerUid
// (kNoUid: only root could have named the cgroup).
struct Claim {
    std::string what;
    std::uint32_t owner = pidns::client::kNoUid;
    bool operator==(const Claim&) const = default;
};

// A container's id, a prefix of at least kMinIdDigits of its digits, or its name.
constexpr std::size_t kMinIdDigits = 12;
bool container_is(const std::string& id, const std::string& cname, const std::string& name) {
    return cname == name || id == name || (name.size() >= kMinIdDigits && id.starts_with(name));
}

std::optional<Claim> claim_of(const pidns::client::Labels& l, std::string_view kind, const std::string& name) {
    if (kind == "unit") return l.unit == name ? std::optional<Claim>({"unit " + l.unit, l.unit_owner_uid}) : std::nullopt;
    if (kind == "machine")
        return l.machine == name ? std::optional<Claim>({"machine " + l.machine, l.unit_owner_uid}) : std::nullopt;
    if (l.container_engine.empty()) return std::nullopt;
    if (container_is(l.container_id, l.container_name, name))
        return Claim{l.container_engine + " " + l.container_id, l.container_owner_uid};
    return std::nullopt;
}

std::string owner_text(std::uint32_t owner) {
    return owner == pidns::client::kNoUid ? "named by root" : "named in a cgroup uid " + std::to_string(owner) + " may write";
}

// container:ID|NAME, unit:NAME and machine:NAME (names compared as pidnsd sends them, escaped).
// The namespaces of `type` whose representative runs in that container (its whole id, a prefix of
// at least 12 of its hex digits, or its name), systemd unit or systemd-machined machine; for a
// container that has none of its own, the ones it joined (ContainerSharers). A claim
// only root could have made (no owner: only root creates cgroups outside delegated subtrees, so
// that cgroup was made by an engine or systemd running as root) outranks any user's claim on the
// same name, so that no user can take over or block root's names by making cgroups named like
// them. Of what remains, one claim must be left, and of its namespaces the outermost (the lowest
// level) one; anything else is ambiguous (kAmbiguous, the candidates listed), never a silent pick.
std::uint64_t resolve_by_name(pidns::client::Client& c, std::string_view kind, const std::string& name,
                              const std::string& type) {
    if (name.empty()) throw CtlError(kUsage, "\"" + std::string(kind) + ":\" needs a name");
    struct Match {
        const pidns::client::NamespaceDescription* d;
        Claim claim;
    };
    const auto all = c.describe_namespaces(type);
    std::vector<Match> matches;
    for (const auto& d : all)
        if (auto cl = claim_of(d.labels, kind, name)) matches.push_back({&d, std::move(*cl)});
    // A container with no namespace of this type of its own joined another's (--pid container:X,
    // a pod, --pid=host): that one, as its ContainerSharers say, with the same ranking of claims.
    if (matches.empty() && kind == "container")
        for (const auto& d : all)
            for (const auto& s : d.sharers)
                if (container_is(s.id, s.name, name))
                    matches.push_back({&d, Claim{s.engine + " " + s.id + " (joined)", s.owner_uid}});
    const bool short_id = matches.empty() && kind == "container" && name.size() < kMinIdDigits &&
                          name.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (short_id) {
        // A few digits of an id, as one might copy them: too short to be one (docker ps prints 12).
        std::size_t prefixed = 0;
        for (const auto& d : all) {
            if (d.labels.container_id.starts_with(name)) ++prefixed;
            for (const auto& s : d.sharers) prefixed += s.id.starts_with(name) ? 1 : 0;
        }
        if (prefixed > 0)
            throw CtlError(kUsage, "container:" + name + " is " + std::to_string(name.size()) +
                                       " digits of a container id; give at least 12 (as docker ps prints them), "
                                       "or the container's name: pidnsctl list -o ID,TYPE,CONTAINER shows them");
    }
    if (matches.empty())
        throw CtlError(kNotFound, "no " + type + " namespace you may see belongs to " + std::string(kind) + " \"" + name +
                                      "\"" + (short_id ? " (nor does a container id start with it: give at least 12 of its digits)" : "") +
                                      "; pidnsctl list -o ID,TYPE,CONTAINER,UNIT,MACHINE,COMMAND shows what each belongs to");
    if (std::any_of(matches.begin(), matches.end(), [](const Match& m) { return m.claim.owner == pidns::client::kNoUid; }))
        std::erase_if(matches, [](const Match& m) { return m.claim.owner != pidns::client::kNoUid; });
    // Of each claim, its outermost namespaces.
    std::erase_if(matches, [&](const Match& m) {
        return std::any_of(matches.begin(), matches.end(),
                           [&](const Match& o) { return o.claim == m.claim && o.d->ns.level < m.d->ns.level; });
    });
    if (matches.size() > 1) {
        std::string msg = std::string(kind) + ":" + name + " is ambiguous: " + std::to_string(matches.size()) + " " +
                          type + " namespaces match; name one by its id:";
        for (const auto& m : matches)
            msg += "\n  " + std::to_string(m.d->ns.id) + " " + m.d->ns.type + ":[" + std::to_string(m.d->ns.inode) +
                   "] level " + std::to_string(m.d->ns.level) + ", " + m.claim.what + " (" + owner_text(m.claim.owner) +
                   "), command " + (m.d->labels.command.empty() ? "?" : m.d->labels.command);
        throw CtlError(kAmbiguous, msg);
    }
    const auto& m = matches.front();
    if (m.claim.owner != pidns::client::kNoUid && m.claim.owner != ::getuid())
        std::cerr << "pidnsctl: note: " << pidns::printable_text(std::string(kind) + ":" + name) << " is "
                  << pidns::printable_text(m.claim.what) << ", " << owner_text(m.claim.owner) << "\n";
    return m.d->ns.id;
}

}  // namespace

std::uint32_t parse_pid(const std::string& arg) {
    std::uint64_t v = 0;
    if (!parse_u64(arg, v) || v == 0 || v > 0x7fffffffu)
        throw CtlError(kUsage, "invalid pid \"" + arg + "\": expected a number from 1 to 2147483647");
    return static_cast<std::uint32_t>(v);
}

std::string ns_words(const std::string& arg, const std::string& type) {
    if (arg.empty()) return "your " + (type.empty() ? std::string("pid") : type) + " namespace";
    return (type.empty() ? std::string("namespace ") : type + " namespace ") + arg;
}

std::uint64_t resolve_ns(pidns::client::Client& c, const std::string& arg, const std::string& type,
                         const std::string& what) {
    if (arg.empty()) return 0;
    const std::string typed = as_typed(arg, what);
    const std::string want = type.empty() ? "pid" : type;  // for @PID and names
    // A reference to check with pidnsd: one it lists to the user, of the type wanted.
    auto checked = [&](std::uint64_t ref) {
        const auto n = asking({"namespace " + arg + (what.empty() ? "" : " (" + what + ")"), ""},
                              [&] { return c.get_namespace(ref); });
        if (!type.empty() && n.type != type)
            throw CtlError(kUsage, typed + " is a " + pidns::printable_text(n.type) + " namespace (" +
                                       pidns::printable_text(n.type) + ":[" + std::to_string(n.inode) + "]), not a " +
                                       type + " namespace; pidnsctl list -t " + type + " shows the " + type +
                                       " namespaces");
        return n.id;
    };
    std::uint64_t v = 0;
    if (parse_u64(arg, v)) return checked(v);  // an id or an inode: pidnsd tells them apart
    if (arg[0] == '@') {
        const auto pid = parse_pid(arg.substr(1));
        const auto p = asking({"process " + arg.substr(1) + " (" + typed + ")", ""}, [&] { return c.get_process(pid); });
        const auto it = p.namespaces.find(want);
        if (it == p.namespaces.end())
            throw CtlError(kFailure, "pidnsd did not say which " + want + " namespace process " + arg.substr(1) + " is in");
        return it->second;
    }
    if (arg[0] == '/' || arg[0] == '.') {
        const auto f = ns_file(arg, typed);
        if (!type.empty() && type != type_of_nstype(f.nstype))
            throw CtlError(kUsage, typed + " is a " + type_of_nstype(f.nstype) + " namespace, not a " + type +
                                       " namespace; pidnsctl list -t " + type + " shows the " + type + " namespaces");
        return checked(f.inode);
    }
    for (std::string_view kind : {"container", "unit", "machine"})
        if (arg.size() >= kind.size() + 1 && arg.compare(0, kind.size(), kind) == 0 && arg[kind.size()] == ':')
            return resolve_by_name(c, kind, arg.substr(kind.size() + 1), want);
    // TYPE:[INODE], as readlink /proc/PID/ns/TYPE prints it.
    const auto colon = arg.find(':');
    if (colon != std::string::npos && known_type(std::string_view(arg).substr(0, colon)) && arg.size() > colon + 3 &&
        arg[colon + 1] == '[' && arg.back() == ']' &&
        parse_u64(std::string_view(arg).substr(colon + 2, arg.size() - colon - 3), v)) {
        const std::string named = arg.substr(0, colon);
        if (!type.empty() && named != type)
            throw CtlError(kUsage, typed + " is a " + named + " namespace, not a " + type + " namespace; pidnsctl list -t " +
                                       type + " shows the " + type + " namespaces");
        const auto n = asking({"namespace " + arg + (what.empty() ? "" : " (" + what + ")"), ""},
                              [&] { return c.get_namespace(v); });
        if (n.inode != v || n.type != named)
            throw CtlError(kNotFound, "no namespace " + arg + " that you may see; pidnsctl list shows the namespaces you may see");
        return n.id;
    }
    throw CtlError(kUsage, "invalid namespace \"" + typed +
                               "\": expected an id, an inode, TYPE:[INODE], a path such as /proc/PID/ns/pid, @PID, "
                               "container:ID|NAME, unit:NAME or machine:NAME");
}

}  // namespace pidnsctl
