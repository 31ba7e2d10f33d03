// A process that moves to another user namespace without exec (unshare(CLONE_NEWUSER) in a
// running program, as rootless container tools do) sends no event. Its credentials are re-read
// before every access decision; they must never be judged against the user namespace it left.
#include <catch2/catch.hpp>

#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "model.h"
#include "nsfs.h"

using namespace pidns;

namespace {

std::uint64_t inode_of(pid_t pid, const char* type) {
    struct stat st {};
    REQUIRE(::stat(("/proc/" + std::to_string(pid) + "/ns/" + type).c_str(), &st) == 0);
    return st.st_ino;
}

std::uint64_t indexed_inode(const Model& m, pid_t pid, NsType t) {
    const Process* p = m.index().find_process(pid);
    REQUIRE(p);
    const Namespace* ns = m.index().find_namespace(p->ns_of(t));
    REQUIRE(ns);
    return ns->meta.inode;
}

// A child that, when told (a byte on `go`), unshares a user and a net namespace and says so
// (a byte on `done`), then waits to be killed.
struct Unsharer {
    pid_t pid = -1;
    int go = -1, done = -1;
    Unsharer() {
        int a[2], b[2];
        REQUIRE(::pipe(a) == 0);
        REQUIRE(::pipe(b) == 0);
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            char c;
            if (::read(a[0], &c, 1) != 1) ::_exit(1);
            c = ::unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0 ? 'y' : 'n';
            (void)!::write(b[1], &c, 1);
            for (;;) ::pause();
        }
        ::close(a[0]);
        ::close(b[1]);
        go = a[1];
        done = b[0];
    }
    void unshare_now() {
        char c = 'g';
        REQUIRE(::write(go, &c, 1) == 1);
        REQUIRE(::read(done, &c, 1) == 1);
        REQUIRE(c == 'y');
    }
    ~Unsharer() {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        ::close(go);
        ::close(done);
    }
};

}  // namespace

TEST_CASE("kernel: a process that unshares its user namespace without exec is re-read, not judged on the old one") {
    Unsharer child;
    auto m = Model::create({});
    REQUIRE(m.ok());
    auto& model = **m;
    REQUIRE(model.rescan().ok());
    const std::uint64_t before = inode_of(child.pid, "user");
    CHECK(indexed_inode(model, child.pid, NsType::user) == before);
    REQUIRE(model.refresh_credentials(child.pid).ok());
    CHECK_FALSE(model.has_stale());

    child.unshare_now();
    const std::uint64_t after = inode_of(child.pid, "user");
    REQUIRE(after != before);
    // Its credentials now hold every capability, in a user namespace the index does not know it
    // in: refused, and queued for a whole re-read.
    auto r = model.refresh_credentials(child.pid);
    CHECK_FALSE(r.ok());
    CHECK(model.has_stale());
    CHECK(indexed_inode(model, child.pid, NsType::user) == before);
    CHECK(model.reread_stale() == 1);
    CHECK_FALSE(model.has_stale());
    CHECK(indexed_inode(model, child.pid, NsType::user) == after);
    CHECK(indexed_inode(model, child.pid, NsType::net) == inode_of(child.pid, "net"));
    const Process* p = model.index().find_process(child.pid);
    REQUIRE(p);
    CHECK(p->cap_prm != 0);  // every capability, in its own user namespace
    REQUIRE(model.refresh_credentials(child.pid).ok());
    CHECK_FALSE(model.has_stale());

    // read_process gives links and credentials from the same side of the call.
    auto raw = read_process(model.proc_fd(), child.pid, {});
    REQUIRE(raw.ok());
    CHECK(raw->ns[ns_type_index(NsType::user)] == after);
    CHECK(raw->status.cap_prm == p->cap_prm);
}
