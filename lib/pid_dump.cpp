// DumpPidTree's model: the subtree's tasks read fresh from /proc, made consistent, ordered parent first.
#include "pid_dump.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "model.h"
#include "ns_link.h"
#include "parse_util.h"
#include "proc_reader.h"
#include "proc_status.h"
#include "view.h"

namespace pidns {
namespace {

bool past(std::chrono::steady_clock::time_point deadline) { return std::chrono::steady_clock::now() >= deadline; }

// Read ahead on the helper thread when the index holds at least this many of the subtree's
// processes (fewer are read sooner than the helper wakes).
constexpr std::size_t kReadAheadMin = 32;

// The inode of a pid (or `type`) namespace link below `dirfd` (lib/ns_link.h); 0 when unreadable.
std::uint64_t link_inode(int dirfd, const char* rel, NsType type = NsType::pid) {
    return ns_link_inode_at(dirfd, rel, type);
}

// The numeric entries of a directory below `dirfd` (a task list), ascending; empty if gone.
std::vector<std::int32_t> list_ids(int dirfd, const char* name) {
    std::vector<std::int32_t> out;
    const int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return out;
    DIR* d = ::fdopendir(fd);
    if (!d) {
        ::close(fd);
        return out;
    }
    while (auto* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        if (auto v = parse_u64(e->d_name); v && *v > 0 && *v <= 0x7fffffff) out.push_back(static_cast<std::int32_t>(*v));
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

// A small /proc file (status) in as few reads as it takes: procfs makes such a file whole, so a
// read that does not fill the buffer has reached its end (one read where a loop to EOF takes two).
Result<std::string> read_small(int dirfd, const char* rel) {
    const int fd = ::openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(errno == ENOENT || errno == ESRCH ? Errc::not_found : Errc::io, rel, errno);
    const Fd owner(fd);
    std::string out;
    char buf[8192];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error(errno == ESRCH ? Errc::not_found : Errc::io, rel, errno);
        }
        out.append(buf, static_cast<std::size_t>(n));
        if (static_cast<std::size_t>(n) < sizeof buf) return out;
        if (out.size() > (1u << 20)) return make_error(Errc::parse, std::string(rel) + " larger than 1 MiB");
    }
}

std::uint32_t at(const std::vector<std::int32_t>& chain, std::size_t i) {
    return i < chain.size() ? static_cast<std::uint32_t>(chain[i]) : 0;
}

bool is_subtree_init(const DumpTask& t, std::size_t root_level) {
    return t.nspid.size() == root_level + 1 && t.nspid[root_level] == 1;
}

}  // namespace

Result<DumpTask> parse_dump_status(std::string_view text) {
    auto st = parse_proc_status(text);
    if (!st) return st.error();
    DumpTask t;
    t.tid = st->pid;
    t.tgid = st->tgid;
    t.ppid = st->ppid;
    t.uid = st->uid;
    t.gid = st->gid;
    t.cap_prm = st->cap_prm;
    t.cap_eff = st->cap_eff;
    t.nspid = std::move(st->nspid);
    t.nstgid = std::move(st->nstgid);
    t.nspgid = std::move(st->nspgid);
    t.nssid = std::move(st->nssid);
    constexpr std::string_view kState = "State:", kThreads = "Threads:";
    auto value = [](std::string_view v) {
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        return v;
    };
    for (std::size_t pos = 0; pos < text.size();) {
        const auto end = std::min(text.find('\n', pos), text.size());
        const auto line = text.substr(pos, end - pos);
        if (line.starts_with(kState)) {
            // fs/proc/array.c task_state_array: R S D T t X Z P I ("t (tracing stop)": a traced task).
            const auto v = value(line.substr(kState.size()));
            if (!v.empty() && ((v.front() >= 'A' && v.front() <= 'Z') || (v.front() >= 'a' && v.front() <= 'z')))
                t.state = v.front();
        } else if (line.starts_with(kThreads)) {
            if (auto n = parse_u64(value(line.substr(kThreads.size()))); n && *n <= 0x7fffffff)
                t.threads = static_cast<std::uint32_t>(*n);
        }
        pos = end + 1;
    }
    if (t.state == 0) return make_error(Errc::parse, "/proc status: missing or malformed field 'State'");
    return t;
}

NsId pidns_from_parent(const DumpTask& task, const DumpTask& parent) noexcept {
    if (task.nspid.size() == parent.nspid.size()) return parent.pidns;
    if (task.nspid.size() == parent.nspid.size() + 1) return parent.pid_for_children;
    return 0;
}

std::vector<std::int32_t> dangling_tasks(const std::vector<DumpTask>& tasks, std::size_t root_level,
                                         const std::function<bool(std::int32_t)>& outside) {
    std::unordered_set<std::int32_t> groups;
    for (const auto& t : tasks) groups.insert(t.tgid);
    std::vector<std::int32_t> out;
    for (const auto& t : tasks) {
        if (groups.contains(t.ppid) || is_subtree_init(t, root_level)) continue;
        if (t.ppid == 0 || outside(t.ppid)) continue;
        out.push_back(t.tid);
    }
    return out;
}

std::vector<DumpEntry> order_dump(const std::vector<DumpTask>& tasks, std::size_t root_level, std::size_t caller_level) {
    // Thread groups: the leader (or, for a group whose leader is missing, its first task) and its threads.
    struct Group {
        std::size_t leader = SIZE_MAX;
        std::vector<std::size_t> threads;
        std::vector<std::int32_t> children;  // child thread groups
        std::uint32_t key = 0;                // pid in the subtree's root namespace
        std::uint32_t depth = 0;
    };
    std::unordered_map<std::int32_t, Group> groups;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        auto& g = groups[tasks[i].tgid];
        if (tasks[i].tid == tasks[i].tgid) g.leader = i;
        else g.threads.push_back(i);
    }
    auto key_of = [&](std::size_t i) { return at(tasks[i].nspid, root_level); };
    std::vector<std::int32_t> roots;
    for (auto& [tgid, g] : groups) {
        if (g.leader == SIZE_MAX) {  // no leader read: its first thread stands for the group
            std::sort(g.threads.begin(), g.threads.end(), [&](auto a, auto b) { return key_of(a) < key_of(b); });
            g.leader = g.threads.front();
            g.threads.erase(g.threads.begin());
        }
        std::sort(g.threads.begin(), g.threads.end(), [&](auto a, auto b) { return key_of(a) < key_of(b); });
        const auto& l = tasks[g.leader];
        g.key = key_of(g.leader);
        g.depth = static_cast<std::uint32_t>(l.nspid.size() - 1 - root_level);
    }
    for (auto& [tgid, g] : groups) {
        const auto ppid = tasks[g.leader].ppid;
        if (ppid != tgid && groups.contains(ppid)) groups[ppid].children.push_back(tgid);
        else roots.push_back(tgid);
    }
    auto by_key = [&](std::int32_t a, std::int32_t b) {
        const auto &ga = groups[a], &gb = groups[b];
        return ga.depth != gb.depth ? ga.depth < gb.depth : ga.key < gb.key;
    };
    std::sort(roots.begin(), roots.end(), by_key);

