/* transcript: Bolna's text from stored turns, and the conversation's duration. */
#include "check.h"
#include "transcript.h"

static void text_in_order_as_heard(void)
{
    pp_turn t[] = {
        {"assistant", "Hello! This is the Parley", 0, 900, 1}, /* cut by the caller: as heard */
        {"user", "tuesday", 800, 1500, 0},
        {"assistant", "", 1600, 1600, 1}, /* nothing was heard: no line */
        {"assistant", "Tuesday it is.\nSee you then.", 1700, 3200, 0},
    };
    char *s = pp_transcript_text(t, 4);
    CHECK_STR(s, "assistant: Hello! This is the Parley\nuser: tuesday\n"
                 "assistant: Tuesday it is. See you then.\n");
    free(s);
    s = pp_transcript_text(NULL, 0);
    CHECK_STR(s, "");
    free(s);
}

static void duration(void)
{
    pp_turn t[] = {{"assistant", "a", 0, 2500, 0}, {"user", "b", 2600, 7250, 0}};
    CHECK(pp_conversation_duration(43, t, 2) == 43);
    CHECK(pp_conversation_duration(-1, t, 2) == 7.25);
    CHECK(pp_conversation_duration(0, t, 2) == 7.25);
    CHECK(pp_conversation_duration(-1, NULL, 0) == 0);
}

int main(void)
{
    RUN(text_in_order_as_heard);
    RUN(duration);
    return check_summary();
}
