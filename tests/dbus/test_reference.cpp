// One source for the API reference: the interface XML's doc annotations (org.gtk.GDBus.DocString). Every key pidnsd returns
// in a dictionary (GetStatistics, DescribeNamespace(s), DescribeProcess) must be documented in the
// doc of that method, so the reference cannot drift from the code (README and the man pages point
// to the XML instead of repeating the keys).
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "harness.h"

using namespace pidns::harness;

namespace {

std::string xml_text() {
    std::ifstream f(std::string(PIDNS_SOURCE_DIR) + "/dbus/org.pidns.Manager1.xml");
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The doc of one method: its org.gtk.GDBus.DocString annotation (as the XML writes it: entities
// such as &quot; stay, which no key contains).
std::string method_doc(const std::string& xml, const std::string& method) {
    const auto start = xml.find("<method name=\"" + method + "\">");
    REQUIRE(start != std::string::npos);
    const auto end = xml.find("</method>", start);
    const auto block = xml.substr(start, end - start);
    const std::string attr = "name=\"org.gtk.GDBus.DocString\" value=\"";
    const auto p = block.find(attr);
    REQUIRE(p != std::string::npos);
    const auto q = block.find('"', p + attr.size());
    return block.substr(p + attr.size(), q - p - attr.size());
}

bool documents(const std::string& doc, const std::string& key) {
    return std::regex_search(doc, std::regex("(^|[^A-Za-z])" + key + "([^A-Za-z]|$)"));
}

template <class Map>
void check_documented(const std::string& method, const Map& answer, std::set<std::string>& seen) {
    const auto doc = method_doc(xml_text(), method);
    for (const auto& [key, value] : answer) {
        (void)value;
        seen.insert(key);
        INFO(method << " returns key " << key);
        CHECK(documents(doc, key));
    }
}

}  // namespace

TEST_CASE("the interface XML documents every key GetStatistics and the Describe methods return") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    std::set<std::string> seen;
    check_documented("GetStatistics", c.GetStatistics(), seen);
    CHECK(seen.size() >= 30);  // root gets them all

    // A process with a net namespace of its own held by ip-netns-like bind mount is not needed:
    // the keys are the same for every namespace that has them; take the union over all of them.
    Proc p({"unshare", "-n", "sleep", "1000"});
    wait_comm(p.pid(), "sleep");
    seen.clear();
    for (const auto& dn : c.DescribeNamespaces("")) check_documented("DescribeNamespace", dn, seen);
    for (const char* key : {"Id", "Inode", "Type", "Parent", "Owner", "Level", "InitPid", "Processes", "OwnerUid",
                            "RepresentativePid", "Command", "Uid", "User", "CGroup", "Holders"})
        CHECK(seen.count(key) == 1);
    seen.clear();
    check_documented("DescribeProcess", c.DescribeProcess(static_cast<std::uint32_t>(p.pid())), seen);
    for (const char* key : {"Pid", "NSpid", "NStgid", "NSpgid", "NSsid", "Namespaces", "Threads", "Uid", "User",
                            "Command", "CGroup"})
        CHECK(seen.count(key) == 1);
}
