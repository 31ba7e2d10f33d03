// pidnsctl: the command-line client of pidnsd (org.pidns on the system bus). Options and
// subcommands (CLI11), the bus connection, error messages and exit codes; the work is in commands.cpp.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>

#include "client.h"
#include "commands.h"
#include "complete.h"
#include "errors.h"
#include "escape.h"
#include "ns_arg.h"
#include "output.h"

namespace pidnsctl {
extern std::function<void(const pidns::client::NamespaceEvent&)> g_event_sink;
}

namespace {

using namespace pidnsctl;

void print_error(const CtlError& e, bool verbose) {
    const bool color = Output::stderr_color();
    // Messages may quote names a user chose (pidnsd's are escaped already): no line of them may
    // drive the terminal. Line breaks of pidnsctl's own (candidate lists) stay.
    auto printable_lines = [](const std::string& message) {
        std::string s;
        for (std::size_t at = 0; at <= message.size();) {
            const auto nl = std::min(message.find('\n', at), message.size());
            if (at > 0) s += '\n';
            s += pidns::printable_text(std::string_view(message).substr(at, nl - at));
            at = nl + 1;
        }
        return s;
    };
    std::string s = printable_lines(e.what());
    // --verbose: what the bus said, as it said it.
    if (verbose && !e.dbus_name().empty())
        s += "\n  (D-Bus error " + pidns::printable_text(e.dbus_name()) +
             (e.dbus_message().empty() ? "" : ": " + printable_lines(e.dbus_message())) + ")";
    std::cerr << (color ? "\x1b[31;1m" : "") << "pidnsctl: " << s << (color ? "\x1b[0m" : "") << "\n";
}

std::string column_list() {
    std::string s, dflt;
    for (const auto& c : list_columns()) {
        s += (s.empty() ? "" : ",") + c.name;
        if (c.dflt) dflt += (dflt.empty() ? "" : ",") + c.name;
    }
    return s + " (default " + dflt + "; +COL adds one to those, -COL removes one)";
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"pidnsctl: ask pidnsd about the host's namespaces and translate pids between pid namespaces.",
                 "pidnsctl"};
    app.require_subcommand(1);
    app.fallthrough();  // the global options may follow the subcommand too
    app.set_version_flag("--version", PIDNSCTL_VERSION);
    app.footer(
        "NS (a namespace): an id or an inode (as list shows them), TYPE:[INODE] (as readlink /proc/PID/ns/TYPE\n"
        "prints it), a namespace file (/proc/PID/ns/pid, /run/netns/NAME), @PID (that process's namespace),\n"
        "container:ID|NAME (an id by at least 12 hex digits), unit:NAME (a systemd unit) or machine:NAME.\n"
        "Bus: the system bus (DBUS_SYSTEM_BUS_ADDRESS when set), or --address=ADDRESS.\n"
        "Exit status: 0 ok, 1 failure, 2 usage, 3 ambiguous name, 4 no such process or namespace, 5 access denied.\n"
        "See pidnsctl(1).");

    std::string address;
    bool system = false, no_pager = false, verbose = false, no_legend = false, full = false;
    std::string json_mode = "off";
    auto* addr_opt = app.add_option("--address", address, "Connect to the bus at ADDRESS (a D-Bus address)")
                         ->type_name("ADDRESS");
    app.add_flag("--system", system, "Connect to the system bus (the default)")->excludes(addr_opt);
    app.add_option("--json", json_mode, "Print JSON: pretty, short or off (default)")
        ->check(CLI::IsMember({"pretty", "short", "off"}))
        ->type_name("MODE");
    app.add_flag("--no-pager", no_pager, "Do not pipe the output into a pager");
    app.add_flag("--no-legend", no_legend, "Print no column headers and no footer");
    app.add_flag("-l,--full", full, "Do not shorten table cells to fit the terminal");
    app.add_flag("-v,--verbose", verbose, "Also print the D-Bus error name and pidnsd's message of an error");

    ListArgs list;
    auto* sc_list = app.add_subcommand("list", "List the namespaces you may see, one per line");
    sc_list->add_option("-t,--type", list.types, "Only namespaces of TYPE (pid user mnt net uts ipc cgroup time); may be repeated")
        ->type_name("TYPE");
    sc_list->add_option("-o,--output", list.columns, "Columns to print, comma-separated: " + column_list())
        ->type_name("COLUMNS");

    TranslateArgs tr;
    auto* sc_tr = app.add_subcommand("translate", "Translate a pid from one pid namespace to another");
    sc_tr->add_option("PID", tr.pid, "The pid, in --from's pid namespace");
    sc_tr->add_option("--from", tr.from, "Pid namespace PID is in (default: yours), e.g. @4242 or container:web")
        ->type_name("NS");
    sc_tr->add_option("--to", tr.to, "Pid namespace to translate to (default: yours)")->type_name("NS");
    sc_tr->add_flag("--batch", tr.batch, "Read pids from stdin (white-space separated); print one result a line, 0 for none");

