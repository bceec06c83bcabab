// SHA-256 (FIPS 180-4 §6.2), header-only and dependency-free, for the static
// guest agent, which has no OpenSSL: it checks the files the host sends it
// (guest/agent/file_receiver). The host hashes with OpenSSL (core/fs.hpp);
// the unit tests hold this one to the FIPS vectors and to OpenSSL.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ktstr {

class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  Sha256() { reset(); }

  void reset() {
    static constexpr uint32_t kInit[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                          0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    for (int i = 0; i < 8; ++i) h_[i] = kInit[i];
    used_ = 0;
    bytes_ = 0;
  }

  void update(std::string_view data) { update(reinterpret_cast<const uint8_t*>(data.data()), data.size()); }

  void update(const uint8_t* p, size_t n) {
    bytes_ += n;
    if (used_ > 0) {
      size_t take = n < 64 - used_ ? n : 64 - used_;
      for (size_t i = 0; i < take; ++i) block_[used_ + i] = p[i];
      used_ += take;
      p += take;
      n -= take;
      if (used_ < 64) return;
      compress(block_);
      used_ = 0;
    }
    for (; n >= 64; p += 64, n -= 64) compress(p);
    for (size_t i = 0; i < n; ++i) block_[i] = p[i];
    used_ = n;
  }

  // The digest of everything given so far; the object is reset afterwards.
  Digest finish() {
    // §5.1.1: a 1 bit, zeros up to 56 mod 64 bytes, the length in bits (big endian).
    uint64_t bits = bytes_ * 8;
    uint8_t pad[72] = {0x80};
    size_t pad_len = (used_ < 56 ? 56 : 120) - used_;
    for (int i = 0; i < 8; ++i) pad[pad_len + i] = uint8_t(bits >> (56 - 8 * i));
    update(pad, pad_len + 8);
    Digest out{};
    for (int i = 0; i < 8; ++i)
      for (int b = 0; b < 4; ++b) out[4 * i + b] = uint8_t(h_[i] >> (24 - 8 * b));
    reset();
    return out;
  }

  std::string finish_hex() {
    static constexpr char kHex[] = "0123456789abcdef";
    Digest d = finish();
    std::string s;
    s.reserve(64);
    for (uint8_t b : d) {
      s.push_back(kHex[b >> 4]);
      s.push_back(kHex[b & 15]);
    }
    return s;
  }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  // §6.2.2 on one 512-bit block, with the §4.2.2 constants.
  void compress(const uint8_t* block) {
    static constexpr uint32_t kK[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int t = 0; t < 16; ++t)
      w[t] = uint32_t(block[4 * t]) << 24 | uint32_t(block[4 * t + 1]) << 16 | uint32_t(block[4 * t + 2]) << 8 |
             uint32_t(block[4 * t + 3]);
    for (int t = 16; t < 64; ++t) {
      uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
      uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = s1 + w[t - 7] + s0 + w[t - 16];
    }
    uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int t = 0; t < 64; ++t) {
      uint32_t sum1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      uint32_t ch = (e & f) ^ (~e & g);
      uint32_t t1 = h + sum1 + ch + kK[t] + w[t];
      uint32_t sum0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
      uint32_t t2 = sum0 + maj;
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += b;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
  }

  uint32_t h_[8];
  uint8_t block_[64];
  size_t used_;
  uint64_t bytes_;
};

inline std::string sha256_hex_portable(std::string_view data) {
  Sha256 s;
  s.update(data);
  return s.finish_hex();
}

}  // namespace ktstr