    auto entry_of = [&](std::size_t i) {
        const DumpTask& t = tasks[i];
        DumpEntry e;
        e.rpid = at(t.nspid, caller_level);
        e.depth = static_cast<std::uint32_t>(t.nspid.size() - 1 - root_level);
        for (std::size_t k = root_level; k < t.nspid.size(); ++k) e.vpids.push_back(static_cast<std::uint32_t>(t.nspid[k]));
        e.vtgid = at(t.nstgid, root_level);
        e.vpgid = at(t.nspgid, root_level);
        e.vsid = at(t.nssid, root_level);
        const auto parent = groups.find(t.ppid);
        const bool parent_inside = t.ppid != t.tgid && parent != groups.end();
        if (parent_inside) e.vppid = at(tasks[parent->second.leader].nstgid, root_level);
        e.pidns = t.pidns;
        e.pid_for_children = t.pid_for_children;
        if (t.tid != t.tgid) e.flags |= kDumpThread;
        if (t.zombie()) e.flags |= kDumpZombie;
        if (!parent_inside && !is_subtree_init(tasks[groups[t.tgid].leader], root_level)) e.flags |= kDumpEnteredFromOutside;
        if (t.pid_for_children != 0 && t.pid_for_children != t.pidns) e.flags |= kDumpUnsharedPid;
        return e;
    };

