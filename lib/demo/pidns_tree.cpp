// pidns-tree: a small demo of libpidns — prints the pid namespace tree with each process's NSpid chain.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "model.h"

namespace {

void usage() {
    std::puts("usage: pidns-tree [--max-procs N] [--all]\n"
              "  Scans /proc and prints every pid namespace below ours, each with its\n"
              "  processes and their NSpid chains (our view first, their own namespace last).\n"
              "  --max-procs N  processes shown per namespace (default 5, 0 = all)\n"
              "  --all          also list the namespaces of the other seven types");
}

std::string chain(std::span<const std::int32_t> c) {
    std::string s;
    for (auto v : c) {
        if (!s.empty()) s += ' ';
        s += std::to_string(v);
    }
    return s;
}

void print_pidns(const pidns::Index& idx, const std::map<pidns::NsId, std::vector<pidns::NsId>>& children,
                 pidns::NsId id, int depth, std::size_t max_procs) {
    const auto* ns = idx.find_namespace(id);
    if (!ns) return;
    std::string indent(static_cast<std::size_t>(depth) * 2, ' ');
    std::vector<std::int32_t> members(ns->members.begin(), ns->members.end());
    std::sort(members.begin(), members.end());
    std::printf("%spid:[%llu] id=%llu level=%u processes=%zu held-by=%s\n", indent.c_str(),
                static_cast<unsigned long long>(ns->meta.inode), static_cast<unsigned long long>(id), ns->meta.level,
                members.size(), pidns::holders_to_string(ns->holders()).c_str());
    std::size_t shown = 0;
    for (auto pid : members) {
        if (max_procs && shown++ == max_procs) {
            std::printf("%s  ... %zu more\n", indent.c_str(), members.size() - max_procs);
            break;
        }
        const auto* p = idx.find_process(pid);
        std::printf("%s  %-8d NSpid: %s\n", indent.c_str(), pid, chain(p->chains.nspid()).c_str());
    }
    if (auto it = children.find(id); it != children.end())
        for (auto c : it->second) print_pidns(idx, children, c, depth + 1, max_procs);
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t max_procs = 5;
    bool all = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--max-procs") && i + 1 < argc) {
            max_procs = std::strtoul(argv[++i], nullptr, 10);
        } else if (!std::strcmp(argv[i], "--all")) {
            all = true;
        } else {
            usage();
            return std::strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    auto model = pidns::Model::create();
    if (!model) {
        std::fprintf(stderr, "pidns-tree: %s\n", model.error().describe().c_str());
        return 1;
    }
    auto report = (*model)->rescan();
    if (!report) {
        std::fprintf(stderr, "pidns-tree: scan failed: %s\n", report.error().describe().c_str());
        return 1;
    }
    const auto& idx = (*model)->index();
    std::printf("%zu processes, %zu namespaces, scanned in %.1f ms (kernel namespace ids: %s)\n\n",
                report->processes, report->namespaces, static_cast<double>(report->duration.count()) / 1000.0,
                (*model)->features().ns_get_id ? "yes" : "no, assigned");
    std::map<pidns::NsId, std::vector<pidns::NsId>> children;
    for (const auto& [id, ns] : idx.namespaces())
        if (ns.meta.type == pidns::NsType::pid && ns.meta.parent) children[ns.meta.parent].push_back(id);
    for (auto& [p, c] : children) std::sort(c.begin(), c.end());
    print_pidns(idx, children, idx.root_pidns(), 0, max_procs);
    if (all) {
        std::printf("\n%-6s %-12s %-22s %-8s %-22s %s\n", "TYPE", "INODE", "ID", "NPROCS", "OWNER", "HELD-BY");
        std::vector<const pidns::Namespace*> list;
        for (const auto& [id, ns] : idx.namespaces()) list.push_back(&ns);
        std::sort(list.begin(), list.end(), [](auto* a, auto* b) { return a->meta.inode < b->meta.inode; });
        for (const auto* ns : list)
            std::printf("%-6s %-12llu %-22llu %-8zu %-22llu %s\n", std::string(pidns::ns_type_name(ns->meta.type)).c_str(),
                        static_cast<unsigned long long>(ns->meta.inode), static_cast<unsigned long long>(ns->meta.id),
                        ns->members.size(), static_cast<unsigned long long>(ns->meta.owner),
                        pidns::holders_to_string(ns->holders()).c_str());
    }
    return 0;
}
