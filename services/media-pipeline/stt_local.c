/* Local transcriber: pocketsphinx 5prealpha (old API), en-us model (16 kHz only).
 *
 * Layout: the engine owns a pool of decoders (a decoder is the acoustic model + dictionary,
 * ~30 MB, plus the open-vocabulary lm once a stream needed it, ~60 MB more). A stream takes one
 * decoder from open to close. Audio fed on the loop goes into the stream's ring buffer; the pump,
 * on a worker, resamples it to 16 kHz, decodes it and reports segments. pocketsphinx's own VAD
 * cuts segments (a FINAL each); mp_stt_finalize forces one.
 *
 * Locks: `mu` guards what the loop and the worker share (ring, flags); `cb_mu` is held while an
 * event is delivered, so close can promise that no callback runs after it returns. Never both at
 * once. Everything else in a stream belongs to whichever side the comment says. */
#include "stt.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pocketsphinx.h>
#include <sphinxbase/ckd_alloc.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/err.h>
#include <sphinxbase/feat.h>
#include <sphinxbase/fsg_model.h>
#include <sphinxbase/jsgf.h>

#include "error.h"
#include "log.h"
#include "resample.h"

#define DECODER_RATE      16000
#define PUMP_MAX_MS       1000 /* audio one pump call decodes at most (fairness) */
#define WAKE_MIN_MS       100  /* buffered audio that makes feed ask for a pump */
#define SUBCHUNK_SAMPLES  1600 /* 100 ms at 16 kHz: segment boundaries are checked this often */
#define INTERIM_EVERY     (DECODER_RATE * 3 / 10) /* an interim at most every 300 ms of audio */
#define PHRASES_MAX       1000
#define PHRASE_MAX_BYTES  256
#define GRAMMAR_MAX_BYTES (64 * 1024)
#define INTERIM_MAX_BYTES 512
#define DEFAULT_DECODERS  4
#define DEFAULT_BUFFER_MS 5000
#define CEPSTRA           13

/* Cepstral mean normalisation (CMN) is live: it starts from a prior and adapts as the call goes.
 * The model's prior (feat.params -cmninit) fits 16 kHz speech. Telephone audio upsampled from
 * 8 kHz has nothing above 4 kHz, which moves the cepstral means far from it (c1 ~ +30 instead of
 * ~0), and with that prior the first utterance of a call is lost. So narrowband streams start
 * from this prior instead: the mean, over six flite and espeak-ng voices, of the CMN pocketsphinx
 * settled on after 8 kHz speech passed through our resampler (the empty band dominates it, so it
 * is a property of the channel, not of a speaker). Every stream starts from its band's prior,
 * whatever call the pooled decoder heard before. */
static const float cmn_narrowband[CEPSTRA] = {41.96f, 29.55f, -27.94f, 47.03f, -18.21f,
                                              -8.37f, 21.83f, -26.73f, 11.73f, -4.62f,
                                              -4.20f, 13.48f, -13.53f};

typedef struct decoder {
    ps_decoder_t *ps;
    mfcc_t cmn_wide[CEPSTRA]; /* the model's CMN prior, read when the decoder is created */
    int has_lm;               /* the "lm" search is loaded */
    int in_utt;               /* ps_start_utt called without its ps_end_utt */
    char search[32];          /* grammar search of the last stream, removed at the next take */
    struct decoder *next;     /* free list */
} decoder;

typedef struct engine {
    mp_stt_engine base;
    pthread_mutex_t mu; /* guards the pool counters and free list */
    char hmm[PATH_MAX], lm[PATH_MAX], dict[PATH_MAX];
    int max_decoders;
    int loaded; /* decoders created or being created by a pump */
    int busy;   /* streams holding or about to create a decoder */
    decoder *free_list;
    decoder **all; /* every decoder created, for engine_free */
    int buffer_ms;
    atomic_uint search_seq;
    atomic_uint_fast64_t samples_decoded, decode_ns, dropped;
} engine;

