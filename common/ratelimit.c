/* ratelimit: see ratelimit.h. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define PROBE 8  /* slots a key may live in: a run of PROBE from a multiple of PROBE */
#define LOCKS 64 /* a run's lock: (its first slot / PROBE) % LOCKS */

typedef struct {
    char key[64];
    int used;
    double tokens;
    int64_t last_ms; /* when tokens was last brought up to date */
} bucket;

struct pl_ratelimit {
    double rate, burst;
    unsigned mask;
    bucket *slots;
    pthread_mutex_t locks[LOCKS];
};

pl_ratelimit *pl_ratelimit_new(double rate, double burst, int slots)
{
    if (!(rate > 0) || !(burst >= 1))
        return NULL;
    unsigned n = 64;
    while ((int)n < slots && n < (1u << 24))
        n <<= 1;
    pl_ratelimit *rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return NULL;
    rl->slots = calloc(n, sizeof(bucket));
    if (rl->slots == NULL) {
        free(rl);
        return NULL;
    }
    rl->rate = rate;
    rl->burst = burst;
    rl->mask = n - 1;
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_init(&rl->locks[i], NULL);
    return rl;
}

void pl_ratelimit_free(pl_ratelimit *rl)
{
    if (rl == NULL)
        return;
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_destroy(&rl->locks[i]);
    free(rl->slots);
    free(rl);
}

/* FNV-1a over the key. */
static unsigned hash_of(const char *key)
{
    unsigned h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

int pl_ratelimit_take(pl_ratelimit *rl, const char *key, int64_t now_ms, int *retry_after_s)
{
    /* A key's probe run starts at a multiple of PROBE, so the whole run is under one lock. */
    unsigned first = (hash_of(key) * PROBE) & rl->mask;
    pthread_mutex_t *mu = &rl->locks[(first / PROBE) % LOCKS];
    pthread_mutex_lock(mu);
    bucket *b = NULL, *stalest = &rl->slots[first];
    for (unsigned i = 0; i < PROBE; i++) {
        bucket *s = &rl->slots[(first + i) & rl->mask];
        if (s->used && strncmp(s->key, key, sizeof(s->key) - 1) == 0) {
            b = s;
            break;
        }
        if (!s->used || (stalest->used && s->last_ms < stalest->last_ms))
            stalest = s;
    }
    if (b == NULL) { /* first seen (or evicted since): a full bucket */
        b = stalest;
        strncpy(b->key, key, sizeof(b->key) - 1);
        b->key[sizeof(b->key) - 1] = '\0';
        b->used = 1;
        b->tokens = rl->burst;
        b->last_ms = now_ms;
    }
    if (now_ms > b->last_ms) {
        b->tokens = fmin(rl->burst, b->tokens + (double)(now_ms - b->last_ms) * rl->rate / 1000.0);
        b->last_ms = now_ms;
    }
    int ok = b->tokens >= 1.0;
    if (ok) {
        b->tokens -= 1.0;
    } else {
        double wait_s = (1.0 - b->tokens) / rl->rate;
        *retry_after_s = wait_s <= 1.0 ? 1 : (int)ceil(wait_s);
    }
    pthread_mutex_unlock(mu);
    return ok;
}
