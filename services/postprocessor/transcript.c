/* transcript: see transcript.h. */
#include <stdlib.h>
#include <string.h>

#include "transcript.h"

static int blank(const char *s)
{
    for (; s != NULL && *s != '\0'; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return 0;
    return 1;
}

char *pp_transcript_text(const pp_turn *turns, int n)
{
    size_t cap = 1;
    for (int i = 0; i < n; i++)
        if (!blank(turns[i].content))
            cap += strlen(turns[i].role) + 2 + strlen(turns[i].content) + 1;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (blank(turns[i].content))
            continue;
        size_t rl = strlen(turns[i].role);
        memcpy(out + len, turns[i].role, rl);
        len += rl;
        out[len++] = ':';
        out[len++] = ' ';
        for (const char *c = turns[i].content; *c != '\0'; c++)
            out[len++] = *c == '\n' || *c == '\r' ? ' ' : *c;
        out[len++] = '\n';
    }
    out[len] = '\0';
    return out;
}

double pp_conversation_duration(double telephony_duration_s, const pp_turn *turns, int n)
{
    if (telephony_duration_s > 0)
        return telephony_duration_s;
    long end = 0;
    for (int i = 0; i < n; i++)
        if (turns[i].end_ms > end)
            end = turns[i].end_ms;
    return (double)end / 1000.0;
}
