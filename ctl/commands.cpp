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
#include <charconv>
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
#include "format.h"
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

const std::vector<ListColumn>& list_columns() {
    // name, what it shows, right-aligned (a number), may shrink (text), shown by default.
    static const std::vector<ListColumn> c{
        {"ID", "pidnsd's namespace id", true, false, true},
        {"INODE", "the nsfs inode, as readlink /proc/PID/ns/TYPE prints it", true, false, true},
        {"TYPE", "pid user mnt net uts ipc cgroup time", false, false, true},
        {"LEVEL", "depth below your own pid or user namespace", true, false, true},
        {"PARENT", "id of the parent pid or user namespace", true, false, false},
        {"OWNER", "id of the owning user namespace", true, false, false},
        {"NPROCS", "processes in it you may inspect", true, false, true},
        {"INIT", "its init's pid (other types: its lowest pid)", true, false, true},
        {"UID", "the uid of its representative process", true, false, false},
        {"USER", "the user of its representative process, as lsns shows it", false, true, true},
        {"CREATOR", "the user who created its owning user namespace", false, true, false},
        {"CONTAINER", "the container of its representative process", false, true, true},
        {"NETNS", "the names ip netns list shows for a net namespace", false, true, true},
        {"COMMAND", "its representative's command (comm)", false, true, true},
        {"UNIT", "the systemd unit of its representative", false, true, false},
        {"SLICE", "the systemd slice of its representative", false, true, false},
        {"CGROUP", "the cgroup of its representative", false, true, false},
        {"MACHINE", "systemd-machined's name for the machine it runs in", false, true, false},
    };
    return c;
}

namespace {

const ListColumn* find_column(const std::string& name) {
    for (const auto& col : list_columns())
        if (col.name == name) return &col;
    return nullptr;
}

std::string column_names() {
    std::string s;
    for (const auto& col : list_columns()) s += (s.empty() ? "" : ",") + col.name;
    return s;
}

// What -o asks for: a list of columns ("ID,TYPE"), or changes to the default ones ("+NETNS,-USER");
// each name in any case, INIT_PID and OWNER_UID as lsns names them. A default column is optional
// (left out when the table does not fit the terminal) only when -o did not ask for it: that is
// NETNS, the last one added to the defaults.
struct ListColumns {
    std::vector<const ListColumn*> cols;
    std::vector<bool> optional;
};

ListColumns parse_list_columns(const std::string& spec) {
    ListColumns out;
    if (spec.empty()) {
        for (const auto& col : list_columns())
            if (col.dflt) {
                out.cols.push_back(&col);
                out.optional.push_back(col.name == "NETNS");
            }
        return out;
    }
    std::vector<std::pair<char, std::string>> items;  // sign ('+', '-' or 0) and name
    std::stringstream ss(spec);
    for (std::string item; std::getline(ss, item, ',');) {
        char sign = 0;
        if (!item.empty() && (item[0] == '+' || item[0] == '-')) sign = item[0], item.erase(0, 1);
        std::transform(item.begin(), item.end(), item.begin(), [](unsigned char ch) { return std::toupper(ch); });
        if (item == "INIT_PID") item = "INIT";
        if (item == "OWNER_UID") item = "CREATOR";
        if (!find_column(item))
            throw CtlError(kUsage, "unknown column \"" + item + "\" in -o " + spec + "; columns: " + column_names() +
                                       " (-o +COL adds one to the default columns, -o -COL removes one)");
        items.emplace_back(sign, item);
    }
    const auto signed_items = std::count_if(items.begin(), items.end(), [](const auto& i) { return i.first != 0; });
    if (signed_items != 0 && static_cast<std::size_t>(signed_items) != items.size())
        throw CtlError(kUsage, "-o " + spec + " mixes columns with +COL or -COL; give either the columns to print "
                                              "(-o ID,TYPE,NETNS) or changes to the default ones (-o +NETNS,-USER)");
    if (signed_items == 0) {
        for (const auto& [sign, name] : items) {
            out.cols.push_back(find_column(name));
            out.optional.push_back(false);
        }
        return out;
    }
    out = parse_list_columns("");
    for (const auto& [sign, name] : items) {
        const ListColumn* col = find_column(name);
        const auto at = std::find(out.cols.begin(), out.cols.end(), col);
        const auto i = static_cast<std::size_t>(at - out.cols.begin());
        if (sign == '-' && at != out.cols.end()) {
            out.cols.erase(at);
            out.optional.erase(out.optional.begin() + static_cast<std::ptrdiff_t>(i));
        } else if (sign == '+' && at != out.cols.end()) {
            out.optional[i] = false;  // asked for: shown even on a narrow terminal
        } else if (sign == '+') {
            // Before COMMAND, which stays last (a command may hold spaces).
            const auto command = std::find_if(out.cols.begin(), out.cols.end(),
                                              [](const ListColumn* c) { return c->name == "COMMAND"; });
            const auto k = command - out.cols.begin();
            out.cols.insert(command, col);
            out.optional.insert(out.optional.begin() + k, false);
        }
    }
    return out;
}

// USER: the representative process's user as pidnsd names it, else its uid's name here (pidnsctl
// runs in the caller's user namespace, where pidnsd gives the uid).
std::string representative_user(const pidns::client::Labels& l) {
    if (!l.user.empty()) return l.user;
    return l.uid == pidns::client::kNoUid ? "-" : user_name(l.uid);
}

std::string list_cell(const std::string& col, const pidns::client::NamespaceDescription& d) {
    const auto& n = d.ns;
    if (col == "ID") return num(n.id);
    if (col == "INODE") return num(n.inode);
    if (col == "TYPE") return n.type;
    if (col == "LEVEL") return num(n.level);
    if (col == "PARENT") return n.parent ? num(n.parent) : "-";
    if (col == "OWNER") return n.owner ? num(n.owner) : "-";
    if (col == "NPROCS") return num(n.nprocs);
    if (col == "INIT") return n.init_pid ? num(n.init_pid) : "-";
    if (col == "UID") return d.labels.uid == pidns::client::kNoUid ? "-" : num(d.labels.uid);
    if (col == "USER") return representative_user(d.labels);
    if (col == "CREATOR") return user_name(n.owner_uid);
    if (col == "CONTAINER") return or_dash(container_text(d.labels));
    if (col == "COMMAND") return or_dash(d.labels.command);
    if (col == "UNIT") return or_dash(d.labels.unit);
    if (col == "SLICE") return or_dash(d.labels.slice);
    if (col == "CGROUP") return or_dash(d.labels.cgroup);
    if (col == "MACHINE") return or_dash(d.labels.machine);
    std::string names;  // NETNS
    for (const auto& nm : d.netns_names) names += (names.empty() ? "" : ",") + nm;
    return or_dash(names);
}

// The footer's note on optional columns a narrow terminal left out.
std::string left_out_note(const std::vector<std::string>& dropped) {
    if (dropped.empty()) return "";
    std::string cols, plus;
    for (const auto& d : dropped) {
        cols += (cols.empty() ? "" : ", ") + d;
        plus += (plus.empty() ? "+" : ",+") + d;
    }
    return " (" + cols + " left out to fit: -o " + plus + " shows " + (dropped.size() == 1 ? "it" : "them") + ")";
}

}  // namespace

