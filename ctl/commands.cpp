// pidnsctl's subcommands: list, translate, status, tree, ps, monitor, stats, dump.
#include "commands.h"

#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <deque>
#include <fmt/core.h>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "client_json.h"
#include "cmdline.h"
#include "escape.h"
#include "ns_arg.h"

namespace pidnsctl {

using pidns::client::Client;
using pidns::client::ErrorKind;
using pidns::client::NamespaceEvent;
using pidns::client::NamespaceInfo;
using nlohmann::json;

// Where main() sends the Client's signals (set by monitor).
std::function<void(const NamespaceEvent&)> g_event_sink;

namespace {

const std::vector<std::string> kTypes = {"pid", "user", "mnt", "net", "uts", "ipc", "cgroup", "time"};

std::string num(std::uint64_t v) { return std::to_string(v); }

// A user's name from NSS, escaped as pidnsd's strings are (a directory service's entry is text too).
std::string user_name(std::uint32_t uid) {
    static std::map<std::uint32_t, std::string> cache;
    if (auto it = cache.find(uid); it != cache.end()) return it->second;
    std::string name = std::to_string(uid);
    std::vector<char> buf(16384);
    passwd pw{}, *res = nullptr;
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &res) == 0 && res) name = pidns::escape_text(res->pw_name);
    return cache[uid] = name;
}

std::string chain_text(const std::vector<std::uint32_t>& v, char sep = ' ') {
    std::string s;
    for (auto x : v) {
        if (!s.empty()) s += sep;
        s += std::to_string(x);
    }
    return s;
}

// What COMMAND shows: the command line where it could be read (cmdline.h), else pidnsd's comm in
// brackets, as ps shows a process without one. Both escaped already.
std::string command_text(const std::string& cmdline, const std::string& comm) {
    if (!cmdline.empty()) return cmdline;
    return comm.empty() ? std::string() : "[" + comm + "]";
}

// TYPE:[INODE], the type as pidnsd named it (printable: trees and status print it as it is).
std::string ns_name(const NamespaceInfo& n) { return pidns::printable_text(n.type) + ":[" + num(n.inode) + "]"; }

// "docker:7a1d3c2b9a8e" (an id shortened as the engines' own CLIs print it) or "lxc:web1".
std::string container_text(const pidns::client::Labels& l) {
    if (l.container_engine.empty()) return "";
    const std::string& what = l.container_name.empty() ? l.container_id : l.container_name;
    return l.container_engine + ":" + (l.container_name.empty() && what.size() == 64 ? what.substr(0, 12) : what);
}

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

std::string now_text(std::uint64_t& usec) {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    usec = static_cast<std::uint64_t>(ts.tv_sec) * 1000000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
    tm t{};
    ::gmtime_r(&ts.tv_sec, &t);
    char b[64];
    std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &t);
    return fmt::format("{}.{:06}Z", b, ts.tv_nsec / 1000);
}

}  // namespace

const std::vector<std::string>& list_columns() {
    static const std::vector<std::string> c{"ID",   "INODE",     "TYPE",    "LEVEL", "PARENT", "OWNER", "NPROCS",
                                            "INIT", "USER",      "CONTAINER", "COMMAND", "UNIT", "SLICE", "CGROUP",
                                            "MACHINE", "NETNS"};
    return c;
}

const std::vector<std::string>& default_list_columns() {
    static const std::vector<std::string> c{"ID",   "INODE", "TYPE",      "LEVEL",  "PARENT", "OWNER",
                                            "NPROCS", "INIT", "USER", "CONTAINER", "COMMAND"};
    return c;
}

