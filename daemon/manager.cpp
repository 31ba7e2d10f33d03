// org.pidns.Manager1 handlers: parse -> queue a call; the call identifies the caller, asks the model (through its view), replies.
#include "manager.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <span>
#include <tuple>

#include "clients.h"
#include "engine_state.h"
#include "escape.h"
#include "errors.h"
#include "machines.h"
#include "model.h"
#include "pid_dump.h"
#include "polkit.h"
#include "signals.h"
#include "view.h"

#ifndef PIDNSD_VERSION
#define PIDNSD_VERSION "unknown"
#endif

namespace pidnsd {
namespace {

namespace key = pidns::bus::key;
namespace stat = pidns::bus::stat;
namespace detail = pidns::bus::detail;

Manager::NamespaceTuple to_tuple(const pidns::NamespaceEntry& e) {
    return {e.id, e.inode, std::string(pidns::ns_type_name(e.type)), e.parent, e.owner,
            e.level, e.init_pid, e.nprocs, e.owner_uid};
}

bool past(Clock::time_point deadline) { return Clock::now() >= deadline; }
// The deadline as looked at after step `pos` of a loop: after every step, or, when each step is
// cheap (O(1), no read), after every 16th.
bool past_after(std::size_t pos, bool cheap, Clock::time_point deadline) {
    return (!cheap || (pos & 15) == 0) && past(deadline);
}

using Description = Manager::Description;

// Text some user may have written (a comm, a cgroup or unit name, a mount path, a passwd entry,
// machined's names): the one place it is put on the bus, escaped as the XML says (lib/escape.h)
// within the reply's budget. Left out when empty.
void put_text(Description& d, const char* key, std::string_view raw, pidns::TextBudget& budget) {
    if (!raw.empty()) d[key] = sdbus::Variant(budget.escape(raw));
}

void put_labels(Description& d, pidns::CallerView& v, const pidns::Labels& l, pidns::TextBudget& budget) {
    put_text(d, key::kCommand, l.command, budget);
    put_text(d, key::kCGroup, l.cgroup, budget);
    put_text(d, key::kUnit, l.unit, budget);
    put_text(d, key::kSlice, l.slice, budget);
    // Who could have named them, in the caller's user namespace: absent when only root could.
    if (l.unit_owner) d[key::kUnitOwnerUid] = sdbus::Variant(v.caller_uid(*l.unit_owner));
    if (l.container) {
        d[key::kContainerEngine] = sdbus::Variant(std::string(pidns::container_engine_name(l.container->engine)));
        put_text(d, key::kContainerId, l.container->id, budget);
        put_text(d, key::kContainerName, l.container->name, budget);
        put_text(d, key::kPodUid, l.container->pod_uid, budget);
        put_text(d, key::kPodId, l.container->pod_id, budget);
        put_text(d, key::kPodName, l.container->pod_name, budget);
        put_text(d, key::kPodNamespace, l.container->pod_namespace, budget);
        if (l.container_owner) d[key::kContainerOwnerUid] = sdbus::Variant(v.caller_uid(*l.container_owner));
    }
}

// The container of a process's cgroup as the engines' own state names it (their names, pods,
// and the containers no cgroup pattern names: lib/engine_state.h); the patterns alone without it.
// The container of cgroup `path` as the engines' own state names it (their names and pods, and
// the containers no cgroup pattern finds: lib/engine_state.h), or `pattern` (container_of's)
// as it is. Root's state names only a container whose cgroup only root could have named: a user
// who may make cgroups (a delegated subtree) could name one after a real container's id and
// borrow that container's name. `pattern_owner`: who could have named the pattern's cgroup.
std::optional<pidns::ContainerLabel> named_container(pidns::EngineState* engines, const std::string& path,
                                                     std::optional<pidns::ContainerLabel> pattern,
                                                     std::optional<std::uint32_t> pattern_owner) {
    if (!engines || path.empty() || (pattern && pattern_owner)) return pattern;
    auto named = engines->label(path);
    if (!named) return pattern;
    if ((!pattern || named->depth != pattern->depth) &&
        pidns::cgroup_label_owner(pidns::systemd_hierarchy_fd(), path, named->depth))
        return pattern;  // a bare id or ctr's /NAMESPACE/ID in a cgroup a user could have named
    return named;
}

// A process's labels with its container named from the engines' state (named_container).
void name_container(pidns::EngineState* engines, pidns::Labels& l) {
    auto named = named_container(engines, l.cgroup, l.container, l.container_owner);
    if (named && (!l.container || named->depth != l.container->depth)) l.container_owner.reset();  // only root's
    l.container = std::move(named);
}

// The uid keys: Uid in the caller's user namespace, User (its name in /etc/passwd) only for a
// caller in pidnsd's user namespace, where host names mean something.
void put_user(Description& d, pidns::CallerView& v, pidns::UserNames& users, std::uint32_t host_uid,
              pidns::TextBudget& budget) {
    const auto uid = v.caller_uid(host_uid);
    d[key::kUid] = sdbus::Variant(uid);
    if (v.in_root_userns())
        if (auto name = users.name_of(host_uid)) put_text(d, key::kUser, *name, budget);
}

// Holders lists at most this many bind mounts (with their paths) per namespace; HoldersOmitted
// counts the others: a user may bind-mount one namespace as often as its mount limit allows.
constexpr std::size_t kMaxMountHolders = 64;

std::vector<uint32_t> to_u32(const std::vector<std::uint32_t>& v) { return {v.begin(), v.end()}; }

// Calls `f(cgroup path)` ("" if unreadable) for each member of the namespace the caller may
// inspect besides its representative, until `f` returns false or kMaxMemberReads were read
// (beyond, the representative speaks for them).
constexpr std::size_t kMaxMemberReads = 256;
template <class F>
void each_member_cgroup(pidns::CallerView& v, pidns::Model& model, const pidns::NamespaceEntry& e, F&& f) {
    std::size_t reads = 0;
    // False: stop.
    auto visit = [&](std::int32_t tgid) {
        if (tgid == e.rep_tgid) return true;
        const auto* p = model.index().find_process(tgid);
        if (!p || p->ns[pidns::ns_type_index(e.type)] != e.id || !v.may_inspect(*p)) return true;
        if (++reads > kMaxMemberReads) return false;
        return f(pidns::read_cgroup_path(model.proc_fd(), tgid));
    };
    if (v.sees_everything()) {
        // may_inspect asks the model nothing for such a caller, so the index does not change
        // under the walk: no copy of the member list, and at most kMaxMemberReads + 1 visited.
        if (const auto* ns = model.index().find_namespace(e.id))
            for (const auto tgid : ns->members)
                if (!visit(tgid)) return;
        return;
    }
    for (const auto tgid : v.members_of(e.id))
        if (!visit(tgid)) return;
}

// Whether every member of the namespace the caller may inspect runs at or below cgroup `within`.
bool all_members_within(pidns::CallerView& v, pidns::Model& model, const pidns::NamespaceEntry& e,
                        const std::string& within) {
    bool all = true;
    each_member_cgroup(v, model, e, [&](const std::string& path) {
        all = path.empty() || pidns::cgroup_within(path, within);
        return all;
    });
    return all;
}

// The containers with members in the namespace other than its own (at cgroup `own`, "" when its
// representative runs in none): who joined it (--pid/--network container:X, a pod's members, a
// host namespace's --pid=host containers). At most kMaxSharers, each once.
constexpr std::size_t kMaxSharers = 64;
// (engine, id, name, who could have named its cgroup in the caller's user namespace or
// kNamedByRoot), as ContainerSharers gives it.
using Sharer = pidns::bus::WireSharer;
constexpr std::uint32_t kNamedByRoot = pidns::bus::kNoUid;
std::vector<Sharer> sharers_of(pidns::CallerView& v, pidns::Model& model, pidns::EngineState* engines,
                               const pidns::NamespaceEntry& e, const std::string& own, pidns::TextBudget& budget) {
    std::vector<Sharer> out;
    std::vector<std::string> seen;  // container cgroups already looked at
    each_member_cgroup(v, model, e, [&](const std::string& path) {
        if (path.empty() || (!own.empty() && pidns::cgroup_within(path, own))) return true;
        for (const auto& s : seen)
            if (pidns::cgroup_within(path, s)) return true;
        auto pattern = pidns::container_of(path);
        const auto owner = pattern ? pidns::cgroup_label_owner(pidns::systemd_hierarchy_fd(), path, pattern->depth)
                                   : std::nullopt;
        const auto c = named_container(engines, path, pattern, owner);
        if (!c) return true;
        // The pattern's owner, unless the engines' state named another container (only root's).
        const auto named_by = pattern && c->depth == pattern->depth && owner ? v.caller_uid(*owner) : kNamedByRoot;
        seen.push_back(pidns::cgroup_prefix(path, c->depth));
        // Escaped as put_labels' (an lxc or nspawn id and name are cgroup names, as CGroup is).
        out.emplace_back(std::string(pidns::container_engine_name(c->engine)), budget.escape(c->id), budget.escape(c->name),
                         named_by);
        return out.size() < kMaxSharers;
    });
    return out;
}

// DescribeNamespace's keys for one built entry: GetNamespace's, then its representative's labels
// (read now, or read ahead during this call when `labels` is given; left out when it exited
// since), its names and holders.
Description describe_entry(pidns::CallerView& v, pidns::UserNames& users, const Machines* machines,
                           pidns::EngineState* engines, pidns::Model& model, const pidns::NamespaceEntry& e,
                           pidns::Result<pidns::Labels>* labels_read, pidns::TextBudget& budget) {
    Description d;
    d[key::kId] = sdbus::Variant(e.id);
    d[key::kInode] = sdbus::Variant(e.inode);
    d[key::kType] = sdbus::Variant(std::string(pidns::ns_type_name(e.type)));
    d[key::kParent] = sdbus::Variant(e.parent);
    d[key::kOwner] = sdbus::Variant(e.owner);
    d[key::kLevel] = sdbus::Variant(e.level);
    d[key::kInitPid] = sdbus::Variant(e.init_pid);
    d[key::kProcesses] = sdbus::Variant(e.nprocs);
    d[key::kOwnerUid] = sdbus::Variant(e.owner_uid);
    std::optional<pidns::Labels> labels;
    if (!labels_read)
        labels = v.labels_of(e);
    else if (*labels_read)
        labels = std::move(**labels_read);
    if (labels) {
        if (const auto pid = v.listed_pid(e.rep_tgid)) d[key::kRepresentativePid] = sdbus::Variant(pid);
        // Its container is its representative's: a pid namespace's init, else its oldest member,
        // the one that made it. The other containers with members in it joined it.
        name_container(engines, *labels);
        const auto own = labels->container ? pidns::cgroup_prefix(labels->cgroup, labels->container->depth) : std::string();
        if (auto sharers = sharers_of(v, model, engines, e, own, budget); !sharers.empty())
            d[key::kContainerSharers] = sdbus::Variant(sharers);
        put_labels(d, v, *labels, budget);
        // machined's machine of the representative's unit, when every member runs in that unit.
        if (const auto* name = machines ? machines->name_of_unit(labels->unit) : nullptr)
            if (const auto unit_cgroup = pidns::cgroup_upto(labels->cgroup, labels->unit);
                !unit_cgroup.empty() && all_members_within(v, model, e, unit_cgroup))
                put_text(d, key::kMachine, *name, budget);
        if (const auto* p = model.index().find_process(e.rep_tgid)) put_user(d, v, users, p->uid[1], budget);
    }
    if (e.type == pidns::NsType::net)
        if (auto names = v.netns_names(e.id); !names.empty()) {
            for (auto& name : names) name = budget.escape(name);
            d[key::kNetnsNames] = sdbus::Variant(names);
        }
    std::vector<pidns::bus::WireHolder> holders;
    std::size_t mounts = 0;
    std::uint32_t omitted = 0;
    for (auto& [kind, path] : v.holders_of(e.id)) {
        if (!path.empty() && ++mounts > kMaxMountHolders) {
            ++omitted;
            continue;
        }
        holders.emplace_back(std::move(kind), budget.escape(path));
    }
    d[key::kHolders] = sdbus::Variant(holders);
    if (omitted != 0) d[key::kHoldersOmitted] = sdbus::Variant(omitted);
    return d;
}

// What one method computes, possibly in pieces.
template <class... R>
class Work {
public:
    virtual ~Work() = default;
    // The answer once complete; nothing when `deadline` came first (run is called again later,
    // with a new view of the same caller). Throws sdbus::Error.
    virtual std::optional<std::tuple<R...>> run(pidns::CallerView& view, Client& client, Clock::time_point deadline) = 0;
    // Start over: polkit widened what the caller may see.
    virtual void restart() {}
};

// A method computed at once (its cost does not grow with what the caller sends).
template <class... R>
class OneShot final : public Work<R...> {
public:
    using Fn = std::function<std::tuple<R...>(pidns::CallerView&, Client&)>;
    explicit OneShot(Fn fn) : fn_(std::move(fn)) {}
    std::optional<std::tuple<R...>> run(pidns::CallerView& v, Client& c, Clock::time_point) override { return fn_(v, c); }

private:
    Fn fn_;
};

struct CallEnv {
    pidns::Model& model;
    Clients& clients;
    Polkit& polkit;
};

// A queued method call: runs its Work in slices; when the kernel's rule refused the caller
// something, asks polkit (parking the call meanwhile) and, if authorized, computes again widened.
template <class... R>
class MethodCall final : public Call {
public:
    MethodCall(const char* method, sdbus::Result<R...>&& result, std::unique_ptr<Work<R...>> work, CallEnv env,
               Polkit::Details details, bool names_target, std::size_t pids = 0, bool dump = false)
        : Call(method, pids, dump),
          result_(std::move(result)),
          work_(std::move(work)),
          env_(env),
          details_(std::move(details)),
          names_target_(names_target) {
        details_[detail::kMethod] = method;
    }

