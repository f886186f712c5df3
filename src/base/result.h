// Result<T>: the status type every module boundary returns.
//
// Error taxonomy (STYLE.md): a broken invariant aborts; bad input from a user or a sandbox is an
// Error value carrying a message (and errno when a syscall failed); an expected runtime failure is
// logged and counted, never thrown across a module boundary.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <tl/expected.hpp>
#include <utility>

namespace ward {

struct Error {
  std::string message;
  int err = 0;  // errno of the failed syscall, 0 when the error is not a syscall's

  // "message: strerror(err)" when err is set.
  std::string describe() const {
    if (err == 0) return message;
    return message + ": " + std::strerror(err);
  }
};

template <class T = void>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(std::string message, int err = 0) {
  return tl::unexpected<Error>(Error{std::move(message), err});
}

// For a syscall that just failed: captures errno.
inline tl::unexpected<Error> fail_errno(std::string message) {
  return fail(std::move(message), errno);
}

}  // namespace ward
