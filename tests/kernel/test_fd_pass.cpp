// The BPF fd pass (nsfs_fd_iter.h) against the kernel's /proc: a rescan that finds namespace fds
// with it holds the same namespaces by fd as one that lists every /proc/PID/fd, and both equal
// what the processes' fd links say. Cases: a namespace held only by fds (twice, at two numbers),
// by a process whose leader exited (its table is read through a live thread), and after the fd
// that the pass saw was closed and its number reused for another namespace.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <set>
#include <string>

#include "model.h"
#include "nsfs.h"
#include "ns_link.h"
#include "nsfs_fd_iter.h"
#include "proc_reader.h"
#include "process.h"  // tests/harness

using namespace pidns;

namespace {

using Held = std::set<std::pair<NsType, std::uint64_t>>;  // (type, inode)

// What the kernel shows: the namespace links among the fds of `dir` ("/proc/PID/fd", or a task's).
Held kernel_fd_namespaces(const std::string& dir) {
    Held out;
    DIR* d = ::opendir(dir.c_str());
    REQUIRE(d != nullptr);
    while (auto* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        if (auto l = ns_link_at(::dirfd(d), e->d_name)) out.emplace(l->type, l->inode);
    }
    ::closedir(d);
    return out;
}

// What a model holds by fd for `pid`.
Held model_fd_namespaces(const Model& m, pid_t pid) {
    Held out;
    const Process* p = m.index().find_process(pid);
    REQUIRE(p != nullptr);
    if (p->ns_fds)
        for (const auto& [fd, id] : *p->ns_fds) {
            const Namespace* ns = m.index().find_namespace(id);
            REQUIRE(ns != nullptr);
            out.emplace(ns->meta.type, ns->meta.inode);
        }
    return out;
}

// A child that makes a network and a UTS namespace, keeps each only as fds (the net one twice),
// goes back to ours, and, with `zombie_leader`, leaves its main thread (SYS_exit) while a second
// thread keeps the process, and its fd table, alive. Reports on `ready` once done.
[[noreturn]] void hold_by_fds(int ready, bool zombie_leader) {
    const int host_net = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    const int host_uts = ::open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
    if (host_net < 0 || host_uts < 0 || ::unshare(CLONE_NEWNET | CLONE_NEWUTS) != 0) ::_exit(1);
    const int net = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    const int uts = ::open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
    if (net < 0 || uts < 0 || ::dup(net) < 0) ::_exit(2);
    if (::setns(host_net, CLONE_NEWNET) != 0 || ::setns(host_uts, CLONE_NEWUTS) != 0) ::_exit(3);
    ::close(host_net);
    ::close(host_uts);
    if (zombie_leader) {
        pthread_t th;
        if (::pthread_create(&th, nullptr, [](void*) -> void* {
                for (;;) ::pause();
            }, nullptr) != 0)
            ::_exit(4);
    }
    char c = 1;
    if (::write(ready, &c, 1) != 1) ::_exit(5);
    if (zombie_leader) ::syscall(SYS_exit, 0);  // this thread alone
    for (;;) ::pause();
}

pid_t start_holder(bool zombie_leader) {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(ready[0]);
        hold_by_fds(ready[1], zombie_leader);
    }
    ::close(ready[1]);
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);
    return child;
}

// The live thread of a process whose leader exited.
pid_t other_thread(pid_t pid) {
    DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
    REQUIRE(d != nullptr);
    pid_t found = 0;
    while (auto* e = ::readdir(d))
        if (e->d_name[0] != '.' && std::atoi(e->d_name) != pid) found = std::atoi(e->d_name);
    ::closedir(d);
    REQUIRE(found != 0);
    return found;
}

std::uint64_t own_inode(NsType t) {
    auto l = read_ns_link_at(AT_FDCWD, (std::string("/proc/self/") + ns_type_link(t)).c_str());
    REQUIRE(l.ok());
    return l->inode;
}

std::unique_ptr<Model> scanned(bool by_bpf) {
    DiscoveryOptions o;
    o.fds_by_bpf = by_bpf;
    auto m = Model::create(o);
    REQUIRE(m.ok());
    INFO("why not BPF: " << (*m)->fd_source_reason());
    REQUIRE((*m)->fd_pass_in_use() == by_bpf);
    REQUIRE((*m)->rescan().ok());
    CHECK((*m)->fd_pass_failures() == 0);
    return std::move(*m);
}

}  // namespace

