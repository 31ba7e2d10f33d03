// Who could have named a cgroup: the owners of the directories it was made in (a user's delegated
// subtree), read from the cgroup filesystem without following anything a user made.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace pidns {

// The directory of the hierarchy systemd_cgroup_path() reads paths of, in this process's mount
// namespace: /sys/fs/cgroup/systemd (cgroup v1, name=systemd) when /proc/self/cgroup shows that
// hierarchy, else the cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified. Opened once
// (O_PATH), and only when it has that filesystem type (statfs); -1 when there is none.
int systemd_hierarchy_fd();

// Who could have created or renamed the `depth`-th component of cgroup `path` (a path from
// /proc/PID/cgroup, relative to the root of `root_fd`'s hierarchy), so who could have chosen the
// name a label is read from: whoever may write a directory above it, from the hierarchy's root
// down to its parent.
//   nullopt: root owns each of those directories and none lets its group or others write;
//   a host uid: the owner of the first of them (from the root down) that root does not own (a
//     delegated subtree, such as a user@UID.service), or kOverflowId (65534) when the first such
//     directory lets its group or others write, or when the walk could not be made (no
//     hierarchy, a directory gone since the path was read, a mount in the way).
// Each directory is looked at with fstatat(AT_SYMLINK_NOFOLLOW) below `root_fd`, from the top down,
// and must be a directory on the hierarchy's filesystem (st_dev) before anything below it is
// looked up through it: nothing is followed (cgroupfs has no symbolic links, and none can be
// made), nothing is opened or read. The cgroup filesystem is the kernel's: no lookup in it waits
// on a user; a path is at most PATH_MAX bytes.
std::optional<std::uint32_t> cgroup_label_owner(int root_fd, std::string_view path, std::size_t depth);

// The same for every depth from 1 to `depth` in one walk (element d-1 for depth d): what
// read_labels asks for a unit and a container on one path.
std::vector<std::optional<std::uint32_t>> cgroup_label_owners(int root_fd, std::string_view path, std::size_t depth);

}  // namespace pidns
