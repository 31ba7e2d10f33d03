// libFuzzer target: every org.pidns.Manager1 method's arguments through CallerView, as pidnsd
// answers them once the bus has named the caller: TranslatePid, TranslatePids (batch sizes up to
// and beyond kMaxBatch), ListNamespaces (type filters), GetNamespace, GetProcess, ListProcesses,
// and the counts, for synthetic callers (any pid, namespaces, credentials, capabilities, polkit).
//
// CallerView needs a Model, and a Model only reads the real /proc: this target indexes this
// machine's processes at start, plus a small tree it makes itself when run as root (a pid
// namespace, and below it a user and a pid namespace, each with a sleeping process). Answers
// therefore follow the machine's processes: the target is not deterministic, and a crash it finds
// is reproduced by running the crashing input again (usually, not always, on the same machine).
//
// Input format (front to back; missing bytes read as zero): the caller (u8 pick, u8 flags,
// u8 pidns pick, u8 userns pick, u64 cap_eff), then up to 24 operations (u8 op, operands).
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "caller.h"
#include "fuzz_check.h"
#include "model.h"
#include "query.h"
#include "view.h"

namespace {

using namespace pidns;

using fuzz::Reader;

struct Live {
    std::unique_ptr<Model> model;
    std::vector<NsId> ids, pidns, userns;
    std::vector<std::uint64_t> inodes;
    std::vector<std::int32_t> tgids, pids;  // host tgids; every NS* chain value seen
    pid_t tree = 0;                         // the tree's first process (killing it kills the rest)
};

Live* g_live = nullptr;

void kill_tree() {
    if (g_live && g_live->tree > 0) {
        ::kill(g_live->tree, SIGKILL);
        ::waitpid(g_live->tree, nullptr, 0);
        g_live->tree = 0;
    }
}

[[noreturn]] void sleep_forever() {
    for (;;) ::pause();
}

// A pid namespace with a process in it (pid 1 there), and below it a user namespace and a pid
// namespace with another one. Every process dies with its parent. Returns the first one's pid.
pid_t make_tree() {
    int ready[2];
    if (::pipe(ready) != 0) return 0;
    const pid_t top = ::fork();
    if (top < 0) return 0;
    if (top == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::close(ready[0]);
        if (::unshare(CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWIPC) != 0) ::_exit(1);
        const pid_t init1 = ::fork();  // pid 1 of the new pid namespace
        if (init1 == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::unshare(CLONE_NEWUSER) != 0 || ::unshare(CLONE_NEWPID) != 0) ::_exit(1);
            const pid_t init2 = ::fork();  // pid 1 of a pid namespace owned by the new user namespace
            if (init2 == 0) {
                ::prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void)!::write(ready[1], "x", 1);
                sleep_forever();
            }
            sleep_forever();
        }
        sleep_forever();
    }
    ::close(ready[1]);
    char c = 0;
    const bool ok = ::read(ready[0], &c, 1) == 1;
    ::close(ready[0]);
    if (!ok) {
        ::kill(top, SIGKILL);
        ::waitpid(top, nullptr, 0);
        return 0;
    }
    return top;
}

void snapshot_lists(Live& l) {
    l.ids.clear();
    l.pidns.clear();
    l.userns.clear();
    l.inodes.clear();
    l.tgids.clear();
    l.pids.clear();
    const Index& idx = l.model->index();
    for (const auto& [id, ns] : idx.namespaces()) {
        l.ids.push_back(id);
        l.inodes.push_back(ns.meta.inode);
        if (ns.meta.type == NsType::pid) l.pidns.push_back(id);
        if (ns.meta.type == NsType::user) l.userns.push_back(id);
    }
    for (const auto& [tgid, p] : idx.processes()) {
        l.tgids.push_back(tgid);
        for (auto v : p.chains.nspid()) l.pids.push_back(v);
    }
    std::sort(l.ids.begin(), l.ids.end());
    std::sort(l.pidns.begin(), l.pidns.end());
    std::sort(l.userns.begin(), l.userns.end());
    std::sort(l.inodes.begin(), l.inodes.end());
    std::sort(l.tgids.begin(), l.tgids.end());
    std::sort(l.pids.begin(), l.pids.end());
    l.pids.erase(std::unique(l.pids.begin(), l.pids.end()), l.pids.end());
}

template <class T>
T pick(const std::vector<T>& v, std::uint8_t k, T dflt = T{}) {
    return v.empty() ? dflt : v[k % v.size()];
}