int cmd_list(Client& c, Output& out, const ListArgs& a) {
    for (const auto& t : a.types)
        if (std::find(kTypes.begin(), kTypes.end(), t) == kTypes.end())
            throw CtlError(kUsage, "unknown namespace type \"" + t + "\"; types: pid user mnt net uts ipc cgroup time");
    std::vector<std::string> cols;
    if (a.columns.empty()) {
        cols = default_list_columns();
    } else {
        std::stringstream ss(a.columns);
        for (std::string col; std::getline(ss, col, ',');) {
            std::transform(col.begin(), col.end(), col.begin(), [](unsigned char ch) { return std::toupper(ch); });
            if (col == "INIT_PID") col = "INIT";
            if (col == "OWNER_UID") col = "USER";
            if (std::find(list_columns().begin(), list_columns().end(), col) == list_columns().end())
                throw CtlError(kUsage, "unknown column \"" + col +
                                           "\"; columns: ID,INODE,TYPE,LEVEL,PARENT,OWNER,NPROCS,INIT,USER,CONTAINER,"
                                           "COMMAND,UNIT,SLICE,CGROUP,MACHINE,NETNS");
            cols.push_back(col);
        }
    }
    auto all = c.describe_namespaces(a.types.size() == 1 ? a.types.front() : "");
    if (a.types.size() > 1)
        std::erase_if(all, [&](const pidns::client::NamespaceDescription& n) {
            return std::find(a.types.begin(), a.types.end(), n.ns.type) == a.types.end();
        });
    std::sort(all.begin(), all.end(), [](const auto& x, const auto& y) { return x.ns.inode < y.ns.inode; });
    out.page();
    if (out.json() != JsonMode::off) {
        out.print_json(json(all));
        return kOk;
    }
    std::vector<Table::Column> tc;
    auto numeric = [](const std::string& col) {
        return col == "ID" || col == "INODE" || col == "LEVEL" || col == "PARENT" || col == "OWNER" || col == "NPROCS" ||
               col == "INIT";
    };
    for (const auto& col : cols) tc.push_back({col, numeric(col)});
    Table t(tc);
    for (const auto& d : all) {
        const auto& n = d.ns;
        std::vector<std::string> row;
        for (const auto& col : cols) {
            if (col == "ID") row.push_back(num(n.id));
            else if (col == "INODE") row.push_back(num(n.inode));
            else if (col == "TYPE") row.push_back(n.type);
            else if (col == "LEVEL") row.push_back(num(n.level));
            else if (col == "PARENT") row.push_back(n.parent ? num(n.parent) : "-");
            else if (col == "OWNER") row.push_back(n.owner ? num(n.owner) : "-");
            else if (col == "NPROCS") row.push_back(num(n.nprocs));
            else if (col == "INIT") row.push_back(n.init_pid ? num(n.init_pid) : "-");
            else if (col == "USER") row.push_back(user_name(n.owner_uid));
            else if (col == "CONTAINER") row.push_back(or_dash(container_text(d.labels)));
            else if (col == "COMMAND") row.push_back(or_dash(d.labels.command));
            else if (col == "UNIT") row.push_back(or_dash(d.labels.unit));
            else if (col == "SLICE") row.push_back(or_dash(d.labels.slice));
            else if (col == "CGROUP") row.push_back(or_dash(d.labels.cgroup));
            else if (col == "MACHINE") row.push_back(or_dash(d.labels.machine));
            else {
                std::string names;
                for (const auto& nm : d.netns_names) names += (names.empty() ? "" : ",") + nm;
                row.push_back(or_dash(names));
            }
        }
        t.add(std::move(row));
    }
    t.print(out, a.legend);
    if (a.legend) fmt::print("\n{} namespaces listed.\n", all.size());
    return kOk;
}

