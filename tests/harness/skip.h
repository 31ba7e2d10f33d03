// A test whose prerequisite the host lacks ends as a reported skip, never as a pass: Catch2 2.13 has
// no SKIP, so the test prints "SKIPPED: <test>: <reason>" and, when its process runs that test case
// alone (as CTest runs each), exits with kSkipExitCode, which CTest reports as "Skipped"
// (SKIP_RETURN_CODE, tests/CMakeLists.txt) and tests/run.sh lists with the reasons.
#pragma once

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

namespace pidns::harness {

inline constexpr int kSkipExitCode = 77;

// Whether this process runs exactly one test case (its command line names it).
inline bool runs_one_test_case() {
    const auto cfg = Catch::getCurrentContext().getConfig();
    return cfg && Catch::filterTests(Catch::getAllTestCasesSorted(*cfg), cfg->testSpec(), *cfg).size() == 1;
}

// Reports the running test case as skipped; exits the process when it runs this test case alone
// (nothing of the test is destroyed: call it before the test makes anything), else returns to a
// caller that must return from the test case (PIDNS_SKIP does).
inline void report_skip(const std::string& reason) {
    const std::string line = "SKIPPED: " + Catch::getResultCapture().getCurrentTestName() + ": " + reason;
    std::cout << line << std::endl;
    if (runs_one_test_case()) {
        std::fflush(nullptr);
        std::_Exit(kSkipExitCode);
    }
    WARN(line);
}

}  // namespace pidns::harness

// Skips the running test case (see above): PIDNS_SKIP("no usable /dev/fuse: " << why).
#define PIDNS_SKIP(reason)                                  \
    do {                                                    \
        std::ostringstream pidns_skip_reason_;              \
        pidns_skip_reason_ << reason;                       \
        ::pidns::harness::report_skip(pidns_skip_reason_.str()); \
        return;                                             \
    } while (0)

// Skips the running test case unless `why_missing` (a probe of prerequisites.h) is "".
#define PIDNS_REQUIRE_PREREQUISITE(why_missing)                            \
    do {                                                                   \
        if (const std::string pidns_missing_ = (why_missing); !pidns_missing_.empty()) \
            PIDNS_SKIP(pidns_missing_);                                    \
    } while (0)
