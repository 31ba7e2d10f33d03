// pidnsctl's NS arguments: an id, an inode, TYPE:[INODE], a namespace file's path, @PID,
// container:ID|NAME, unit:NAME or machine:NAME.
#include "ns_arg.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

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

std::uint64_t inode_of_path(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        const int code = err == ENOENT ? kNotFound : (err == EACCES || err == EPERM) ? kAccessDenied : kFailure;
        throw CtlError(code, "cannot open " + path + ": " + std::strerror(err));
    }
    struct stat st {};
    const bool ok = ::fstat(fd, &st) == 0;
    const bool is_ns = ::ioctl(fd, kNsGetNstype) >= 0;  // ENOTTY: not a namespace file
    ::close(fd);
    if (!ok) throw CtlError(kFailure, "cannot stat " + path);
    if (!is_ns) throw CtlError(kUsage, path + " is not a namespace file (such as /proc/PID/ns/pid or /run/netns/NAME)");
    return static_cast<std::uint64_t>(st.st_ino);
}

// container:ID|NAME, unit:NAME and machine:NAME: the outermost namespace of `type` whose
// representative runs in that container (an id, or a prefix of at least 12 of its hex digits, or
// its name), systemd unit or systemd-machined machine. A container that has none of its own (it
// joined another's: --pid container:X, a pod, --pid=host) finds the one it joined (ContainerSharers).
std::uint64_t resolve_by_name(pidns::client::Client& c, std::string_view kind, const std::string& name,
                              const std::string& type) {
    if (name.empty()) throw CtlError(kUsage, "\"" + std::string(kind) + ":\" needs a name");
    auto container_is = [&](const std::string& id, const std::string& cname) {
        return cname == name || id == name || (name.size() >= 12 && id.starts_with(name));
    };
    auto matches = [&](const pidns::client::NamespaceDescription& d) {
        const auto& l = d.labels;
        if (kind == "unit") return l.unit == name;
        if (kind == "machine") return l.machine == name;
        return !l.container_engine.empty() && container_is(l.container_id, l.container_name);
    };
    auto shared_with = [&](const pidns::client::NamespaceDescription& d) {
        if (kind != "container") return false;
        for (const auto& s : d.sharers)
            if (container_is(s.id, s.name)) return true;
        return false;
    };
    const pidns::client::NamespaceDescription* best = nullptr;
    auto consider = [&](const pidns::client::NamespaceDescription& d) {
        if (!best || d.ns.level < best->ns.level || (d.ns.level == best->ns.level && d.ns.id < best->ns.id)) best = &d;
    };
    auto all = c.describe_namespaces(type);
    for (const auto& d : all)
        if (matches(d)) consider(d);
    if (!best)
        for (const auto& d : all)
            if (shared_with(d)) consider(d);
    if (!best)
        throw CtlError(kNotFound, "no " + type + " namespace you may see belongs to " + std::string(kind) + " \"" + name +
                                      "\"; pidnsctl list -o ID,TYPE,CONTAINER,UNIT,MACHINE,COMMAND shows what each belongs to");
    return best->ns.id;
}

}  // namespace

std::uint32_t parse_pid(const std::string& arg) {
    std::uint64_t v = 0;
    if (!parse_u64(arg, v) || v == 0 || v > 0x7fffffffu)
        throw CtlError(kUsage, "invalid pid \"" + arg + "\": expected a number from 1 to 2147483647");
    return static_cast<std::uint32_t>(v);
}

std::uint64_t resolve_ns(pidns::client::Client& c, const std::string& arg, const std::string& type) {
    if (arg.empty()) return 0;
    std::uint64_t v = 0;
    if (parse_u64(arg, v)) return v;  // an id or an inode: pidnsd tells them apart
    if (arg[0] == '@') {
        const auto pid = parse_pid(arg.substr(1));
        const auto p = c.get_process(pid);
        const auto it = p.namespaces.find(type);
        if (it == p.namespaces.end()) throw CtlError(kFailure, "pidnsd did not say which " + type + " namespace " + arg.substr(1) + " is in");
        return it->second;
    }
    if (arg[0] == '/' || arg[0] == '.') return inode_of_path(arg);
    for (std::string_view kind : {"container", "unit", "machine"})
        if (arg.size() > kind.size() && arg.compare(0, kind.size(), kind) == 0 && arg[kind.size()] == ':')
            return resolve_by_name(c, kind, arg.substr(kind.size() + 1), type);
    // TYPE:[INODE], as readlink /proc/PID/ns/TYPE prints it.
    const auto colon = arg.find(':');
    if (colon != std::string::npos && known_type(std::string_view(arg).substr(0, colon)) && arg.size() > colon + 3 &&
        arg[colon + 1] == '[' && arg.back() == ']' &&
        parse_u64(std::string_view(arg).substr(colon + 2, arg.size() - colon - 3), v))
        return v;
    throw CtlError(kUsage, "invalid namespace \"" + arg +
                               "\": expected an id, an inode, TYPE:[INODE], a path such as /proc/PID/ns/pid, @PID, "
                               "container:ID|NAME, unit:NAME or machine:NAME");
}

}  // namespace pidnsctl
