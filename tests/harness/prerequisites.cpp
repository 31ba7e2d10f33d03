// Probes of the host for optional test prerequisites: the FUSE device, the cgroup hierarchies.
#include "prerequisites.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pidns::harness {

std::string fuse_missing() {
    const int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) return std::string("no usable /dev/fuse: ") + std::strerror(errno);
    struct stat st {};
    const bool is_fuse = ::fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 10 &&
                         minor(st.st_rdev) == 229;
    ::close(fd);
    return is_fuse ? "" : "/dev/fuse is not the FUSE device (char 10:229)";
}

namespace {

// The mount points of the cgroup2 and the name=systemd v1 hierarchies in this mount namespace.
struct CgroupMounts {
    std::string v2, systemd_v1;
};

CgroupMounts cgroup_mounts() {
    CgroupMounts m;
    std::ifstream mi("/proc/self/mountinfo");
    for (std::string line; std::getline(mi, line);) {
        const auto dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream pre(line.substr(0, dash)), post(line.substr(dash + 3));
        std::string id, parent, devno, root, mnt, fstype, source, opts;
        pre >> id >> parent >> devno >> root >> mnt;
        post >> fstype >> source >> opts;
        if (fstype == "cgroup" && ("," + opts + ",").find(",name=systemd,") != std::string::npos && m.systemd_v1.empty())
            m.systemd_v1 = mnt;
        if (fstype == "cgroup2" && m.v2.empty()) m.v2 = mnt;
    }
    return m;
}

}  // namespace

std::string cgroup2_mount() { return cgroup_mounts().v2; }

std::string systemd_cgroup_mount() {
    const auto m = cgroup_mounts();
    return m.systemd_v1.empty() ? m.v2 : m.systemd_v1;
}

}  // namespace pidns::harness
