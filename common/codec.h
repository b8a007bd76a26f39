/* Audio and transport encodings shared by every service that touches carrier media: G.711 μ-law,
 * PCM16 little-endian byte order, and base64 (RFC 4648, standard alphabet, padded).
 *
 * All functions are pure and thread-safe. Output buffers are the caller's; each function states
 * the capacity it needs and never writes past the capacity it is given.
 */
#ifndef PL_CODEC_H
#define PL_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* G.711 μ-law, CCITT/Sun variant (bit-exact with CPython audioop; reference/providers.md §7). */
uint8_t pl_ulaw_encode1(int16_t sample);
int16_t pl_ulaw_decode1(uint8_t code);

/* n codes → n samples / n samples → n codes. */
void pl_ulaw_decode(const uint8_t *in, size_t n, int16_t *out);
void pl_ulaw_encode(const int16_t *in, size_t n, uint8_t *out);

/* PCM16 little-endian bytes ↔ host samples. nbytes is rounded down to an even count; returns the
 * number of samples written (nbytes / 2). */
size_t pl_pcm16le_decode(const uint8_t *in, size_t nbytes, int16_t *out);
void pl_pcm16le_encode(const int16_t *in, size_t n, uint8_t *out);

/* Characters base64 needs for n bytes, without the terminating NUL. */
#define PL_BASE64_LEN(n) ((((n) + 2) / 3) * 4)
/* Largest decoded size of a base64 text of n characters. */
#define PL_BASE64_MAXDEC(n) (((n) / 4) * 3 + 3)

/* Encodes n bytes into out (cap ≥ PL_BASE64_LEN(n) + 1, NUL-terminated). Returns the length, or
 * -1 when cap is too small. */
long pl_base64_encode(const void *in, size_t n, char *out, size_t cap);

/* Decodes base64 text (padding optional, no whitespace) into out. Returns the number of bytes, or
 * -1 for a character outside the alphabet, misplaced padding or an impossible length, or -2 when
 * cap is too small. */
long pl_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap);

/* The value 0..15 of one hexadecimal digit (either case), or -1 for any other character. */
int pl_hex_digit(char c);

#endif
