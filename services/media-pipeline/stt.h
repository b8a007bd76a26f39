/* Speech-to-text: one interface for every transcriber; one file per provider behind it
 * (stt_local.c: pocketsphinx, embedded). A provider fills a struct mp_stt_ops with designated
 * initializers; callers use the mp_stt_* wrappers below.
 *
 * Threads. The audio loop owns a stream: it calls open, feed, finalize and close, never
 * concurrently for one stream. feed copies the frame and returns; it never blocks nor decodes.
 * A provider that needs CPU (local decoding) asks for it with cb->wake(user, s): the caller then
 * runs mp_stt_pump(s) on a worker of a pool shared by all calls (never a thread per call):
 *
 *   - wake is called from feed/finalize on the loop's thread, at most once until a pump returns
 *     0; it must only enqueue s (no pumping inside wake).
 *   - mp_stt_pump(s) decodes what is buffered; >0 means "call me again" (re-enqueue s, fairness:
 *     one call decodes at most about a second of audio), 0 means idle until the next wake.
 *     The pool never runs two pumps of one stream at once (the wake rule guarantees it).
 *   - A stream that was woken must be pumped, even after close: that pump frees it and returns
 *     0 without calling back. Providers doing their I/O on the loop have no pump (ops->pump
 *     NULL, mp_stt_pump returns 0) and never call wake.
 *
 * Events. cb->on_event runs on the thread that produces it (the pumping worker for local STT);
 * it must not block nor call back into this stream; ev->text is valid during the call only, so
 * copy what you keep and post it to the call's loop. After mp_stt_close returns, no on_event call
 * starts (an in-flight one has finished): the loop may free `user` right away. */
#ifndef MP_STT_H
#define MP_STT_H

#include <stddef.h>
#include <stdint.h>

typedef struct mp_stt_engine mp_stt_engine;
typedef struct mp_stt_stream mp_stt_stream;

typedef enum {
    MP_STT_INTERIM = 1, /* hypothesis so far for the current segment; may change */
    MP_STT_FINAL = 2,   /* a segment's final text; never revised */
    MP_STT_ERROR = 3,   /* the stream failed (err, text = reason); no more events follow */
} mp_stt_event_kind;

typedef struct mp_stt_event {
    mp_stt_event_kind kind;
    const char *text;   /* UTF-8, lower case words; "" when nothing was recognised */
    int finalize_reply; /* FINAL only: 1 if this answers an mp_stt_finalize call: every sample fed
                           before that call is covered by this or an earlier FINAL */
    uint32_t start_ms;  /* stream time (since open) of the segment's speech */
    uint32_t end_ms;
    int err; /* ERROR only: a pl_err code */
} mp_stt_event;

typedef struct mp_stt_callbacks {
    void (*on_event)(void *user, const mp_stt_event *ev);
    void (*wake)(void *user, mp_stt_stream *s); /* may be NULL only for providers without pump */
    void *user;
} mp_stt_callbacks;

typedef struct mp_stt_config {
    int sample_rate;      /* of the PCM16 mono fed; 8000 and 16000 are the usual ones */
    const char *language; /* "en" (NULL: "en"); local STT only knows English */
    /* Expected utterances ("yes", "no", "talk to a human"): a local recognizer decodes only
     * these (a grammar, far more accurate than the full model on phone audio); a cloud provider
     * may use them as keyword hints. NULL/0: open vocabulary. */
    const char *const *phrases;
    size_t n_phrases;
    const char *jsgf; /* local only: a complete JSGF grammar, used instead of phrases */
} mp_stt_config;

struct mp_stt_ops {
    const char *name;
    int (*open)(mp_stt_engine *e, const mp_stt_config *cfg, const mp_stt_callbacks *cb,
                mp_stt_stream **out);
    int (*feed)(mp_stt_stream *s, const int16_t *pcm, size_t samples);
    int (*finalize)(mp_stt_stream *s);
    int (*pump)(mp_stt_stream *s);
    uint32_t (*lag_ms)(mp_stt_stream *s); /* NULL: decodes as it is fed */
    void (*close)(mp_stt_stream *s);
    void (*engine_free)(mp_stt_engine *e);
};

/* Every provider's engine and stream begin with these headers. */
struct mp_stt_engine {
    const struct mp_stt_ops *ops;
};
struct mp_stt_stream {
    const struct mp_stt_ops *ops;
};

