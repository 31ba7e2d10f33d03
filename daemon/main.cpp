// pidnsd: wires options, logging and the daemon together.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <span>

#include "daemon.h"
#include "logging.h"
#include "options.h"

#ifndef PIDNSD_VERSION
#define PIDNSD_VERSION "unknown"
#endif

int main(int argc, char** argv) {
    auto opts = pidnsd::parse_options(std::span<const char* const>(argv + 1, static_cast<std::size_t>(argc - 1)));
    if (!opts) {
        std::fprintf(stderr, "pidnsd: %s\n", opts.error().message.c_str());
        return pidnsd::kExitUsage;
    }
    if (opts->help) {
        std::fputs(pidnsd::usage().c_str(), stdout);
        return pidnsd::kExitOk;
    }
    if (opts->version) {
        std::puts("pidnsd " PIDNSD_VERSION);
        return pidnsd::kExitOk;
    }
    pidnsd::setup_logging(opts->log_level);
    try {
        auto d = pidnsd::Daemon::start(*opts);
        if (!d) {
            spdlog::critical("{}", d.error().describe());
            return pidnsd::kExitFailure;
        }
        return (*d)->run();
    } catch (const std::exception& e) {
        spdlog::critical("fatal: {}", e.what());
        return pidnsd::kExitFailure;
    }
}