    Step step(Client& c, Clock::time_point deadline) override {
        if (final_) {
            reply(*final_);
            return Step::done;
        }
        Outcome o;
        try {
            guarded(method(), [&] {
                pidns::CallerView view(env_.model, *c.caller);
                if (widened_) view.widen();
                view.set_translate_scratch(&scratch_);
                try {
                    o.value = work_->run(view, c, deadline);
                } catch (...) {
                    absorb(view);
                    throw;
                }
                absorb(view);
            });
        } catch (const sdbus::Error& e) {
            o.error = e;
        }
        if (!o.value && !o.error) return Step::more;
        if (widened_ || !denied_ || !env_.polkit.enabled()) {
            reply(o);
            return Step::done;
        }
        first_ = std::move(o);
        // Ask polkit; its answer may come at once (cached) or later (then the call is parked).
        struct Answer {
            bool in_step = true;
            std::optional<bool> now;
        };
        auto answer = std::make_shared<Answer>();
        env_.polkit.check(Polkit::Asker{c.name, c.principal.uid, c.uid, c.caller ? c.caller->pid : 0}, pidns::bus::kInspectAction,
                          polkit_details(),
                          [answer, clients = &env_.clients, name = c.name, call = id](bool ok) {
                              if (answer->in_step)
                                  answer->now = ok;
                              else
                                  clients->resume(name, call, ok);
                          });
        answer->in_step = false;
        if (!answer->now) return Step::parked;
        resume(*answer->now);
        if (final_) {
            reply(*final_);
            return Step::done;
        }
        return Step::more;
    }

