// pidnsctl __complete: the candidates for the word being completed, for the shell completions
// (completion/pidnsctl.bash, completion/_pidnsctl), so that both complete alike from one source.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace pidnsctl {

// How long __complete may take before it gives up, printing nothing (pidnsd slow or stuck).
inline constexpr unsigned kCompleteSeconds = 3;
// At most this many candidates are printed.
inline constexpr std::size_t kMaxCandidates = 2000;

// `words`: the command line after "pidnsctl", dequoted, the last one being the word completed
// (possibly empty). Prints a directive line (":nospace": no space after a candidate, as "@" or
// "--json=" or a column of a list that may go on; ":files": complete file names; ":default"),
// then one candidate a line, "WORD<TAB>DESCRIPTION", each a whole word that starts with the last
// of `words`, as printable text. Subcommands, options, types and columns come from `app`; pids,
// namespaces, container, unit and machine names from pidnsd on the bus the words name (--address,
// --system, else the system bus), within kCompleteSeconds. Never fails: no pidnsd, no live values.
int cmd_complete(CLI::App& app, const std::vector<std::string>& words);

}  // namespace pidnsctl