    std::vector<DumpEntry> out;
    out.reserve(tasks.size());
    std::vector<std::int32_t> stack(roots.rbegin(), roots.rend());
    std::unordered_set<std::int32_t> emitted;
    while (!stack.empty()) {
        const auto tgid = stack.back();
        stack.pop_back();
        if (!emitted.insert(tgid).second) continue;
        auto& g = groups[tgid];
        out.push_back(entry_of(g.leader));
        for (auto th : g.threads) out.push_back(entry_of(th));
        std::sort(g.children.begin(), g.children.end(), by_key);
        for (auto it = g.children.rbegin(); it != g.children.rend(); ++it) stack.push_back(*it);
    }
    return out;
}

PidTreeDump::PidTreeDump(Model& model, NsId root) : model_(model), root_(root) {}

PidTreeDump::~PidTreeDump() {
    ahead_.reset();  // before pre_ and the model go
    model_.collect();
}

bool PidTreeDump::in_subtree(NsId pidns) const { return pidns != 0 && model_.index().pidns_is_descendant(pidns, root_); }

NsId PidTreeDump::resolve(const std::string& rel, std::uint64_t inode, std::span<const NsId> held, NsType type) {
    if (inode == 0) return 0;
    // The index's entry for that inode is taken as is only where the index's record of the task
    // (or of its parent) holds it: any other may be a dead namespace whose inode the kernel gave
    // to this one, and is confirmed (or dropped) by the model. A namespace not indexed yet (made
    // since, or one only an exited process holds) is opened and registered there.
    if (auto id = model_.index().find_by_inode(model_.features().nsfs_dev, inode);
        id && std::find(held.begin(), held.end(), *id) != held.end() && model_.index().find_namespace(*id)->meta.type == type)
        return *id;
    auto id = model_.resolve_ns_link(rel, type, inode);
    return id ? *id : 0;
}

std::vector<NsId> PidTreeDump::held_by(std::int32_t tgid, const DumpTask& leader) const {
    std::vector<NsId> held;
    const Index& index = model_.index();
    auto add = [&](const Process* p) {
        if (!p) return;
        held.push_back(p->ns_of(NsType::pid));
        held.push_back(p->ns_of(NsType::user));
        if (p->pid_for_children) held.push_back(p->pid_for_children);
    };
    if (const Process* p = index.find_process(tgid); p && std::ranges::equal(p->chains.nstgid(), leader.nstgid)) add(p);
    if (leader.ppid > 0 && leader.ppid != tgid) add(index.find_process(leader.ppid));
    return held;
}

bool PidTreeDump::elsewhere(std::int32_t pid) {
    // One readlink instead of reading status: a process of a pid namespace the index knows
    // outside the subtree is skipped. An unreadable link or an unknown namespace is read whole;
    // the index's entry for the inode is confirmed first (it may be a dead namespace's).
    const std::string rel = std::to_string(pid) + "/ns/pid";
    const auto inode = link_inode(model_.proc_fd(), rel.c_str());
    if (inode == 0 || subtree_inodes_.contains(inode)) return false;
    if (!model_.index().find_by_inode(model_.features().nsfs_dev, inode)) return false;
    const NsId id = resolve(rel, inode);
    return id != 0 && !in_subtree(id);
}

