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
    int flag;
};
constexpr std::array<Row, kNsTypeCount> kRows = {{
    {NsType::pid, "pid", CLONE_NEWPID},
    {NsType::user, "user", CLONE_NEWUSER},
    {NsType::mnt, "mnt", CLONE_NEWNS},
    {NsType::net, "net", CLONE_NEWNET},
    {NsType::uts, "uts", CLONE_NEWUTS},
    {NsType::ipc, "ipc", CLONE_NEWIPC},
    {NsType::cgroup, "cgroup", CLONE_NEWCGROUP},
    {NsType::time, "time", CLONE_NEWTIME},
}};
}  // namespace

std::string_view ns_type_name(NsType t) noexcept { return kRows[ns_type_index(t)].name; }

std::optional<NsType> ns_type_from_name(std::string_view name) noexcept {
    for (const auto& r : kRows)
        if (r.name == name) return r.type;
    return std::nullopt;
}

int ns_type_clone_flag(NsType t) noexcept { return kRows[ns_type_index(t)].flag; }

std::optional<NsType> ns_type_from_clone_flag(int flag) noexcept {
    for (const auto& r : kRows)
        if (r.flag == flag) return r.type;
    return std::nullopt;
}

}  // namespace pidns