    void resume(bool authorized) override {
        if (authorized) {
            widened_ = true;
            denied_ = false;
            scratch_ = pidns::TranslateScratch{};
            work_->restart();
        } else {
            final_ = std::move(first_);
        }
    }

    void fail(const sdbus::Error& error) noexcept override {
        Outcome o;
        o.error = error;
        reply(o);
    }

private:
    struct Outcome {
        std::optional<std::tuple<R...>> value;
        std::optional<sdbus::Error> error;
    };

    void absorb(const pidns::CallerView& view) {
        denied_ = denied_ || view.denied_any();
        if (!denial_ && view.first_denial()) denial_ = view.first_denial();
    }

    // What polkit is asked about, so that rules can name it: the method, the namespaces it
    // names, and for a single target its pid (in pidnsd's pid namespace), uid and pid namespace.
    Polkit::Details polkit_details() const {
        auto d = details_;
        if (names_target_ && denial_) {
            d[detail::kPid] = std::to_string(denial_->pid);
            d[detail::kUid] = std::to_string(denial_->uid);
            d[detail::kNamespace] = std::to_string(denial_->pidns);
        }
        return d;
    }

    void reply(const Outcome& o) noexcept {
        try {
            if (o.error)
                result_.returnError(*o.error);
            else
                std::apply([&](const auto&... v) { result_.returnResults(v...); }, *o.value);
        } catch (const std::exception& e) {
            spdlog::debug("could not send a reply: {}", e.what());
        }
    }

