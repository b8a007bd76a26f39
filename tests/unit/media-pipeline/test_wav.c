/* wav: writer/reader round trips (mono, stereo caller-left/agent-right), chunk walking past LIST,
 * fact and odd-sized chunks, WAVE_FORMAT_EXTENSIBLE, streamed sizes, and clear refusals of
 * truncated, garbage and unsupported files. Files are written to a fresh temporary directory. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "error.h"
#include "wav.h"

static char dir[64];

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static size_t put(uint8_t *b, size_t at, const void *p, size_t n)
{
    memcpy(b + at, p, n);
    return at + n;
}

static size_t put32(uint8_t *b, size_t at, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return put(b, at, x, 4);
}

static size_t put16(uint8_t *b, size_t at, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return put(b, at, x, 2);
}

static size_t fmt_pcm(uint8_t *b, size_t at, int channels, int rate)
{
    at = put(b, at, "fmt ", 4);
    at = put32(b, at, 16);
    at = put16(b, at, 1);
    at = put16(b, at, (uint16_t)channels);
    at = put32(b, at, (uint32_t)rate);
    at = put32(b, at, (uint32_t)(rate * channels * 2));
    at = put16(b, at, (uint16_t)(channels * 2));
    return put16(b, at, 16);
}

static void mono_round_trip(void)
{
    char p[128];
    path_of(p, sizeof(p), "mono.wav");
    int16_t pcm[800];
    for (int i = 0; i < 800; i++)
        pcm[i] = (int16_t)((i * 97) % 65536 - 32768);
    mp_wav_writer w;
    CHECK(mp_wav_writer_open(&w, p, 8000, 1) == PL_OK);
    CHECK(mp_wav_writer_write(&w, pcm, 160) == PL_OK); /* in 20 ms frames, like the pipeline */
    CHECK(mp_wav_writer_write(&w, pcm + 160, 640) == PL_OK);
    CHECK(mp_wav_writer_close(&w) == PL_OK);
    int16_t *back = NULL;
    size_t n = 0;
    int rate = 0;
    char err[128] = "";
    CHECK(mp_wav_read_file(p, 1 << 20, &back, &n, &rate, err, sizeof(err)) == PL_OK);
    CHECK(n == 800 && rate == 8000);
    CHECK(back != NULL && memcmp(back, pcm, sizeof(pcm)) == 0);
    free(back);
    /* The header is the canonical 44 bytes with the right sizes. */
    FILE *f = fopen(p, "rb");
    uint8_t h[44];
    CHECK(f != NULL && fread(h, 1, 44, f) == 44);
    fclose(f);
    CHECK(memcmp(h, "RIFF", 4) == 0 && h[4] == (uint8_t)(36 + 1600) &&
          h[5] == (uint8_t)((36 + 1600) >> 8));
    CHECK(memcmp(h + 36, "data", 4) == 0 && h[40] == (uint8_t)1600 &&
          h[41] == (uint8_t)(1600 >> 8));
}

static void stereo_recording(void)
{
    char p[128];
    path_of(p, sizeof(p), "call.wav");
    int16_t caller[320], agent[320];
    for (int i = 0; i < 320; i++) {
        caller[i] = (int16_t)(i * 10);
        agent[i] = (int16_t)(-i * 10 - 2);
    }
    mp_wav_writer w;
    CHECK(mp_wav_writer_open(&w, p, 16000, 2) == PL_OK);
    CHECK(mp_wav_writer_write_stereo(&w, caller, agent, 320) == PL_OK);
    CHECK(mp_wav_writer_write_stereo(&w, caller, NULL, 320) == PL_OK); /* agent silent */
    CHECK(mp_wav_writer_close(&w) == PL_OK);

    FILE *f = fopen(p, "rb");
    static uint8_t buf[4096];
    size_t len = f ? fread(buf, 1, sizeof(buf), f) : 0;
    if (f)
        fclose(f);
    CHECK(len == 44 + 640 * 4);
    mp_wav_info info;
    char err[128] = "";
    CHECK(mp_wav_parse(buf, len, &info, err, sizeof(err)) == PL_OK);
    CHECK(info.channels == 2 && info.rate == 16000 && info.frames == 640);
    /* Left is the caller, right the agent, little-endian. */
    CHECK((int16_t)(info.data[4 * 5] | info.data[4 * 5 + 1] << 8) == caller[5]);
    CHECK((int16_t)(info.data[4 * 5 + 2] | info.data[4 * 5 + 3] << 8) == agent[5]);
    /* Decoding downmixes to mono (L+R)/2. */
    int16_t *mono = NULL;
    size_t n = 0;
    int rate = 0;
    CHECK(mp_wav_decode(buf, len, 10000, &mono, &n, &rate, err, sizeof(err)) == PL_OK);
    CHECK(n == 640 && mono != NULL);
    if (mono != NULL) {
        CHECK(mono[5] == (caller[5] + agent[5]) / 2);
        CHECK(mono[320 + 7] == caller[7] / 2);
    }
    free(mono);
    /* A mono writer refuses stereo frames. */
    CHECK(mp_wav_writer_open(&w, p, 8000, 1) == PL_OK);
    CHECK(mp_wav_writer_write_stereo(&w, caller, agent, 10) == PL_ERR_INVALID);
    CHECK(mp_wav_writer_close(&w) == PL_OK);
}

