/* speech: text rules of the turn loop that need no state — where a streamed reply is cut for the
 * synthesizer, and which words are backchannels rather than an interruption. */
#ifndef MP_SPEECH_H
#define MP_SPEECH_H

#include <stddef.h>

/* Where to cut the reply text buffered so far (len bytes) for synthesis: the number of bytes to
 * speak now, 0 to wait for more tokens. The first sentence end (. ! ? followed by a space) cuts;
 * without one, the first clause end (, ; : followed by a space) at or past min_clause bytes
 * (capped at 80: small for a reply's first chunk, to start speaking sooner). The cut includes
 * the trailing space. Call again on the rest: one chunk per sentence, so a barge-in keeps every
 * sentence the caller heard. */
size_t mp_speech_cut(const char *text, size_t len, size_t min_clause);

/* Words in text that are not backchannels ("okay", "mhm", "yeah", "right", "uh-huh", ...),
 * ignoring case and punctuation. */
int mp_speech_words(const char *text);

/* Copies text without leading and trailing white space into a new string (NULL: no memory). */
char *mp_speech_trim(const char *text);

#endif
