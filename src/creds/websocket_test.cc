#include "creds/websocket.h"

#include <gtest/gtest.h>

#include <vector>

namespace ward::creds {
namespace {

using Status = Rewrite::Status;

const std::string kCanary = "ghp_WS_CANARY_55aa";
constexpr unsigned char kKey[4] = {0x12, 0x34, 0x56, 0x78};

enum Op : unsigned char { kCont = 0, kText = 1, kBinary = 2, kClose = 8, kPing = 9 };

std::string frame(Op op, std::string_view payload, bool fin = true, bool masked = true,
                  unsigned char extra_b0 = 0) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | extra_b0 | op));
  unsigned char m = masked ? 0x80 : 0;
  std::uint64_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(m | n));
  } else if (n <= 0xffff) {
    f.push_back(static_cast<char>(m | 126));
    for (int s = 8; s >= 0; s -= 8) f.push_back(static_cast<char>(n >> s));
  } else {
    f.push_back(static_cast<char>(m | 127));
    for (int s = 56; s >= 0; s -= 8) f.push_back(static_cast<char>(n >> s));
  }
  if (masked) f.append(reinterpret_cast<const char*>(kKey), 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    f.push_back(static_cast<char>(payload[i] ^ (masked ? kKey[i % 4] : 0)));
  return f;
}

struct Frame {
  unsigned char b0;
  bool masked;
  std::string payload;  // unmasked
};

// Parses a stream of complete frames, as the server would.
std::vector<Frame> parse(std::string_view s) {
  std::vector<Frame> out;
  while (!s.empty()) {
    auto b = [&](std::size_t i) { return static_cast<unsigned char>(s.at(i)); };
    Frame f{b(0), (b(1) & 0x80) != 0, ""};
    std::uint64_t n = b(1) & 0x7f;
    std::size_t pos = 2;
    if (n >= 126) {
      std::size_t len = n == 126 ? 2 : 8;
      n = 0;
      for (std::size_t i = 0; i < len; ++i) n = (n << 8) | b(pos + i);
      pos += len;
    }
    unsigned char key[4] = {};
    if (f.masked) {
      for (int i = 0; i < 4; ++i) key[i] = b(pos + i);
      pos += 4;
    }
    for (std::uint64_t i = 0; i < n; ++i)
      f.payload.push_back(static_cast<char>(b(pos + i) ^ key[i % 4]));
    s.remove_prefix(pos + n);
    out.push_back(std::move(f));
  }
  return out;
}

class WebsocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto v = Vault::create({builtin_profile("github")}, {"GITHUB_TOKEN=" + kCanary});
    ASSERT_TRUE(v) << v.error().message;
    vault_.emplace(std::move(*v));
    ph_ = std::string(*vault_->placeholder("GITHUB_TOKEN"));
  }
  WebsocketRewriter rewriter(bool bound = true, std::size_t max = 256 * 1024) {
    return WebsocketRewriter(
        *vault_, [bound](std::string_view) { return bound; }, max);
  }

  std::optional<Vault> vault_;
  std::string ph_;
};

TEST_F(WebsocketTest, MaskedTextFrameIsRewrittenAndReframed) {
  auto w = rewriter();
  std::string out;
  std::string msg = R"({"auth":")" + ph_ + R"("})";
  Rewrite r = w.feed(frame(kText, msg), out);
  EXPECT_EQ(r.status, Status::kRewritten);
  EXPECT_EQ(r.variable, "GITHUB_TOKEN");
  auto frames = parse(out);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(frames[0].masked);
  EXPECT_EQ(frames[0].b0, 0x81);
  EXPECT_EQ(frames[0].payload, R"({"auth":")" + kCanary + R"("})");
  EXPECT_EQ(out.find(kCanary), std::string::npos);  // masked on the wire
}

TEST_F(WebsocketTest, LengthEncodingChangesWhenThePayloadGrows) {
  auto w = rewriter();
  std::string secret(70000, 's');
  auto v = Vault::create({builtin_profile("github")}, {"GITHUB_TOKEN=" + secret});
  ASSERT_TRUE(v);
  std::string p(*v->placeholder("GITHUB_TOKEN"));
  // 7-bit → 16-bit, and 16-bit → 64-bit lengths.
  for (auto [vault, payload, want] : {std::tuple{&*vault_, std::string(120 - ph_.size(), 'x') + ph_,
                                                 std::string(120 - ph_.size(), 'x') + kCanary},
                                      std::tuple{&*v, "a " + p, "a " + secret}}) {
    WebsocketRewriter rw(*vault, [](std::string_view) { return true; });
    std::string out;
    ASSERT_EQ(rw.feed(frame(kText, payload), out).status, Status::kRewritten);
    auto frames = parse(out);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].payload, want);
  }
}

