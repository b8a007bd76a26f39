/* outq: the agent's outbound audio queue (outq.h). */
#include <stdlib.h>
#include <string.h>

#include "outq.h"

void mp_outq_init(mp_outq *q, size_t frame_samples)
{
    memset(q, 0, sizeof(*q));
    pthread_mutex_init(&q->mu, NULL);
    q->frame = frame_samples;
}

void mp_outq_free(mp_outq *q)
{
    free(q->buf);
    pthread_mutex_destroy(&q->mu);
}

/* Room for n more samples; the lock is held. */
static int reserve(mp_outq *q, size_t n)
{
    if (q->wr + n <= q->cap)
        return 0;
    if (q->rd > 0) { /* slide the unread part down */
        memmove(q->buf, q->buf + q->rd, (q->wr - q->rd) * sizeof(int16_t));
        q->wr -= q->rd;
        q->rd = 0;
        if (q->wr + n <= q->cap)
            return 0;
    }
    size_t cap = q->cap > 0 ? q->cap : 16 * q->frame;
    while (cap < q->wr + n)
        cap *= 2;
    int16_t *b = realloc(q->buf, cap * sizeof(int16_t));
    if (b == NULL)
        return -1;
    q->buf = b;
    q->cap = cap;
    return 0;
}

static void append(mp_outq *q, const int16_t *pcm, size_t n)
{
    if (reserve(q, n) != 0) {
        q->dropped += n;
        return;
    }
    if (pcm != NULL)
        memcpy(q->buf + q->wr, pcm, n * sizeof(int16_t));
    else
        memset(q->buf + q->wr, 0, n * sizeof(int16_t));
    q->wr += n;
    q->written += n;
}

void mp_outq_audio(mp_outq *q, const int16_t *pcm, size_t n)
{
    pthread_mutex_lock(&q->mu);
    append(q, pcm, n);
    pthread_mutex_unlock(&q->mu);
}

void mp_outq_done(mp_outq *q, uint32_t id, int err)
{
    pthread_mutex_lock(&q->mu);
    size_t part = (size_t)(q->written % q->frame);
    if (part != 0)
        append(q, NULL, q->frame - part);
    if (q->mk_tail - q->mk_head < MP_OUTQ_MARKERS) {
        mp_outq_marker *m = &q->markers[q->mk_tail++ % MP_OUTQ_MARKERS];
        m->id = id;
        m->err = err;
        m->pos = q->written;
    }
    pthread_mutex_unlock(&q->mu);
}

int mp_outq_take(mp_outq *q, int16_t *out)
{
    int got = 0;
    pthread_mutex_lock(&q->mu);
    if (q->wr - q->rd >= q->frame) {
        memcpy(out, q->buf + q->rd, q->frame * sizeof(int16_t));
        q->rd += q->frame;
        q->taken += q->frame;
        got = 1;
    }
    pthread_mutex_unlock(&q->mu);
    return got;
}

int mp_outq_marker_pop(mp_outq *q, mp_outq_marker *m)
{
    int got = 0;
    pthread_mutex_lock(&q->mu);
    if (q->mk_head != q->mk_tail) {
        mp_outq_marker *h = &q->markers[q->mk_head % MP_OUTQ_MARKERS];
        if (h->pos <= q->taken) {
            *m = *h;
            q->mk_head++;
            got = 1;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return got;
}

void mp_outq_clear(mp_outq *q)
{
    pthread_mutex_lock(&q->mu);
    q->rd = q->wr = 0;
    q->written = q->taken = 0;
    q->mk_head = q->mk_tail = 0;
    pthread_mutex_unlock(&q->mu);
}