std::uint64_t pick_ref(const Live& l, Reader& in) {
    const std::uint8_t k = in.u8();
    switch (k % 7) {
    case 0: return 0;
    case 1: return pick(l.ids, in.u8());
    case 2: return pick(l.inodes, in.u8());
    case 3: return pick(l.pidns, in.u8());
    case 4: return pick(l.userns, in.u8());
    case 5: return in.u64();
    default: return std::numeric_limits<std::uint64_t>::max() - (k >> 3);
    }
}

std::uint32_t pick_pid(const Live& l, Reader& in) {
    const std::uint8_t k = in.u8();
    switch (k % 7) {
    case 0: return 0;
    case 1: return static_cast<std::uint32_t>(pick(l.pids, in.u8(), 1));
    case 2: return static_cast<std::uint32_t>(pick(l.tgids, in.u8(), 1));
    case 3: return 0x7fffffffu;
    case 4: return 0x80000000u + (k >> 3);
    case 5: return 1u + (k >> 3);
    default: return in.u32();
    }
}

// Errors a method may answer with; anything else (parse, unsupported) is a bug.
void check_error(const Error& e) {
    switch (e.code) {
    case Errc::not_found:
    case Errc::no_such_namespace:
    case Errc::not_pid_namespace:
    case Errc::ambiguous:
    case Errc::invalid_argument:
    case Errc::access_denied:
    case Errc::unreadable:
    case Errc::changed:
    case Errc::io: FUZZ_CHECK(!e.message.empty()); return;
    default:
        std::fprintf(stderr, "unexpected error: %s\n", e.describe().c_str());
        FUZZ_CHECK(false);
    }
}

// A query (lib/query.h) run as pidnsd runs it, in slices (each step given a deadline already
// past: the least work a step does, every resume point taken), or at once.
template <class Q>
auto run_query(Q q, CallerView& v, bool sliced) -> Result<std::decay_t<decltype(q.answer())>> {
    const Deadline deadline = sliced ? Deadline{} : kNoDeadline;
    for (std::size_t steps = 0;; ++steps) {
        auto done = q.step(v, deadline);
        if (!done) return done.error();
        if (*done) return std::move(q.answer());
        FUZZ_CHECK(steps < (std::size_t{1} << 22));  // every step makes progress
    }
}

bool is_sorted_listing(const std::vector<NamespaceEntry>& v) {
    return std::is_sorted(v.begin(), v.end(), [](const NamespaceEntry& a, const NamespaceEntry& b) {
        if (a.type != b.type) return ns_type_index(a.type) < ns_type_index(b.type);
        if (a.level != b.level) return a.level < b.level;
        return a.id < b.id;
    });
}

