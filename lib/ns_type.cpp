// Tables mapping namespace types to names and CLONE_NEW* flags.
#include "ns_type.h"

#include <sched.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace pidns {
namespace {
struct Row {
    NsType type;
    std::string_view name;
    const char* link;
    int flag;
};
constexpr std::array<Row, kNsTypeCount> kRows = {{
    {NsType::pid, "pid", "ns/pid", CLONE_NEWPID},
    {NsType::user, "user", "ns/user", CLONE_NEWUSER},
    {NsType::mnt, "mnt", "ns/mnt", CLONE_NEWNS},
    {NsType::net, "net", "ns/net", CLONE_NEWNET},
    {NsType::uts, "uts", "ns/uts", CLONE_NEWUTS},
    {NsType::ipc, "ipc", "ns/ipc", CLONE_NEWIPC},
    {NsType::cgroup, "cgroup", "ns/cgroup", CLONE_NEWCGROUP},
    {NsType::time, "time", "ns/time", CLONE_NEWTIME},
}};

constexpr std::string_view kNames = "pid user mnt net uts ipc cgroup time";
// The message list is the table's names, in its order.
constexpr bool names_match() {
    std::size_t at = 0;
    for (const auto& r : kRows) {
        if (kNames.substr(at, r.name.size()) != r.name) return false;
        at += r.name.size() + 1;
    }
    return at == kNames.size() + 1;
}
static_assert(names_match());
}  // namespace

std::string_view ns_type_name(NsType t) noexcept { return kRows[ns_type_index(t)].name; }

std::optional<NsType> ns_type_from_name(std::string_view name) noexcept {
    for (const auto& r : kRows)
        if (r.name == name) return r.type;
    return std::nullopt;
}

const char* ns_type_link(NsType t) noexcept { return kRows[ns_type_index(t)].link; }

std::string_view ns_type_names() noexcept { return kNames; }

int ns_type_clone_flag(NsType t) noexcept { return kRows[ns_type_index(t)].flag; }

std::optional<NsType> ns_type_from_clone_flag(int flag) noexcept {
    for (const auto& r : kRows)
        if (r.flag == flag) return r.type;
    return std::nullopt;
}

}  // namespace pidns
