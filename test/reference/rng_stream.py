"""The Rng stream (core/rng.ts) written independently in Python.

SplitMix32 (golden-ratio increment 0x9e3779b9, MurmurHash3 fmix32 finaliser)
seeds four 32-bit words; xoshiro128** (Blackman & Vigna) draws:
result = rotl(s1 * 5, 7) * 9, then the xoshiro128 state update. float() takes
27 + 26 bits of two draws, as core/rng.ts does. Plain Python integers masked
to 32 bits; NumPy is not needed here but the reference test runs both
scripts under the same interpreter check.

Usage: python3 rng_stream.py SEED COUNT   → JSON {"uint32": [...], "float": [...]}
"""
import json
import sys

MASK = 0xFFFFFFFF


def rotl(x, k):
    return ((x << k) | (x >> (32 - k))) & MASK


class Xoshiro128StarStar:
    def __init__(self, seed):
        state = seed & MASK
        words = []
        for _ in range(4):
            state = (state + 0x9E3779B9) & MASK
            z = state
            z = ((z ^ (z >> 16)) * 0x85EBCA6B) & MASK
            z = ((z ^ (z >> 13)) * 0xC2B2AE35) & MASK
            words.append((z ^ (z >> 16)) & MASK)
        if not any(words):
            words[0] = 1
        self.s = words

    def uint32(self):
        s = self.s
        result = (rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 9) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 11)
        return result

    def float(self):
        high = self.uint32() >> 5
        low = self.uint32() >> 6
        return (high * 67108864 + low) / 9007199254740992


def main():
    seed, count = int(sys.argv[1]), int(sys.argv[2])
    ints = Xoshiro128StarStar(seed)
    floats = Xoshiro128StarStar(seed)
    print(json.dumps({'uint32': [ints.uint32() for _ in range(count)], 'float': [floats.float() for _ in range(count)]}))


if __name__ == '__main__':
    main()
