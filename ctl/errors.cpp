// pidnsctl's errors in its own words, with the exit code of each class.
#include "errors.h"

#include <cstdlib>
#include <regex>
#include <utility>

namespace pidnsctl {
namespace {

std::string g_address;  // "" : the system bus

// The bus as a user would name it.
std::string bus_words() {
    if (!g_address.empty()) return "the bus at " + g_address;
    if (const char* env = std::getenv("DBUS_SYSTEM_BUS_ADDRESS"); env && *env)
        return std::string("the system bus (DBUS_SYSTEM_BUS_ADDRESS=") + env + ")";
    return "the system bus";
}

// pidnsd's own words made pidnsctl's: no pointer to a D-Bus method ("(pids: ListProcesses(0))"),
// and a method named by the command that calls it.
std::string cli_text(std::string msg) {
    static const std::regex pointer(R"( \([a-z ]+: [A-Z][A-Za-z]+(\([^)]*\))?\)$)");
    msg = std::regex_replace(msg, pointer, "");
    static const std::pair<const char*, const char*> kCommands[] = {
        {"TranslatePids", "translate --batch"}, {"TranslatePid", "translate"},
        {"DumpPidTreeWithSequence", "dump"},    {"DumpPidTree", "dump"},
        {"DescribeNamespaces", "list"},         {"ListNamespaces", "list"},
        {"ListProcesses", "ps"},                {"DescribeProcess", "status"},
        {"GetProcess", "status"},               {"GetStatistics", "stats"},
    };
    for (const auto& [method, command] : kCommands)
        for (std::size_t at; (at = msg.find(method)) != std::string::npos;) msg.replace(at, std::string(method).size(), command);
    return msg;
}

std::string or_default(const std::string& s, const char* dflt) { return s.empty() ? dflt : s; }

}  // namespace

void set_bus_address(const std::string& address) { g_address = address; }

CtlError cannot_connect(const pidns::client::Error& e) {
    // sd-bus says why: "Failed to open bus (No such file or directory)".
    std::string why = e.message();
    if (const auto colon = why.rfind(": "); colon != std::string::npos) why = why.substr(colon + 2);
    const std::string hint = g_address.empty()
                                 ? "is D-Bus running? (systemctl status dbus); --address=ADDRESS or "
                                   "DBUS_SYSTEM_BUS_ADDRESS names another bus"
                                 : "is a bus listening there? An address looks like unix:path=/run/dbus/system_bus_socket";
    return {kFailure, "cannot connect to " + bus_words() + ": " + why + "; " + hint, e.name(), e.message()};
}

CtlError in_cli_words(const pidns::client::Error& e, const Asking& a) {
    using pidns::client::ErrorKind;
    const std::string& name = e.name();
    const std::string said = cli_text(e.message());
    auto error = [&](int code, const std::string& what) { return CtlError(code, what, name, e.message()); };
    // The bus is there, pidnsd is not (and could not be started).
    if (name == "org.freedesktop.DBus.Error.ServiceUnknown" || name == "org.freedesktop.DBus.Error.NameHasNoOwner") {
        if (!g_address.empty())
            return error(kFailure, "pidnsd is not running on " + bus_words() +
                                       " (nothing owns the name org.pidns there); start it there: pidnsd --bus=" +
                                       g_address);
        return error(kFailure, "pidnsd is not running on " + bus_words() +
                                   " (nothing owns the name org.pidns, and the bus knows no way to start it); "
                                   "start it: systemctl start pidnsd (it comes with the pidnsd package)");
    }
    if (name.starts_with("org.freedesktop.DBus.Error.Spawn.") || name.starts_with("org.freedesktop.systemd1."))
        return error(kFailure, "the bus could not start pidnsd (" + e.message() +
                                   "); see systemctl status pidnsd and journalctl -u pidnsd");
    if (name == "org.freedesktop.DBus.Error.NoReply" || name == "org.freedesktop.DBus.Error.Timeout")
        return error(kFailure, "pidnsd did not answer in time; see its log: journalctl -u pidnsd");
    const std::string subject = or_default(a.subject, "that");
    switch (e.kind()) {
    case ErrorKind::no_such_process:
        return error(kNotFound, "no " + or_default(a.subject, "such process") + " that you may see; " +
                                    or_default(a.lister, "pidnsctl ps") + " lists the processes you may see");
    case ErrorKind::no_such_namespace:
        return error(kNotFound, "no " + or_default(a.subject, "such namespace") + " that you may see; " +
                                    or_default(a.lister, "pidnsctl list") + " shows the namespaces you may see");
    case ErrorKind::not_pid_namespace:
        return error(kUsage, subject + " is not a pid namespace; pidnsctl list -t pid shows the pid namespaces");
    case ErrorKind::ambiguous_namespace:
        return error(kAmbiguous, subject + " is both the id of one namespace and the inode of another; "
                                           "pidnsctl list -o ID,INODE,TYPE shows which, give the other's id");
    case ErrorKind::access_denied: {
        static const std::regex dump_count(R"(you may not inspect (\d+) of the (\d+) tasks)");
        const std::string polkit = "run pidnsctl as its user or as root, or ask an administrator for "
                                   "polkit's org.pidns.inspect";
        if (std::smatch m; std::regex_search(e.message(), m, dump_count))
            return error(kAccessDenied, "you may not inspect " + m[1].str() + " of the " + m[2].str() + " tasks of " +
                                            subject + " (the kernel's ptrace read rule), and a dump is never "
                                            "partial; dump a namespace further down (pidnsctl tree shows them), "
                                            "run pidnsctl as their user or as root, or ask an administrator for "
                                            "polkit's org.pidns.inspect");
        if (e.message().find("so nobody may inspect it") != std::string::npos)
            return error(kAccessDenied, "nobody may inspect " + or_default(a.subject, "that process") +
                                            ": the kernel does not show its namespaces even to pidnsd (as a "
                                            "virtual machine's or a container's own pid 1); ask about another pid");
        return error(kAccessDenied, "you may not inspect " + or_default(a.subject, "that process") +
                                        " (the kernel's ptrace read rule: the same user as it, or CAP_SYS_PTRACE "
                                        "over it); " + polkit);
    }
    case ErrorKind::invalid_args: return error(kUsage, said);
    case ErrorKind::limits_exceeded:
        return error(kFailure, "pidnsd refused for one of its limits: " + said);
    case ErrorKind::unavailable:
        return error(kFailure, "lost " + bus_words() + " or pidnsd on it (" + e.message() + ")");
    case ErrorKind::failed: break;
    }
    return error(kFailure, "pidnsd failed: " + said);
}

}  // namespace pidnsctl
