#include "proxy/pool.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

namespace ward::proxy {
namespace {

namespace asio = boost::asio;
using Clock = UpstreamPool::Clock;
const std::string kCurl = std::string("/usr/bin/curl") + '\0' + "/usr/bin/bash" + '\0';

// Connections over socket pairs: the pool looks at the socket and the TLS object's buffers,
// never at a handshake.
class PoolTest : public ::testing::Test {
 protected:
  ~PoolTest() override {
    for (int fd : peers_) ::close(fd);
  }

  // A connection to `host`:`port` whose far end is peer(address).
  PooledUpstream make(const std::string& address, Clock::time_point since,
                      const std::string& host = "api.test", std::uint16_t port = 443,
                      std::uint64_t generation = 1, const std::string& caller = kCurl) {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    asio::ip::tcp::socket socket(io_);
    socket.assign(asio::ip::tcp::v4(), fds[0]);
    peers_.push_back(fds[1]);
    by_address_.push_back(address);
    return {generation, host, port, caller, address, TlsStream(std::move(socket), context_), since};
  }
  int peer(const std::string& address) {
    for (std::size_t i = 0; i < by_address_.size(); ++i)
      if (by_address_[i] == address) return peers_[i];
    return -1;
  }

  asio::io_context io_;
  asio::ssl::context context_{asio::ssl::context::tls_client};
  std::vector<int> peers_;
  std::vector<std::string> by_address_;
  UpstreamPool pool_;
  Clock::time_point t0_ = Clock::now();
};

TEST_F(PoolTest, GivesBackOnlyForTheSameGenerationHostAndPort) {
  EXPECT_FALSE(pool_.take(1, "api.test", 443, kCurl, t0_));
  pool_.give(make("10.0.0.1", t0_), t0_);
  EXPECT_FALSE(pool_.take(1, "other.test", 443, kCurl, t0_));
  EXPECT_FALSE(pool_.take(1, "api.test", 8443, kCurl, t0_));
  EXPECT_FALSE(pool_.take(2, "api.test", 443, kCurl, t0_))
      << "a reload must not reuse the old policy's";
  const std::string python = std::string("/usr/bin/python3.11") + '\0' + "/usr/bin/bash" + '\0';
  EXPECT_FALSE(pool_.take(1, "api.test", 443, python, t0_))
      << "another binary's rule may have other allowed_ips or credentials";
  auto c = pool_.take(1, "api.test", 443, kCurl, t0_);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->address, "10.0.0.1");
  EXPECT_TRUE(pool_.empty()) << "a taken connection is the session's alone";
  EXPECT_FALSE(pool_.take(1, "api.test", 443, kCurl, t0_));
}

TEST_F(PoolTest, TheMostRecentlyReturnedComesFirst) {
  pool_.give(make("10.0.0.1", t0_), t0_);
  pool_.give(make("10.0.0.2", t0_), t0_);
  auto c = pool_.take(1, "api.test", 443, kCurl, t0_);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->address, "10.0.0.2");
}

TEST_F(PoolTest, AConnectionThePeerClosedOrWroteToIsNeverTaken) {
  pool_.give(make("closed", t0_), t0_);
  pool_.give(make("talked", t0_), t0_);
  ASSERT_EQ(pool_.size(), 2u);
  ::close(peer("closed"));
  peers_[0] = -1;
  ASSERT_EQ(::write(peer("talked"), "x", 1), 1);  // an answer nobody asked for
  EXPECT_FALSE(pool_.take(1, "api.test", 443, kCurl, t0_));
  EXPECT_TRUE(pool_.empty()) << "dropped when found";

  auto gone = make("gone-before", t0_);
  ::close(peer("gone-before"));
  peers_.back() = -1;
  pool_.give(std::move(gone), t0_);
  EXPECT_TRUE(pool_.empty()) << "a connection already closed by its peer is not kept";
}

// Idle counts from the end of the connection's last response, not from when it was given back:
// a client that sat on its connection for a minute leaves an upstream idle for a minute.
TEST_F(PoolTest, IdleConnectionsExpire) {
  pool_.give(make("10.0.0.1", t0_), t0_);
  EXPECT_FALSE(pool_.take(1, "api.test", 443, kCurl, t0_ + pool_.idle()));
  pool_.give(make("10.0.0.2", t0_), t0_);
  pool_.expire(t0_ + pool_.idle() - std::chrono::milliseconds(1));
  EXPECT_EQ(pool_.size(), 1u);
  pool_.expire(t0_ + pool_.idle());
  EXPECT_TRUE(pool_.empty());
  pool_.give(make("10.0.0.3", t0_), t0_ + pool_.idle());
  EXPECT_TRUE(pool_.empty()) << "idle too long before it was given back";
  const auto fresh = t0_ + std::chrono::seconds(60);
  const auto half = pool_.idle() / 2;
  pool_.give(make("10.0.0.4", fresh - half), fresh);
  EXPECT_EQ(pool_.size(), 1u) << "half its idle time left: kept";
  EXPECT_FALSE(pool_.take(1, "api.test", 443, kCurl, fresh + half))
      << "expired by the time of its last response";
}

TEST_F(PoolTest, AnIdleLimitOfZeroKeepsNothing) {
  EXPECT_EQ(pool_.idle(), UpstreamPool::kDefaultIdle);
  pool_.set_idle(std::chrono::milliseconds(0));
  pool_.give(make("10.0.0.1", t0_), t0_);
  EXPECT_TRUE(pool_.empty());
  pool_.set_idle(std::chrono::milliseconds(5000));
  pool_.give(make("10.0.0.2", t0_), t0_ + std::chrono::milliseconds(4999));
  EXPECT_EQ(pool_.size(), 1u) << "--upstream-idle-ms 5000 keeps what 1 s would not";
}

TEST_F(PoolTest, HoldsAtMostItsCapacityDroppingTheOldest) {
  for (std::size_t i = 0; i <= UpstreamPool::kCapacity; ++i)
    pool_.give(make("c" + std::to_string(i), t0_), t0_);
  EXPECT_EQ(pool_.size(), UpstreamPool::kCapacity);
  std::vector<std::string> taken;
  while (auto c = pool_.take(1, "api.test", 443, kCurl, t0_)) taken.push_back(c->address);
  ASSERT_EQ(taken.size(), UpstreamPool::kCapacity);
  EXPECT_EQ(taken.back(), "c1") << "the oldest, c0, was dropped";
}

}  // namespace
}  // namespace ward::proxy
