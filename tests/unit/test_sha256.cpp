// core/sha256.hpp (the static agent's SHA-256) on the FIPS 180-4 example
// vectors and against OpenSSL (core/fs.hpp sha256_hex) on random inputs fed
// in random pieces; core/base64.hpp (FILE frames' data) both ways.
#include "core/base64.hpp"
#include "core/fs.hpp"
#include "core/sha256.hpp"
#include "core/splitmix64.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ktstr {
namespace {

TEST(Sha256, FipsExampleVectors) {
  // FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA2_Additional.pdf").
  EXPECT_EQ(sha256_hex_portable("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex_portable(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex_portable("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex_portable("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnop"
                                "qrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha256_hex_portable(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // One byte 0xbd; 55 and 56 zero bytes straddle the padding's block boundary.
  EXPECT_EQ(sha256_hex_portable("\xbd"), "68325720aabd7c82f30f554b313d0570c95accbb7dc4b5aae11204c08ffe732b");
  EXPECT_EQ(sha256_hex_portable(std::string(55, '\0')),
            "02779466cdec163811d078815c633f21901413081449002f24aa3e80f0b88ef7");
  EXPECT_EQ(sha256_hex_portable(std::string(56, '\0')),
            "d4817aa5497628e7c77e6b606107042bbba3130888c5f47a375e6179be789fbb");
}

TEST(Sha256, MatchesOpenSslOnRandomInputsInRandomPieces) {
  uint64_t state = 42;
  auto next = [&] { return splitmix64(state += 0x9e3779b97f4a7c15ull); };
  for (int round = 0; round < 300; ++round) {
    size_t len = round < 200 ? size_t(round) : size_t(next() % 20000);
    std::string data(len, '\0');
    for (char& c : data) c = char(next());
    Sha256 h;
    size_t at = 0;
    while (at < len) {
      size_t n = std::min<size_t>(len - at, next() % 150);
      h.update(std::string_view(data).substr(at, n));
      at += n;
    }
    ASSERT_EQ(h.finish_hex(), sha256_hex(data)) << "length " << len;
    // finish() resets: the same object hashes the next input afresh.
    h.update(data);
    ASSERT_EQ(h.finish_hex(), sha256_hex(data));
  }
}

TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> cases[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"}};
  for (auto [plain, coded] : cases) {
    EXPECT_EQ(base64_encode(plain), coded);
    EXPECT_EQ(base64_decode(coded), std::string(plain));
  }
}

TEST(Base64, RoundTripsEveryByteAndRejectsNonCanonicalText) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(char(i));
  for (size_t n = 0; n <= all.size(); n += 37) EXPECT_EQ(base64_decode(base64_encode(all.substr(0, n))), all.substr(0, n));
  for (const char* bad : {"Zg", "Zg=", "Z===", "=Zg=", "Zm9v\n", "Zm 9", "Zh==", "Zm9=", "Zg==Zg==", "Zm9v*g=="})
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
}

}  // namespace
}  // namespace ktstr
