// The answers that describe a namespace or a process (describe.cpp): a{sv} keys and the label policy.
#pragma once

#include <sdbus-c++/Types.h>

#include <cstdint>
#include <map>
#include <string>

#include "labels.h"
#include "result.h"
#include "view.h"
#include "wire.h"

namespace pidns {
class EngineState;
class Model;
class TextBudget;
}  // namespace pidns

namespace pidnsd {

class Machines;

using Description = std::map<std::string, sdbus::Variant>;
using NamespaceTuple = pidns::bus::WireNamespace;

// ListNamespaces's and GetNamespace's tuple for one entry.
NamespaceTuple to_tuple(const pidns::NamespaceEntry& e);

// DescribeNamespace's keys for one built entry: GetNamespace's, then its representative's labels
// (read now, or read ahead during this call when `labels_read` is given; left out when it exited
// since), its names and holders. Text goes out escaped within `budget` (the whole reply's).
Description describe_entry(pidns::CallerView& v, pidns::UserNames& users, const Machines* machines,
                           pidns::EngineState* engines, pidns::Model& model, const pidns::NamespaceEntry& e,
                           pidns::Result<pidns::Labels>* labels_read, pidns::TextBudget& budget);

// DescribeProcess's keys for process `pid` (as the caller named it), from its description.
Description describe_process(pidns::CallerView& v, pidns::UserNames& users, const Machines* machines,
                             pidns::EngineState* engines, std::uint32_t pid, pidns::ProcessDescription& p);

}  // namespace pidnsd
