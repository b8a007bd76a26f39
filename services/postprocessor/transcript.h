/* transcript: Bolna's transcript text and the conversation's duration, from the turns the
 * media-pipeline stored (transcript_turns, in seq order). */
#ifndef PP_TRANSCRIPT_H
#define PP_TRANSCRIPT_H

typedef struct {
    const char *role;    /* "assistant" or "user" */
    const char *content; /* as stored: an interrupted assistant turn holds what was heard */
    long start_ms, end_ms;
    int interrupted;
} pp_turn;

/* "assistant: ...\nuser: ...\n", one line per turn in the given order. Line breaks inside a
 * turn become spaces (one turn, one line); turns with no text are left out. Returns a malloc'd
 * string ("" for no turns), or NULL when out of memory. */
char *pp_transcript_text(const pp_turn *turns, int n);

/* Seconds of conversation: the carrier's duration when it reported one (> 0), else the end of
 * the last turn, else 0. */
double pp_conversation_duration(double telephony_duration_s, const pp_turn *turns, int n);

#endif
