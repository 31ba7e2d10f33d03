// The kernel's own table of namespace types against lib's (ns_type.h): the links of /proc/self/ns,
// the CLONE_NEW* flag NS_GET_NSTYPE gives for each, and which ones NS_GET_PARENT works on.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <set>
#include <string>

#include "ns_type.h"

using namespace pidns;

namespace {

constexpr unsigned long kNsGetParent = _IO(0xb7, 0x2);
constexpr unsigned long kNsGetNstype = _IO(0xb7, 0x3);

}  // namespace

TEST_CASE("the namespace types are the kernel's: the names in /proc/self/ns, NS_GET_NSTYPE's flags, NS_GET_PARENT on pid and user only") {
    std::set<std::string> kernel_names, lib_names;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/ns")) {
        const std::string name = e.path().filename();
        if (!name.ends_with("_for_children")) kernel_names.insert(name);
    }
    for (auto t : kAllNsTypes) lib_names.emplace(ns_type_name(t));
    CHECK(kernel_names == lib_names);
    for (const auto& name : kernel_names) {
        INFO("/proc/self/ns/" << name);
        const auto type = ns_type_from_name(name);
        REQUIRE(type);
        const int fd = ::open(("/proc/self/ns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        CHECK(::ioctl(fd, kNsGetNstype) == ns_type_clone_flag(*type));
        // EINVAL: the type has no hierarchy; EPERM (the parent is not ours to see) or an fd: it has.
        const int parent = ::ioctl(fd, kNsGetParent);
        const int err = errno;
        if (parent >= 0) ::close(parent);
        CHECK((parent >= 0 || err == EPERM) == ns_type_is_hierarchical(*type));
        if (!ns_type_is_hierarchical(*type)) CHECK(err == EINVAL);
        ::close(fd);
    }
}