int cmd_translate(Client& c, Output& out, const TranslateArgs& a) {
    const auto from = resolve_ns(c, a.from, "pid");
    const auto to = resolve_ns(c, a.to, "pid");
    if (!a.batch) {
        if (a.pid.empty()) throw CtlError(kUsage, "translate needs a PID, or --batch to read pids from stdin");
        const auto pid = parse_pid(a.pid);
        const auto r = c.translate_pid(pid, from, to);
        if (out.json() != JsonMode::off) {
            out.print_json(json{{"pid", pid}, {"from", from}, {"to", to}, {"result", r}});
        } else if (r != 0) {
            fmt::print("{}\n", r);
        }
        if (r == 0) {
            std::cerr << "pidnsctl: process " << pid << " has no pid in that pid namespace\n";
            return kNotFound;
        }
        return kOk;
    }
    if (!a.pid.empty()) throw CtlError(kUsage, "translate --batch reads the pids from stdin; give no PID");
    std::vector<std::uint32_t> pids;
    for (std::string w; std::cin >> w;) pids.push_back(parse_pid(w));
    std::vector<std::uint32_t> result;
    constexpr std::size_t kChunk = 65536;  // TranslatePids' limit
    for (std::size_t at = 0; at < pids.size(); at += kChunk) {
        std::vector<std::uint32_t> part(pids.begin() + static_cast<std::ptrdiff_t>(at),
                                        pids.begin() + static_cast<std::ptrdiff_t>(std::min(pids.size(), at + kChunk)));
        auto r = c.translate_pids(part, from, to);
        result.insert(result.end(), r.begin(), r.end());
    }
    if (out.json() != JsonMode::off) {
        json j = json::array();
        for (std::size_t i = 0; i < pids.size(); ++i) j.push_back({{"pid", pids[i]}, {"result", result.at(i)}});
        out.print_json(j);
    } else {
        std::string s;
        for (auto r : result) s += std::to_string(r) + "\n";
        std::fputs(s.c_str(), stdout);
    }
    return kOk;
}

int cmd_status(Client& c, Output& out, const std::string& pid_arg) {
    const auto pid = parse_pid(pid_arg);
    const auto described = c.describe_process(pid);
    const auto& p = described.process;
    const auto& labels = described.labels;
    // The pid namespace at each level of NSpid: the task's own, then its ancestors up to ours.
    std::vector<std::optional<NamespaceInfo>> level_ns(p.nspid.size());
    std::uint64_t id = p.namespaces.count("pid") ? p.namespaces.at("pid") : 0;
    for (std::size_t i = p.nspid.size(); i-- > 0 && id != 0;) {
        try {
            level_ns[i] = c.get_namespace(id);
            id = level_ns[i]->parent;
        } catch (const pidns::client::Error&) {
            break;
        }
    }
    std::map<std::string, std::optional<NamespaceInfo>> nss;
    for (const auto& [type, nsid] : p.namespaces) {
        try {
            nss[type] = c.get_namespace(nsid);
        } catch (const pidns::client::Error&) {
            nss[type] = std::nullopt;
        }
    }
    const std::string cmd = command_text(read_cmdlines({pid}).front(), labels.command);
    out.page();
    if (out.json() != JsonMode::off) {
        json j = described;
        j["command"] = cmd;
        json levels = json::array();
        for (const auto& n : level_ns) levels.push_back(n ? json(n->id) : json(nullptr));
        j["pid_namespaces"] = levels;
        out.print_json(j);
        return kOk;
    }
    fmt::print("{}\n", out.bold(fmt::format("{} ({})", pid, cmd.empty() ? "?" : pidns::printable_text(cmd))));
    // What it is known by: its user, cgroup, unit and container, and its threads.
    auto line = [](const char* key, const std::string& v) {
        if (!v.empty()) fmt::print("{:>10}: {}\n", key, pidns::printable_text(v));
    };
    if (labels.uid != pidns::client::kNoUid)
        line("User", labels.user.empty() ? num(labels.uid) : fmt::format("{} ({})", labels.user, labels.uid));
    line("CGroup", labels.cgroup);
    // Who could have named the cgroup a label comes from, when not only root (pidnsctl(1), LABELS).
    auto named_by = [](std::uint32_t owner) {
        return owner == pidns::client::kNoUid ? std::string() : " [named by " + user_name(owner) + "]";
    };
    line("Unit", labels.unit.empty() ? "" : labels.unit + named_by(labels.unit_owner_uid));
    line("Slice", labels.slice);
    if (!labels.container_engine.empty())
        line("Container", labels.container_engine + " " + labels.container_id +
                              (labels.container_name.empty() || labels.container_name == labels.container_id
                                   ? ""
                                   : " (" + labels.container_name + ")") +
                              named_by(labels.container_owner_uid));
    // The Kubernetes pod (namespace/name, uid), or podman's pod id.
    std::string pod = labels.pod_namespace.empty() || labels.pod_name.empty() ? labels.pod_name
                                                                              : labels.pod_namespace + "/" + labels.pod_name;
    for (const auto* id : {&labels.pod_uid, &labels.pod_id})
        if (!id->empty()) pod += pod.empty() ? *id : " (" + *id + ")";
    line("Pod", pod);
    line("Machine", labels.machine);
    if (described.threads.size() > 1) line("Threads", chain_text(described.threads));
    fmt::print("\n");
    auto at = [](const std::vector<std::uint32_t>& v, std::size_t i) { return i < v.size() ? num(v[i]) : "-"; };
    Table t({{"LEVEL", true}, {"PID", true}, {"TGID", true}, {"PGID", true}, {"SID", true}, {"PID NAMESPACE", false}});
    for (std::size_t i = 0; i < p.nspid.size(); ++i) {
        const auto& n = level_ns[i];
        t.add({num(i), at(p.nspid, i), at(p.nstgid, i), at(p.nspgid, i), at(p.nssid, i),
               n ? fmt::format("{} (id {}, level {})", ns_name(*n), n->id, n->level) : "?"});
    }
    t.print(out, true);
    fmt::print("\n{}\n", out.bold("Namespaces:"));
    Table nt({{"TYPE", false}, {"NAMESPACE", false}, {"ID", true}, {"NPROCS", true}});
    for (const auto& type : kTypes) {
        auto it = p.namespaces.find(type);
        if (it == p.namespaces.end()) continue;
        const auto& n = nss[type];
        nt.add({type, n ? ns_name(*n) : "?", num(it->second), n ? num(n->nprocs) : "?"});
    }
    nt.print(out, true);
    return kOk;
}