typedef struct stream {
    mp_stt_stream base;
    engine *e;
    mp_stt_callbacks cb;
    int rate;

    /* Shared by loop and worker, under mu. */
    pthread_mutex_t mu;
    int16_t *ring;
    size_t cap, head, len;
    uint64_t fed;    /* samples accepted since open */
    uint64_t taken;  /* samples the pump has taken from the ring */
    uint64_t done;   /* samples the pump has decoded (or given up on) */
    uint64_t fin_at; /* `fed` at the last finalize */
    int fin_pending; /* finalize calls not answered yet */
    int scheduled;   /* woken and not yet idle: a pump will come */
    int closed;
    int failed;

    /* Delivery, under cb_mu. */
    pthread_mutex_t cb_mu;
    int quiet; /* close was called: deliver nothing */

    /* Set at open; the decoder is used by the worker only. */
    int pooled;     /* holds a decoder or a reserved slot of the engine's pool */
    decoder *dec;   /* NULL: the pump creates one (its slot is reserved in engine->loaded) */
    char *jsgf;     /* grammar given by the caller, or NULL */
    char **phrases; /* normalised phrases, or NULL */
    size_t n_phrases;

    /* Worker only. */
    int ready; /* decoder set up and utterance started */
    mp_resampler rs;
    int16_t *in_buf, *out_buf;
    size_t in_cap, out_cap;
    uint64_t decoded; /* 16 kHz samples given to the decoder */
    int speaking;     /* pocketsphinx is inside a speech segment */
    uint64_t seg_start, interim_at;
    char last_interim[INTERIM_MAX_BYTES];
} stream;

static const struct mp_stt_ops local_ops;

/* pocketsphinx creation sets global state (logging); creations are serialised. */
static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static decoder *decoder_new(engine *e, int with_lm)
{
    decoder *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    pthread_mutex_lock(&create_mu);
    cmd_ln_t *cfg = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", e->hmm, "-dict", e->dict,
                                "-samprate", "16000", "-cmn", "live", NULL);
    if (cfg != NULL) {
        d->ps = ps_init(cfg);
        cmd_ln_free_r(cfg); /* the decoder keeps its own reference */
    }
    if (d->ps != NULL) {
        feat_t *f = ps_get_feat(d->ps);
        if (f == NULL || f->cmn_struct == NULL || feat_cepsize(f) != CEPSTRA) {
            ps_free(d->ps); /* not the en-us model layout this file was written for */
            d->ps = NULL;
        } else {
            cmn_live_get(f->cmn_struct, d->cmn_wide);
        }
    }
    if (d->ps != NULL && with_lm && e->lm[0] != '\0') {
        if (ps_set_lm_file(d->ps, "lm", e->lm) == 0)
            d->has_lm = 1;
        else
            PL_WARN("stt_local: cannot load language model %s", e->lm);
    }
    pthread_mutex_unlock(&create_mu);
    if (d->ps == NULL) {
        free(d);
        return NULL;
    }
    return d;
}

static int file_exists(const char *path)
{
    return access(path, R_OK) == 0;
}