void PidTreeDump::drop_group(std::int32_t tgid) {
    std::erase_if(tasks_, [&](const DumpTask& t) { return t.tgid == tgid; });
    by_tid_.clear();
    for (std::size_t i = 0; i < tasks_.size(); ++i) by_tid_[tasks_[i].tid] = i;
    seen_.erase(tgid);
    outside_.erase(tgid);
}

NsId PidTreeDump::read_pidns(std::int32_t tgid, const DumpTask& leader) {
    const int proc = model_.proc_fd();
    const std::string base = std::to_string(tgid);
    const auto held = held_by(tgid, leader);
    // The leader's link (readable for a zombie too: it names the namespace of the pid, which
    // lives until the reap), else a live thread's (all share it).
    NsId pidns = resolve(base + "/ns/pid", link_inode(proc, (base + "/ns/pid").c_str()), held);
    if (pidns == 0)
        for (const auto tid : list_ids(proc, (base + "/task").c_str())) {
            const std::string rel = base + "/task/" + std::to_string(tid) + "/ns/pid";
            if ((pidns = resolve(rel, link_inode(proc, rel.c_str()), held)) != 0) break;
        }
    if (pidns == 0 && leader.zombie() && leader.ppid > 0) {
        // No link readable: derive it from the parent, read now (a zombie keeps its parent).
        const std::string pbase = std::to_string(leader.ppid);
        if (auto ptext = read_small(proc, (pbase + "/status").c_str()))
            if (auto parent = parse_dump_status(*ptext)) {
                const auto pheld = held_by(leader.ppid, *parent);
                parent->pidns = resolve(pbase + "/ns/pid", link_inode(proc, (pbase + "/ns/pid").c_str()), pheld);
                const std::string pfc = pbase + "/ns/pid_for_children";
                parent->pid_for_children = resolve(pfc, link_inode(proc, pfc.c_str()), pheld);
                const NsId derived = pidns_from_parent(leader, *parent);
                const auto* ns = derived ? model_.index().find_namespace(derived) : nullptr;
                if (ns && ns->meta.level + 1 == leader.nspid.size()) pidns = derived;
            }
    }
    return pidns;
}