void run_op(Live& l, CallerView& v, Reader& in) {
    const std::uint8_t method = in.u8();
    const bool sliced = (method & 0x80) != 0;  // queries: in slices, as pidnsd runs them, or at once
    switch (method % 9) {
    case 0: {  // TranslatePid
        const std::uint32_t pid = pick_pid(l, in);
        const std::uint64_t from = pick_ref(l, in), to = pick_ref(l, in);
        auto r = v.translate(pid, from, to);
        if (!r) {
            check_error(r.error());
            if (!is_valid_pid(pid)) FUZZ_CHECK(r.error().code == Errc::invalid_argument);
        } else {
            FUZZ_CHECK(is_valid_pid(pid) && *r <= 0x7fffffffu);
        }
        break;
    }
    case 1: {  // TranslatePids
        const std::uint8_t k = in.u8();
        std::vector<std::uint32_t> pids;
        if (k % 16 == 0) {
            pids.assign(kMaxBatch + 1 + (k >> 4), 1u);  // too many: refused before any work
        } else {
            const std::size_t n = k % 48;
            for (std::size_t i = 0; i < n; ++i) pids.push_back(pick_pid(l, in));
        }
        const std::uint64_t from = pick_ref(l, in), to = pick_ref(l, in);
        auto r = run_query(TranslateQuery(pids, from, to), v, sliced);
        if (!r) {
            check_error(r.error());
            if (pids.size() > kMaxBatch) FUZZ_CHECK(r.error().code == Errc::invalid_argument);
            break;
        }
        FUZZ_CHECK(pids.size() <= kMaxBatch && r->size() == pids.size());
        for (std::size_t i = 0; i < pids.size(); ++i) {
            if (!is_valid_pid(pids[i])) FUZZ_CHECK((*r)[i] == 0);
            FUZZ_CHECK((*r)[i] <= 0x7fffffffu);
        }
        break;
    }
    case 2: {  // ListNamespaces
        const std::uint8_t k = in.u8();
        // "" (all), each type's name, or bytes.
        const std::string type = k >= 200 ? in.str(k % 10)
                                 : k % 9 == 0 ? std::string()
                                              : std::string(ns_type_name(kAllNsTypes[k % 9 - 1]));
        auto r = run_query(NamespaceListQuery(type), v, sliced);
        auto f = parse_type_filter(type);
        if (!r) {
            FUZZ_CHECK(r.error().code == Errc::invalid_argument && !f.ok());
            break;
        }
        FUZZ_CHECK(f.ok() && is_sorted_listing(*r));
        for (const auto& e : *r) {
            if (*f) FUZZ_CHECK(e.type == **f);
            FUZZ_CHECK(e.id != 0 && e.parent != e.id);
        }
        break;
    }
    case 3: {  // GetNamespace
        auto r = run_query(NamespaceQuery(pick_ref(l, in)), v, sliced);
        if (!r) check_error(r.error());
        else FUZZ_CHECK(r->id != 0);
        break;
    }
    case 4: {  // GetProcess
        const std::uint32_t pid = pick_pid(l, in);
        auto r = v.get_process(pid);
        if (!r) {
            check_error(r.error());
            if (!is_valid_pid(pid)) FUZZ_CHECK(r.error().code == Errc::invalid_argument);
            break;
        }
        FUZZ_CHECK(!r->nspid.empty() && r->nstgid.size() == r->nspgid.size() && r->nspgid.size() == r->nssid.size());
        FUZZ_CHECK(r->nspid.size() == r->nstgid.size() && r->nspid.front() == pid);
        break;
    }
    case 5: {  // ListProcesses
        auto r = run_query(ProcessListQuery(pick_ref(l, in)), v, sliced);
        if (!r) {
            check_error(r.error());
            break;
        }
        FUZZ_CHECK(std::is_sorted(r->begin(), r->end()));
        for (auto p : *r) FUZZ_CHECK(is_valid_pid(p));
        break;
    }
    case 6: {  // the NamespaceCount / ProcessCount properties
        (void)v.namespace_count();
        (void)v.process_count();
        break;
    }
    case 7: {  // a pid namespace reference alone
        auto r = v.resolve_pidns(pick_ref(l, in));
        if (!r) check_error(r.error());
        else FUZZ_CHECK(l.model->index().find_namespace(*r)->meta.type == NsType::pid);
        break;
    }
    default: {  // polkit said yes
        v.widen();
        break;
    }
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    g_live = new Live;
    if (::geteuid() == 0) {
        g_live->tree = make_tree();
        std::atexit(kill_tree);
    }
    auto m = Model::create();
    if (!m) {
        std::fprintf(stderr, "fuzz_caller_view: %s\n", m.error().describe().c_str());
        std::exit(1);
    }
    g_live->model = std::move(*m);
    if (auto r = g_live->model->rescan(); !r) {
        std::fprintf(stderr, "fuzz_caller_view: rescan: %s\n", r.error().describe().c_str());
        std::exit(1);
    }
    snapshot_lists(*g_live);
    std::fprintf(stderr, "fuzz_caller_view: %zu namespaces (%zu pid, %zu user), %zu processes%s\n",
                 g_live->ids.size(), g_live->pidns.size(), g_live->userns.size(), g_live->tgids.size(),
                 g_live->tree ? ", with a namespace tree of its own" : " (not root: no tree of its own)");
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Live& l = *g_live;
    Reader in(data, size);
    Caller c;
    const std::uint8_t who = in.u8();
    const std::uint8_t flags = in.u8();
    c.pid = who % 4 == 0 ? static_cast<std::int32_t>(::getpid()) : pick(l.tgids, who >> 2, 1);
    c.pidns = flags & 1 ? l.model->self_ns(NsType::pid) : pick(l.pidns, in.u8());
    c.userns = flags & 2 ? l.model->self_ns(NsType::user) : pick(l.userns, in.u8());
    const std::uint32_t uid = flags & 4 ? 0 : flags & 8 ? 65534 : 1000;
    c.uid.fill(uid);
    c.gid.fill(uid);
    c.bus_uid = uid;
    const std::uint64_t caps = in.u64();
    c.cap_eff = flags & 16 ? ~0ull : flags & 32 ? (1ull << kCapSysPtrace) : caps;
    if (flags & 64) c.uid_map = {IdMapExtent{0, 0, 0xffffffffu}};
    else if (flags & 128) c.uid_map = {IdMapExtent{0, 1000, 1}};

    CallerView view(*l.model, c);
    if (in.u8() & 1) view.use_remembered_credentials();
    for (int ops = 0; ops < 24 && !in.done(); ++ops) run_op(l, view, in);
    return 0;
}