static void engine_free(mp_stt_engine *base)
{
    engine *e = (engine *)base;
    for (int i = 0; i < e->max_decoders; i++) {
        if (e->all[i] != NULL) {
            if (e->all[i]->in_utt)
                ps_end_utt(e->all[i]->ps); /* frees the search's per-utterance lists */
            ps_free(e->all[i]->ps);
            free(e->all[i]);
        }
    }
    free(e->all);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

/* Records a decoder in the engine's list of all decoders; under e->mu. */
static void remember(engine *e, decoder *d)
{
    for (int i = 0; i < e->max_decoders; i++) {
        if (e->all[i] == NULL) {
            e->all[i] = d;
            return;
        }
    }
}

int mp_stt_local_new(const mp_stt_local_config *cfg, mp_stt_engine **out)
{
    mp_stt_local_config c = {0};
    if (cfg != NULL)
        c = *cfg;
    *out = NULL;
    const char *dir = c.model_dir != NULL ? c.model_dir : MP_STT_LOCAL_MODEL_DIR;
    if (c.max_decoders <= 0)
        c.max_decoders = DEFAULT_DECODERS;
    if (c.buffer_ms <= 0)
        c.buffer_ms = DEFAULT_BUFFER_MS;
    if (c.preload > c.max_decoders || c.max_decoders > 1024 || c.buffer_ms > 60000)
        return PL_ERR_INVALID;
    engine *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return PL_ERR_NOMEM;
    e->all = calloc((size_t)c.max_decoders, sizeof(*e->all));
    if (e->all == NULL) {
        free(e);
        return PL_ERR_NOMEM;
    }
    e->base.ops = &local_ops;
    pthread_mutex_init(&e->mu, NULL);
    e->max_decoders = c.max_decoders;
    e->buffer_ms = c.buffer_ms;
    int n1 = c.hmm ? snprintf(e->hmm, sizeof(e->hmm), "%s", c.hmm)
                   : snprintf(e->hmm, sizeof(e->hmm), "%s/en-us", dir);
    int n2 = c.lm ? snprintf(e->lm, sizeof(e->lm), "%s", c.lm)
                  : snprintf(e->lm, sizeof(e->lm), "%s/en-us.lm.bin", dir);
    int n3 = c.dict ? snprintf(e->dict, sizeof(e->dict), "%s", c.dict)
                    : snprintf(e->dict, sizeof(e->dict), "%s/cmudict-en-us.dict", dir);
    char mdef[PATH_MAX + 8];
    snprintf(mdef, sizeof(mdef), "%s/mdef", e->hmm);
    if (n1 < 0 || n2 < 0 || n3 < 0 || (size_t)n1 >= sizeof(e->hmm) || (size_t)n2 >= sizeof(e->lm) ||
        (size_t)n3 >= sizeof(e->dict) || !file_exists(mdef) || !file_exists(e->dict) ||
        (e->lm[0] != '\0' && !file_exists(e->lm))) {
        PL_ERROR("stt_local: model files missing under %s", e->hmm);
        engine_free(&e->base);
        return PL_ERR_INVALID;
    }
    /* pocketsphinx logs every detail of its configuration to stderr; our log line says enough. */
    err_set_logfp(NULL);
    for (int i = 0; i < c.preload; i++) {
        decoder *d = decoder_new(e, c.preload_lm);
        if (d == NULL) {
            PL_ERROR("stt_local: cannot load the model from %s", e->hmm);
            engine_free(&e->base);
            return PL_ERR_INVALID;
        }
        remember(e, d);
        d->next = e->free_list;
        e->free_list = d;
        e->loaded++;
    }
    *out = &e->base;
    return PL_OK;
}

void mp_stt_local_stats_get(mp_stt_engine *base, mp_stt_local_stats *out)
{
    engine *e = (engine *)base;
    pthread_mutex_lock(&e->mu);
    out->decoders_loaded = e->loaded;
    out->decoders_busy = e->busy;
    pthread_mutex_unlock(&e->mu);
    out->samples_decoded = atomic_load(&e->samples_decoded);
    out->decode_ns = atomic_load(&e->decode_ns);
    out->samples_dropped = atomic_load(&e->dropped);
}

/* Lower-case words of [a-z0-9'] separated by single spaces; "" if nothing is left. */
static char *normalise_phrase(const char *in)
{
    size_t n = strlen(in);
    if (n > PHRASE_MAX_BYTES)
        return NULL;
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    size_t k = 0;
    int space = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        int c = *p;
        if (c >= 'A' && c <= 'Z')
            c = c - 'A' + 'a';
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'') {
            if (space && k > 0)
                out[k++] = ' ';
            space = 0;
            out[k++] = (char)c;
        } else {
            space = 1;
        }
    }
    out[k] = '\0';
    return out;
}

static void stream_free(stream *s)
{
    engine *e = s->e;
    if (s->pooled) {
        pthread_mutex_lock(&e->mu);
        if (s->dec != NULL) {
            /* Cleaned (utterance ended, grammar removed) by the next stream's pump. */
            s->dec->next = e->free_list;
            e->free_list = s->dec;
        } else {
            e->loaded--; /* the reserved slot was never filled */
        }
        e->busy--;
        pthread_mutex_unlock(&e->mu);
    }
    for (size_t i = 0; i < s->n_phrases; i++)
        free(s->phrases[i]);
    free(s->phrases);
    free(s->jsgf);
    free(s->ring);
    free(s->in_buf);
    free(s->out_buf);
    mp_resampler_free(&s->rs);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->cb_mu);
    free(s);
}

