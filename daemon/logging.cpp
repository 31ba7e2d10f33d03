// spdlog set-up: journal sink under systemd, stderr otherwise.
#include "logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace pidnsd {

namespace {

bool stderr_is_journal() {
    // systemd sets JOURNAL_STREAM=DEV:INODE for the stream it connects; a terminal started from a
    // service inherits the variable but not the stream, so compare (as sd_journal_stream_fd's docs say).
    const char* env = std::getenv("JOURNAL_STREAM");
    if (env == nullptr) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    if (fstat(STDERR_FILENO, &st) != 0) return false;
    return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

}  // namespace

void setup_logging(const std::string& level) {
    std::shared_ptr<spdlog::logger> logger;
    if (stderr_is_journal()) {
        auto sink = std::make_shared<spdlog::sinks::systemd_sink_st>("pidnsd");
        logger = std::make_shared<spdlog::logger>("pidnsd", sink);
        logger->set_pattern("%v");
    } else {
        logger = std::make_shared<spdlog::logger>("pidnsd", std::make_shared<spdlog::sinks::stderr_sink_st>());
        logger->set_pattern("%Y-%m-%d %H:%M:%S.%e pidnsd[%P] %l: %v");
    }
    logger->set_level(spdlog::level::from_str(level));
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
}

}  // namespace pidnsd
