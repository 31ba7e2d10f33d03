// org.pidns.Manager1 on /org/pidns: each handler parses, identifies the caller, asks the model, replies.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "index.h"
#include "org.pidns.Manager1.adaptor.h"

namespace pidns {
class Model;
class CallerView;
}

namespace pidnsd {

class CallerRegistry;
class Polkit;

inline constexpr const char* kBusName = "org.pidns";
inline constexpr const char* kObjectPath = "/org/pidns";

class Manager final : public sdbus::AdaptorInterfaces<org::pidns::Manager1_adaptor> {
public:
    Manager(sdbus::IConnection& conn, pidns::Model& model, CallerRegistry& callers, Polkit& polkit,
            const std::string& event_source);
    ~Manager();
    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;

    // NamespaceAdded / NamespaceRemoved for each change, unicast to the clients allowed to know.
    // `touched`: processes read since the last call; a known client that may inspect one of them
    // and can now see one of its namespaces it was not told of gets NamespaceAdded for it.
    void emit_changes(const std::vector<pidns::NsChange>& changes, const std::vector<std::int32_t>& touched = {});
    void set_event_source(std::string source) { event_source_ = std::move(source); }
    // What GetStatistics returns; the daemon, which owns the counters, provides it.
    using Statistics = std::map<std::string, sdbus::Variant>;
    void set_statistics(std::function<Statistics()> provider) { statistics_ = std::move(provider); }

    using NamespaceTuple = sdbus::Struct<uint64_t, uint64_t, std::string, uint64_t, uint64_t, uint32_t, uint32_t,
                                         uint32_t, uint32_t>;

private:
    // Methods are asynchronous on the bus (Method.Async=server) so that a polkit round trip does
    // not hold up other callers.
    void TranslatePid(sdbus::Result<uint32_t>&& result, uint32_t pid, uint64_t from, uint64_t to) override;
    void TranslatePids(sdbus::Result<std::vector<uint32_t>>&& result, std::vector<uint32_t> pids, uint64_t from,
                       uint64_t to) override;
    void ListNamespaces(sdbus::Result<std::vector<NamespaceTuple>>&& result, std::string type) override;
    void GetNamespace(sdbus::Result<NamespaceTuple>&& result, uint64_t ns) override;
    void GetProcess(sdbus::Result<std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>,
                                  std::vector<uint32_t>, std::map<std::string, uint64_t>>&& result,
                    uint32_t pid) override;
    void ListProcesses(sdbus::Result<std::vector<uint32_t>>&& result, uint64_t ns) override;

    std::map<std::string, sdbus::Variant> GetStatistics() override;

    std::string Version() override;
    uint32_t Namespaces() override;
    uint32_t Processes() override;
    std::string EventSource() override;
    bool KernelNamespaceIds() override;

    // Answers the method call being handled: `compute(view)` gives the results as a tuple. When
    // the kernel's rule denied something on the way and polkit is in use, polkit is asked (without
    // blocking) and, if it authorizes, the answer is computed again with rules 2 and 3 widened.
    template <class... R, class F>
    void answer(const char* method, sdbus::Result<R...>&& result, F compute);
    // Runs `body` with a view for `sender` (property getters).
    template <class F>
    auto with_view_of(const char* what, const std::string& sender, F&& body);

    pidns::Model& model_;
    CallerRegistry& callers_;
    Polkit& polkit_;
    std::string event_source_;
    std::function<Statistics()> statistics_;
    // sdbus-c++ 1.2 gives property getters no message. A match callback, which sd-bus runs
    // before dispatching the same message to the object, records who is asking.
    sdbus::Slot property_call_watch_;
    std::string property_sender_;
    std::string current_sender_;  // the sender whose call is being answered
};

}  // namespace pidnsd
