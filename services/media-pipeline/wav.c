/* WAV reader and writer; see wav.h for the contract. */
#include "wav.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"

#define WAV_FORMAT_PCM        1
#define WAV_FORMAT_EXTENSIBLE 0xFFFE
#define WAV_SIZE_UNKNOWN      0xFFFFFFFFu
#define WAV_HEADER_BYTES      44
#define WAV_DATA_MAX          (0xFFFFFFFFu - 64u)

/* KSDATAFORMAT_SUBTYPE_PCM {00000001-0000-0010-8000-00aa00389b71} as stored in the file. */
static const uint8_t subtype_pcm[16] = {0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
                                        0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71};

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static int fail(char *err, size_t cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t cap, int code, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Printable form of a chunk id for error messages. */
static void chunk_name(const uint8_t *p, char out[5])
{
    for (int i = 0; i < 4; i++)
        out[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    out[4] = '\0';
}

static int parse_fmt(const uint8_t *p, uint32_t size, mp_wav_info *info, char *err, size_t cap)
{
    if (size < 16)
        return fail(err, cap, PL_ERR_INVALID, "fmt chunk is %u bytes, need at least 16", size);
    int format = le16(p);
    int channels = le16(p + 2);
    uint32_t rate = le32(p + 4);
    uint32_t byte_rate = le32(p + 8);
    int block_align = le16(p + 12);
    int bits = le16(p + 14);
    if (format == WAV_FORMAT_EXTENSIBLE) {
        if (size < 40 || le16(p + 16) < 22)
            return fail(err, cap, PL_ERR_INVALID, "extensible fmt chunk is %u bytes, need 40",
                        size);
        if (memcmp(p + 24, subtype_pcm, sizeof(subtype_pcm)) != 0)
            return fail(err, cap, PL_ERR_INVALID,
                        "unsupported extensible sub-format 0x%04x (only PCM 16-bit)", le16(p + 24));
        int valid_bits = le16(p + 18);
        if (valid_bits != 16 && valid_bits != 0)
            return fail(err, cap, PL_ERR_INVALID, "unsupported %d valid bits (only 16)",
                        valid_bits);
    } else if (format != WAV_FORMAT_PCM) {
        return fail(err, cap, PL_ERR_INVALID, "unsupported format %d (only PCM 16-bit)", format);
    }
    if (bits != 16)
        return fail(err, cap, PL_ERR_INVALID, "unsupported %d bits per sample (only 16)", bits);
    if (channels != 1 && channels != 2)
        return fail(err, cap, PL_ERR_INVALID, "unsupported %d channels (only mono or stereo)",
                    channels);
    if (rate < MP_WAV_RATE_MIN || rate > MP_WAV_RATE_MAX)
        return fail(err, cap, PL_ERR_INVALID, "unsupported sample rate %u", rate);
    if (block_align != channels * 2 || byte_rate != rate * (uint32_t)block_align)
        return fail(err, cap, PL_ERR_INVALID,
                    "inconsistent fmt: block_align %d, byte_rate %u for %d ch x 16 bit at %u Hz",
                    block_align, byte_rate, channels, rate);
    info->format = format;
    info->channels = channels;
    info->rate = (int)rate;
    return PL_OK;
}

int mp_wav_parse(const uint8_t *buf, size_t len, mp_wav_info *info, char *err, size_t err_cap)
{
    memset(info, 0, sizeof(*info));
    if (len < 12)
        return fail(err, err_cap, PL_ERR_INVALID, "not a WAV file: %zu bytes", len);
    if (memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0)
        return fail(err, err_cap, PL_ERR_INVALID, "not a WAV file: no RIFF/WAVE header");
    /* The RIFF size is often wrong in streamed files; the chunks themselves are checked. */
    size_t pos = 12;
    int have_fmt = 0;
    while (pos + 8 <= len) {
        const uint8_t *hdr = buf + pos;
        uint32_t size = le32(hdr + 4);
        char name[5];
        chunk_name(hdr, name);
        size_t body = pos + 8, left = len - body;
        if (memcmp(hdr, "data", 4) == 0) {
            if (!have_fmt)
                return fail(err, err_cap, PL_ERR_INVALID, "data chunk before fmt chunk");
            size_t bytes;
            if (size == 0 || size == WAV_SIZE_UNKNOWN) {
                bytes = left; /* streamed: to the end of the file */
            } else if (size > left) {
                return fail(err, err_cap, PL_ERR_INVALID,
                            "truncated: data chunk says %u bytes, %zu present", size, left);
            } else {
                bytes = size;
            }
            size_t frame = (size_t)info->channels * 2;
            info->frames = bytes / frame; /* a trailing partial frame is ignored */
            info->data = buf + body;
            return PL_OK;
        }
        if (size > left)
            return fail(err, err_cap, PL_ERR_INVALID,
                        "truncated: %s chunk says %u bytes, %zu present", name, size, left);
        if (memcmp(hdr, "fmt ", 4) == 0) {
            if (have_fmt)
                return fail(err, err_cap, PL_ERR_INVALID, "two fmt chunks");
            int rc = parse_fmt(buf + body, size, info, err, err_cap);
            if (rc != PL_OK)
                return rc;
            have_fmt = 1;
        }
        pos = body + size + (size & 1u); /* chunks are padded to an even size */
    }
    return fail(err, err_cap, PL_ERR_INVALID, have_fmt ? "no data chunk" : "no fmt chunk");
}

int mp_wav_decode(const uint8_t *buf, size_t len, size_t max_frames, int16_t **pcm, size_t *n,
                  int *rate, char *err, size_t err_cap)
{
    mp_wav_info info;
    *pcm = NULL;
    *n = 0;
    int rc = mp_wav_parse(buf, len, &info, err, err_cap);
    if (rc != PL_OK)
        return rc;
    if (info.frames > max_frames)
        return fail(err, err_cap, PL_ERR_TOOBIG, "%zu samples exceed the limit of %zu", info.frames,
                    max_frames);
    *rate = info.rate;
    if (info.frames == 0)
        return PL_OK;
    int16_t *out = malloc(info.frames * sizeof(*out));
    if (out == NULL)
        return fail(err, err_cap, PL_ERR_NOMEM, "out of memory for %zu samples", info.frames);
    const uint8_t *p = info.data;
    if (info.channels == 1) {
        for (size_t i = 0; i < info.frames; i++, p += 2)
            out[i] = (int16_t)le16(p);
    } else {
        for (size_t i = 0; i < info.frames; i++, p += 4)
            out[i] = (int16_t)(((int)(int16_t)le16(p) + (int)(int16_t)le16(p + 2)) / 2);
    }
    *pcm = out;
    *n = info.frames;
    return PL_OK;
}

int mp_wav_read_file(const char *path, size_t max_bytes, int16_t **pcm, size_t *n, int *rate,
                     char *err, size_t err_cap)
{
    *pcm = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return fail(err, err_cap, PL_ERR_IO, "%s: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    int rc;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
        rc = fail(err, err_cap, PL_ERR_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        rc = fail(err, err_cap, PL_ERR_TOOBIG, "%s: %lld bytes exceed the limit of %zu", path,
                  (long long)st.st_size, max_bytes);
        goto out;
    }
    size_t len = (size_t)st.st_size;
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        rc = fail(err, err_cap, PL_ERR_NOMEM, "out of memory for %zu bytes", len);
        goto out;
    }
    if (fread(buf, 1, len, f) != len) {
        rc = fail(err, err_cap, PL_ERR_IO, "%s: short read", path);
        goto out;
    }
    rc = mp_wav_decode(buf, len, len / 2, pcm, n, rate, err, err_cap);
out:
    free(buf);
    fclose(f);
    return rc;
}

static void header(uint8_t h[WAV_HEADER_BYTES], int rate, int channels, uint32_t data_bytes)
{
    uint32_t riff = data_bytes == WAV_SIZE_UNKNOWN ? WAV_SIZE_UNKNOWN : 36 + data_bytes;
    memcpy(h, "RIFF", 4);
    put32(h + 4, riff);
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, 16);
    put16(h + 20, WAV_FORMAT_PCM);
    put16(h + 22, (uint16_t)channels);
    put32(h + 24, (uint32_t)rate);
    put32(h + 28, (uint32_t)(rate * channels * 2));
    put16(h + 32, (uint16_t)(channels * 2));
    put16(h + 34, 16);
    memcpy(h + 36, "data", 4);
    put32(h + 40, data_bytes);
}

int mp_wav_writer_open(mp_wav_writer *w, const char *path, int rate, int channels)
{
    memset(w, 0, sizeof(*w));
    if ((channels != 1 && channels != 2) || rate < MP_WAV_RATE_MIN || rate > MP_WAV_RATE_MAX)
        return PL_ERR_INVALID;
    w->f = fopen(path, "wb");
    if (w->f == NULL)
        return PL_ERR_IO;
    w->rate = rate;
    w->channels = channels;
    uint8_t h[WAV_HEADER_BYTES];
    header(h, rate, channels, WAV_SIZE_UNKNOWN);
    if (fwrite(h, 1, sizeof(h), w->f) != sizeof(h)) {
        fclose(w->f);
        w->f = NULL;
        return PL_ERR_IO;
    }
    return PL_OK;
}

/* Appends frames taken from (left, right) or an interleaved array, converting to LE bytes in a
 * fixed stack buffer: no allocation per call. */
static int append(mp_wav_writer *w, const int16_t *inter, const int16_t *left, const int16_t *right,
                  size_t frames)
{
    if (w->f == NULL)
        return PL_ERR_INVALID;
    if (w->err != PL_OK)
        return w->err;
    size_t frame_bytes = (size_t)w->channels * 2;
    if (w->data_bytes + (uint64_t)frames * frame_bytes > WAV_DATA_MAX)
        return PL_ERR_TOOBIG; /* not sticky: the file so far stays valid */
    uint8_t buf[4096];
    size_t per = sizeof(buf) / frame_bytes;
    for (size_t i = 0; i < frames; i += per) {
        size_t k = frames - i < per ? frames - i : per;
        uint8_t *p = buf;
        for (size_t j = i; j < i + k; j++) {
            if (inter != NULL) {
                for (int c = 0; c < w->channels; c++, p += 2)
                    put16(p, (uint16_t)inter[j * (size_t)w->channels + (size_t)c]);
            } else {
                put16(p, (uint16_t)(left != NULL ? left[j] : 0));
                put16(p + 2, (uint16_t)(right != NULL ? right[j] : 0));
                p += 4;
            }
        }
        if (fwrite(buf, 1, k * frame_bytes, w->f) != k * frame_bytes) {
            w->err = PL_ERR_IO;
            return w->err;
        }
        w->data_bytes += k * frame_bytes;
    }
    return PL_OK;
}

int mp_wav_writer_write(mp_wav_writer *w, const int16_t *samples, size_t frames)
{
    return append(w, samples, NULL, NULL, frames);
}

int mp_wav_writer_write_stereo(mp_wav_writer *w, const int16_t *left, const int16_t *right,
                               size_t frames)
{
    if (w->channels != 2)
        return PL_ERR_INVALID;
    return append(w, NULL, left, right, frames);
}

int mp_wav_writer_close(mp_wav_writer *w)
{
    if (w->f == NULL)
        return PL_ERR_INVALID;
    int rc = w->err;
    uint8_t h[WAV_HEADER_BYTES];
    header(h, w->rate, w->channels, (uint32_t)w->data_bytes);
    if (rc == PL_OK && (fflush(w->f) != 0 || fseek(w->f, 0, SEEK_SET) != 0 ||
                        fwrite(h, 1, sizeof(h), w->f) != sizeof(h)))
        rc = PL_ERR_IO;
    if (fclose(w->f) != 0 && rc == PL_OK)
        rc = PL_ERR_IO;
    memset(w, 0, sizeof(*w));
    return rc;
}
