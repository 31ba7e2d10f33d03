// Which processes hold namespaces open by fd, from a BPF task_file iterator (bpf/nsfs_fds.bpf.c):
// one pass in the kernel instead of listing every /proc/PID/fd and reading each entry, which
// alone costs a full rescan half again the reads of the processes themselves (bench_translate).
// Only a hint: each record is confirmed through /proc before it is believed (read_listed_fds).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "result.h"

namespace pidns {

// One fd of a process's fd table that is an nsfs file.
struct NsfsFdRecord {
    std::int32_t tgid;
    std::int32_t fd;
    std::uint64_t inode;
};
static_assert(sizeof(NsfsFdRecord) == 16);

// For each thread-group leader, one fd per namespace inode it holds (fd numbers ascending per
// inode: the lowest seen). Bounded by the namespaces that exist, whatever the fd count.
using NsfsFdsByPid = std::unordered_map<std::int32_t, std::vector<std::pair<std::int32_t, std::uint64_t>>>;

// Folds a stream of records (as the iterator writes them) into `out`: the same (tgid, inode)
// once, records with a pid or fd out of range skipped. Returns the bytes consumed (a whole number
// of records; a partial one at the end is left for the next call).
std::size_t fold_nsfs_fd_records(std::span<const std::byte> bytes, NsfsFdsByPid& out);

class NsfsFdIter {
public:
    // Loads the iterator. Errc::unsupported with the reason when it cannot be (no BTF, a kernel
    // before 5.8, no CAP_BPF and CAP_PERFMON, bpf() filtered): the caller reads /proc instead.
    static Result<std::unique_ptr<NsfsFdIter>> load();
    ~NsfsFdIter();
    NsfsFdIter(const NsfsFdIter&) = delete;
    NsfsFdIter& operator=(const NsfsFdIter&) = delete;

    // One pass over every task of the caller's pid namespace (thread-safe: each pass has its own
    // iterator fd). Pids are the kernel's global ones: use this only from the initial pid
    // namespace, with a /proc of it (in_initial_pid_namespace).
    [[nodiscard]] Result<NsfsFdsByPid> list() const;
    // Whether a pass can be started now (an iterator fd made and closed, nothing read): with this
    // thread's capabilities, as the kernel decides.
    [[nodiscard]] bool startable() const;

private:
    struct Impl;
    explicit NsfsFdIter(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Whether this process is in the initial pid namespace and `proc_fd` is a /proc of it (its
// "self" names our own pid): then the iterator's pids are /proc's.
bool in_initial_pid_namespace(int proc_fd);

}  // namespace pidns