static int local_open(mp_stt_engine *base, const mp_stt_config *cfg, const mp_stt_callbacks *cb,
                      mp_stt_stream **out)
{
    engine *e = (engine *)base;
    *out = NULL;
    if (cfg->sample_rate < 8000 || cfg->sample_rate > 48000 || cb->on_event == NULL ||
        cb->wake == NULL || (cfg->language != NULL && strncmp(cfg->language, "en", 2) != 0) ||
        cfg->n_phrases > PHRASES_MAX || (cfg->n_phrases > 0 && cfg->phrases == NULL) ||
        (cfg->jsgf != NULL && strlen(cfg->jsgf) > GRAMMAR_MAX_BYTES))
        return PL_ERR_INVALID;
    int grammar = cfg->jsgf != NULL || cfg->n_phrases > 0;
    if (!grammar && e->lm[0] == '\0')
        return PL_ERR_INVALID; /* open vocabulary needs the lm this engine was built without */

    stream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return PL_ERR_NOMEM;
    s->base.ops = &local_ops;
    s->e = e;
    s->cb = *cb;
    s->rate = cfg->sample_rate;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->cb_mu, NULL);
    s->cap = (size_t)s->rate * (size_t)e->buffer_ms / 1000;
    s->in_cap = (size_t)s->rate * PUMP_MAX_MS / 1000;
    s->ring = malloc(s->cap * sizeof(*s->ring));
    s->in_buf = malloc(s->in_cap * sizeof(*s->in_buf));
    int rc = mp_resampler_init(&s->rs, s->rate, DECODER_RATE);
    if (rc == PL_OK) {
        s->out_cap = mp_resampler_out_max(&s->rs, s->in_cap);
        s->out_buf = malloc(s->out_cap * sizeof(*s->out_buf));
    }
    if (cfg->jsgf != NULL)
        s->jsgf = strdup(cfg->jsgf);
    else if (cfg->n_phrases > 0)
        s->phrases = calloc(cfg->n_phrases, sizeof(*s->phrases));
    int bad = rc != PL_OK || s->ring == NULL || s->in_buf == NULL || s->out_buf == NULL ||
              (cfg->jsgf != NULL && s->jsgf == NULL) ||
              (cfg->jsgf == NULL && cfg->n_phrases > 0 && s->phrases == NULL);
    for (size_t i = 0; !bad && s->phrases != NULL && i < cfg->n_phrases; i++) {
        if (cfg->phrases[i] == NULL || strlen(cfg->phrases[i]) > PHRASE_MAX_BYTES) {
            rc = PL_ERR_INVALID;
            bad = 1;
            break;
        }
        s->phrases[s->n_phrases] = normalise_phrase(cfg->phrases[i]);
        if (s->phrases[s->n_phrases] == NULL)
            bad = 1;
        else if (s->phrases[s->n_phrases][0] == '\0')
            free(s->phrases[s->n_phrases]);
        else
            s->n_phrases++;
    }
    if (!bad && cfg->jsgf == NULL && cfg->n_phrases > 0 && s->n_phrases == 0) {
        rc = PL_ERR_INVALID; /* every phrase was punctuation */
        bad = 1;
    }

    /* Take a pooled decoder, or reserve a slot the first pump fills. */
    if (!bad) {
        pthread_mutex_lock(&e->mu);
        if (e->free_list != NULL) {
            s->dec = e->free_list;
            e->free_list = s->dec->next;
            s->dec->next = NULL;
        } else if (e->loaded < e->max_decoders) {
            e->loaded++;
        } else {
            rc = PL_ERR_TOOBIG;
            bad = 1;
        }
        if (!bad) {
            e->busy++;
            s->pooled = 1;
        }
        pthread_mutex_unlock(&e->mu);
    }
    if (bad) {
        stream_free(s);
        return rc != PL_OK ? rc : PL_ERR_NOMEM;
    }
    *out = &s->base;
    return PL_OK;
}

static int local_feed(mp_stt_stream *base, const int16_t *pcm, size_t n)
{
    stream *s = (stream *)base;
    pthread_mutex_lock(&s->mu);
    if (s->failed || s->closed) {
        pthread_mutex_unlock(&s->mu);
        return PL_ERR_INVALID;
    }
    if (n > s->cap - s->len) {
        pthread_mutex_unlock(&s->mu);
        atomic_fetch_add(&s->e->dropped, n);
        return PL_ERR_TOOBIG;
    }
    size_t tail = (s->head + s->len) % s->cap;
    size_t first = n < s->cap - tail ? n : s->cap - tail;
    memcpy(s->ring + tail, pcm, first * sizeof(*pcm));
    memcpy(s->ring, pcm + first, (n - first) * sizeof(*pcm));
    s->len += n;
    s->fed += n;
    int wake = !s->scheduled && s->len >= (size_t)s->rate * WAKE_MIN_MS / 1000;
    if (wake)
        s->scheduled = 1;
    pthread_mutex_unlock(&s->mu);
    if (wake)
        s->cb.wake(s->cb.user, &s->base);
    return PL_OK;
}