namespace {

struct TreeNode {
    NamespaceInfo info;
    std::vector<std::uint32_t> init_nspid;  // pid namespaces: the init's pid at every level, ours first
    std::vector<NamespaceInfo> owned;        // user namespaces under --all-types: what they own
    std::vector<std::size_t> children;
};

// A pid or user namespace hierarchy: nodes by parent; roots are those whose parent is not listed
// (or only `root_id`'s node).
struct Forest {
    std::vector<TreeNode> nodes;
    std::vector<std::size_t> roots;
    std::map<std::uint64_t, std::size_t> at;  // id -> node
};

Forest make_forest(std::vector<NamespaceInfo> all, std::uint64_t root_id) {
    std::sort(all.begin(), all.end(), [](const auto& x, const auto& y) { return x.inode < y.inode; });
    Forest f;
    for (auto& n : all) {
        f.at[n.id] = f.nodes.size();
        f.nodes.push_back({std::move(n), {}, {}, {}});
    }
    for (std::size_t i = 0; i < f.nodes.size(); ++i) {
        auto p = f.at.find(f.nodes[i].info.parent);
        if (f.nodes[i].info.parent != 0 && p != f.at.end()) f.nodes[p->second].children.push_back(i);
        else if (root_id == 0) f.roots.push_back(i);
    }
    if (root_id != 0) f.roots = {f.at.at(root_id)};
    return f;
}

// The nodes reachable from the roots.
std::vector<std::size_t> shown_nodes(const Forest& f) {
    std::vector<std::size_t> out, todo = f.roots;
    while (!todo.empty()) {
        auto i = todo.back();
        todo.pop_back();
        out.push_back(i);
        todo.insert(todo.end(), f.nodes[i].children.begin(), f.nodes[i].children.end());
    }
    return out;
}

json tree_json(const Forest& f, std::size_t i) {
    const auto& n = f.nodes[i];
    json j = n.info;
    if (n.info.type == "pid") j["init_nspid"] = n.init_nspid;
    else j["owned"] = n.owned;
    json kids = json::array();
    for (auto k : n.children) kids.push_back(tree_json(f, k));
    j["children"] = kids;
    return j;
}

void tree_text(const Output& out, const Forest& f, std::size_t i, const std::string& prefix, const std::string& branch) {
    const auto& n = f.nodes[i];
    std::string what;
    if (n.info.type == "pid") {
        const std::string init =
            n.init_nspid.empty() ? (n.info.init_pid ? num(n.info.init_pid) : "-") : chain_text(n.init_nspid, '/');
        what = fmt::format("init {} processes {}", init, n.info.nprocs);
    } else {
        what = fmt::format("user {} processes {}", user_name(n.info.owner_uid), n.info.nprocs);
    }
    fmt::print("{}{} id {} level {} {}\n", out.grey(prefix + branch), out.bold(ns_name(n.info)), n.info.id, n.info.level,
               what);
    const std::string next = prefix + (branch.empty() ? "" : (branch == "└─" ? "  " : "│ "));
    const std::size_t total = n.owned.size() + n.children.size();
    for (std::size_t k = 0; k < n.owned.size(); ++k) {
        const auto& o = n.owned[k];
        fmt::print("{}{} id {} processes {}\n", out.grey(next + (k + 1 == total ? "└─" : "├─")), ns_name(o), o.id,
                   o.nprocs);
    }
    for (std::size_t k = 0; k < n.children.size(); ++k)
        tree_text(out, f, n.children[k], next, n.owned.size() + k + 1 == total ? "└─" : "├─");
}

}  // namespace