    sdbus::Result<R...> result_;
    std::unique_ptr<Work<R...>> work_;
    CallEnv env_;
    Polkit::Details details_;
    bool names_target_;
    pidns::TranslateScratch scratch_;
    bool widened_ = false;
    bool denied_ = false;
    std::optional<pidns::Denial> denial_;
    std::optional<Outcome> first_;  // the answer on the kernel's rule while polkit is asked
    std::optional<Outcome> final_;  // to be sent at the next step
};

// TranslatePids: a slice of pids at a time.
class TranslateMany final : public Work<std::vector<uint32_t>> {
public:
    TranslateMany(std::vector<uint32_t> pids, uint64_t from, uint64_t to) : pids_(std::move(pids)), from_(from), to_(to) {}
    std::optional<std::tuple<std::vector<uint32_t>>> run(pidns::CallerView& v, Client&, Clock::time_point deadline) override {
        if (!resolved_) {
            f_ = unwrap(v.resolve_pidns(from_));
            t_ = unwrap(v.resolve_pidns(to_));
            out_.reserve(pids_.size());
            resolved_ = true;
        }
        while (pos_ < pids_.size()) {
            pos_ += unwrap(v.translate_some(std::span<const uint32_t>(pids_).subspan(pos_), f_, t_, out_, deadline));
            if (pos_ < pids_.size() && past(deadline)) return std::nullopt;
        }
        return std::make_tuple(std::move(out_));
    }
    void restart() override {
        resolved_ = false;
        out_.clear();
        pos_ = 0;
    }

private:
    std::vector<uint32_t> pids_;
    uint64_t from_, to_;
    bool resolved_ = false;
    pidns::NsId f_ = 0, t_ = 0;
    std::vector<uint32_t> out_;
    std::size_t pos_ = 0;
};

// ListNamespaces and GetNamespace: entries built namespace by namespace, member by member.
class Entries final {
public:
    // One step over `ids`; true when every entry is built (or skipped as invisible or gone).
    bool run(pidns::CallerView& v, Clock::time_point deadline) {
        // For a caller who sees everything an entry is O(1) (the index's per-namespace summary).
        const bool cheap = v.sees_everything();
        while (pos_ < ids_.size()) {
            if (!in_entry_) {
                if (!v.can_see(ids_[pos_])) {
                    ++pos_;
                    if (past_after(pos_, cheap, deadline)) return false;
                    continue;
                }
                build_ = pidns::CallerView::EntryBuild{};
                build_.id = ids_[pos_];
                in_entry_ = true;
            }
            pidns::NamespaceEntry e;
            const auto r = v.build_entry(build_, e, deadline);
            if (r == pidns::CallerView::Built::more) return false;
            if (r == pidns::CallerView::Built::done) entries_.push_back(e);
            in_entry_ = false;
            ++pos_;
            if (pos_ < ids_.size() && past_after(pos_, cheap, deadline)) return false;
        }
        return true;
    }
    void start(std::vector<pidns::NsId> ids) {
        ids_ = std::move(ids);
        entries_.clear();
        pos_ = 0;
        in_entry_ = false;
    }
    std::vector<pidns::NamespaceEntry>& entries() { return entries_; }

private:
    std::vector<pidns::NsId> ids_;
    std::size_t pos_ = 0;
    bool in_entry_ = false;
    pidns::CallerView::EntryBuild build_;
    std::vector<pidns::NamespaceEntry> entries_;
};

// ListNamespaces and DescribeNamespaces: the entries of the namespaces of a type (or all), sorted,
// each made into the answer by `make` (a tuple, or a description that reads /proc), a slice at a time.
template <class T>
class ListWork final : public Work<std::vector<T>> {
public:
    // `labels`: the entry's representative's, read ahead (may be moved from); nullptr: not read.
    using Make = std::function<T(pidns::CallerView&, const pidns::NamespaceEntry&, pidns::Result<pidns::Labels>* labels)>;
    // `cheap`: `make` reads nothing (the clock is then read every 16 answers, not after each).
    // `labels_from`: read the representatives' labels ahead on its helper thread (DescribeNamespaces).
    ListWork(std::string type, Make make, bool cheap, pidns::Model* labels_from = nullptr)
        : type_(std::move(type)), make_(std::move(make)), cheap_(cheap), labels_from_(labels_from) {}
    std::optional<std::tuple<std::vector<T>>> run(pidns::CallerView& v, Client& c, Clock::time_point deadline) override {
        if (!started_) {
            const auto only = unwrap(pidns::parse_type_filter(type_));
            entries_.start(v.namespaces_of_type(only));
            out_.clear();
            pos_ = 0;
            started_ = true;
            sorted_ = false;
        }
        if (!entries_.run(v, deadline)) return std::nullopt;
        auto& list = entries_.entries();
        if (!sorted_) {
            pidns::sort_entries(list);
            out_.reserve(list.size());
            sorted_ = true;
            start_read_ahead(list);
        }
        while (pos_ < list.size()) {
            pidns::Result<pidns::Labels>* labels = nullptr;
            if (ahead_) {
                ahead_->take(pos_);
                if (labels_[pos_]) labels = &*labels_[pos_];
            }
            out_.push_back(make_(v, list[pos_], labels));
            SignalFanout::told(c, list[pos_].id);
            ++pos_;
            if (pos_ < list.size() && past_after(pos_, cheap_, deadline)) return std::nullopt;
        }
        ahead_.reset();
        labels_ = {};
        return std::make_tuple(std::move(out_));
    }
    void restart() override {
        started_ = false;
        ahead_.reset();
        labels_ = {};
    }

private:
    // Not for a few entries, nor while the helper thread serves another call.
    static constexpr std::size_t kReadAheadMin = 16;
    void start_read_ahead(const std::vector<pidns::NamespaceEntry>& list) {
        if (!labels_from_ || list.size() < kReadAheadMin || !labels_from_->helper_thread().available()) return;
        labels_.assign(list.size(), std::nullopt);
        // Only the /proc reads of read_labels on the helper thread, on a copy of the
        // representatives and into labels_, which neither moves nor is read here before take().
        std::vector<std::pair<std::int32_t, std::uint64_t>> reps;
        reps.reserve(list.size());
        for (const auto& e : list) reps.emplace_back(e.rep_tgid, e.rep_start);
        auto read = [proc = labels_from_->proc_fd(), reps = std::move(reps), out = labels_.data()](std::size_t k) {
            if (reps[k].first == 0) return;  // none it may inspect: make_ says so
            try {
                out[k] = pidns::read_labels(proc, reps[k].first, reps[k].second);
            } catch (...) {
                out[k].reset();  // out of memory: make_ reads them itself
            }
        };
        ahead_.emplace(labels_from_->helper_thread(), list.size(), std::move(read));
        if (!ahead_->helped()) {  // no thread could be made: read as without it
            ahead_.reset();
            labels_ = {};
        }
    }