static int local_finalize(mp_stt_stream *base)
{
    stream *s = (stream *)base;
    pthread_mutex_lock(&s->mu);
    if (s->failed || s->closed) {
        pthread_mutex_unlock(&s->mu);
        return PL_ERR_INVALID;
    }
    s->fin_pending++;
    s->fin_at = s->fed;
    int wake = !s->scheduled;
    s->scheduled = 1;
    pthread_mutex_unlock(&s->mu);
    if (wake)
        s->cb.wake(s->cb.user, &s->base);
    return PL_OK;
}

static void local_close(mp_stt_stream *base)
{
    stream *s = (stream *)base;
    pthread_mutex_lock(&s->cb_mu);
    s->quiet = 1;
    pthread_mutex_unlock(&s->cb_mu);
    pthread_mutex_lock(&s->mu);
    s->closed = 1;
    int pending = s->scheduled;
    pthread_mutex_unlock(&s->mu);
    if (!pending)
        stream_free(s); /* otherwise the pump that was asked for frees it */
}

/* Worker side from here on. */

static void emit(stream *s, const mp_stt_event *ev)
{
    pthread_mutex_lock(&s->cb_mu);
    if (!s->quiet)
        s->cb.on_event(s->cb.user, ev);
    pthread_mutex_unlock(&s->cb_mu);
}

static uint32_t ms_of(uint64_t samples16)
{
    return (uint32_t)(samples16 / (DECODER_RATE / 1000));
}

static void emit_text(stream *s, mp_stt_event_kind kind, const char *text, int reply)
{
    mp_stt_event ev = {.kind = kind,
                       .text = text != NULL ? text : "",
                       .finalize_reply = reply,
                       .start_ms = ms_of(s->seg_start),
                       .end_ms = ms_of(s->decoded)};
    emit(s, &ev);
}

static void fail_stream(stream *s, int err, const char *why)
{
    PL_WARN("stt_local: %s", why);
    pthread_mutex_lock(&s->mu);
    s->failed = 1;
    pthread_mutex_unlock(&s->mu);
    mp_stt_event ev = {.kind = MP_STT_ERROR, .text = why, .err = err};
    emit(s, &ev);
}

/* The JSGF of the stream's phrases, skipping phrases with a word the dictionary lacks. */
static char *phrases_grammar(stream *s, size_t *kept)
{
    size_t cap = 64;
    for (size_t i = 0; i < s->n_phrases; i++)
        cap += strlen(s->phrases[i]) + 8;
    char *g = malloc(cap);
    if (g == NULL)
        return NULL;
    size_t len = (size_t)snprintf(g, cap, "#JSGF V1.0;\ngrammar parley;\npublic <utt> = ");
    *kept = 0;
    for (size_t i = 0; i < s->n_phrases; i++) {
        char word[PHRASE_MAX_BYTES + 1];
        const char *p = s->phrases[i];
        int known = 1;
        while (*p && known) {
            size_t w = strcspn(p, " ");
            memcpy(word, p, w);
            word[w] = '\0';
            char *pron = ps_lookup_word(s->dec->ps, word);
            if (pron == NULL) {
                PL_WARN("stt_local: phrase \"%s\" dropped: \"%s\" is not in the dictionary",
                        s->phrases[i], word);
                known = 0;
            }
            ckd_free(pron);
            p += w;
            while (*p == ' ')
                p++;
        }
        if (!known)
            continue;
        len += (size_t)snprintf(g + len, cap - len, "%s( %s )", *kept ? " | " : "", s->phrases[i]);
        (*kept)++;
    }
    snprintf(g + len, cap - len, " ;\n");
    return g;
}

/* ps_set_jsgf_string without its leak (5prealpha never frees the parsed grammar, ~8 KB a
 * call): parse, build the FSG from the first public rule, hand it to the decoder, free both. */
