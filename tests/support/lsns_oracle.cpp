// lsns -J, or the test's own reading of /proc where lsns fails.
#include "lsns_oracle.h"

#include <catch2/catch.hpp>
#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <map>
#include <memory>

namespace pidns::testing {
namespace {

constexpr unsigned long kNsGetUserns = _IO(0xb7, 0x1);  // NS_GET_USERNS
constexpr unsigned long kNsGetParent = _IO(0xb7, 0x2);  // NS_GET_PARENT

// The inode of the namespace an nsfs ioctl returns for `fd`, 0 when it refuses.
std::uint64_t related_inode(int fd, unsigned long request) {
    const int rel = ::ioctl(fd, request);
    if (rel < 0) return 0;
    struct stat st {};
    const bool ok = ::fstat(rel, &st) == 0;
    ::close(rel);
    return ok ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

}  // namespace

nlohmann::json own_lsns_listing() {
    struct Ns {
        std::string type;
        std::uint64_t nprocs = 0;
        long pid = 0;  // the lowest
        std::string path;  // a link to it, for the ioctls
    };
    std::map<std::uint64_t, Ns> found;
    DIR* proc = ::opendir("/proc");
    if (!proc) return {{"namespaces", nlohmann::json::array()}};
    while (auto* e = ::readdir(proc)) {
        char* end = nullptr;
        const long pid = std::strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end != '\0') continue;
        for (const char* type : {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"}) {
            const std::string link = "/proc/" + std::to_string(pid) + "/ns/" + type;
            struct stat st {};
            if (::stat(link.c_str(), &st) != 0) continue;  // gone, a zombie's, or not ours to read
            auto& ns = found[static_cast<std::uint64_t>(st.st_ino)];
            ns.type = type;
            ++ns.nprocs;
            if (ns.pid == 0 || pid < ns.pid) {
                ns.pid = pid;
                ns.path = link;
            }
        }
    }
    ::closedir(proc);
    auto list = nlohmann::json::array();
    for (const auto& [inode, ns] : found) {
        std::uint64_t pns = 0, ons = 0;
        if (const int fd = ::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
            if (ns.type == "pid" || ns.type == "user") pns = related_inode(fd, kNsGetParent);
            ons = related_inode(fd, kNsGetUserns);
            ::close(fd);
        }
        list.push_back({{"ns", inode}, {"type", ns.type}, {"nprocs", ns.nprocs}, {"pid", ns.pid}, {"pns", pns}, {"ons", ons}});
    }
    return {{"namespaces", list}};
}

nlohmann::json lsns_listing() {
    std::unique_ptr<FILE, int (*)(FILE*)> p(::popen("lsns -J -o NS,TYPE,NPROCS,PID,PNS,ONS 2>/dev/null", "r"), ::pclose);
    std::string out;
    int status = -1;
    if (p) {
        std::array<char, 4096> buf{};
        while (auto n = std::fread(buf.data(), 1, buf.size(), p.get())) out.append(buf.data(), n);
        status = ::pclose(p.release());
    }
    if (status == 0) {
        try {
            auto j = nlohmann::json::parse(out);
            if (j.contains("namespaces") && j.at("namespaces").is_array()) return j;
        } catch (const nlohmann::json::exception&) {
        }
    }
    WARN("lsns failed (" << (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status)) : "no exit status")
                         << ", output: \"" << out.substr(0, 200)
                         << "\"; util-linux 2.38 fails so while a process on the host has a newline in its comm): "
                            "compared with the test's own reading of /proc instead");
    return own_lsns_listing();
}

}  // namespace pidns::testing