int cmd_tree(Client& c, Output& out, const std::string& ns_arg, bool all_types, bool legend) {
    std::uint64_t root_id = 0;
    if (!ns_arg.empty()) root_id = c.get_namespace(resolve_ns(c, ns_arg, "pid")).id;
    auto pid_ns = c.list_namespaces("pid");
    if (root_id != 0 && std::none_of(pid_ns.begin(), pid_ns.end(), [&](const auto& n) { return n.id == root_id; }))
        throw CtlError(kNotFound, "namespace " + ns_arg + " is not a pid namespace pidnsd lists to you");
    Forest pids = make_forest(std::move(pid_ns), root_id);
    const auto shown = shown_nodes(pids);
    // The init's pid at every level, for the namespaces shown.
    for (auto i : shown) {
        auto& n = pids.nodes[i];
        if (n.info.init_pid == 0) continue;
        try {
            n.init_nspid = c.get_process(n.info.init_pid).nspid;
        } catch (const pidns::client::Error& e) {
            if (e.kind() != ErrorKind::no_such_process && e.kind() != ErrorKind::access_denied) throw;
        }
    }
    // --all-types: the user namespace hierarchy, each with the namespaces of the other types it owns.
    Forest users;
    std::vector<NamespaceInfo> unowned;
    if (all_types) {
        auto everything = c.list_namespaces("");
        std::vector<NamespaceInfo> user_ns, others;
        for (auto& n : everything) (n.type == "user" ? user_ns : others).push_back(std::move(n));
        users = make_forest(std::move(user_ns), 0);
        std::sort(others.begin(), others.end(), [](const auto& x, const auto& y) { return x.inode < y.inode; });
        for (auto& n : others) {
            auto it = users.at.find(n.owner);
            if (n.owner != 0 && it != users.at.end()) users.nodes[it->second].owned.push_back(std::move(n));
            else unowned.push_back(std::move(n));
        }
    }
    out.page();
    if (out.json() != JsonMode::off) {
        json j = json::array();
        for (auto r : pids.roots) j.push_back(tree_json(pids, r));
        if (!all_types) {
            out.print_json(j);
            return kOk;
        }
        json u = json::array();
        for (auto r : users.roots) u.push_back(tree_json(users, r));
        out.print_json(json{{"pid", j}, {"user", u}, {"unowned", unowned}});
        return kOk;
    }
    for (auto r : pids.roots) tree_text(out, pids, r, "", "");
    if (legend) fmt::print("\n{} pid namespaces.\n", shown.size());
    if (!all_types) return kOk;
    fmt::print("\n");
    for (auto r : users.roots) tree_text(out, users, r, "", "");
    for (const auto& o : unowned)
        fmt::print("{} id {} processes {} (owner not visible)\n", ns_name(o), o.id, o.nprocs);
    if (legend) fmt::print("\n{} user namespaces.\n", users.nodes.size());
    return kOk;
}