TEST_F(WebsocketTest, ByteByByteFeedingGivesTheSameStream) {
  std::string stream = frame(kText, "hello " + ph_) + frame(kPing, "p") +
                       frame(kBinary, std::string(300, 'b')) + frame(kText, "plain", true, false);
  auto whole = rewriter();
  std::string expected;
  ASSERT_EQ(whole.feed(stream, expected).status, Status::kRewritten);
  auto slow = rewriter();
  std::string got;
  for (char c : stream) ASSERT_FALSE(slow.feed(std::string_view(&c, 1), got).refused());
  EXPECT_EQ(got, expected);
  auto frames = parse(got);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].payload, "hello " + kCanary);
  EXPECT_EQ(frames[1].payload, "p");
  EXPECT_EQ(frames[3].payload, "plain");
  EXPECT_FALSE(frames[3].masked);
}

TEST_F(WebsocketTest, BinaryControlAndPlainTextFramesAreUntouched) {
  auto w = rewriter();
  std::string stream = frame(kBinary, "bin " + ph_, false) + frame(kPing, ph_) +
                       frame(kCont, ph_ + " more") + frame(kText, "no secrets here") +
                       frame(kClose, "\x03\xe8");
  std::string out;
  EXPECT_EQ(w.feed(stream, out).status, Status::kUnchanged);
  EXPECT_EQ(out, stream);
}

TEST_F(WebsocketTest, FragmentedTextWithControlFrameInBetween) {
  auto w = rewriter();
  std::string stream =
      frame(kText, "a " + ph_ + " ", false) + frame(kPing, "x") + frame(kCont, "b " + ph_, true);
  std::string out;
  EXPECT_EQ(w.feed(stream, out).status, Status::kRewritten);
  auto frames = parse(out);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].b0, 0x01);  // FIN clear, text
  EXPECT_EQ(frames[0].payload, "a " + kCanary + " ");
  EXPECT_EQ(frames[1].payload, "x");
  EXPECT_EQ(frames[2].b0, 0x80);  // FIN, continuation
  EXPECT_EQ(frames[2].payload, "b " + kCanary);
}

TEST_F(WebsocketTest, PlaceholderSplitAcrossFramesFailsClosed) {
  for (std::size_t cut : {std::size_t{1}, std::size_t{4}, std::size_t{9}, ph_.size() - 1}) {
    auto w = rewriter();
    std::string out = "kept";
    std::string stream =
        frame(kText, "x " + ph_.substr(0, cut), false) + frame(kCont, ph_.substr(cut) + " y");
    Rewrite r = w.feed(stream, out);
    EXPECT_EQ(r.status, Status::kUnresolved) << cut;
    EXPECT_EQ(out, "kept");
    // Refused for good.
    EXPECT_EQ(w.feed(frame(kText, "fine"), out).status, Status::kUnresolved);
    EXPECT_EQ(out, "kept");
  }
  // One character per frame.
  auto w = rewriter();
  std::string stream;
  for (std::size_t i = 0; i < ph_.size(); ++i)
    stream += frame(i == 0 ? kText : kCont, ph_.substr(i, 1), i + 1 == ph_.size());
  std::string out;
  EXPECT_EQ(w.feed(stream, out).status, Status::kUnresolved);
  EXPECT_EQ(out.find(kCanary), std::string::npos);
  // A whole placeholder at a frame's end, the next frame starting elsewhere, is fine.
  auto ok = rewriter();
  out.clear();
  EXPECT_EQ(ok.feed(frame(kText, "x " + ph_, false) + frame(kCont, " y"), out).status,
            Status::kRewritten);
}

TEST_F(WebsocketTest, MismatchAndRefusalsAppendNothing) {
  auto w = rewriter(false);
  std::string out;
  std::string stream = frame(kText, "first") + frame(kText, "tok " + ph_);
  Rewrite r = w.feed(stream, out);
  EXPECT_EQ(r.status, Status::kMismatch);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(r.reason.find(kCanary), std::string::npos);

  auto compressed = rewriter();
  EXPECT_EQ(compressed.feed(frame(kText, "zz", true, true, 0x40), out).status, Status::kUnresolved);
  auto small = rewriter(true, 16);
  EXPECT_EQ(small.feed(frame(kText, std::string(17, 'a')), out).status, Status::kUnresolved);
  auto escaped = rewriter();
  EXPECT_EQ(escaped.feed(frame(kText, "%77" + ph_.substr(1)), out).status, Status::kUnresolved);
  EXPECT_TRUE(out.empty());
}

TEST_F(WebsocketTest, IncompleteTextFrameIsHeldBack) {
  auto w = rewriter();
  std::string f = frame(kText, "t " + ph_);
  std::string out;
  EXPECT_EQ(w.feed(std::string_view(f).substr(0, f.size() - 1), out).status, Status::kUnchanged);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(w.feed(std::string_view(f).substr(f.size() - 1), out).status, Status::kRewritten);
  ASSERT_EQ(parse(out).size(), 1u);
  EXPECT_EQ(parse(out)[0].payload, "t " + kCanary);
}

}  // namespace
}  // namespace ward::creds
