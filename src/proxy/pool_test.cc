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

// Connections over socket pairs: the pool looks at the socket and the TLS object's buffers,
// never at a handshake.
class PoolTest : public ::testing::Test {
 protected:
  ~PoolTest() override {
    for (int fd : peers_) ::close(fd);
  }

  // A connection to `host`:`port` whose far end is peer(address).
  PooledUpstream make(const std::string& address, const std::string& host = "api.test",
                      std::uint16_t port = 443, std::uint64_t generation = 1) {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    asio::ip::tcp::socket socket(io_);
    socket.assign(asio::ip::tcp::v4(), fds[0]);
    peers_.push_back(fds[1]);
    by_address_.push_back(address);
    return {generation, host, port, address, TlsStream(std::move(socket), context_)};
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
  EXPECT_FALSE(pool_.take(1, "api.test", 443, t0_));
  pool_.give(make("10.0.0.1"), t0_);
  EXPECT_FALSE(pool_.take(1, "other.test", 443, t0_));
  EXPECT_FALSE(pool_.take(1, "api.test", 8443, t0_));
  EXPECT_FALSE(pool_.take(2, "api.test", 443, t0_)) << "a reload must not reuse the old policy's";
  auto c = pool_.take(1, "api.test", 443, t0_);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->address, "10.0.0.1");
  EXPECT_TRUE(pool_.empty()) << "a taken connection is the session's alone";
  EXPECT_FALSE(pool_.take(1, "api.test", 443, t0_));
}

TEST_F(PoolTest, TheMostRecentlyReturnedComesFirst) {
  pool_.give(make("10.0.0.1"), t0_);
  pool_.give(make("10.0.0.2"), t0_);
  auto c = pool_.take(1, "api.test", 443, t0_);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->address, "10.0.0.2");
}

TEST_F(PoolTest, AConnectionThePeerClosedOrWroteToIsNeverTaken) {
  pool_.give(make("closed"), t0_);
  pool_.give(make("talked"), t0_);
  ASSERT_EQ(pool_.size(), 2u);
  ::close(peer("closed"));
  peers_[0] = -1;
  ASSERT_EQ(::write(peer("talked"), "x", 1), 1);  // an answer nobody asked for
  EXPECT_FALSE(pool_.take(1, "api.test", 443, t0_));
  EXPECT_TRUE(pool_.empty()) << "dropped when found";

  auto gone = make("gone-before");
  ::close(peer("gone-before"));
  peers_.back() = -1;
  pool_.give(std::move(gone), t0_);
  EXPECT_TRUE(pool_.empty()) << "a connection already closed by its peer is not kept";
}

TEST_F(PoolTest, IdleConnectionsExpire) {
  pool_.give(make("10.0.0.1"), t0_);
  EXPECT_FALSE(pool_.take(1, "api.test", 443, t0_ + UpstreamPool::kIdle));
  pool_.give(make("10.0.0.2"), t0_);
  pool_.expire(t0_ + UpstreamPool::kIdle - std::chrono::milliseconds(1));
  EXPECT_EQ(pool_.size(), 1u);
  pool_.expire(t0_ + UpstreamPool::kIdle);
  EXPECT_TRUE(pool_.empty());
}

TEST_F(PoolTest, HoldsAtMostItsCapacityDroppingTheOldest) {
  for (std::size_t i = 0; i <= UpstreamPool::kCapacity; ++i)
    pool_.give(make("c" + std::to_string(i)), t0_);
  EXPECT_EQ(pool_.size(), UpstreamPool::kCapacity);
  std::vector<std::string> taken;
  while (auto c = pool_.take(1, "api.test", 443, t0_)) taken.push_back(c->address);
  ASSERT_EQ(taken.size(), UpstreamPool::kCapacity);
  EXPECT_EQ(taken.back(), "c1") << "the oldest, c0, was dropped";
}

}  // namespace
}  // namespace ward::proxy
