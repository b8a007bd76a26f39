/* outq: whole frames out, text ends padded to a frame, markers released only once their audio
 * was taken, and a clear drops everything. */
#include "check.h"
#include "outq.h"

static void frames_and_markers(void)
{
    mp_outq q;
    mp_outq_init(&q, 160);
    int16_t pcm[250], f[160];
    for (int i = 0; i < 250; i++)
        pcm[i] = (int16_t)(i + 1);
    mp_outq_audio(&q, pcm, 250);
    mp_outq_marker m;
    CHECK(mp_outq_take(&q, f) == 1 && f[0] == 1 && f[159] == 160);
    CHECK(mp_outq_take(&q, f) == 0); /* 90 samples: not a frame yet */
    CHECK(mp_outq_marker_pop(&q, &m) == 0);
    mp_outq_done(&q, 7, 0);                 /* pads 70 samples of silence */
    CHECK(mp_outq_marker_pop(&q, &m) == 0); /* its audio is not all taken */
    CHECK(mp_outq_take(&q, f) == 1 && f[0] == 161 && f[89] == 250 && f[90] == 0 && f[159] == 0);
    CHECK(mp_outq_marker_pop(&q, &m) == 1 && m.id == 7 && m.err == 0);
    CHECK(mp_outq_marker_pop(&q, &m) == 0);
    mp_outq_done(&q, 8, -5); /* a failed text without audio: released at once */
    CHECK(mp_outq_marker_pop(&q, &m) == 1 && m.id == 8 && m.err == -5);
    mp_outq_free(&q);
}

static void grows_and_clears(void)
{
    mp_outq q;
    mp_outq_init(&q, 160);
    int16_t pcm[1600] = {0}, f[160];
    for (int i = 0; i < 100; i++) /* 10 s of audio: the buffer grows */
        mp_outq_audio(&q, pcm, 800);
    mp_outq_done(&q, 1, 0);
    int frames = 0;
    while (frames < 10 && mp_outq_take(&q, f))
        frames++;
    CHECK(frames == 10);
    mp_outq_clear(&q);
    mp_outq_marker m;
    CHECK(mp_outq_take(&q, f) == 0);
    CHECK(mp_outq_marker_pop(&q, &m) == 0);
    mp_outq_audio(&q, pcm, 160); /* usable after a clear */
    mp_outq_done(&q, 2, 0);
    CHECK(mp_outq_take(&q, f) == 1);
    CHECK(mp_outq_marker_pop(&q, &m) == 1 && m.id == 2);
    CHECK(q.dropped == 0);
    mp_outq_free(&q);
}

int main(void)
{
    RUN(frames_and_markers);
    RUN(grows_and_clears);
    return check_summary();
}
