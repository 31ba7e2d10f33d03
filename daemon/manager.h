// org.pidns.Manager1 on /org/pidns: each handler parses, identifies the caller, asks the model, replies.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

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

inline constexpr const char* kBusName = "org.pidns";
inline constexpr const char* kObjectPath = "/org/pidns";

class Manager final : public sdbus::AdaptorInterfaces<org::pidns::Manager1_adaptor> {
public:
    Manager(sdbus::IConnection& conn, pidns::Model& model, CallerRegistry& callers, const std::string& event_source);
    ~Manager();
    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;

    // NamespaceAdded / NamespaceRemoved for each change, unicast to the clients allowed to know.
    void emit_changes(const std::vector<pidns::NsChange>& changes);
    void set_event_source(std::string source) { event_source_ = std::move(source); }

    using NamespaceTuple = sdbus::Struct<uint64_t, uint64_t, std::string, uint64_t, uint64_t, uint32_t, uint32_t,
                                         uint32_t, uint32_t>;

private:
    uint32_t TranslatePid(const uint32_t& pid, const uint64_t& from, const uint64_t& to) override;
    std::vector<uint32_t> TranslatePids(const std::vector<uint32_t>& pids, const uint64_t& from,
                                        const uint64_t& to) override;
    std::vector<NamespaceTuple> ListNamespaces(const std::string& type) override;
    NamespaceTuple GetNamespace(const uint64_t& ns) override;
    std::tuple<std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>,
               std::map<std::string, uint64_t>>
    GetProcess(const uint32_t& pid) override;
    std::vector<uint32_t> ListProcesses(const uint64_t& ns) override;

    std::string Version() override;
    uint32_t Namespaces() override;
    uint32_t Processes() override;
    std::string EventSource() override;
    bool KernelNamespaceIds() override;

    // Runs `body` with a view for `sender`, or for the sender of the method call being handled.
    template <class F>
    auto with_view(const char* method, F&& body);
    template <class F>
    auto with_view_of(const char* what, const std::string& sender, F&& body);

    pidns::Model& model_;
    CallerRegistry& callers_;
    std::string event_source_;
    // sdbus-c++ 1.2 gives property getters no message. A match callback, which sd-bus runs
    // before dispatching the same message to the object, records who is asking.
    sdbus::Slot property_call_watch_;
    std::string property_sender_;
    std::string current_sender_;  // the sender whose call is being answered
};

}  // namespace pidnsd
