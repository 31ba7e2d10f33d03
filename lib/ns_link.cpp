// nsfs link targets such as "pid:[4026531836]": the parser, and the one place a link is read.
#include "ns_link.h"

#include <unistd.h>

#include <cerrno>
#include <string>

#include "parse_util.h"

namespace pidns {
namespace {

// The target of a link (at most 127 bytes: a namespace link is about 20), or -1 with errno set.
ssize_t read_target(int dirfd, const char* path, char (&buf)[128]) {
    const ssize_t n = ::readlinkat(dirfd, path, buf, sizeof buf);
    if (n >= static_cast<ssize_t>(sizeof buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return n;
}

}  // namespace

Result<NsLink> parse_ns_link(std::string_view target) {
    auto colon = target.find(':');
    if (colon == std::string_view::npos || target.size() < colon + 4 || target[colon + 1] != '[' ||
        target.back() != ']')
        return make_error(Errc::parse, "not a namespace link: '" + std::string(target.substr(0, 64)) + "'");
    auto type = ns_type_from_name(target.substr(0, colon));
    if (!type)
        return make_error(Errc::parse,
                          "unknown namespace type '" + std::string(target.substr(0, colon).substr(0, 32)) + "'");
    auto num = parse_u64(target.substr(colon + 2, target.size() - colon - 3));
    if (!num || *num == 0)
        return make_error(Errc::parse, "bad inode number in '" + std::string(target.substr(0, 64)) + "'");
    return NsLink{*type, *num};
}

Result<NsLink> read_ns_link_at(int dirfd, const char* path) {
    char buf[128];
    const ssize_t n = read_target(dirfd, path, buf);
    if (n < 0)
        return make_error(errno == ENOENT || errno == ESRCH ? Errc::not_found : Errc::io, std::string("readlink ") + path,
                          errno);
    return parse_ns_link(std::string_view(buf, static_cast<std::size_t>(n)));
}

std::optional<NsLink> ns_link_at(int dirfd, const char* path) {
    char buf[128];
    const ssize_t n = read_target(dirfd, path, buf);
    if (n <= 0) return std::nullopt;
    const std::string_view target(buf, static_cast<std::size_t>(n));
    // A file's path or "socket:[N]"-like targets of other kinds are passed over without a parse.
    if (target.front() == '/' || target.back() != ']') return std::nullopt;
    auto link = parse_ns_link(target);
    if (!link) return std::nullopt;
    return *link;
}

std::uint64_t ns_link_inode_at(int dirfd, const char* path, NsType type) {
    const auto link = ns_link_at(dirfd, path);
    return link && link->type == type ? link->inode : 0;
}

}  // namespace pidns
