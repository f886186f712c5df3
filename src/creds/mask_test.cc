// Attack-style tests of the response mask: an answer that echoes the real value back, in any of
// the spellings an echo service or an error page uses, reaches the sandbox without it.
#include "creds/mask.h"

#include <gtest/gtest.h>

#include <random>

#include "creds/profile.h"
#include "creds/scan.h"
#include "creds/vault.h"

namespace ward::creds {
namespace {

const std::string kSecret = "ghp_REAL/secret+value_7f3a9c2d";  // '/' and '+' change spellings

Vault make_vault(const std::string& secret = kSecret) {
  auto v = Vault::create({builtin_profile("github")}, {"GITHUB_TOKEN=" + secret});
  if (!v) ADD_FAILURE() << v.error().message;
  return std::move(*v);
}

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

// What a sandbox would have to look for to find the secret again: every spelling, decoded.
void expect_no_secret(const std::string& text) {
  EXPECT_FALSE(contains(text, kSecret)) << text;
  for (const std::string& s : ResponseMask::spellings_of(kSecret))
    EXPECT_FALSE(contains(text, s)) << "spelling " << s << " in " << text;
  // Decoding any base64 run of the text must not give the secret back either.
  for (std::size_t start = 0; start < text.size(); ++start) {
    for (std::size_t end = start + 4; end <= text.size(); ++end) {
      auto decoded = detail::base64_decode(text.substr(start, end - start));
      if (decoded) {
        EXPECT_FALSE(contains(*decoded, kSecret)) << text;
      }
    }
  }
}

TEST(ResponseMask, MasksTheValueInEachSpellingAnEchoUses) {
  Vault v = make_vault();
  ResponseMask m(v, "api.github.com", 443);
  const std::vector<std::string> echoes = {
      "Authorization: Bearer " + kSecret,
      R"({"headers":{"Authorization":"token )" + detail::json_escape(kSecret) + R"("}})",
      "/echo?token=" + detail::percent_encode(kSecret),
      "/echo?token=ghp_REAL%2fsecret%2bvalue_7f3a9c2d",  // lower-case escapes
      R"({"t":"ghp_REAL\/secret+value_7f3a9c2d"})",      // PHP's json_encode
      "Authorization: Basic " + detail::base64_encode("x-access-token:" + kSecret),
      "Authorization: Basic " + detail::base64_encode("u:" + kSecret),
      "Authorization: Basic " + detail::base64_encode(kSecret + ":"),
      "jwt." + detail::base64_encode("ab" + kSecret),
  };
  for (std::string text : echoes) {
    const std::size_t size = text.size();
    EXPECT_GE(m.mask(text), 1u) << text;
    EXPECT_EQ(text.size(), size);  // framing stays true
    expect_no_secret(text);
  }
}

// Only the values ward sent to this host and port are looked for (review: every variable's
// spellings were searched in every answer, 44 MB/s with twenty).
TEST(ResponseMask, LooksOnlyForTheValuesBoundHere) {
  Vault v = make_vault();
  ResponseMask elsewhere(v, "example.org", 443);
  std::string text = "Bearer " + kSecret;
  EXPECT_EQ(elsewhere.mask(text), 0u);
  ResponseMask other_port(v, "api.github.com", 8443);
  EXPECT_EQ(other_port.mask(text), 0u);
  ResponseMask bound(v, "api.github.com", 443);
  EXPECT_EQ(bound.mask(text), 1u);
}

TEST(ResponseMask, LeavesOtherTextAlone) {
  Vault v = make_vault();
  ResponseMask m(v, "api.github.com", 443);
  std::string text = R"({"login":"octocat","token_prefix":"ghp_","id":1})";
  const std::string before = text;
  EXPECT_EQ(m.mask(text), 0u);
  EXPECT_EQ(text, before);
  EXPECT_EQ(m.masked(), 0u);
}

TEST(ResponseMask, ShortValuesAreNotLookedFor) {
  // A 5-byte value would be masked wherever those letters appear: it is not looked for at all.
  for (const std::string& s : ResponseMask::spellings_of("abcde"))
    EXPECT_GE(s.size(), ResponseMask::kMinSpelling) << s;
  EXPECT_FALSE(ResponseMask::spellings_of("abcdefghijkl").empty());
}

// A stream cut at every possible place, and in random pieces: the value is masked wherever the
// cuts fall, every byte comes out once and in order, and a tail that cannot start a spelling is
// not held back.
TEST(ResponseMask, FindsTheValueAcrossEveryCutOfAStream) {
  Vault v = make_vault();
  const std::string body = "data: {\"echo\":\"Bearer " + kSecret + "\"}\n\ndata: [DONE]\n\n";
  std::string expected = body;
  ResponseMask(v, "api.github.com", 443).mask(expected);
  for (std::size_t cut = 0; cut <= body.size(); ++cut) {
    ResponseMask m(v, "api.github.com", 443);
    std::string out;
    m.feed(std::string_view(body).substr(0, cut), false, out);
    m.feed(std::string_view(body).substr(cut), true, out);
    EXPECT_EQ(out, expected) << "cut at " << cut;
    EXPECT_EQ(m.held(), 0u);
  }
  std::mt19937 random(7);
  for (int round = 0; round < 200; ++round) {
    ResponseMask m(v, "api.github.com", 443);
    std::string out;
    for (std::size_t at = 0; at < body.size();) {
      const std::size_t n = std::min<std::size_t>(random() % 9, body.size() - at);
      m.feed(std::string_view(body).substr(at, n), false, out);
      at += n;
    }
    m.feed("", true, out);
    EXPECT_EQ(out, expected);
  }
}

TEST(ResponseMask, PassesAnEventOnAtOnceWhenItsEndCannotStartTheValue) {
  Vault v = make_vault();
  ResponseMask m(v, "api.github.com", 443);
  std::string out;
  m.feed("data: {\"delta\":\"hello\"}\n\n", false, out);
  EXPECT_EQ(out, "data: {\"delta\":\"hello\"}\n\n");
  EXPECT_EQ(m.held(), 0u);
  // A tail that could be the value's start waits for the bytes that tell.
  out.clear();
  m.feed("token ghp_RE", false, out);
  EXPECT_EQ(out, "token ");
  EXPECT_EQ(m.held(), 6u);
  m.feed("AL", false, out);
  EXPECT_EQ(out, "token ");
  m.feed("LY!", false, out);  // not the value after all; '!' begins no spelling
  EXPECT_EQ(out, "token ghp_REALLY!");
  EXPECT_EQ(m.held(), 0u);
}

// Found in review: websocket answers were masked a read at a time, and the sandbox could pad a
// message so that the echoed value straddled two TLS records. The value is found wherever the
// reads cut a frame, and at each frame's end everything is passed on.
TEST(ResponseMask, FindsTheValueAcrossReadsOfAWebsocketFrameAndHoldsNothingAtItsEnd) {
  Vault v = make_vault();
  const std::string payload = std::string(300, 'p') + kSecret + "ghp_";  // ends like the value
  std::string frame = {static_cast<char>(0x81), static_cast<char>(126),
                       static_cast<char>(payload.size() >> 8),
                       static_cast<char>(payload.size() & 0xff)};
  frame += payload;
  const std::string ping = {static_cast<char>(0x89), 0};  // an empty control frame after it
  const std::string stream = frame + ping;
  for (std::size_t cut = 1; cut < stream.size(); cut += 7) {
    ResponseMask m(v, "api.github.com", 443);
    std::string out;
    m.feed_websocket(std::string_view(stream).substr(0, cut), out);
    m.feed_websocket(std::string_view(stream).substr(cut), out);
    EXPECT_EQ(out.size(), stream.size()) << cut << ": bytes held back at a frame's end";
    EXPECT_EQ(out.find(kSecret), std::string::npos) << cut;
  }
  ResponseMask whole(v, "api.github.com", 443);
  std::string out;
  whole.feed_websocket(frame, out);
  EXPECT_EQ(out.size(), frame.size()) << "the frame's end ('ghp_') was held back";
}

TEST(ResponseMask, AVaultWithoutValuesPassesEverything) {
  auto v = Vault::create({}, {"GITHUB_TOKEN=" + kSecret});
  ASSERT_TRUE(v);  // no provider: nothing to mask
  ResponseMask m(*v, "api.github.com", 443);
  std::string out;
  m.feed("anything at all", false, out);
  EXPECT_EQ(out, "anything at all");
}

}  // namespace
}  // namespace ward::creds