int cmd_ps(Client& c, Output& out, const std::string& ns_arg, bool legend) {
    const auto ref = resolve_ns(c, ns_arg, "pid");
    const auto pids = c.list_processes(ref);
    struct Row {
        std::uint32_t pid;
        std::vector<std::uint32_t> nspid;
        std::string command;
        pidns::client::Labels labels;
    };
    std::vector<Row> rows;
    for (auto pid : pids) {
        try {
            auto d = c.describe_process(pid);
            rows.push_back({pid, std::move(d.process.nspid), {}, std::move(d.labels)});
        } catch (const pidns::client::Error& e) {
            if (e.kind() != ErrorKind::no_such_process) throw;  // it exited since it was listed
        }
    }
    std::vector<std::uint32_t> listed;
    for (const auto& r : rows) listed.push_back(r.pid);
    const auto cmdlines = read_cmdlines(listed);
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i].command = command_text(cmdlines[i], rows[i].labels.command);
    out.page();
    if (out.json() != JsonMode::off) {
        json j = json::array();
        for (const auto& r : rows) {
            json e = {{"pid", r.pid}, {"nspid", r.nspid}, {"command", r.command}};
            const json labels = r.labels;
            for (const auto& [k, v] : labels.items())
                if (k != "command") e[k] = v;
            j.push_back(std::move(e));
        }
        out.print_json(j);
        return kOk;
    }
    Table t({{"PID", true}, {"NSPID", false}, {"UNIT", false}, {"CONTAINER", false}, {"COMMAND", false}});
    for (const auto& r : rows)
        t.add({num(r.pid), chain_text(r.nspid), or_dash(r.labels.unit), or_dash(container_text(r.labels)), r.command});
    t.print(out, legend);
    if (legend) fmt::print("\n{} processes listed.\n", rows.size());
    return kOk;
}