static int add_grammar(ps_decoder_t *ps, const char *name, const char *text)
{
    jsgf_t *jsgf = jsgf_parse_string(text, NULL);
    if (jsgf == NULL)
        return -1;
    int rc = -1;
    jsgf_rule_t *rule = jsgf_get_public_rule(jsgf);
    if (rule != NULL) {
        float lw = cmd_ln_float32_r(ps_get_config(ps), "-lw");
        fsg_model_t *fsg = jsgf_build_fsg(jsgf, rule, ps_get_logmath(ps), lw);
        if (fsg != NULL) {
            rc = ps_set_fsg(ps, name, fsg); /* the search keeps its own reference */
            fsg_model_free(fsg);
        }
    }
    jsgf_grammar_free(jsgf);
    return rc;
}

/* Gives the stream a clean decoder with its search selected and an utterance started. */
static int setup(stream *s)
{
    engine *e = s->e;
    if (s->dec == NULL) {
        decoder *d = decoder_new(e, 0);
        if (d == NULL) {
            fail_stream(s, PL_ERR_INVALID, "cannot load the pocketsphinx model");
            return -1;
        }
        pthread_mutex_lock(&e->mu);
        remember(e, d);
        pthread_mutex_unlock(&e->mu);
        s->dec = d;
    }
    decoder *d = s->dec;
    if (d->in_utt) {
        ps_end_utt(d->ps);
        d->in_utt = 0;
    }
    if (d->search[0] != '\0') {
        if (d->has_lm)
            ps_set_search(d->ps, "lm");
        ps_unset_search(d->ps, d->search);
        d->search[0] = '\0';
    }
    if (s->jsgf != NULL || s->n_phrases > 0) {
        char name[32];
        snprintf(name, sizeof(name), "g%u", atomic_fetch_add(&e->search_seq, 1));
        size_t kept = 1;
        char *g = s->jsgf != NULL ? s->jsgf : phrases_grammar(s, &kept);
        if (g == NULL) {
            fail_stream(s, PL_ERR_NOMEM, "out of memory for the grammar");
            return -1;
        }
        int rc = kept > 0 ? add_grammar(d->ps, name, g) : -1;
        if (g != s->jsgf)
            free(g);
        if (rc != 0 || ps_set_search(d->ps, name) != 0) {
            ps_unset_search(d->ps, name);
            fail_stream(s, PL_ERR_INVALID,
                        kept ? "grammar refused (JSGF syntax, or a word not in the dictionary)"
                             : "no phrase has all its words in the dictionary");
            return -1;
        }
        snprintf(d->search, sizeof(d->search), "%s", name);
    } else {
        if (!d->has_lm) {
            pthread_mutex_lock(&create_mu);
            int rc = ps_set_lm_file(d->ps, "lm", e->lm);
            pthread_mutex_unlock(&create_mu);
            if (rc != 0) {
                fail_stream(s, PL_ERR_INVALID, "cannot load the language model");
                return -1;
            }
            d->has_lm = 1;
        }
        if (ps_set_search(d->ps, "lm") != 0) {
            fail_stream(s, PL_ERR_INVALID, "cannot select the language model");
            return -1;
        }
    }
    mfcc_t prior[CEPSTRA];
    for (int i = 0; i < CEPSTRA; i++)
        prior[i] = s->rate < DECODER_RATE ? FLOAT2MFCC(cmn_narrowband[i]) : d->cmn_wide[i];
    cmn_live_set(ps_get_feat(d->ps)->cmn_struct, prior);
    if (ps_start_utt(d->ps) != 0) {
        fail_stream(s, PL_ERR_INVALID, "cannot start an utterance");
        return -1;
    }
    d->in_utt = 1;
    s->ready = 1;
    return 0;
}

/* Ends the current utterance, reports it, starts the next one. */
static void cut(stream *s, int reply)
{
    ps_decoder_t *ps = s->dec->ps;
    uint64_t t0 = now_ns();
    ps_end_utt(ps);
    const char *hyp = ps_get_hyp(ps, NULL);
    atomic_fetch_add(&s->e->decode_ns, now_ns() - t0);
    if (reply || (hyp != NULL && hyp[0] != '\0'))
        emit_text(s, MP_STT_FINAL, hyp, reply);
    s->speaking = 0;
    s->last_interim[0] = '\0';
    if (ps_start_utt(ps) != 0) {
        s->dec->in_utt = 0;
        fail_stream(s, PL_ERR_INVALID, "cannot start an utterance");
        return;
    }
}

