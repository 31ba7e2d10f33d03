// pidns-hostile: a process that plants a user's text where pidnsd and pidnsctl read it, then waits.
// Run it as the attacker (setpriv); what it does comes from the environment, so that its argv can
// be anything (hex: each byte as two hex digits):
//   PIDNS_HOSTILE_ARGV=HEX,HEX,...  re-exec itself first with exactly this argv (argv[0] too)
//   PIDNS_HOSTILE_MKDIR=HEX         a cgroup directory (HEX of e.g. /sys/fs/cgroup/systemd/top/<name>):
//                                   make those on its path that are missing, as this user (the
//                                   test moves the process in as root: cgroup v2 lets no user move
//                                   a process out of a cgroup it may not write)
//   PIDNS_HOSTILE_UNSHARE=user,net,uts,mnt,pid  unshare those (user first: maps its uid to 0)
//   PIDNS_HOSTILE_BIND=HEX,HEX,...  with mnt: a private tmpfs on /tmp, files /tmp/<HEX> (names, no
//                                   '/'), and the net namespace it is in bind-mounted on each (the
//                                   host's, unless it unshared net)
//   PIDNS_HOSTILE_FORK=1            with pid: fork, and the child (pid 1 there) does the rest
//   PIDNS_HOSTILE_STALL=HEX         a file of tests/support/fuse_stall.h's file system: open it
//                                   twice, read the first on a thread of its own (the server never
//                                   answers); after the comm is set and a byte arrives on stdin,
//                                   mmap the second: its mmap lock stays taken for writing
//   PIDNS_HOSTILE_COMM=HEX          its comm (prctl PR_SET_NAME, at most 15 bytes), set last: a
//                                   test waits for it as the sign that everything is in place
// Then it sleeps until killed (with PR_SET_PDEATHSIG SIGKILL). Any failure: a message on stderr
// and exit status 1.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "pidns-hostile: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

std::string unhex(const std::string& hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
}

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

bool has(const std::string& list, const std::string& word) { return ("," + list + ",").find("," + word + ",") != std::string::npos; }

void write_file(const std::string& path, const std::string& text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) die("open " + path);
    if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) die("write " + path);
    ::close(fd);
}

void make_cgroup(const std::string& path) {
    // Each missing directory in turn (a path may be longer than one mkdir takes).
    for (std::size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1))
        if (::mkdir(path.substr(0, at).c_str(), 0755) != 0 && errno != EEXIST) die("mkdir in cgroup path");
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) die("mkdir cgroup");
}

void unshare_all(const std::string& what) {
    const uid_t uid = ::getuid();
    const gid_t gid = ::getgid();
    int flags = 0;
    if (has(what, "user")) flags |= CLONE_NEWUSER;
    if (has(what, "net")) flags |= CLONE_NEWNET;
    if (has(what, "uts")) flags |= CLONE_NEWUTS;
    if (has(what, "mnt")) flags |= CLONE_NEWNS;
    if (has(what, "pid")) flags |= CLONE_NEWPID;
    if (::unshare(flags) != 0) die("unshare " + what);
    if (flags & CLONE_NEWUSER) {
        write_file("/proc/self/setgroups", "deny");
        write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
        write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
    }
}

std::vector<std::string> unhex_list(const std::string& list) {
    std::vector<std::string> out;
    for (std::size_t at = 0; at <= list.size();) {
        const auto comma = std::min(list.find(',', at), list.size());
        out.push_back(unhex(list.substr(at, comma - at)));
        at = comma + 1;
    }
    return out;
}

void bind_netns(const std::vector<std::string>& names) {
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) die("make / private");
    if (::mount("pidns-hostile", "/tmp", "tmpfs", 0, "size=64k") != 0) die("mount tmpfs on /tmp");
    for (const auto& name : names) {
        const std::string file = "/tmp/" + name;
        const int fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) die("create the mount point");
        ::close(fd);
        if (::mount("/proc/self/ns/net", file.c_str(), nullptr, MS_BIND, nullptr) != 0) die("bind-mount the net namespace");
    }
}

}  // namespace

int main(int, char** argv) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (const auto list = env("PIDNS_HOSTILE_ARGV"); !list.empty()) {
        auto args = unhex_list(list);
        std::vector<char*> ptrs;
        for (auto& a : args) ptrs.push_back(a.data());
        ptrs.push_back(nullptr);
        ::unsetenv("PIDNS_HOSTILE_ARGV");
        ::execv("/proc/self/exe", ptrs.data());
        die("re-exec");
    }
    (void)argv;
    if (const auto cg = env("PIDNS_HOSTILE_MKDIR"); !cg.empty()) make_cgroup(unhex(cg));
    if (const auto what = env("PIDNS_HOSTILE_UNSHARE"); !what.empty()) unshare_all(what);
    if (const auto names = env("PIDNS_HOSTILE_BIND"); !names.empty()) bind_netns(unhex_list(names));
    if (env("PIDNS_HOSTILE_FORK") == "1") {
        const pid_t child = ::fork();
        if (child < 0) die("fork");
        if (child > 0) {
            // Stays with its child (the namespace's init): both go when the test kills this one.
            int status = 0;
            ::waitpid(child, &status, 0);
            return 1;
        }
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    }
    int direct = -1;
    if (const auto file = env("PIDNS_HOSTILE_STALL"); !file.empty()) {
        const auto path = unhex(file);
        const int cached = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        direct = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (cached < 0 || direct < 0) die("open " + path);
        std::thread([cached] {
            static char page[4096];
            (void)!::pread(cached, page, sizeof page, 0);  // waits for the server, a folio locked
        }).detach();
    }
    if (const auto comm = env("PIDNS_HOSTILE_COMM"); !comm.empty())
        if (::prctl(PR_SET_NAME, unhex(comm).c_str()) != 0) die("set comm");
    if (direct >= 0) {
        char go = 0;
        if (::read(0, &go, 1) != 1) die("wait for the go");
        // Under the mmap lock taken for writing, waits on the folio the read above holds locked.
        if (::mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, direct, 0) == MAP_FAILED) die("mmap");
    }
    for (;;) ::pause();
}
