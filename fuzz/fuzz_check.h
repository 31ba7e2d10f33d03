// Shared by the fuzz targets: an invariant check that aborts (a crash libFuzzer records) in
// every build type, unlike assert() under NDEBUG, and a reader of structured input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);     \
            std::abort();                                                                         \
        }                                                                                         \
    } while (0)

namespace pidns::fuzz {

// The input as text, as the kernel would hand it to the parser (any bytes, NULs included).
inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// Structured input for the targets that build calls from bytes: fixed-size values read in order,
// zero past the end (so every input is a complete call).
class Reader {
public:
    Reader(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
    [[nodiscard]] bool done() const { return pos_ >= n_; }
    template <class T>
    T get() {
        T v{};
        const std::size_t take = std::min(sizeof(T), n_ - std::min(pos_, n_));
        if (take) std::memcpy(&v, d_ + pos_, take);
        pos_ += sizeof(T);
        return v;
    }
    std::uint8_t u8() { return get<std::uint8_t>(); }
    std::uint16_t u16() { return get<std::uint16_t>(); }
    std::uint32_t u32() { return get<std::uint32_t>(); }
    std::uint64_t u64() { return get<std::uint64_t>(); }
    std::string str(std::size_t len) {
        std::string s;
        while (len-- && !done()) s.push_back(static_cast<char>(u8()));
        return s;
    }

private:
    const std::uint8_t* d_;
    std::size_t n_;
    std::size_t pos_ = 0;
};

}  // namespace pidns::fuzz
