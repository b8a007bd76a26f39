/* WAV (RIFF) files: a reader that walks the chunks, and a streaming writer for recordings.
 *
 * Reader: accepts PCM 16-bit (format 1, or WAVE_FORMAT_EXTENSIBLE with the PCM sub-format), mono
 * or stereo (downmixed to mono as (L+R)/2), any rate in MP_WAV_RATE_MIN..MP_WAV_RATE_MAX. It
 * walks every chunk ("id", LE u32 size, padded to even): LIST, fact, cue and unknown chunks are
 * skipped; a data size of 0 or 0xFFFFFFFF (streamed WAV) means "to the end of the file". Anything
 * else is refused with PL_ERR_INVALID and a one-line reason in err (e.g. "truncated: data chunk
 * says 32000 bytes, 1200 present"); input over the caller's limit is PL_ERR_TOOBIG.
 *
 * Writer: 16-bit PCM, mono or stereo (recordings: caller left, agent right). The header is written
 * with "unknown" sizes (0xFFFFFFFF, readable as a streamed WAV if the process dies) and patched at
 * close. Writes go through stdio's buffer; on a local disk they rarely block, but the caller that
 * must never block (the audio loop) should hand recording frames to a worker. One writer per file,
 * one thread at a time. */
#ifndef MP_WAV_H
#define MP_WAV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MP_WAV_RATE_MIN 4000
#define MP_WAV_RATE_MAX 192000

typedef struct mp_wav_info {
    int rate;            /* samples per second */
    int channels;        /* of the file (1 or 2); decoded output is always mono */
    int format;          /* 1 (PCM) or 0xFFFE (extensible PCM) */
    size_t frames;       /* samples per channel in the data chunk */
    const uint8_t *data; /* the data chunk's samples inside the parsed buffer */
} mp_wav_info;

/* Validates a WAV held in memory and locates its samples; no allocation. */
int mp_wav_parse(const uint8_t *buf, size_t len, mp_wav_info *info, char *err, size_t err_cap);

/* Parses buf and decodes it to mono PCM16 in a new malloc'd array (*pcm, freed by the caller;
 * NULL when there are no samples). max_frames bounds the output (PL_ERR_TOOBIG). */
int mp_wav_decode(const uint8_t *buf, size_t len, size_t max_frames, int16_t **pcm, size_t *n,
                  int *rate, char *err, size_t err_cap);

/* Reads a file (at most max_bytes) and decodes it as mp_wav_decode. Blocking file I/O. */
int mp_wav_read_file(const char *path, size_t max_bytes, int16_t **pcm, size_t *n, int *rate,
                     char *err, size_t err_cap);

typedef struct mp_wav_writer {
    FILE *f;
    int rate;
    int channels;
    uint64_t data_bytes;
    int err; /* first error; once set, writes are refused and close reports it */
} mp_wav_writer;

/* Creates (truncates) path and writes the provisional header. channels is 1 or 2. */
int mp_wav_writer_open(mp_wav_writer *w, const char *path, int rate, int channels);

/* Appends frames of interleaved samples (channels per frame). PL_ERR_TOOBIG once the file would
 * pass the 4 GiB RIFF limit (the file so far stays valid). */
int mp_wav_writer_write(mp_wav_writer *w, const int16_t *samples, size_t frames);

/* Stereo writer only: appends frames with left[i], right[i]; NULL for a side means silence. */
int mp_wav_writer_write_stereo(mp_wav_writer *w, const int16_t *left, const int16_t *right,
                               size_t frames);

/* Patches the sizes, closes the file and returns the first error of the writer's life (0 if
 * none). Always releases the writer. */
int mp_wav_writer_close(mp_wav_writer *w);

#endif