int cmd_list(Client& c, Output& out, const ListArgs& a) {
    for (const auto& t : a.types)
        if (std::find(kTypes.begin(), kTypes.end(), t) == kTypes.end())
            throw CtlError(kUsage, "unknown namespace type \"" + t + "\"; types: pid user mnt net uts ipc cgroup time");
    const auto cols = parse_list_columns(a.columns);
    auto all = asking({}, [&] { return c.describe_namespaces(a.types.size() == 1 ? a.types.front() : ""); });
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
    for (std::size_t i = 0; i < cols.cols.size(); ++i)
        tc.push_back({cols.cols[i]->name, cols.cols[i]->right, cols.cols[i]->shrink, cols.optional[i]});
    Table t(tc);
    std::set<std::string> with_values;  // the columns that have something other than "-"
    for (const auto& d : all) {
        std::vector<std::string> row;
        for (const auto* col : cols.cols) {
            row.push_back(list_cell(col->name, d));
            if (row.back() != "-") with_values.insert(col->name);
        }
        t.add(std::move(row));
    }
    auto dropped = t.print(out, a.legend);
    std::erase_if(dropped, [&](const std::string& h) { return !with_values.contains(h); });
    if (a.legend) fmt::print("\n{} listed{}.\n", count_of(all.size(), "namespace", "namespaces"), left_out_note(dropped));
    return kOk;
}