static void decode(stream *s, size_t n_in)
{
    size_t n = 0;
    mp_resampler_process(&s->rs, s->in_buf, n_in, s->out_buf, s->out_cap, &n);
    ps_decoder_t *ps = s->dec->ps;
    for (size_t off = 0; off < n && !s->failed; off += SUBCHUNK_SAMPLES) {
        size_t k = n - off < SUBCHUNK_SAMPLES ? n - off : SUBCHUNK_SAMPLES;
        uint64_t t0 = now_ns();
        ps_process_raw(ps, s->out_buf + off, k, FALSE, FALSE);
        int in_speech = ps_get_in_speech(ps);
        atomic_fetch_add(&s->e->decode_ns, now_ns() - t0);
        if (in_speech && !s->speaking) {
            s->speaking = 1;
            s->seg_start = s->decoded;
            s->interim_at = s->decoded;
        }
        s->decoded += k;
        if (!in_speech && s->speaking) {
            cut(s, 0);
        } else if (s->speaking && s->decoded - s->interim_at >= INTERIM_EVERY) {
            s->interim_at = s->decoded;
            uint64_t t1 = now_ns();
            const char *hyp = ps_get_hyp(ps, NULL);
            atomic_fetch_add(&s->e->decode_ns, now_ns() - t1);
            if (hyp != NULL && hyp[0] != '\0' &&
                strncmp(hyp, s->last_interim, sizeof(s->last_interim) - 1) != 0) {
                snprintf(s->last_interim, sizeof(s->last_interim), "%s", hyp);
                emit_text(s, MP_STT_INTERIM, hyp, 0);
            }
        }
    }
    atomic_fetch_add(&s->e->samples_decoded, n);
}

static int local_pump(mp_stt_stream *base)
{
    stream *s = (stream *)base;
    pthread_mutex_lock(&s->mu);
    if (s->closed) {
        pthread_mutex_unlock(&s->mu);
        stream_free(s);
        return 0;
    }
    size_t n = s->len < s->in_cap ? s->len : s->in_cap;
    size_t first = n < s->cap - s->head ? n : s->cap - s->head;
    memcpy(s->in_buf, s->ring + s->head, first * sizeof(*s->ring));
    memcpy(s->in_buf + first, s->ring, (n - first) * sizeof(*s->ring));
    s->head = (s->head + n) % s->cap;
    s->len -= n;
    s->taken += n;
    int replies = 0;
    if (s->fin_pending > 0 && s->taken >= s->fin_at) {
        replies = s->fin_pending;
        s->fin_pending = 0;
    }
    int failed = s->failed;
    pthread_mutex_unlock(&s->mu);

    if (!failed && (s->ready || setup(s) == 0)) {
        decode(s, n);
        for (int i = 0; i < replies && !s->failed; i++) {
            if (s->speaking && i == 0)
                cut(s, 1);
            else
                emit_text(s, MP_STT_FINAL, "", 1);
        }
    }

    pthread_mutex_lock(&s->mu);
    s->done += n;
    if (s->closed) {
        pthread_mutex_unlock(&s->mu);
        stream_free(s);
        return 0;
    }
    int more = s->len > 0 && (s->len >= (size_t)s->rate * WAKE_MIN_MS / 1000 || s->fin_pending > 0);
    if (!more)
        s->scheduled = 0;
    pthread_mutex_unlock(&s->mu);
    return more; /* s may be freed by close as soon as scheduled is 0: not touched again */
}

/* Audio fed and not yet decoded: what waits in the ring plus what a pump is decoding now. */
static uint32_t local_lag_ms(mp_stt_stream *base)
{
    stream *s = (stream *)base;
    pthread_mutex_lock(&s->mu);
    uint64_t behind = s->fed - s->done;
    pthread_mutex_unlock(&s->mu);
    return (uint32_t)(behind * 1000 / (uint64_t)s->rate);
}

static const struct mp_stt_ops local_ops = {
    .name = "local",
    .open = local_open,
    .feed = local_feed,
    .finalize = local_finalize,
    .pump = local_pump,
    .lag_ms = local_lag_ms,
    .close = local_close,
    .engine_free = engine_free,
};