/* Opens a stream for one call. cb is copied. Cheap (no model loading, no I/O on the local
 * engine). Returns 0, PL_ERR_INVALID (bad config), PL_ERR_TOOBIG (every recognizer is taken) or
 * PL_ERR_NOMEM. */
static inline int mp_stt_open(mp_stt_engine *e, const mp_stt_config *cfg,
                              const mp_stt_callbacks *cb, mp_stt_stream **out)
{
    return e->ops->open(e, cfg, cb, out);
}

/* Queues samples at the stream's rate (any count, typically one 20 ms frame). Returns 0,
 * PL_ERR_TOOBIG when the buffer is full because the workers are behind (the samples are dropped
 * and counted) or PL_ERR_INVALID after an ERROR event. */
static inline int mp_stt_feed(mp_stt_stream *s, const int16_t *pcm, size_t samples)
{
    return s->ops->feed(s, pcm, samples);
}

/* End of the caller's turn (the endpointer said so): transcribe everything fed so far now and
 * answer with exactly one FINAL with finalize_reply = 1 (text "" if the words were already sent
 * in an earlier FINAL or nothing was heard). */
static inline int mp_stt_finalize(mp_stt_stream *s)
{
    return s->ops->finalize(s);
}

/* Milliseconds of audio fed that the transcriber has not decoded yet (0 for a provider that
 * cannot tell). Loop thread; a lock and no I/O. What it has not decoded, it cannot have found
 * words in: "speech without words" is only known for the speech it has heard. */
static inline uint32_t mp_stt_lag_ms(mp_stt_stream *s)
{
    return s->ops->lag_ms != NULL ? s->ops->lag_ms(s) : 0;
}

/* Worker side; see the thread rules above. */
static inline int mp_stt_pump(mp_stt_stream *s)
{
    return s->ops->pump != NULL ? s->ops->pump(s) : 0;
}

/* Ends the stream; never blocks on decoding (a pending pump frees it). s is gone for the caller. */
static inline void mp_stt_close(mp_stt_stream *s)
{
    s->ops->close(s);
}

/* Every stream must be closed and every woken stream pumped first. */
static inline void mp_stt_engine_free(mp_stt_engine *e)
{
    if (e != NULL)
        e->ops->engine_free(e);
}

/* ---- local provider (stt_local.c) ---- */

#define MP_STT_LOCAL_MODEL_DIR "/usr/share/pocketsphinx/model/en-us"

typedef struct mp_stt_local_config {
    const char *model_dir; /* NULL: MP_STT_LOCAL_MODEL_DIR (holds en-us/, en-us.lm.bin, dict) */
    const char *hmm;       /* NULL: <model_dir>/en-us */
    const char *lm;        /* NULL: <model_dir>/en-us.lm.bin; "": no open-vocabulary model */
    const char *dict;      /* NULL: <model_dir>/cmudict-en-us.dict */
    int max_decoders;      /* concurrent streams; 0: 4. Each decoder is ~30 MB, ~90 MB with lm */
    int preload;           /* decoders loaded by mp_stt_local_new (blocking, ~0.2 s each) */
    int preload_lm;        /* 1: also load the lm into them (~0.4 s, ~60 MB each) */
    int buffer_ms;         /* audio a stream may queue for its pump; 0: 5000 */
} mp_stt_local_config;

/* Creates the pocketsphinx engine. Blocking (loads models when preload > 0): call at start-up.
 * Decoders are pooled: a stream takes one at open and gives it back at close; a decoder missing
 * from the pool (fewer than max_decoders loaded) or its lm is loaded by the stream's first pump, on
 * the worker. Returns 0, PL_ERR_INVALID (model files missing) or PL_ERR_NOMEM. */
int mp_stt_local_new(const mp_stt_local_config *cfg, mp_stt_engine **out);

/* Counters of the local engine, for metrics and tests. */
typedef struct mp_stt_local_stats {
    int decoders_loaded;      /* created so far */
    int decoders_busy;        /* held by open streams */
    uint64_t samples_decoded; /* at 16 kHz, all streams */
    uint64_t decode_ns;       /* time spent in pocketsphinx, all streams */
    uint64_t samples_dropped; /* refused by full stream buffers */
} mp_stt_local_stats;

void mp_stt_local_stats_get(mp_stt_engine *e, mp_stt_local_stats *out);

#endif
