// A shell script run in the background (under a prefix such as setpriv or unshare) that sets
// something up, reports "key=value" lines, prints "ready" and then waits as `sleep`.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace pidns::testing {

class ScriptAgent {
public:
    // Runs `prefix... sh -ec SCRIPT` and returns once it printed "ready" (throws, with its
    // output, if it fails or takes more than 10 s).
    ScriptAgent(const std::vector<std::string>& prefix, const std::string& script);
    ~ScriptAgent();
    ScriptAgent(const ScriptAgent&) = delete;
    ScriptAgent& operator=(const ScriptAgent&) = delete;

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    // A "key=value" it printed; throws std::out_of_range if it did not print that key.
    [[nodiscard]] const std::string& value(const std::string& key) const { return values_.at(key); }
    // SIGKILLs and reaps it (at once; the destructor does it otherwise).
    void kill();

private:
    pid_t pid_ = -1;
    std::map<std::string, std::string> values_;
};

}  // namespace pidns::testing
