/* speech: where replies are cut for synthesis, and what counts as words that interrupt. */
#include <stdlib.h>

#include "check.h"
#include "speech.h"

static size_t cut(const char *s, size_t min_clause)
{
    return mp_speech_cut(s, strlen(s), min_clause);
}

static void cuts_at_sentences(void)
{
    CHECK(cut("Hello there. How", 1000) == 13);
    CHECK(cut("Really? Yes! Fine. And", 1000) == 8); /* one sentence at a time */
    CHECK(cut("It costs 3.50 dollars", 1000) == 0);  /* a decimal point is not an end */
    CHECK(cut("No end yet.", 1000) == 0);            /* may be "yet.5": wait for more */
    CHECK(cut("", 1000) == 0);
}

static void cuts_at_clauses_when_long(void)
{
    CHECK(cut("Well, you see", 1000) == 0);
    CHECK(cut("Well, you see", 5) == 6);
    const char *longer = "This is a rather long clause that goes on and on and on and on, and more";
    CHECK(cut(longer, 1 << 30) == 0); /* under 80 bytes before the comma */
    CHECK(cut("Hi, there, you, all of you. Ok", 5) == strlen("Hi, there, you, all of you. "));
    CHECK(cut("Hi, there, you, all of", 5) == strlen("Hi, there, "));
    const char *longest = "This is a very long clause that goes on and on and on and on and on and "
                          "on and on, and more";
    CHECK(cut(longest, 1 << 30) == strlen(longest) - strlen("and more"));
}

static void counts_words_without_backchannels(void)
{
    CHECK(mp_speech_words("okay") == 0);
    CHECK(mp_speech_words("Mhm, yeah. Right!") == 0);
    CHECK(mp_speech_words("uh-huh ok") == 0);
    CHECK(mp_speech_words("wait stop") == 2);
    CHECK(mp_speech_words("okay but wait") == 2);
    CHECK(mp_speech_words("  ") == 0);
    CHECK(mp_speech_words("... !") == 0);
}

static void trims(void)
{
    char *t = mp_speech_trim("  hello world \n");
    CHECK_STR(t, "hello world");
    free(t);
    t = mp_speech_trim("   ");
    CHECK_STR(t, "");
    free(t);
}

int main(void)
{
    RUN(cuts_at_sentences);
    RUN(cuts_at_clauses_when_long);
    RUN(counts_words_without_backchannels);
    RUN(trims);
    return check_summary();
}