int cmd_monitor(Client& c, Output& out) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    const int sfd = ::signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) throw CtlError(kFailure, "signalfd failed");
    // Each namespace's labels as list shows them, from the snapshot and each NamespaceAdded, so a
    // removal says what went. Events are handled after the signal dispatch that queued them.
    std::map<std::uint64_t, pidns::client::Labels> known;
    std::deque<NamespaceEvent> events;
    g_event_sink = [&events](const NamespaceEvent& e) { events.push_back(e); };
    // The snapshot also tells pidnsd which namespaces this subscriber knows of: it signals the
    // removal of those too (pidnsd signals removals only of namespaces a subscriber was told of).
    auto snapshot = [&] {
        known.clear();
        for (auto& d : c.describe_namespaces("")) known[d.ns.id] = std::move(d.labels);
    };
    auto print = [&out](const NamespaceEvent& e, const pidns::client::Labels& l) {
        std::uint64_t usec = 0;
        const std::string ts = now_text(usec);
        if (out.json() != JsonMode::off) {
            json j = e;
            j["timestamp"] = ts;
            j["realtime_usec"] = usec;
            const json labels = l;
            for (const auto& [k, v] : labels.items()) j[k] = v;
            std::fputs((j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n").c_str(), stdout);
        } else if (e.kind == NamespaceEvent::Kind::resync) {
            fmt::print("{} resync (changes were dropped; listed again)\n", ts);
        } else {
            // As list's CONTAINER, UNIT and COMMAND columns; the command last (a comm may hold spaces).
            fmt::print("{} {:<7} {:<6} {} {} {} {}\n", ts, to_string(e.kind), pidns::printable_text(e.type), e.id,
                       pidns::printable_text(or_dash(container_text(l))), pidns::printable_text(or_dash(l.unit)),
                       pidns::printable_text(or_dash(l.command)));
        }
        std::fflush(stdout);
    };
    auto handle = [&](const NamespaceEvent& e) {
        pidns::client::Labels l;
        if (e.kind == NamespaceEvent::Kind::added) {
            try {
                l = c.describe_namespace(e.id).labels;
                known[e.id] = l;
            } catch (const pidns::client::Error& err) {
                // Gone already, or refused (a quota): the event without its labels.
                if (err.kind() == ErrorKind::unavailable) throw;
            }
        } else if (e.kind == NamespaceEvent::Kind::removed) {
            if (auto it = known.find(e.id); it != known.end()) {
                l = std::move(it->second);
                known.erase(it);
            }
        } else {
            snapshot();
        }
        print(e, l);
    };
    c.subscribe();
    snapshot();
    if (::isatty(2)) std::cerr << "Monitoring pidnsd's namespaces; press Ctrl-C to stop.\n";
    for (;;) {
        while (c.process_pending()) {
        }
        while (!events.empty()) {
            const auto e = events.front();
            events.pop_front();
            handle(e);
        }
        const auto pd = c.connection().getEventLoopPollData();
        int timeout = -1;
        if (pd.timeout_usec != UINT64_MAX) {
            timespec now{};
            ::clock_gettime(CLOCK_MONOTONIC, &now);
            const std::uint64_t n = static_cast<std::uint64_t>(now.tv_sec) * 1000000u + static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
            timeout = pd.timeout_usec <= n ? 0 : static_cast<int>(std::min<std::uint64_t>((pd.timeout_usec - n + 999) / 1000, 60000));
        }
        pollfd fds[2] = {{pd.fd, pd.events, 0}, {sfd, POLLIN, 0}};
        if (::poll(fds, 2, timeout) < 0 && errno != EINTR) throw CtlError(kFailure, "poll failed");
        if (fds[1].revents & POLLIN) break;
    }
    g_event_sink = nullptr;
    ::close(sfd);
    return kOk;
}

namespace {

using pidns::client::DumpEntry;

std::string vpids_text(const std::vector<std::uint32_t>& v) { return chain_text(v, '/'); }

// The entries of a saved dump: `pidnsctl dump --json` output ({"tasks": [...]}) or a bare array.
std::vector<DumpEntry> saved_entries(const json& j, const std::string& file) {
    const json& tasks = j.is_object() ? j.at("tasks") : j;
    if (!tasks.is_array()) throw CtlError(kUsage, file + ": not a dump (expected the output of pidnsctl --json=short dump)");
    return tasks.get<std::vector<DumpEntry>>();
}

// What differs between a saved dump and the live one, a line per difference. Tasks are matched by
// vpids (their pids from the dumped namespace down); rpid (the reader's view) is not compared.
// Namespace ids are compared as a correspondence: each saved id must map to one live id and back,
// so a tree restored into fresh namespaces matches its dump.
std::vector<std::string> dump_differences(const std::vector<DumpEntry>& saved, const std::vector<DumpEntry>& live) {
    std::vector<std::string> out;
    std::map<std::vector<std::uint32_t>, const DumpEntry*> now;
    for (const auto& e : live) now[e.vpids] = &e;
    std::map<std::uint64_t, std::uint64_t> fwd, back;
    auto same_ns = [&](std::uint64_t a, std::uint64_t b) {
        if ((a == 0) != (b == 0)) return false;
        if (a == 0) return true;
        auto [f, fnew] = fwd.emplace(a, b);
        auto [r, rnew] = back.emplace(b, a);
        return f->second == b && r->second == a;
    };
    std::set<std::vector<std::uint32_t>> matched;
    for (const auto& s : saved) {
        const auto it = now.find(s.vpids);
        if (it == now.end()) {
            out.push_back(fmt::format("- task {} ({}): in the saved dump, not in the live tree", vpids_text(s.vpids),
                                      or_dash(pidns::client::dump_flags_text(s.flags))));
            continue;
        }
        matched.insert(s.vpids);
        const DumpEntry& l = *it->second;
        auto field = [&](const char* name, std::uint64_t a, std::uint64_t b) {
            if (a != b) out.push_back(fmt::format("~ task {}: {} {} saved, {} live", vpids_text(s.vpids), name, a, b));
        };
        field("depth", s.depth, l.depth);
        field("vtgid", s.vtgid, l.vtgid);
        field("vppid", s.vppid, l.vppid);
        field("vpgid", s.vpgid, l.vpgid);
        field("vsid", s.vsid, l.vsid);
        if (s.flags != l.flags)
            out.push_back(fmt::format("~ task {}: flags {} saved, {} live", vpids_text(s.vpids),
                                      or_dash(pidns::client::dump_flags_text(s.flags)),
                                      or_dash(pidns::client::dump_flags_text(l.flags))));
        if (!same_ns(s.pidns, l.pidns))
            out.push_back(fmt::format("~ task {}: pid namespace {} saved, {} live, which does not correspond",
                                      vpids_text(s.vpids), s.pidns, l.pidns));
        if (!same_ns(s.pid_for_children, l.pid_for_children))
            out.push_back(fmt::format("~ task {}: pid_for_children {} saved, {} live, which does not correspond",
                                      vpids_text(s.vpids), s.pid_for_children, l.pid_for_children));
    }
    for (const auto& l : live)
        if (!matched.contains(l.vpids))
            out.push_back(fmt::format("+ task {} ({}): in the live tree, not in the saved dump", vpids_text(l.vpids),
                                      or_dash(pidns::client::dump_flags_text(l.flags))));
    return out;
}

int check_dump(Client& c, Output& out, const DumpArgs& a) {
    std::ifstream f(a.check);
    if (!f) throw CtlError(kUsage, "cannot read " + a.check + "; give a file saved from pidnsctl --json=short dump");
    json saved;
    try {
        saved = json::parse(f);
    } catch (const json::exception& e) {
        throw CtlError(kUsage, a.check + " is not JSON (" + e.what() + ")");
    }
    std::vector<DumpEntry> was;
    std::uint64_t ref = 0;
    try {
        was = saved_entries(saved, a.check);
        if (saved.is_object()) ref = saved.value("namespace", std::uint64_t{0});
    } catch (const json::exception& e) {
        throw CtlError(kUsage, a.check + " is not a dump (" + e.what() + "); give the output of pidnsctl --json=short dump");
    }
    if (!a.ns.empty()) ref = resolve_ns(c, a.ns, "pid");
    const auto live = c.dump_pid_tree(ref);
    const auto diffs = dump_differences(was, live);
    if (out.json() != JsonMode::off) {
        out.print_json(json{{"namespace", ref}, {"match", diffs.empty()}, {"differences", diffs}});
    } else {
        for (const auto& d : diffs) fmt::print("{}\n", d);
        if (diffs.empty() && a.legend) fmt::print("The live tree matches {}: {} tasks.\n", a.check, live.size());
    }
    if (diffs.empty()) return kOk;
    std::cerr << "pidnsctl: the live tree differs from " << a.check << " (" << diffs.size() << " differences)\n";
    return kFailure;
}

}  // namespace

int cmd_dump(Client& c, Output& out, const DumpArgs& a) {
    if (!a.check.empty()) return check_dump(c, out, a);
    const auto ref = resolve_ns(c, a.ns, "pid");
    const auto d = c.dump_pid_tree_with_sequence(ref);
    out.page();
    if (out.json() != JsonMode::off) {
        out.print_json(json{{"namespace", ref}, {"sequence", d.sequence}, {"tasks", d.tasks}});
        return kOk;
    }
    Table t({{"RPID", true}, {"DEPTH", true}, {"VPIDS", false}, {"VTGID", true}, {"VPPID", true}, {"VPGID", true},
             {"VSID", true}, {"PIDNS", true}, {"FOR_CHILDREN", true}, {"FLAGS", false}});
    for (const auto& e : d.tasks)
        t.add({num(e.rpid), num(e.depth), vpids_text(e.vpids), num(e.vtgid), num(e.vppid), num(e.vpgid), num(e.vsid),
               num(e.pidns), e.pid_for_children ? num(e.pid_for_children) : "-",
               or_dash(pidns::client::dump_flags_text(e.flags))});
    t.print(out, a.legend);
    if (a.legend) fmt::print("\n{} tasks dumped{}.\n", d.tasks.size(), d.sequence ? fmt::format(" at event {}", d.sequence) : "");
    return kOk;
}

int cmd_stats(Client& c, Output& out, bool legend) {
    const auto s = c.statistics();
    out.page();
    if (out.json() != JsonMode::off) {
        json j = json::object();
        for (const auto& [k, v] : s) pidns::client::to_json(j[k], v);
        out.print_json(j);
        return kOk;
    }
    Table t({{"KEY", false}, {"VALUE", false}});
    for (const auto& [k, v] : s) t.add({k, pidns::client::to_string(v)});
    t.print(out, legend);
    return kOk;
}

}  // namespace pidnsctl
