// pidnsctl's subcommands, each given a connected Client and the output settings.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "client.h"
#include "output.h"

namespace pidnsctl {

struct ListArgs {
    std::vector<std::string> types;  // -t, any of the 8 names; empty: all
    std::string columns;             // -o: "A,B" or "+A,-B"; empty: the default columns
    bool legend = true;
};
struct TranslateArgs {
    std::string pid;  // empty with batch
    std::string from, to;
    bool batch = false;
};

struct DumpArgs {
    std::string ns;     // empty: yours (or, with check, the file's)
    std::string check;  // a saved `dump --json` file to compare with the live tree
    bool legend = true;
};

int cmd_list(pidns::client::Client& c, Output& out, const ListArgs& a);
int cmd_translate(pidns::client::Client& c, Output& out, const TranslateArgs& a);
int cmd_status(pidns::client::Client& c, Output& out, const std::string& pid);
int cmd_tree(pidns::client::Client& c, Output& out, const std::string& ns, bool all_types, bool legend);
int cmd_ps(pidns::client::Client& c, Output& out, const std::string& ns, bool legend);
int cmd_monitor(pidns::client::Client& c, Output& out);
int cmd_stats(pidns::client::Client& c, Output& out, bool legend);
int cmd_dump(pidns::client::Client& c, Output& out, const DumpArgs& a);

// A column of `list`: its name, what it shows, whether it is a number (right-aligned), text that
// may be shortened to fit the terminal, and shown without -o.
struct ListColumn {
    std::string name;
    std::string help;
    bool right = false;
    bool shrink = false;
    bool dflt = false;
};
// The columns `list -o` accepts, in the order the default ones are printed.
const std::vector<ListColumn>& list_columns();

}  // namespace pidnsctl
