/* gw_count_sink: accepts every session and counts frames and events (logged at close). It
 * stands where the pipeline relay will go, so the media path runs end to end today. */
#include <stdlib.h>

#include "log.h"
#include "sink.h"

typedef struct {
    char execution_id[40];
    long frames, marks, dtmf;
} counter;

static int count_open(const gw_media_info *info, void **self)
{
    counter *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    gw_copy(c->execution_id, sizeof(c->execution_id), info->execution_id);
    *self = c;
    return 0;
}

static void count_frame(void *self, const int16_t *pcm, size_t samples)
{
    (void)pcm;
    (void)samples;
    ((counter *)self)->frames++;
}

static void count_event(void *self, gw_mm_kind kind, const char *arg)
{
    (void)arg;
    counter *c = self;
    if (kind == GW_MM_MARK)
        c->marks++;
    else if (kind == GW_MM_DTMF)
        c->dtmf++;
}

static void count_close(void *self)
{
    counter *c = self;
    PL_INFO("media of %s: %ld frames, %ld marks, %ld dtmf", c->execution_id, c->frames, c->marks,
            c->dtmf);
    free(c);
}

const gw_sink_ops gw_count_sink = {
    .open = count_open,
    .frame = count_frame,
    .event = count_event,
    .close = count_close,
};
