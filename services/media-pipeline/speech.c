/* speech: reply cutting and backchannel words (speech.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "speech.h"

#define CLAUSE_LONG 80 /* bytes after which a clause end cuts even mid-reply */

size_t mp_speech_cut(const char *text, size_t len, size_t min_clause)
{
    size_t need = min_clause < CLAUSE_LONG ? min_clause : CLAUSE_LONG;
    size_t clause = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        char c = text[i];
        if (text[i + 1] != ' ' && text[i + 1] != '\n')
            continue;
        if (c == '.' || c == '!' || c == '?' || c == '\n')
            return i + 2; /* the first sentence: a barge-in keeps whole sentences heard */
        if ((c == ',' || c == ';' || c == ':') && clause == 0 && i + 2 >= need)
            clause = i + 2;
    }
    return clause;
}

static const char *const backchannels[] = {"okay", "ok", "mhm", "mm",      "hmm",   "yeah",
                                           "yep",  "uh", "huh", "uhhuh",   "right", "um",
                                           "aha",  "ah", "oh",  "alright", NULL};

static int is_backchannel(const char *w, size_t n)
{
    char buf[16];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < sizeof(buf); i++)
        if (isalpha((unsigned char)w[i]))
            buf[k++] = (char)tolower((unsigned char)w[i]);
    buf[k] = '\0';
    if (k == 0)
        return 1; /* punctuation only: not a word */
    for (int i = 0; backchannels[i] != NULL; i++)
        if (strcmp(buf, backchannels[i]) == 0)
            return 1;
    return 0;
}

int mp_speech_words(const char *text)
{
    int words = 0;
    const char *p = text;
    while (*p != '\0') {
        while (*p != '\0' && isspace((unsigned char)*p))
            p++;
        const char *w = p;
        while (*p != '\0' && !isspace((unsigned char)*p))
            p++;
        if (p > w && !is_backchannel(w, (size_t)(p - w)))
            words++;
    }
    return words;
}

char *mp_speech_trim(const char *text)
{
    while (*text != '\0' && isspace((unsigned char)*text))
        text++;
    size_t n = strlen(text);
    while (n > 0 && isspace((unsigned char)text[n - 1]))
        n--;
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, text, n);
    out[n] = '\0';
    return out;
}
