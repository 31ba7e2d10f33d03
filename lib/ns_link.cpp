// Parser for nsfs link targets such as "pid:[4026531836]".
#include "ns_link.h"

#include <string>

#include "parse_util.h"

namespace pidns {

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

}  // namespace pidns