    std::string type_;
    Make make_;
    bool cheap_;
    pidns::Model* labels_from_;
    bool started_ = false, sorted_ = false;
    Entries entries_;
    std::vector<T> out_;
    std::size_t pos_ = 0;
    std::vector<std::optional<pidns::Result<pidns::Labels>>> labels_;  // list's, as read ahead; sized once
    std::optional<pidns::ReadAhead> ahead_;                            // after labels_: stopped before it goes
};

// GetNamespace and DescribeNamespace: one namespace reference, its entry made into the answer.
template <class T>
class OneWork final : public Work<T> {
public:
    using Make = std::function<T(pidns::CallerView&, const pidns::NamespaceEntry&)>;
    OneWork(uint64_t ref, Make make) : ref_(ref), make_(std::move(make)) {}
    std::optional<std::tuple<T>> run(pidns::CallerView& v, Client& c, Clock::time_point deadline) override {
        if (!started_) {
            entries_.start({unwrap(v.resolve(ref_))});
            started_ = true;
        }
        if (!entries_.run(v, deadline)) return std::nullopt;
        if (entries_.entries().empty())
            throw to_dbus_error(pidns::make_error(pidns::Errc::no_such_namespace,
                                                  "namespace " + std::to_string(ref_) +
                                                      " left the index while being described; list the namespaces again"));
        const auto& e = entries_.entries().front();
        SignalFanout::told(c, e.id);
        return std::make_tuple(make_(v, e));
    }
    void restart() override { started_ = false; }

private:
    uint64_t ref_;
    Make make_;
    bool started_ = false;
    Entries entries_;
};

class ListProcessesWork final : public Work<std::vector<uint32_t>> {
public:
    explicit ListProcessesWork(uint64_t ref) : ref_(ref) {}
    std::optional<std::tuple<std::vector<uint32_t>>> run(pidns::CallerView& v, Client&, Clock::time_point deadline) override {
        if (!started_) {
            const auto id = unwrap(v.resolve(ref_));
            members_ = v.members_of(id);
            out_.clear();
            pos_ = 0;
            started_ = true;
        }
        while (pos_ < members_.size()) {
            if (const auto pid = v.listed_pid(members_[pos_++])) out_.push_back(pid);
            if ((pos_ & 15) == 0 && past(deadline)) return std::nullopt;
        }
        std::sort(out_.begin(), out_.end());
        return std::make_tuple(std::move(out_));
    }
    void restart() override { started_ = false; }

private:
    uint64_t ref_;
    bool started_ = false;
    std::vector<std::int32_t> members_;
    std::size_t pos_ = 0;
    std::vector<uint32_t> out_;
};

// DumpPidTree: the subtree read from /proc in slices (lib/pid_dump.h), then whether the caller
// may inspect every task of it; the answer with the event sequence it was read at.
class DumpTree {
public:
    using Answer = std::pair<uint64_t, std::vector<Manager::DumpTuple>>;
    DumpTree(pidns::Model& model, uint64_t ref, std::function<std::uint64_t()> sequence)
        : model_(model), ref_(ref), sequence_(std::move(sequence)) {}