int cmd_translate(Client& c, Output& out, const TranslateArgs& a) {
    if (!a.batch && a.pid.empty()) throw CtlError(kUsage, "translate needs a PID, or --batch to read pids from stdin");
    const auto pid = a.batch ? 0 : parse_pid(a.pid);
    const auto from = resolve_ns(c, a.from, "pid", "--from");
    const auto to = resolve_ns(c, a.to, "pid", "--to");
    if (!a.batch) {
        const Asking asked{"process " + a.pid + " in " + ns_words(a.from, "pid"),
                           a.from.empty() ? "pidnsctl ps" : "pidnsctl ps " + a.from};
        const auto r = asking(asked, [&] { return c.translate_pid(pid, from, to); });
        if (out.json() != JsonMode::off) {
            out.print_json(json{{"pid", pid}, {"from", from}, {"to", to}, {"result", r}});
        } else if (r != 0) {
            fmt::print("{}\n", r);
        }
        if (r == 0)
            throw CtlError(kNotFound, "process " + a.pid + " of " + ns_words(a.from, "pid") + " has no pid in " +
                                          ns_words(a.to, "pid") + ": it runs outside it" +
                                          (a.from.empty() ? "; pidnsctl status " + a.pid + " shows its pid at every level"
                                                          : ""));
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
        auto r = asking({}, [&] { return c.translate_pids(part, from, to); });
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
    const auto described =
        asking({"process " + pid_arg + " in your pid namespace", ""}, [&] { return c.describe_process(pid); });
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
    if (described.threads.size() > 1) {
        std::string threads;
        for (auto t : described.threads) threads += (threads.empty() ? "" : " ") + num(t);
        line("Threads", threads);
    }
    fmt::print("\n");
    auto at = [](const std::vector<std::uint32_t>& v, std::size_t i) { return i < v.size() ? num(v[i]) : "-"; };
    Table t({{"LEVEL", true}, {"PID", true}, {"TGID", true}, {"PGID", true}, {"SID", true}, {"PID NAMESPACE", false, true}});
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
            n.init_nspid.empty() ? (n.info.init_pid ? num(n.info.init_pid) : "-") : chain_text(n.init_nspid);
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
    if (!ns_arg.empty()) root_id = resolve_ns(c, ns_arg, "pid");
    auto pid_ns = asking({}, [&] { return c.list_namespaces("pid"); });
    if (root_id != 0 && std::none_of(pid_ns.begin(), pid_ns.end(), [&](const auto& n) { return n.id == root_id; }))
        throw CtlError(kNotFound, "no " + ns_words(ns_arg, "pid") +
                                      " that you may see (it went away); pidnsctl list -t pid shows the pid namespaces");
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
        auto everything = asking({}, [&] { return c.list_namespaces(""); });
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
    if (legend) fmt::print("\n{}.\n", count_of(shown.size(), "pid namespace", "pid namespaces"));
    if (!all_types) return kOk;
    fmt::print("\n");
    for (auto r : users.roots) tree_text(out, users, r, "", "");
    for (const auto& o : unowned)
        fmt::print("{} id {} processes {} (owner not visible)\n", ns_name(o), o.id, o.nprocs);
    if (legend) fmt::print("\n{}.\n", count_of(users.nodes.size(), "user namespace", "user namespaces"));
    return kOk;
}

int cmd_ps(Client& c, Output& out, const std::string& ns_arg, bool legend) {
    const auto ref = resolve_ns(c, ns_arg, "");
    const auto pids = asking({ns_words(ns_arg, ""), ""}, [&] { return c.list_processes(ref); });
    struct Row {
        std::uint32_t pid;
        std::vector<std::uint32_t> nspid;
        std::string command;
        pidns::client::Labels labels;
    };
    std::vector<Row> rows;
    for (auto pid : pids) {
        try {
            auto d = asking({"process " + num(pid), ""}, [&] { return c.describe_process(pid); });
            rows.push_back({pid, std::move(d.process.nspid), {}, std::move(d.labels)});
        } catch (const CtlError& e) {
            if (e.code() != kNotFound) throw;  // it exited since it was listed
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
    Table t({{"PID", true}, {"NSPID", false}, {"UNIT", false, true}, {"CONTAINER", false, true}, {"COMMAND", false, true}});
    for (const auto& r : rows)
        t.add({num(r.pid), chain_text(r.nspid), or_dash(r.labels.unit), or_dash(container_text(r.labels)), r.command});
    t.print(out, legend);
    if (legend) fmt::print("\n{} listed.\n", count_of(rows.size(), "process", "processes"));
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
    // Each namespace's inode and labels as list shows them, from the snapshot and each
    // NamespaceAdded, so a removal says what went. Events are handled after the signal dispatch
    // that queued them.
    struct Known {
        std::uint64_t inode = 0;
        pidns::client::Labels labels;
    };
    std::map<std::uint64_t, Known> known;
    std::deque<NamespaceEvent> events;
    g_event_sink = [&events](const NamespaceEvent& e) { events.push_back(e); };
    // The snapshot also tells pidnsd which namespaces this subscriber knows of: it signals the
    // removal of those too (pidnsd signals removals only of namespaces a subscriber was told of).
    auto snapshot = [&] {
        known.clear();
        for (auto& d : asking({}, [&] { return c.describe_namespaces(""); }))
            known[d.ns.id] = {d.ns.inode, std::move(d.labels)};
    };
    auto print = [&out](const NamespaceEvent& e, const Known& k) {
        const auto& l = k.labels;
        std::uint64_t usec = 0;
        const std::string ts = now_text(usec);
        if (out.json() != JsonMode::off) {
            json j = e;
            if (k.inode != 0) j["inode"] = k.inode;
            j["timestamp"] = ts;
            j["realtime_usec"] = usec;
            const json labels = l;
            for (const auto& [k, v] : labels.items()) j[k] = v;
            std::fputs((j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n").c_str(), stdout);
        } else if (e.kind == NamespaceEvent::Kind::resync) {
            fmt::print("{} resync (changes were dropped; listed again)\n", ts);
        } else {
            // Its id and inode, then list's CONTAINER, UNIT and COMMAND columns; the command last (a
            // comm may hold spaces).
            fmt::print("{} {:<7} {:<6} {} {} {} {} {}\n", ts, to_string(e.kind), pidns::printable_text(e.type), e.id,
                       k.inode != 0 ? num(k.inode) : "-", pidns::printable_text(or_dash(container_text(l))),
                       pidns::printable_text(or_dash(l.unit)), pidns::printable_text(or_dash(l.command)));
        }
        std::fflush(stdout);
    };
    auto handle = [&](const NamespaceEvent& e) {
        Known k;
        if (e.kind == NamespaceEvent::Kind::added) {
            try {
                auto d = c.describe_namespace(e.id);
                k = {d.ns.inode, std::move(d.labels)};
                known[e.id] = k;
            } catch (const pidns::client::Error& err) {
                // Gone already, or refused (a quota): the event without its labels.
                if (err.kind() == ErrorKind::unavailable) throw;
            }
        } else if (e.kind == NamespaceEvent::Kind::removed) {
            if (auto it = known.find(e.id); it != known.end()) {
                k = std::move(it->second);
                known.erase(it);
            }
        } else {
            snapshot();
        }
        print(e, k);
    };
    asking({}, [&] { c.subscribe(); });
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

std::string vpids_text(const std::vector<std::uint32_t>& v) { return chain_text(v); }

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

// The pid namespace to dump: checked as every reference is (resolve_ns), and passed to pidnsd as
// the user typed it when that is a number, so that polkit rules see the namespace detail as given
// (pidnsd(8): polkit details).
std::uint64_t dump_reference(Client& c, const std::string& arg) {
    const auto id = resolve_ns(c, arg, "pid");
    std::uint64_t typed = 0;
    const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), typed);
    return ec == std::errc() && end == arg.data() + arg.size() ? typed : id;
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
    if (!a.ns.empty()) ref = dump_reference(c, a.ns);
    const auto live = asking({ns_words(a.ns, "pid"), ""}, [&] { return c.dump_pid_tree(ref); });
    const auto diffs = dump_differences(was, live);
    if (out.json() != JsonMode::off) {
        out.print_json(json{{"namespace", ref}, {"match", diffs.empty()}, {"differences", diffs}});
    } else {
        for (const auto& d : diffs) fmt::print("{}\n", d);
        if (diffs.empty() && a.legend) fmt::print("The live tree matches {}: {}.\n", a.check, count_of(live.size(), "task", "tasks"));
    }
    if (diffs.empty()) return kOk;
    std::cerr << "pidnsctl: the live tree differs from " << pidns::printable_text(a.check) << " ("
              << count_of(diffs.size(), "difference", "differences") << ")\n";
    return kFailure;
}

}  // namespace

int cmd_dump(Client& c, Output& out, const DumpArgs& a) {
    if (!a.check.empty()) return check_dump(c, out, a);
    const auto ref = dump_reference(c, a.ns);
    const auto d = asking({ns_words(a.ns, "pid"), ""}, [&] { return c.dump_pid_tree_with_sequence(ref); });
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
    if (a.legend)
        fmt::print("\n{} dumped{}.\n", count_of(d.tasks.size(), "task", "tasks"),
                   d.sequence ? fmt::format(" at event {}", d.sequence) : "");
    return kOk;
}

int cmd_stats(Client& c, Output& out, bool legend) {
    const auto s = asking({}, [&] { return c.statistics(); });
    out.page();
    if (out.json() != JsonMode::off) {
        json j = json::object();
        for (const auto& [k, v] : s) pidns::client::to_json(j[k], v);
        out.print_json(j);
        return kOk;
    }
    // Durations and sizes as systemd prints them (--json keeps the numbers as pidnsd sends them).
    auto value_text = [](const std::string& key, const pidns::client::StatValue& v) {
        if (const auto* n = std::get_if<std::uint64_t>(&v)) {
            if (key.ends_with("USec")) return timespan_text(*n);
            if (key.ends_with("Bytes")) return bytes_text(*n);
        }
        return pidns::client::to_string(v);
    };
    Table t({{"KEY", false}, {"VALUE", false, true}});
    for (const auto& [k, v] : s) t.add({k, value_text(k, v)});
    t.print(out, legend);
    return kOk;
}

}  // namespace pidnsctl