TEST_CASE("fd pass: a rescan with the BPF pass holds by fd what listing every /proc/PID/fd does, as the kernel shows") {
    const pid_t plain = start_holder(false);
    const pid_t zombie = start_holder(true);
    pidns::harness::Reap reap{plain, zombie};
    for (int i = 0; i < 100 && ::access(("/proc/" + std::to_string(zombie) + "/fd/0").c_str(), F_OK) == 0; ++i)
        ::usleep(10000);  // the leader's exit drops its fd table: /proc/PID/fd is then empty

    const Held plain_kernel = kernel_fd_namespaces("/proc/" + std::to_string(plain) + "/fd");
    const Held zombie_kernel =
        kernel_fd_namespaces("/proc/" + std::to_string(zombie) + "/task/" + std::to_string(other_thread(zombie)) + "/fd");
    // Each holds its own net and uts namespaces by fd (and may hold ours, inherited from this test).
    REQUIRE(plain_kernel.size() >= 2);
    REQUIRE(zombie_kernel.size() >= 2);

    auto bpf = scanned(true);
    auto proc = scanned(false);
    CHECK(model_fd_namespaces(*bpf, plain) == plain_kernel);
    CHECK(model_fd_namespaces(*proc, plain) == plain_kernel);
    CHECK(model_fd_namespaces(*bpf, zombie) == zombie_kernel);
    CHECK(model_fd_namespaces(*proc, zombie) == zombie_kernel);
    // A namespace nothing else holds is indexed as held by an fd.
    for (const auto& [type, inode] : plain_kernel) {
        INFO(ns_type_name(type) << ":[" << inode << "]");
        if (inode == own_inode(type)) continue;
        auto id = bpf->index().find_by_inode(kernel_features().nsfs_dev, inode);
        REQUIRE(id);
        CHECK(bpf->index().find_namespace(*id)->holders() == kHeldByFd);
    }
}

TEST_CASE("fd pass: the pass names fds, /proc decides what they are when the process is read") {
    auto iter = NsfsFdIter::load();
    REQUIRE(iter.ok());
    const pid_t holder = start_holder(false);
    pidns::harness::Reap reap{holder};
    auto listed = (*iter)->list();
    REQUIRE(listed.ok());
    REQUIRE(listed->contains(holder));
    // Every record the pass gave for it is an nsfs fd the kernel shows at that number now.
    const std::string fd_dir = "/proc/" + std::to_string(holder) + "/fd";
    std::int32_t some_fd = -1;
    for (const auto& [fd, inode] : listed->at(holder)) {
        auto l = read_ns_link_at(AT_FDCWD, (fd_dir + "/" + std::to_string(fd)).c_str());
        REQUIRE(l.ok());
        CHECK(l->inode == inode);
        some_fd = fd;
    }
    // One record per namespace: the net namespace it holds twice comes once, at its lower fd.
    std::set<std::uint64_t> inodes;
    for (const auto& [fd, inode] : listed->at(holder)) CHECK(inodes.insert(inode).second);

    // A listing gone stale: fd 0 is no namespace (any more), fd 4242 is not open, and some_fd's
    // inode is wrong. Only some_fd is kept, as /proc shows it now; a process the listing does not
    // name is read with no fds.
    const NsfsFdsByPid stale{{holder, {{0, 12345}, {some_fd, 999}, {4242, 77}}}};
    Fd proc_fd(::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ReadOptions ro;
    ro.listed_fds = &stale;
    auto raw = read_process(proc_fd.get(), holder, ro);
    REQUIRE(raw.ok());
    REQUIRE(raw->ns_fds.size() == 1);
    CHECK(raw->ns_fds[0].fd == some_fd);
    auto now = read_ns_link_at(AT_FDCWD, (fd_dir + "/" + std::to_string(some_fd)).c_str());
    REQUIRE(now.ok());
    CHECK(raw->ns_fds[0].ns.inode == now->inode);
    CHECK(raw->ns_fds[0].ns.type == now->type);
    const NsfsFdsByPid none;
    ro.listed_fds = &none;
    auto unnamed = read_process(proc_fd.get(), holder, ro);
    REQUIRE(unnamed.ok());
    CHECK(unnamed->ns_fds.empty());
}

TEST_CASE("fd pass: records are folded whole, one per (process, namespace), the lowest fd kept, garbage skipped") {
    auto bytes = [](std::initializer_list<NsfsFdRecord> rs) {
        std::vector<std::byte> out(rs.size() * sizeof(NsfsFdRecord));
        std::size_t at = 0;
        for (const auto& r : rs) {
            std::memcpy(out.data() + at, &r, sizeof r);
            at += sizeof r;
        }
        return out;
    };
    NsfsFdsByPid out;
    auto b = bytes({{10, 7, 100}, {10, 3, 100}, {10, 9, 200}, {11, 4, 100}, {-1, 3, 5}, {0, 3, 5}, {12, -2, 5}, {12, 4, 0}});
    b.push_back(std::byte{1});  // a partial record: left for the next read
    CHECK(fold_nsfs_fd_records(b, out) == 8 * sizeof(NsfsFdRecord));
    REQUIRE(out.size() == 2);
    CHECK(out[10] == std::vector<std::pair<std::int32_t, std::uint64_t>>{{3, 100}, {9, 200}});
    CHECK(out[11] == std::vector<std::pair<std::int32_t, std::uint64_t>>{{4, 100}});
    CHECK(fold_nsfs_fd_records(std::span(b.data(), sizeof(NsfsFdRecord) - 1), out) == 0);
}
