// org.pidns.Manager1 on /org/pidns: each handler parses, then queues a call that identifies the caller, asks the model and replies.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fast_arrays.h"  // before the adaptor: whole-array au
#include "index.h"
#include "labels.h"
#include "wire.h"
#include "org.pidns.Manager1.adaptor.h"

namespace pidns {
class EngineState;
class Model;
class TextBudget;
class CallerView;
struct NamespaceEntry;
}

namespace pidnsd {

class Call;
class Clients;
class Machines;
class Polkit;
class SignalFanout;

class Manager final : public sdbus::AdaptorInterfaces<org::pidns::Manager1_adaptor> {
public:
    Manager(sdbus::IConnection& conn, pidns::Model& model, Clients& clients, Polkit& polkit,
            const std::string& event_source);
    ~Manager();
    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;

    // Sends one signal to one subscriber (the fan-out decides who gets what).
    void send_signal(const std::string& destination, const char* member, std::uint64_t id, pidns::NsType type);
    void set_fanout(SignalFanout* fanout) { fanout_ = fanout; }
    // systemd-machined's names (the Machine key); none when not set.
    void set_machines(const Machines* machines) { machines_ = machines; }
    // The engines' state that names containers (lib/engine_state.h); the cgroup patterns alone when not set.
    void set_engines(pidns::EngineState* engines) { engines_ = engines; }
    void set_event_source(std::string source) { event_source_ = std::move(source); }
    // What GetStatistics returns, for callers who may inspect everything and for the others
    // (counters about other users' activity are left out); the daemon owns the counters.
    using Statistics = std::map<std::string, sdbus::Variant>;
    void set_statistics(std::function<Statistics(bool everything)> provider) { statistics_ = std::move(provider); }

    // What DumpPidTreeWithSequence reports: the process events applied to the index so far.
    void set_event_sequence(std::function<std::uint64_t()> sequence) { event_sequence_ = std::move(sequence); }

    using DumpTuple = pidns::bus::WireDumpEntry;
    using NamespaceTuple = pidns::bus::WireNamespace;
    using Description = std::map<std::string, sdbus::Variant>;

private:
    // Methods are asynchronous on the bus (Method.Async=server): each becomes a queued call,
    // answered in slices between other callers' (daemon/clients.h), with polkit asked without
    // blocking anyone.
    void TranslatePid(sdbus::Result<uint32_t>&& result, uint32_t pid, uint64_t from, uint64_t to) override;
    void TranslatePids(sdbus::Result<std::vector<uint32_t>>&& result, std::vector<uint32_t> pids, uint64_t from,
                       uint64_t to) override;
    void ListNamespaces(sdbus::Result<std::vector<NamespaceTuple>>&& result, std::string type) override;
    void GetNamespace(sdbus::Result<NamespaceTuple>&& result, uint64_t ns) override;
    void GetProcess(sdbus::Result<std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>,
                                  std::vector<uint32_t>, std::map<std::string, uint64_t>>&& result,
                    uint32_t pid) override;
    void ListProcesses(sdbus::Result<std::vector<uint32_t>>&& result, uint64_t ns) override;
    void DescribeNamespace(sdbus::Result<Description>&& result, uint64_t ns) override;
    void DescribeNamespaces(sdbus::Result<std::vector<Description>>&& result, std::string type) override;
    void DescribeProcess(sdbus::Result<Description>&& result, uint32_t pid) override;
    void DumpPidTree(sdbus::Result<std::vector<DumpTuple>>&& result, uint64_t ns) override;
    void DumpPidTreeWithSequence(sdbus::Result<uint64_t, std::vector<DumpTuple>>&& result, uint64_t ns) override;
    void GetStatistics(sdbus::Result<std::map<std::string, sdbus::Variant>>&& result) override;
    void Subscribe(sdbus::Result<>&& result) override;
    void Unsubscribe(sdbus::Result<>&& result) override;

    std::string Version() override;
    uint32_t Namespaces() override;
    uint32_t Processes() override;
    std::string EventSource() override;
    bool KernelNamespaceIds() override;

    // DescribeNamespace's answer for one built entry.
    // `labels`: the representative's, read ahead (moved from); nullptr: read now.
    // `budget`: the reply's text budget (lib/escape.h), shared by the entries of one reply.
    Description describe(pidns::CallerView& v, const pidns::NamespaceEntry& e, pidns::Result<pidns::Labels>* labels,
                         pidns::TextBudget& budget);
    // The unique name of the sender of the message being handled.
    std::string sender() const;
    // Hands a call to the scheduler; a refusal is answered here (for a quota, later).
    void queue(std::unique_ptr<Call> call);
    // Property getters: runs `count` over a view of the sender that counts on remembered credentials.
    template <class F>
    uint32_t count_for_property(const char* what, F&& count);

    pidns::Model& model_;
    Clients& clients_;
    Polkit& polkit_;
    SignalFanout* fanout_ = nullptr;
    const Machines* machines_ = nullptr;
    pidns::EngineState* engines_ = nullptr;
    std::string event_source_;
    std::function<Statistics(bool)> statistics_;
    std::function<std::uint64_t()> event_sequence_;
    pidns::UserNames users_;  // uid -> name for User keys (/etc/passwd only)
    // sdbus-c++ 1.2 gives property getters no message. A match callback, which sd-bus runs
    // before dispatching the same message to the object, records who is asking.
    sdbus::Slot property_call_watch_;
    std::string property_sender_;
};

}  // namespace pidnsd
