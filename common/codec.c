#include <string.h>

#include "codec.h"

uint8_t pl_ulaw_encode1(int16_t sample)
{
    static const int16_t seg_uend[8] = {0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF};
    int v = sample >> 2; /* 14-bit magnitude range; arithmetic shift */
    uint8_t mask;
    if (v < 0) {
        v = -v;
        mask = 0x7F;
    } else {
        mask = 0xFF;
    }
    if (v > 8159)
        v = 8159; /* clip */
    v += 0x21;    /* bias */
    int seg = 0;
    while (seg < 8 && v > seg_uend[seg])
        seg++;
    if (seg >= 8)
        return (uint8_t)(0x7F ^ mask);
    return (uint8_t)(((seg << 4) | ((v >> (seg + 1)) & 0x0F)) ^ mask);
}

int16_t pl_ulaw_decode1(uint8_t code)
{
    uint8_t u = (uint8_t)~code;
    int t = ((u & 0x0F) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    return (int16_t)((u & 0x80) ? (0x84 - t) : (t - 0x84));
}

void pl_ulaw_decode(const uint8_t *in, size_t n, int16_t *out)
{
    static int16_t table[256];
    static int ready; /* benign race: every thread computes the same values */
    if (!ready) {
        for (int i = 0; i < 256; i++)
            table[i] = pl_ulaw_decode1((uint8_t)i);
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    for (size_t i = 0; i < n; i++)
        out[i] = table[in[i]];
}

void pl_ulaw_encode(const int16_t *in, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = pl_ulaw_encode1(in[i]);
}

size_t pl_pcm16le_decode(const uint8_t *in, size_t nbytes, int16_t *out)
{
    size_t n = nbytes / 2;
    for (size_t i = 0; i < n; i++)
        out[i] = (int16_t)(uint16_t)(in[2 * i] | (in[2 * i + 1] << 8));
    return n;
}

void pl_pcm16le_encode(const int16_t *in, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t v = (uint16_t)in[i];
        out[2 * i] = (uint8_t)(v & 0xFF);
        out[2 * i + 1] = (uint8_t)(v >> 8);
    }
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

long pl_base64_encode(const void *in_, size_t n, char *out, size_t cap)
{
    const uint8_t *in = in_;
    size_t need = PL_BASE64_LEN(n);
    if (cap < need + 1)
        return -1;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return (long)o;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long pl_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    /* Padding: at most two '=' and only at the end. */
    size_t pad = 0;
    while (pad < 2 && n > pad && in[n - 1 - pad] == '=')
        pad++;
    size_t body = n - pad;
    if (pad > 0 && n % 4 != 0)
        return -1;
    if (body % 4 == 1)
        return -1; /* 6 bits cannot make a byte */
    size_t need = body / 4 * 3 + (body % 4 == 0 ? 0 : body % 4 - 1);
    if (need > cap)
        return -2;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < body; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (long)o;
}

int pl_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
