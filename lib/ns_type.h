// The eight Linux namespace types and their names, proc links and clone flags.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pidns {

enum class NsType : std::uint8_t { pid, user, mnt, net, uts, ipc, cgroup, time };

inline constexpr std::size_t kNsTypeCount = 8;
inline constexpr std::array<NsType, kNsTypeCount> kAllNsTypes = {
    NsType::pid, NsType::user, NsType::mnt, NsType::net,
    NsType::uts, NsType::ipc, NsType::cgroup, NsType::time};

// "pid", "user", ... as lsns and /proc/PID/ns/ name them.
std::string_view ns_type_name(NsType t) noexcept;
std::optional<NsType> ns_type_from_name(std::string_view name) noexcept;
// "ns/pid", "ns/user", ...: the link below a task's /proc directory (NUL-terminated).
const char* ns_type_link(NsType t) noexcept;
// "pid user mnt net uts ipc cgroup time": every name, in kAllNsTypes' order, for messages.
std::string_view ns_type_names() noexcept;

// CLONE_NEW* flag, as NS_GET_NSTYPE returns it.
int ns_type_clone_flag(NsType t) noexcept;
std::optional<NsType> ns_type_from_clone_flag(int flag) noexcept;

// Pid and user namespaces form a tree (NS_GET_PARENT works on them).
constexpr bool ns_type_is_hierarchical(NsType t) noexcept {
    return t == NsType::pid || t == NsType::user;
}

constexpr std::size_t ns_type_index(NsType t) noexcept { return static_cast<std::size_t>(t); }

}  // namespace pidns