/* RIFF with LIST (odd size 5 + pad byte), fact, fmt, an odd-sized unknown chunk, then data. */
static void walks_chunks(void)
{
    uint8_t b[256];
    size_t at = put(b, 0, "RIFF", 4);
    at = put32(b, at, 0); /* patched below */
    at = put(b, at, "WAVE", 4);
    at = put(b, at, "LIST", 4);
    at = put32(b, at, 5);
    at = put(b, at, "INFOx\0", 6); /* 5 bytes + pad */
    at = put(b, at, "fact", 4);
    at = put32(b, at, 4);
    at = put32(b, at, 3);
    at = fmt_pcm(b, at, 1, 16000);
    at = put(b, at, "junk", 4);
    at = put32(b, at, 3);
    at = put(b, at, "abc\0", 4); /* 3 bytes + pad */
    at = put(b, at, "data", 4);
    at = put32(b, at, 6);
    at = put16(b, at, 1000);
    at = put16(b, at, (uint16_t)-1000);
    at = put16(b, at, 7);
    put32(b, 4, (uint32_t)(at - 8));
    mp_wav_info info;
    char err[128] = "";
    CHECK(mp_wav_parse(b, at, &info, err, sizeof(err)) == PL_OK);
    CHECK_STR(err, "");
    CHECK(info.rate == 16000 && info.channels == 1 && info.frames == 3);
    int16_t *pcm = NULL;
    size_t n = 0;
    int rate = 0;
    CHECK(mp_wav_decode(b, at, 100, &pcm, &n, &rate, err, sizeof(err)) == PL_OK);
    CHECK(n == 3 && pcm != NULL && pcm[0] == 1000 && pcm[1] == -1000 && pcm[2] == 7);
    free(pcm);
    /* Over the caller's limit: PL_ERR_TOOBIG with a reason. */
    CHECK(mp_wav_decode(b, at, 2, &pcm, &n, &rate, err, sizeof(err)) == PL_ERR_TOOBIG);
    CHECK(strstr(err, "exceed") != NULL);
}

static void extensible_and_streamed(void)
{
    uint8_t b[256];
    size_t at = put(b, 0, "RIFF", 4);
    at = put32(b, at, 0xFFFFFFFFu);
    at = put(b, at, "WAVEfmt ", 8);
    at = put32(b, at, 40);
    at = put16(b, at, 0xFFFE);
    at = put16(b, at, 2);
    at = put32(b, at, 8000);
    at = put32(b, at, 8000 * 4);
    at = put16(b, at, 4);
    at = put16(b, at, 16);
    at = put16(b, at, 22); /* cbSize */
    at = put16(b, at, 16); /* valid bits */
    at = put32(b, at, 3);  /* channel mask FL|FR */
    static const uint8_t pcm_guid[16] = {0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
                                         0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71};
    at = put(b, at, pcm_guid, 16);
    at = put(b, at, "data", 4);
    at = put32(b, at, 0xFFFFFFFFu); /* streamed: to the end of the file */
    at = put16(b, at, 100);
    at = put16(b, at, 300);
    at = put16(b, at, (uint16_t)-50);
    at = put16(b, at, (uint16_t)-150);
    at = put16(b, at, 9); /* a trailing half frame is ignored */
    int16_t *pcm = NULL;
    size_t n = 0;
    int rate = 0;
    char err[128] = "";
    CHECK(mp_wav_decode(b, at, 100, &pcm, &n, &rate, err, sizeof(err)) == PL_OK);
    CHECK(n == 2 && rate == 8000 && pcm != NULL && pcm[0] == 200 && pcm[1] == -100);
    free(pcm);
    /* A non-PCM sub-format (IEEE float) is refused. */
    b[44] = 0x03;
    CHECK(mp_wav_decode(b, at, 100, &pcm, &n, &rate, err, sizeof(err)) == PL_ERR_INVALID);
    CHECK(strstr(err, "sub-format") != NULL);
}

