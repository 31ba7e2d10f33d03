// spdlog set-up: journal sink under systemd, stderr otherwise.
#include "logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

namespace pidnsd {

void setup_logging(const std::string& level) {
    std::shared_ptr<spdlog::logger> logger;
    if (std::getenv("JOURNAL_STREAM") != nullptr) {
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
