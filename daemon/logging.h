// spdlog set-up: the systemd journal when stderr is systemd's journal stream (JOURNAL_STREAM), else stderr.
#pragma once

#include <string>

namespace pidnsd {

// Installs the default logger "pidnsd" at `level` (a name accepted by parse_options).
void setup_logging(const std::string& level);

}  // namespace pidnsd