void PidTreeDump::start_read_ahead() {
    // Not for a few processes, nor while the helper serves another dump (pre_ would only cost
    // memory); at most as many as a dump may hold (beyond, the dump fails anyway).
    if (indexed_ < kReadAheadMin || !model_.helper_thread().available()) return;
    const std::size_t n = std::min(indexed_, kMaxDumpTasks);
    pre_.resize(n);
    // Only /proc reads and the pure status parser on the helper thread, on a copy of the pids and
    // into pre_, which neither moves nor is read by this thread before take() says it is done.
    std::vector<std::int32_t> pids(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    auto read = [proc = model_.proc_fd(), pids = std::move(pids), out = pre_.data()](std::size_t k) {
        try {
            const std::string base = std::to_string(pids[k]);
            auto text = read_small(proc, (base + "/status").c_str());
            if (!text) return;
            out[k].leader = parse_dump_status(*text);
            out[k].pid_for_children = link_inode(proc, (base + "/ns/pid_for_children").c_str());
        } catch (...) {
            out[k].leader.reset();  // out of memory: read_group reads it itself
        }
    };
    ahead_.emplace(model_.helper_thread(), n, std::move(read));
    if (!ahead_->helped()) {  // no thread could be made: read as without it
        ahead_.reset();
        pre_ = {};
    }
}

Result<bool> PidTreeDump::read_group(std::int32_t tgid, bool indexed, Prefetched* pre) {
    if (!seen_.insert(tgid).second) return by_tid_.contains(tgid);
    // Paths below the /proc fd, not below an fd of /proc/TGID: two syscalls fewer per process,
    // the difference between this dump and reading each status. A pid reused between two of
    // these reads (microseconds apart) would have to go round the whole pid space meanwhile.
    const int proc = model_.proc_fd();
    const std::string base = std::to_string(tgid);
    // The leader's status and pid_for_children as read ahead (a group read again in a later
    // round is read afresh), else read now.
    std::optional<std::uint64_t> leader_pfc;
    Result<DumpTask> leader = make_error(Errc::not_found, "");
    if (pre != nullptr && pre->leader) {
        leader = std::move(*pre->leader);
        leader_pfc = pre->pid_for_children;
        pre->leader.reset();
    } else {
        auto text = read_small(proc, (base + "/status").c_str());
        if (!text) return false;  // gone
        leader = parse_dump_status(*text);
    }
    if (!leader) {
        if (leader.error().code == Errc::not_found) return false;  // released while its status was read
        return leader.error();
    }
    if (leader->tgid != tgid) return false;  // a thread id, not a group's
    if (leader->nspid.size() <= root_level_) {
        outside_.insert(tgid);
        return false;
    }
    // A process the index holds in the subtree has its namespace settled with its parent's
    // (resolve_pending); any other is read now, to know whether it belongs at all.
    NsId pidns = 0;
    if (!indexed) {
        pidns = read_pidns(tgid, *leader);
        if (!in_subtree(pidns)) {
            outside_.insert(tgid);
            return false;
        }
    }
    // The user namespace its credentials are in (for the access decision, should it exit before
    // it): the index's record of it, else its ns/user link (a zombie's too: it is its credentials').
    const auto held = held_by(tgid, *leader);
    if (const Process* p = model_.index().find_process(tgid); p && std::ranges::equal(p->chains.nstgid(), leader->nstgid))
        leader->userns = p->ns_of(NsType::user);
    else
        leader->userns = resolve(base + "/ns/user", link_inode(proc, (base + "/ns/user").c_str(), NsType::user), held,
                                 NsType::user);
    // Its tasks: the task list only when status counts more than the leader.
    std::vector<std::int32_t> tids;
    if (leader->threads <= 1 && !leader->zombie()) tids.push_back(tgid);
    else tids = list_ids(proc, (base + "/task").c_str());
    std::vector<DumpTask> group;
    for (const auto tid : tids) {
        DumpTask t;
        const std::string rel = tid == tgid ? base : base + "/task/" + std::to_string(tid);
        if (tid == tgid) {
            t = *leader;
        } else {
            auto ttext = read_small(proc, (rel + "/status").c_str());
            if (!ttext) continue;  // the thread exited meanwhile
            auto parsed = parse_dump_status(*ttext);
            if (!parsed && parsed.error().code == Errc::not_found) continue;  // released while read
            if (!parsed) return parsed.error();
            t = std::move(*parsed);
        }
        t.pidns = pidns;
        const std::string pfc = rel + "/ns/pid_for_children";
        const std::uint64_t pfc_inode =
            tid == tgid && leader_pfc ? *leader_pfc : (t.zombie() ? 0 : link_inode(proc, pfc.c_str()));
        t.pid_for_children = t.zombie() ? 0 : resolve(pfc, pfc_inode, held);
        group.push_back(std::move(t));
    }
    if (group.empty()) return false;  // every task exited meanwhile
    if (tasks_.size() + group.size() > kMaxDumpTasks)
        return make_error(Errc::too_large, "the pid namespace holds more than " + std::to_string(kMaxDumpTasks) +
                                               " tasks (threads included), the most one dump may hold; dump a pid "
                                               "namespace further down");
    if (pidns == 0) ++pending_;
    for (auto& t : group) {
        by_tid_[t.tid] = tasks_.size();
        tasks_.push_back(std::move(t));
    }
    return true;
}

void PidTreeDump::resolve_pending() {
    if (pending_ == 0) return;
    pending_ = 0;
    std::vector<std::int32_t> drop;
    for (std::size_t i = 0; i < tasks_.size(); ++i) {
        if (tasks_[i].pidns != 0 || tasks_[i].tid != tasks_[i].tgid) continue;
        // Up the parents while they have as many levels: they share the namespace.
        std::vector<std::size_t> chain;
        std::size_t cur = i;
        while (tasks_[cur].pidns == 0 && chain.size() <= tasks_.size()) {
            chain.push_back(cur);
            const auto p = by_tid_.find(tasks_[cur].ppid);
            if (p == by_tid_.end() || tasks_[cur].ppid == tasks_[cur].tgid ||
                tasks_[p->second].nspid.size() != tasks_[cur].nspid.size())
                break;
            cur = p->second;
        }
        NsId ns = tasks_[cur].pidns;
        if (ns == 0) ns = read_pidns(tasks_[chain.back()].tgid, tasks_[chain.back()]);
        for (const auto c : chain) tasks_[c].pidns = ns;
    }
    for (auto& t : tasks_) {
        if (t.tid == t.tgid) continue;
        const auto l = by_tid_.find(t.tgid);
        if (l != by_tid_.end()) t.pidns = tasks_[l->second].pidns;
    }
    for (const auto& t : tasks_)
        if (t.tid == t.tgid && !in_subtree(t.pidns)) drop.push_back(t.tgid);
    for (const auto tgid : drop) {
        const bool gone = tasks_[by_tid_.at(tgid)].pidns == 0;
        drop_group(tgid);
        seen_.insert(tgid);
        if (!gone) outside_.insert(tgid);  // gone: its children are read again with their new parent
    }
}

Result<bool> PidTreeDump::check_round() {
    resolve_pending();
    const auto dangling =
        dangling_tasks(tasks_, root_level_, [this](std::int32_t ppid) { return outside_.contains(ppid); });
    if (dangling.empty()) return true;
    if (++rounds_ > kMaxDumpRounds)
        return make_error(Errc::unstable, "the pid namespace's tasks changed while they were read, " +
                                              std::to_string(kMaxDumpRounds) + " times in a row; freeze them first (cgroup.freeze) and dump again");
    std::unordered_set<std::int32_t> again;
    for (const auto tid : dangling) {
        const auto it = by_tid_.find(tid);
        if (it == by_tid_.end()) continue;
        const DumpTask t = tasks_[it->second];
        // Its parent was not read yet (a process the index did not have), or it is gone and the
        // task was reparented since it was read: read the parent, and the task again if needed.
        auto added = read_group(t.ppid);
        if (!added) return added.error();
        if (!*added && !outside_.contains(t.ppid)) again.insert(t.tgid);
    }
    for (const auto tgid : again) {
        drop_group(tgid);
        if (auto r = read_group(tgid); !r) return r.error();
    }
    return false;
}

Result<bool> PidTreeDump::step(std::chrono::steady_clock::time_point deadline) {
    const Index& index = model_.index();
    if (phase_ == Phase::start) {
        const Namespace* root = index.find_namespace(root_);
        if (!root || root->meta.type != NsType::pid)
            return make_error(Errc::no_such_namespace, "pid namespace " + std::to_string(root_) + " left the index");
        root_level_ = root->meta.level;
        // Where to look: the index's processes in the namespace and below, then what /proc
        // lists that the index lacks (exited-unreaped processes, processes not read yet).
        for (const auto& [id, ns] : index.namespaces())
            if (ns.meta.type == NsType::pid && index.pidns_is_descendant(id, root_)) {
                queue_.insert(queue_.end(), ns.members.begin(), ns.members.end());
                subtree_inodes_.insert(ns.meta.inode);
            }
        indexed_ = queue_.size();
        start_read_ahead();  // the index's processes, while the rest is listed and read here
        auto listed = list_proc_pids(model_.proc_fd());
        if (!listed) return listed.error();
        for (const auto pid : *listed)
            if (!index.find_process(pid)) queue_.push_back(pid);
        phase_ = Phase::read;
    }
    if (phase_ == Phase::read) {
        while (pos_ < queue_.size()) {
            // The index's processes, read here or ahead on the helper thread; then the others.
            const bool indexed = pos_ < indexed_;
            Prefetched* pre = nullptr;
            if (indexed && ahead_ && pos_ < pre_.size()) {
                ahead_->take(pos_);
                pre = &pre_[pos_];
            }
            const auto tgid = queue_[pos_++];
            if (!indexed && elsewhere(tgid)) continue;
            if (auto r = read_group(tgid, indexed, pre); !r) return r.error();
            if (pos_ < queue_.size() && (pos_ & 7) == 0 && past(deadline)) return false;
        }
        ahead_.reset();
        pre_ = {};
        queue_.clear();
        phase_ = Phase::check;
    }
    while (phase_ == Phase::check) {
        auto r = check_round();
        if (!r) return r.error();
        if (*r) phase_ = Phase::done;
        else if (past(deadline)) return false;
    }
    return true;
}

std::optional<std::size_t> PidTreeDump::count_uninspectable(CallerView& view,
                                                            std::chrono::steady_clock::time_point deadline) {
    if (access_pos_ == 0 && groups_.empty()) {
        for (const auto& t : tasks_) {
            auto [it, fresh] = group_info_.try_emplace(t.tgid, GroupInfo{});
            if (fresh) groups_.push_back(t.tgid);
            ++it->second.tasks;
            it->second.live = it->second.live || !t.zombie();
        }
        std::sort(groups_.begin(), groups_.end());
        uninspectable_ = 0;
    }
    while (access_pos_ < groups_.size()) {
        const auto tgid = groups_[access_pos_++];
        const auto li = by_tid_.find(tgid);
        const DumpTask& leader = tasks_[li != by_tid_.end() ? li->second : 0];
        const auto [ntasks, live] = group_info_.at(tgid);
        auto indexed = [&]() -> const Process* {
            const Process* p = model_.index().find_process(tgid);
            return p && std::ranges::equal(p->chains.nstgid(), leader.nstgid) ? p : nullptr;  // else: another process now
        };
        const Process* p = live ? indexed() : nullptr;
        if (live && !p) {
            (void)model_.add_process(tgid);  // not indexed yet (or its pid was reused): read it now
            p = indexed();
        }
        // Decided as the kernel would now, on fresh credentials in the user namespace it is in now
        // (a group that moved to another one is read again first); a group that exited since it
        // was read is decided on what was read of it.
        bool exited = p == nullptr;
        bool ok = false;
        if (p) {
            auto now = view.inspect_now(*p);
            if (now == CallerView::Fresh::moved) {
                (void)model_.add_process(tgid);
                p = indexed();
                now = p ? view.inspect_now(*p) : CallerView::Fresh::gone;
                if (now == CallerView::Fresh::moved) now = CallerView::Fresh::denied;
            }
            exited = now == CallerView::Fresh::gone;
            ok = now == CallerView::Fresh::allowed;
        }
        if (exited) {
            // Not in the index, or gone since: decided on the credentials its status showed, in
            // the user namespace they were in when read (its ns/user link, or the index's record
            // of it); failing both, its parent's stands for it.
            Process z;
            z.tgid = tgid;
            z.uid = leader.uid;
            z.gid = leader.gid;
            z.cap_prm = leader.cap_prm;
            z.cap_eff = leader.cap_eff;
            z.dumpable = true;  // no mm: the kernel's dumpability check does not apply
            z.ns[ns_type_index(NsType::pid)] = leader.pidns;
            NsId userns = leader.userns && model_.index().find_namespace(leader.userns) ? leader.userns : 0;
            if (userns == 0) {
                const Process* parent = model_.index().find_process(leader.ppid);
                userns = parent ? parent->ns_of(NsType::user) : model_.index().root_userns();
            }
            z.ns[ns_type_index(NsType::user)] = userns;
            ok = view.may_inspect_exited(z);
        }
        if (!ok) uninspectable_ += ntasks;
        if (access_pos_ < groups_.size() && (access_pos_ & 7) == 0 && past(deadline)) return std::nullopt;
    }
    return uninspectable_;
}

}  // namespace pidns
