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
    std::string columns;             // -o, comma-separated; empty: all
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

// The column names `list -o` accepts, in their default order.
const std::vector<std::string>& list_columns();

}  // namespace pidnsctl
