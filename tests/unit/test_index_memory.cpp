// Index memory per process, computed from its containers (Index::memory), and the per-namespace
// summaries that ListNamespaces reads instead of walking the members.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <random>
#include <unordered_map>

#include "index.h"
#include "observer_index.h"

using namespace pidns;

namespace {
using unit::kDev;

// `pods` containers under the observer, each with its own pid, mnt, net, uts and ipc namespaces
// (user, cgroup and time shared with the host), `per_pod` processes in each; host processes too.
Index make_host(int pods, int per_pod, int host_procs) {
    Index idx = unit::observer_index();
    NsId next = 100;
    std::int32_t tgid = 2;
    auto proc = [&](std::array<NsId, kNsTypeCount> ns, std::vector<std::int32_t> chain) {
        ProcessData d;
        d.tgid = chain.front();
        d.ppid = 1;
        d.start_time = static_cast<std::uint64_t>(d.tgid) * 10;
        d.ns = ns;
        d.nstgid = d.nspid = d.nspgid = d.nssid = std::move(chain);
        REQUIRE(idx.upsert_process(std::move(d)).ok());
    };
    for (int h = 0; h < host_procs; ++h) {
        proc({1, 2, 3, 4, 5, 6, 7, 8}, {tgid});
        ++tgid;
    }
    for (int c = 0; c < pods; ++c) {
        std::array<NsId, kNsTypeCount> ns{1, 2, 3, 4, 5, 6, 7, 8};
        for (auto t : {NsType::pid, NsType::mnt, NsType::net, NsType::uts, NsType::ipc}) {
            const NsId id = next++;
            NamespaceMeta m{id, t, 100000 + id, kDev, t == NsType::pid ? NsId{1} : NsId{0}, 2, 0,
                            t == NsType::pid ? 1u : 0u};
            REQUIRE(idx.add_namespace(m).ok());
            ns[ns_type_index(t)] = id;
        }
        for (int k = 0; k < per_pod; ++k) {
            proc(ns, {tgid, k + 1});
            ++tgid;
        }
    }
    return idx;
}

void check_bytes(int pods, int per_pod) {
    const Index idx = make_host(pods, per_pod, 100);
    const auto m = idx.memory();
    const double per = static_cast<double>(m.total()) / static_cast<double>(idx.process_count());
    std::printf("index memory at %zu processes in %d pid namespaces: %.0f bytes per process "
                "(processes %zu, chains %zu, threads %zu, sets %zu, namespaces %zu, pid map %zu)\n",
                idx.process_count(), pods, per, m.processes, m.chains, m.threads, m.sets, m.namespaces, m.pid_map);
    CHECK(idx.set_count() == static_cast<std::size_t>(pods) + 1);
    CHECK(per <= 300.0);
}
}  // namespace

TEST_CASE("index memory: at most 300 bytes a process at 10,000 processes in 100 pid namespaces") {
    check_bytes(100, 100);
}

TEST_CASE("index memory: at most 300 bytes a process at 100,000 processes in 1,000 pid namespaces") {
    check_bytes(1000, 100);
}

TEST_CASE("index memory: processes sharing their namespaces share one interned set, dropped with the last") {
    Index idx = make_host(2, 3, 3);
    CHECK(idx.set_count() == 3);
    const auto* a = idx.find_process(2);
    const auto* b = idx.find_process(3);
    REQUIRE((a && b));
    CHECK(a->ns.set() == b->ns.set());
    // The second pod's processes (tgids 8, 9, 10) leave: its set and its namespaces go.
    const NsId pod_pid = idx.find_process(8)->ns_of(NsType::pid);
    for (std::int32_t t : {8, 9, 10}) REQUIRE(idx.remove_process(t));
    CHECK(idx.set_count() == 2);
    CHECK_FALSE(idx.find_namespace(pod_pid));
    CHECK(idx.find_namespace(2)->members.size() == 6);  // the user namespace: the host's 3 and the first pod's 3
}

TEST_CASE("member summaries: count, lowest tgid and oldest member equal a walk over the members, under churn") {
    Index idx = make_host(3, 20, 20);
    std::mt19937 rng(7);
    std::vector<std::int32_t> live;
    for (const auto& [tgid, p] : idx.processes()) live.push_back(tgid);
    std::int32_t next = 1000;
    for (int round = 0; round < 400; ++round) {
        if (rng() % 2 && !live.empty()) {
            const auto i = rng() % live.size();
            REQUIRE(idx.remove_process(live[i]));
            live[i] = live.back();
            live.pop_back();
        } else {
            // A new host process, with a start time that sometimes is older than every other.
            ProcessData d;
            d.tgid = next++;
            d.start_time = rng() % 3 == 0 ? rng() % 50 : 100000 + static_cast<std::uint64_t>(d.tgid);
            d.ns = {1, 2, 3, 4, 5, 6, 7, 8};
            d.nstgid = d.nspid = d.nspgid = d.nssid = {d.tgid};
            REQUIRE(idx.upsert_process(std::move(d)).ok());
            live.push_back(next - 1);
        }
        for (const auto& [id, ns] : idx.namespaces()) {
            std::uint32_t count = 0;
            std::int32_t lowest = 0, oldest = 0;
            std::uint64_t oldest_start = 0;
            for (const auto tgid : ns.members) {
                const auto* p = idx.find_process(tgid);
                REQUIRE(p);
                ++count;
                if (lowest == 0 || p->chains.nstgid()[0] < lowest) lowest = p->chains.nstgid()[0];
                if (oldest == 0 || p->start_time < oldest_start || (p->start_time == oldest_start && p->tgid < oldest)) {
                    oldest = p->tgid;
                    oldest_start = p->start_time;
                }
            }
            const auto s = idx.member_summary(ns);
            CHECK(s.count == count);
            CHECK(s.lowest == lowest);
            CHECK(s.oldest == oldest);
            CHECK(s.oldest_start == oldest_start);
        }
    }
}

TEST_CASE("pid map: random sets and conditional erases agree with std::unordered_map") {
    PidMap map;
    std::unordered_map<std::uint64_t, std::int32_t> ref;
    auto key = [](NsId ns, std::int32_t nr) { return ns << 32 | static_cast<std::uint32_t>(nr); };
    std::mt19937 rng(11);
    for (int i = 0; i < 200000; ++i) {
        const NsId ns = 1 + rng() % 5;
        const std::int32_t nr = 1 + static_cast<std::int32_t>(rng() % 3000);
        const std::int32_t tid = 1 + static_cast<std::int32_t>(rng() % 4);
        if (rng() % 3) {
            map.set(ns, nr, tid);
            ref[key(ns, nr)] = tid;
        } else {
            map.erase_if(ns, nr, tid);
            if (auto it = ref.find(key(ns, nr)); it != ref.end() && it->second == tid) ref.erase(it);
        }
        if (i % 1000 == 0 || i > 199000) {
            REQUIRE(map.size() == ref.size());
            for (NsId n = 1; n <= 5; ++n)
                for (std::int32_t p = 1; p <= 3000; p += 7) {
                    const auto* got = map.find(n, p);
                    const auto it = ref.find(key(n, p));
                    REQUIRE((got != nullptr) == (it != ref.end()));
                    if (got) REQUIRE(*got == it->second);
                }
        }
    }
}