static void refuses_bad_files(void)
{
    char err[128];
    mp_wav_info info;
    /* Truncated: the data chunk claims more than the file holds. */
    uint8_t b[128];
    size_t at = put(b, 0, "RIFF", 4);
    at = put32(b, at, 36 + 32000);
    at = put(b, at, "WAVE", 4);
    at = fmt_pcm(b, at, 1, 8000);
    at = put(b, at, "data", 4);
    at = put32(b, at, 32000);
    memset(b + at, 0, 20);
    CHECK(mp_wav_parse(b, at + 20, &info, err, sizeof(err)) == PL_ERR_INVALID);
    CHECK_STR(err, "truncated: data chunk says 32000 bytes, 20 present");
    /* Truncated inside the fmt chunk. */
    CHECK(mp_wav_parse(b, 12 + 8 + 10, &info, err, sizeof(err)) == PL_ERR_INVALID);
    CHECK_STR(err, "truncated: fmt  chunk says 16 bytes, 10 present");
    /* Header only. */
    CHECK(mp_wav_parse(b, 12, &info, err, sizeof(err)) == PL_ERR_INVALID);
    CHECK_STR(err, "no fmt chunk");
    /* Garbage. */
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    CHECK(mp_wav_parse(junk, sizeof(junk), &info, err, sizeof(err)) == PL_ERR_INVALID);
    CHECK_STR(err, "not a WAV file: no RIFF/WAVE header");
    CHECK(mp_wav_parse(junk, 5, &info, err, sizeof(err)) == PL_ERR_INVALID);
    CHECK_STR(err, "not a WAV file: 5 bytes");
    /* μ-law WAV (format 7): refused, codecs live elsewhere. */
    at = put(b, 0, "RIFF", 4);
    at = put32(b, at, 0);
    at = put(b, at, "WAVE", 4);
    size_t fmt_at = at;
    at = fmt_pcm(b, at, 1, 8000);
    put16(b, fmt_at + 8, 7);
    at = put(b, at, "data", 4);
    at = put32(b, at, 0);
    CHECK(mp_wav_parse(b, at, &info, err, sizeof(err)) == PL_ERR_INVALID);
    CHECK_STR(err, "unsupported format 7 (only PCM 16-bit)");
    /* 3 channels. */
    put16(b, fmt_at + 8, 1);
    put16(b, fmt_at + 10, 3);
    CHECK(mp_wav_parse(b, at, &info, err, sizeof(err)) == PL_ERR_INVALID);
    CHECK_STR(err, "unsupported 3 channels (only mono or stereo)");
    /* data before fmt. */
    at = put(b, 0, "RIFF", 4);
    at = put32(b, at, 0);
    at = put(b, at, "WAVEdata", 8);
    at = put32(b, at, 0);
    CHECK(mp_wav_parse(b, at, &info, err, sizeof(err)) == PL_ERR_INVALID);
    CHECK_STR(err, "data chunk before fmt chunk");
    /* Files: missing, and over the size limit. */
    int16_t *pcm = NULL;
    size_t n = 0;
    int rate = 0;
    char p[128];
    path_of(p, sizeof(p), "missing.wav");
    CHECK(mp_wav_read_file(p, 1 << 20, &pcm, &n, &rate, err, sizeof(err)) == PL_ERR_IO);
    CHECK(strstr(err, "No such file") != NULL);
    path_of(p, sizeof(p), "mono.wav");
    CHECK(mp_wav_read_file(p, 100, &pcm, &n, &rate, err, sizeof(err)) == PL_ERR_TOOBIG);
    CHECK(pcm == NULL);
    /* A writer on an impossible path. */
    mp_wav_writer w;
    CHECK(mp_wav_writer_open(&w, "/nonexistent-dir/x.wav", 8000, 1) == PL_ERR_IO);
    CHECK(mp_wav_writer_open(&w, p, 8000, 3) == PL_ERR_INVALID);
}

/* A file whose writer never closed (the process died) reads as a streamed WAV. */
static void unclosed_recording_is_readable(void)
{
    char p[128];
    path_of(p, sizeof(p), "crash.wav");
    mp_wav_writer w;
    int16_t pcm[160] = {5, 6, 7};
    CHECK(mp_wav_writer_open(&w, p, 8000, 1) == PL_OK);
    CHECK(mp_wav_writer_write(&w, pcm, 160) == PL_OK);
    fflush(w.f);
    int16_t *back = NULL;
    size_t n = 0;
    int rate = 0;
    char err[128] = "";
    CHECK(mp_wav_read_file(p, 1 << 20, &back, &n, &rate, err, sizeof(err)) == PL_OK);
    CHECK(n == 160 && back != NULL && back[2] == 7);
    free(back);
    CHECK(mp_wav_writer_close(&w) == PL_OK);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/parley-test-wav-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    RUN(mono_round_trip);
    RUN(stereo_recording);
    RUN(walks_chunks);
    RUN(extensible_and_streamed);
    RUN(refuses_bad_files);
    RUN(unclosed_recording_is_readable);
    const char *names[] = {"mono.wav", "call.wav", "crash.wav"};
    for (size_t i = 0; i < 3; i++) {
        char p[128];
        path_of(p, sizeof(p), names[i]);
        unlink(p);
    }
    rmdir(dir);
    return check_summary();
}
