// The scheduler's run queue: two rings of principals, each with its connections in turn.
#include "run_queue.h"

namespace pidnsd {

void RunQueue::push(const Principal& p, std::string connection) {
    Ring& r = rings_[p.privileged ? 1 : 0];
    auto& q = r.waiting[p];
    if (q.empty()) r.turns.push_back(p);  // a principal is in `turns` exactly while it has connections waiting
    q.push_back(std::move(connection));
}

std::optional<std::pair<Principal, std::string>> RunQueue::take(bool privileged) {
    Ring& r = rings_[privileged ? 1 : 0];
    if (r.turns.empty()) return std::nullopt;
    const Principal p = r.turns.front();
    r.turns.pop_front();
    auto it = r.waiting.find(p);
    std::string name = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty())
        r.waiting.erase(it);
    else
        r.turns.push_back(p);
    return std::make_pair(p, std::move(name));
}

}  // namespace pidnsd