    std::string status_pid;
    auto* sc_status = app.add_subcommand("status", "Show a process: its pid at every level with the namespace there, its namespaces");
    sc_status->add_option("PID", status_pid, "The process (or thread) id, in your pid namespace")->required();

    std::string tree_ns;
    auto* sc_tree = app.add_subcommand("tree", "Show the pid namespace hierarchy");
    sc_tree->add_option("NS", tree_ns, "Show only this pid namespace and those below it")->type_name("NS");
    bool all_types = false;
    sc_tree->add_flag("--all-types", all_types, "Also show the user namespace hierarchy, with the namespaces each owns");

    std::string ps_ns;
    auto* sc_ps = app.add_subcommand("ps", "List the processes of a namespace with their pid at every level");
    sc_ps->add_option("NS", ps_ns, "The namespace, of any type (default: your pid namespace)")->type_name("NS");

    auto* sc_monitor = app.add_subcommand("monitor", "Print namespaces as they are created and destroyed, until Ctrl-C");
    auto* sc_stats = app.add_subcommand("stats", "Show pidnsd's statistics");
    DumpArgs dump;
    auto* sc_dump = app.add_subcommand("dump", "Dump every task of a pid namespace subtree with its pid at every level (checkpoint/restore)");
    sc_dump->add_option("NS", dump.ns, "The pid namespace (default: yours; with --check: the file's)")->type_name("NS");
    sc_dump->add_option("--check", dump.check, "Compare a dump saved with --json=short dump with the live tree; exit 1 with the differences")
        ->type_name("FILE");
    for (auto* sc : {sc_list, sc_tr, sc_status, sc_tree, sc_ps, sc_monitor, sc_stats, sc_dump}) sc->fallthrough();

    // pidnsctl __complete [--] WORD...: for the shell completions (completion/), not in --help.
    if (argc >= 2 && std::strcmp(argv[1], "__complete") == 0) {
        std::vector<std::string> words(argv + 2, argv + argc);
        if (!words.empty() && words.front() == "--") words.erase(words.begin());
        return cmd_complete(app, words);
    }
    // "--address=" with nothing after it would take the next word as the address.
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--") == 0) break;
        if (std::strcmp(argv[i], "--address=") == 0 || (std::strcmp(argv[i], "--address") == 0 && i + 1 < argc && !*argv[i + 1])) {
            print_error(CtlError(kUsage, "--address needs a D-Bus address, such as unix:path=/run/dbus/system_bus_socket "
                                         "(without --address pidnsctl uses the system bus)"),
                        false);
            return kUsage;
        }
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? kOk : kUsage;
    }

    const JsonMode jm = json_mode == "pretty" ? JsonMode::pretty : json_mode == "short" ? JsonMode::short_ : JsonMode::off;
    list.legend = !no_legend;
    set_bus_address(system ? std::string() : address);
    try {
        Output out(jm, !no_pager, full);
        std::unique_ptr<pidns::client::Client> client;
        try {
            client = std::make_unique<pidns::client::Client>(pidns::client::ConnectOptions{
                system ? std::string() : address, false, [](const pidns::client::NamespaceEvent& e) {
                    if (g_event_sink) g_event_sink(e);
                }});
        } catch (const pidns::client::Error& e) {
            throw cannot_connect(e);
        }
        auto& c = *client;
        if (sc_list->parsed()) return cmd_list(c, out, list);
        if (sc_tr->parsed()) return cmd_translate(c, out, tr);
        if (sc_status->parsed()) return cmd_status(c, out, status_pid);
        if (sc_tree->parsed()) return cmd_tree(c, out, tree_ns, all_types, !no_legend);
        if (sc_ps->parsed()) return cmd_ps(c, out, ps_ns, !no_legend);
        if (sc_monitor->parsed()) return cmd_monitor(c, out);
        if (sc_stats->parsed()) return cmd_stats(c, out, !no_legend);
        if (sc_dump->parsed()) {
            dump.legend = !no_legend;
            return cmd_dump(c, out, dump);
        }
        return kUsage;
    } catch (const CtlError& e) {
        print_error(e, verbose);
        return e.code();
    } catch (const pidns::client::Error& e) {
        const auto ctl = in_cli_words(e);
        print_error(ctl, verbose);
        return ctl.code();
    } catch (const std::exception& e) {
        print_error(CtlError(kFailure, e.what()), verbose);
        return kFailure;
    }
}
