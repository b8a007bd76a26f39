/* codec: G.711 μ-law known values and round trips (reference/providers.md §7), PCM16 LE byte
 * order, base64 against RFC 4648 vectors and its error cases. */
#include <stdint.h>

#include "check.h"
#include "codec.h"

static void ulaw_known_values(void)
{
    CHECK(pl_ulaw_decode1(0xFF) == 0);
    CHECK(pl_ulaw_decode1(0x7F) == 0);
    CHECK(pl_ulaw_decode1(0x00) == -32124);
    CHECK(pl_ulaw_decode1(0x80) == 32124);
    CHECK(pl_ulaw_encode1(0) == 0xFF);
    CHECK(pl_ulaw_encode1(1000) == 0xCE);
    CHECK(pl_ulaw_encode1(-1000) == 0x4E);
    CHECK(pl_ulaw_encode1(32767) == 0x80);
    CHECK(pl_ulaw_encode1(-32768) == 0x00);
}

/* Every code decodes to a value that encodes back to the same code (0x7F, negative zero, maps
 * to 0 whose code is 0xFF), and encoding is monotonic in the sample. */
static void ulaw_round_trip(void)
{
    for (int c = 0; c < 256; c++) {
        int16_t s = pl_ulaw_decode1((uint8_t)c);
        uint8_t back = pl_ulaw_encode1(s);
        if (c == 0x7F)
            CHECK(back == 0xFF);
        else
            CHECK(back == (uint8_t)c);
    }
    /* Quantisation error stays within half a step of the segment (< 1024 at the top). */
    int worst = 0;
    for (int s = -32768; s <= 32767; s += 7) {
        int d = pl_ulaw_decode1(pl_ulaw_encode1((int16_t)s)) - s;
        if (d < 0)
            d = -d;
        if (d > worst)
            worst = d;
    }
    CHECK(worst <= 1024);
    uint8_t codes[5];
    int16_t in[5] = {0, 1000, -1000, 32767, -32768}, out[5];
    pl_ulaw_encode(in, 5, codes);
    CHECK(codes[1] == 0xCE && codes[4] == 0x00);
    pl_ulaw_decode(codes, 5, out);
    CHECK(out[0] == 0 && out[3] == 32124 && out[4] == -32124);
}

static void pcm16le(void)
{
    const uint8_t bytes[6] = {0x01, 0x00, 0xFF, 0xFF, 0x00, 0x80};
    int16_t s[3];
    CHECK(pl_pcm16le_decode(bytes, 6, s) == 3);
    CHECK(s[0] == 1 && s[1] == -1 && s[2] == -32768);
    CHECK(pl_pcm16le_decode(bytes, 5, s) == 2); /* an odd trailing byte is ignored */
    uint8_t back[6];
    int16_t again[3] = {1, -1, -32768};
    pl_pcm16le_encode(again, 3, back);
    CHECK(memcmp(back, bytes, 6) == 0);
}

static void base64_vectors(void)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char out[32];
    uint8_t dec[32];
    for (int i = 0; i < 7; i++) {
        CHECK(pl_base64_encode(plain[i], strlen(plain[i]), out, sizeof(out)) ==
              (long)strlen(coded[i]));
        CHECK_STR(out, coded[i]);
        long n = pl_base64_decode(coded[i], strlen(coded[i]), dec, sizeof(dec));
        CHECK(n == (long)strlen(plain[i]));
        CHECK(n >= 0 && memcmp(dec, plain[i], (size_t)n) == 0);
    }
    /* Unpadded input decodes too. */
    CHECK(pl_base64_decode("Zm9vYg", 6, dec, sizeof(dec)) == 4);
    CHECK(pl_base64_encode("hello world!!", 13, out, sizeof(out)) == 20);
    CHECK_STR(out, "aGVsbG8gd29ybGQhIQ==");
}

static void base64_errors_and_limits(void)
{
    uint8_t dec[8];
    char out[8];
    CHECK(pl_base64_decode("Zm9v!", 5, dec, sizeof(dec)) == -1); /* outside the alphabet */
    CHECK(pl_base64_decode("Z", 1, dec, sizeof(dec)) == -1);     /* impossible length */
    CHECK(pl_base64_decode("Zg=", 3, dec, sizeof(dec)) == -1);   /* padding off a quad */
    CHECK(pl_base64_decode("Z=g=", 4, dec, sizeof(dec)) == -1);  /* padding inside */
    CHECK(pl_base64_decode("Zm9vYmFy", 8, dec, 5) == -2);        /* cap too small */
    CHECK(pl_base64_encode("foobar", 6, out, 8) == -1);          /* needs 9 with the NUL */
    CHECK(pl_base64_encode("foobar", 6, out, 9) == 8);
    /* A 20 ms Twilio frame: 160 μ-law bytes ↔ 216 base64 characters. */
    uint8_t frame[160];
    char text[PL_BASE64_LEN(160) + 1];
    uint8_t back[PL_BASE64_MAXDEC(216)];
    for (int i = 0; i < 160; i++)
        frame[i] = (uint8_t)(i * 37);
    CHECK(pl_base64_encode(frame, 160, text, sizeof(text)) == 216);
    CHECK(pl_base64_decode(text, 216, back, sizeof(back)) == 160);
    CHECK(memcmp(frame, back, 160) == 0);
}

static void hex_digits(void)
{
    CHECK(pl_hex_digit('0') == 0 && pl_hex_digit('9') == 9);
    CHECK(pl_hex_digit('a') == 10 && pl_hex_digit('F') == 15);
    CHECK(pl_hex_digit('g') == -1 && pl_hex_digit('-') == -1 && pl_hex_digit('\0') == -1);
}

int main(void)
{
    RUN(ulaw_known_values);
    RUN(ulaw_round_trip);
    RUN(pcm16le);
    RUN(base64_vectors);
    RUN(base64_errors_and_limits);
    RUN(hex_digits);
    return check_summary();
}