    std::optional<Answer> run(pidns::CallerView& v, Client& c, Clock::time_point deadline) {
        if (!dump_) dump_ = std::make_unique<pidns::PidTreeDump>(model_, unwrap(v.resolve_pidns(ref_)));
        if (!read_) {
            if (!unwrap(dump_->step(deadline))) return std::nullopt;
            read_ = true;
        }
        const auto denied = dump_->count_uninspectable(v, deadline);
        if (!denied) return std::nullopt;
        if (*denied > 0)
            throw dump_refused(*denied, dump_->tasks().size(), ref_);
        const auto* own = model_.index().find_namespace(c.caller->pidns);
        const std::size_t caller_level = own ? own->meta.level : 0;
        Answer a;
        a.first = v.sees_everything() && sequence_ ? sequence_() : 0;
        const auto entries = dump_->entries(caller_level);
        a.second.reserve(entries.size());
        for (const auto& e : entries)
            a.second.emplace_back(e.rpid, e.depth, e.vpids, e.vtgid, e.vppid, e.vpgid, e.vsid, e.pidns,
                                  e.pid_for_children, e.flags);
        return a;
    }
    void restart() {
        dump_.reset();
        read_ = false;
    }

private:
    pidns::Model& model_;
    uint64_t ref_;
    std::function<std::uint64_t()> sequence_;
    std::unique_ptr<pidns::PidTreeDump> dump_;  // not movable (its read-ahead runs on another thread)
    bool read_ = false;
};

class DumpWork final : public Work<std::vector<Manager::DumpTuple>> {
public:
    explicit DumpWork(DumpTree tree) : tree_(std::move(tree)) {}
    std::optional<std::tuple<std::vector<Manager::DumpTuple>>> run(pidns::CallerView& v, Client& c,
                                                                   Clock::time_point deadline) override {
        auto a = tree_.run(v, c, deadline);
        if (!a) return std::nullopt;
        return std::make_tuple(std::move(a->second));
    }
    void restart() override { tree_.restart(); }

private:
    DumpTree tree_;
};

class DumpSequenceWork final : public Work<uint64_t, std::vector<Manager::DumpTuple>> {
public:
    explicit DumpSequenceWork(DumpTree tree) : tree_(std::move(tree)) {}
    std::optional<std::tuple<uint64_t, std::vector<Manager::DumpTuple>>> run(pidns::CallerView& v, Client& c,
                                                                             Clock::time_point deadline) override {
        auto a = tree_.run(v, c, deadline);
        if (!a) return std::nullopt;
        return std::make_tuple(a->first, std::move(a->second));
    }
    void restart() override { tree_.restart(); }

private:
    DumpTree tree_;
};

}  // namespace

Manager::Manager(sdbus::IConnection& conn, pidns::Model& model, Clients& clients, Polkit& polkit,
                 const std::string& event_source)
    : AdaptorInterfaces(conn, pidns::bus::kObjectPath),
      model_(model),
      clients_(clients),
      polkit_(polkit),
      event_source_(event_source) {
    property_call_watch_ = conn.addMatch(
        std::string("type='method_call',interface='") + pidns::bus::kPropertiesInterface + "',path='" +
            pidns::bus::kObjectPath + "'",
        [this](sdbus::Message& m) { property_sender_ = m.getSender(); });
    registerAdaptor();
}

Manager::~Manager() { unregisterAdaptor(); }

void Manager::queue(std::unique_ptr<Call> call) {
    const std::string from = sender();
    const sdbus::Message* msg = getObject().getCurrentlyProcessedMessage();
    auto refused = clients_.submit(from, std::move(call));
    if (!refused || msg == nullptr) return;
    DeferredError reply(*msg, *refused);
    if (refused->getName() == kErrorLimitsExceeded)
        clients_.refuse_later(from, std::move(reply));
    else
        reply.send();
}

std::string Manager::sender() const {
    const sdbus::Message* msg = getObject().getCurrentlyProcessedMessage();
    return msg != nullptr ? msg->getSender() : std::string();
}

namespace {
template <class... R>
std::unique_ptr<Call> make_call(const char* method, sdbus::Result<R...>&& result, std::unique_ptr<Work<R...>> work,
                                CallEnv env, Polkit::Details details = {}, bool names_target = false,
                                std::size_t pids = 0, bool dump = false) {
    return std::make_unique<MethodCall<R...>>(method, std::move(result), std::move(work), env, std::move(details),
                                              names_target, pids, dump);
}

template <class... R>
std::unique_ptr<Work<R...>> one_shot(typename OneShot<R...>::Fn fn) {
    return std::make_unique<OneShot<R...>>(std::move(fn));
}
}  // namespace

void Manager::TranslatePid(sdbus::Result<uint32_t>&& result, uint32_t pid, uint64_t from, uint64_t to) {
    queue(make_call("TranslatePid", std::move(result),
                                        one_shot<uint32_t>([=](pidns::CallerView& v, Client&) {
                                            return std::make_tuple(unwrap(v.translate(pid, from, to)));
                                        }),
                                        CallEnv{model_, clients_, polkit_},
                                        {{detail::kFrom, std::to_string(from)}, {detail::kTo, std::to_string(to)}}, true));
}

void Manager::TranslatePids(sdbus::Result<std::vector<uint32_t>>&& result, std::vector<uint32_t> pids, uint64_t from,
                            uint64_t to) {
    if (auto s = pidns::check_batch(pids.size()); !s) {
        result.returnError(to_dbus_error(s.error()));
        return;
    }
    const std::size_t n = pids.size();
    queue(make_call("TranslatePids", std::move(result),
                                        std::unique_ptr<Work<std::vector<uint32_t>>>(
                                            std::make_unique<TranslateMany>(std::move(pids), from, to)),
                                        CallEnv{model_, clients_, polkit_},
                                        {{detail::kFrom, std::to_string(from)}, {detail::kTo, std::to_string(to)}}, false, n));
}

void Manager::ListNamespaces(sdbus::Result<std::vector<NamespaceTuple>>&& result, std::string type) {
    Polkit::Details details{{detail::kType, type}};
    queue(make_call("ListNamespaces", std::move(result),
                    std::unique_ptr<Work<std::vector<NamespaceTuple>>>(std::make_unique<ListWork<NamespaceTuple>>(
                        std::move(type),
                        [](pidns::CallerView&, const pidns::NamespaceEntry& e, pidns::Result<pidns::Labels>*) {
                            return to_tuple(e);
                        },
                        true)),
                    CallEnv{model_, clients_, polkit_}, std::move(details)));
}

void Manager::GetNamespace(sdbus::Result<NamespaceTuple>&& result, uint64_t ns) {
    queue(make_call("GetNamespace", std::move(result),
                    std::unique_ptr<Work<NamespaceTuple>>(std::make_unique<OneWork<NamespaceTuple>>(
                        ns, [](pidns::CallerView&, const pidns::NamespaceEntry& e) { return to_tuple(e); })),
                    CallEnv{model_, clients_, polkit_}, {{detail::kNamespace, std::to_string(ns)}}));
}

void Manager::GetProcess(sdbus::Result<std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>,
                                       std::vector<uint32_t>, std::map<std::string, uint64_t>>&& result,
                         uint32_t pid) {
    using R = std::tuple<std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>,
                         std::map<std::string, uint64_t>>;
    auto work = one_shot<std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>,
                         std::map<std::string, uint64_t>>([pid](pidns::CallerView& v, Client&) -> R {
        auto e = unwrap(v.get_process(pid));
        std::map<std::string, uint64_t> ns;
        for (auto t : pidns::kAllNsTypes) ns.emplace(pidns::ns_type_name(t), e.ns[pidns::ns_type_index(t)]);
        return {std::move(e.nspid), std::move(e.nstgid), std::move(e.nspgid), std::move(e.nssid), std::move(ns)};
    });
    queue(make_call("GetProcess", std::move(result), std::move(work),
                                        CallEnv{model_, clients_, polkit_}, {}, true));
}

void Manager::ListProcesses(sdbus::Result<std::vector<uint32_t>>&& result, uint64_t ns) {
    queue(make_call("ListProcesses", std::move(result),
                                        std::unique_ptr<Work<std::vector<uint32_t>>>(std::make_unique<ListProcessesWork>(ns)),
                                        CallEnv{model_, clients_, polkit_}, {{detail::kNamespace, std::to_string(ns)}}));
}

Manager::Description Manager::describe(pidns::CallerView& v, const pidns::NamespaceEntry& e,
                                       pidns::Result<pidns::Labels>* labels, pidns::TextBudget& budget) {
    return describe_entry(v, users_, machines_, engines_, model_, e, labels, budget);
}

void Manager::DescribeNamespace(sdbus::Result<Description>&& result, uint64_t ns) {
    queue(make_call("DescribeNamespace", std::move(result),
                    std::unique_ptr<Work<Description>>(std::make_unique<OneWork<Description>>(
                        ns, [this](pidns::CallerView& v, const pidns::NamespaceEntry& e) {
                            pidns::TextBudget budget;
                            return describe(v, e, nullptr, budget);
                        })),
                    CallEnv{model_, clients_, polkit_}, {{detail::kNamespace, std::to_string(ns)}}));
}

void Manager::DescribeNamespaces(sdbus::Result<std::vector<Description>>&& result, std::string type) {
    Polkit::Details details{{detail::kType, type}};
    auto budget = std::make_shared<pidns::TextBudget>();  // the whole reply's
    queue(make_call("DescribeNamespaces", std::move(result),
                    std::unique_ptr<Work<std::vector<Description>>>(std::make_unique<ListWork<Description>>(
                        std::move(type),
                        [this, budget](pidns::CallerView& v, const pidns::NamespaceEntry& e,
                                       pidns::Result<pidns::Labels>* labels) { return describe(v, e, labels, *budget); },
                        false, &model_)),
                    CallEnv{model_, clients_, polkit_}, std::move(details)));
}

void Manager::DescribeProcess(sdbus::Result<Description>&& result, uint32_t pid) {
    auto work = one_shot<Description>([this, pid](pidns::CallerView& v, Client&) {
        auto p = unwrap(v.describe_process(pid));
        Description d;
        d[key::kPid] = sdbus::Variant(pid);
        d[key::kNSpid] = sdbus::Variant(to_u32(p.entry.nspid));
        d[key::kNStgid] = sdbus::Variant(to_u32(p.entry.nstgid));
        d[key::kNSpgid] = sdbus::Variant(to_u32(p.entry.nspgid));
        d[key::kNSsid] = sdbus::Variant(to_u32(p.entry.nssid));
        std::map<std::string, uint64_t> ns;
        for (auto t : pidns::kAllNsTypes) ns.emplace(pidns::ns_type_name(t), p.entry.ns[pidns::ns_type_index(t)]);
        d[key::kNamespaces] = sdbus::Variant(ns);
        d[key::kThreads] = sdbus::Variant(to_u32(p.threads));
        pidns::TextBudget budget;
        put_user(d, v, users_, p.host_uid, budget);
        name_container(engines_, p.labels);
        put_labels(d, v, p.labels, budget);
        if (const auto* name = machines_ ? machines_->name_of_unit(p.labels.unit) : nullptr)
            put_text(d, key::kMachine, *name, budget);
        return std::make_tuple(std::move(d));
    });
    queue(make_call("DescribeProcess", std::move(result), std::move(work), CallEnv{model_, clients_, polkit_}, {}, true));
}

void Manager::DumpPidTree(sdbus::Result<std::vector<DumpTuple>>&& result, uint64_t ns) {
    queue(make_call("DumpPidTree", std::move(result),
                    std::unique_ptr<Work<std::vector<DumpTuple>>>(
                        std::make_unique<DumpWork>(DumpTree(model_, ns, event_sequence_))),
                    CallEnv{model_, clients_, polkit_}, {{detail::kNamespace, std::to_string(ns)}}, false, 0, true));
}

void Manager::DumpPidTreeWithSequence(sdbus::Result<uint64_t, std::vector<DumpTuple>>&& result, uint64_t ns) {
    // The same operation to polkit rules (details method=DumpPidTree), and in the log.
    queue(make_call("DumpPidTree", std::move(result),
                    std::unique_ptr<Work<uint64_t, std::vector<DumpTuple>>>(
                        std::make_unique<DumpSequenceWork>(DumpTree(model_, ns, event_sequence_))),
                    CallEnv{model_, clients_, polkit_}, {{detail::kNamespace, std::to_string(ns)}}, false, 0, true));
}

void Manager::GetStatistics(sdbus::Result<std::map<std::string, sdbus::Variant>>&& result) {
    queue(make_call("GetStatistics", std::move(result),
                              one_shot<std::map<std::string, sdbus::Variant>>([this](pidns::CallerView& v, Client& c) {
                                  // Counters about everyone's activity only for those who may inspect everything.
                                  auto stats = statistics_ ? statistics_(v.inspects_everything()) : Statistics{};
                                  stats[stat::kCallerCalls] = sdbus::Variant(static_cast<std::uint64_t>(c.calls_total));
                                  stats[stat::kCallerLimitsExceeded] = sdbus::Variant(static_cast<std::uint64_t>(c.calls_limited));
                                  stats[stat::kCallerSubscribed] = sdbus::Variant(c.subscribed);
                                  // Whom its calls are charged to (README "Security": the principal rule).
                                  stats[stat::kCallerPrincipal] = sdbus::Variant(c.principal.uid);
                                  stats[stat::kCallerPrivileged] = sdbus::Variant(c.principal.privileged);
                                  return std::make_tuple(std::move(stats));
                              }),
                              CallEnv{model_, clients_, polkit_}));
}

void Manager::Subscribe(sdbus::Result<>&& result) {
    queue(make_call("Subscribe", std::move(result), one_shot<>([this](pidns::CallerView&, Client& c) {
                                            clients_.subscribe(c);
                                            return std::tuple<>();
                                        }),
                                        CallEnv{model_, clients_, polkit_}));
}

void Manager::Unsubscribe(sdbus::Result<>&& result) {
    queue(make_call("Unsubscribe", std::move(result), one_shot<>([this](pidns::CallerView&, Client& c) {
                                            clients_.unsubscribe(c);
                                            return std::tuple<>();
                                        }),
                                        CallEnv{model_, clients_, polkit_}));
}

std::string Manager::Version() { return PIDNSD_VERSION; }

template <class F>
uint32_t Manager::count_for_property(const char* what, F&& count) {
    return guarded(what, [&] {
        const pidns::Caller caller = clients_.caller_for_property(property_sender_);
        const auto t0 = Clock::now();
        pidns::CallerView view(model_, caller);
        view.use_remembered_credentials();  // a property must answer at once: no /proc read per process
        const uint32_t n = count(view);
        clients_.charge_property(property_sender_, Clock::now() - t0);
        return n;
    });
}

uint32_t Manager::Namespaces() {
    return count_for_property("Namespaces", [](pidns::CallerView& v) { return v.namespace_count(); });
}

uint32_t Manager::Processes() {
    return count_for_property("Processes", [](pidns::CallerView& v) { return v.process_count(); });
}

std::string Manager::EventSource() { return event_source_; }

bool Manager::KernelNamespaceIds() { return model_.features().ns_get_id; }

void Manager::send_signal(const std::string& destination, const char* member, std::uint64_t id, pidns::NsType type) {
    auto signal = getObject().createSignal(INTERFACE_NAME, member);
    if (std::string_view(member) != pidns::bus::kSignalResync) signal << id << std::string(pidns::ns_type_name(type));
    signal.setDestination(destination);
    getObject().emitSignal(signal);
}

}  // namespace pidnsd
