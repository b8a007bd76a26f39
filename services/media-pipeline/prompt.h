/* prompt: what the LLM is told. Two things live here:
 *
 * 1. Variables and `{var}` substitution, as Bolna does it for `agent_prompts.*.system_prompt` and
 *    `agent_welcome_message`: every `{name}` whose name is a known variable is replaced by its
 *    value; an unknown `{name}`, and braces that do not enclose a name (JSON in a prompt, "{}",
 *    a lone "{"), stay exactly as written. Variables come from the execution's user_data (and
 *    batch CSV columns, which arrive there) and from the system variables agent_id,
 *    execution_id, call_sid, from_number, to_number, current_date, current_time, timezone.
 *
 * 2. The conversation history sent with each completion: user, assistant and tool turns, oldest
 *    first (the system prompt is passed beside it, not in it). When the caller barges in, the
 *    assistant turn being spoken is cut to what the caller actually heard and marked
 *    interrupted, so the model does not believe it said what was never played.
 *
 * Nothing here blocks except prompt_vars_add_system, which reads one small zoneinfo file.
 */
#ifndef PROMPT_H
#define PROMPT_H

#include <stddef.h>
#include <time.h>

#include <cjson/cJSON.h>

/* ---- variables ---- */

typedef struct {
    char *name;
    char *value;
} prompt_var;

typedef struct {
    prompt_var *v;
    size_t n, cap;
} prompt_vars;

void prompt_vars_init(prompt_vars *vs);
void prompt_vars_free(prompt_vars *vs);

/* Sets (or replaces) one variable; both strings are copied. PL_OK or PL_ERR_NOMEM. */
int prompt_vars_set(prompt_vars *vs, const char *name, const char *value);

/* The value of name, or NULL. */
const char *prompt_vars_get(const prompt_vars *vs, const char *name);

/* Adds every member of a JSON object (user_data): strings as they are, integers without a
 * fraction, other numbers in shortest round-trip form, true/false, null as "", arrays and
 * objects as compact JSON. A NULL or non-object `obj` adds nothing. */
int prompt_vars_add_json(prompt_vars *vs, const cJSON *obj);

typedef struct {
    const char *agent_id, *execution_id, *call_sid, *from_number, *to_number; /* NULL: unset */
    const char *timezone; /* IANA name; NULL: the "timezone" variable if set, else "UTC" */
    time_t now;           /* 0: the current time */
} prompt_system;

/* Adds the system variables; they replace user_data values of the same name, so call it after
 * prompt_vars_add_json. current_date and current_time are Bolna's formats in the time zone
 * ("Monday, January 01, 2024", "03:04:05 PM"); an unknown or malformed zone name falls back
 * to UTC (and `timezone` then says "UTC"). PL_OK or PL_ERR_NOMEM. */
int prompt_vars_add_system(prompt_vars *vs, const prompt_system *sys);

/* The offset east of UTC, in seconds, of the IANA zone tz at time t, read from the zoneinfo
 * files ($TZDIR or /usr/share/zoneinfo). PL_OK, PL_ERR_INVALID (a name that is not a zone
 * name: "..", absolute paths, odd characters) or PL_ERR_NOTFOUND (no such zone, or a file
 * that is not TZif). */
int prompt_tz_offset(const char *tz, time_t t, long *utcoff);

/* A copy of tmpl with every `{name}` of a set variable replaced (names are 1..128 bytes
 * without '{', '}' or a line break). The caller frees it. NULL only when out of memory. */
char *prompt_fill(const char *tmpl, const prompt_vars *vs);

/* ---- conversation history ---- */

typedef enum { PROMPT_USER, PROMPT_ASSISTANT, PROMPT_TOOL } prompt_role;

typedef struct {
    prompt_role role;
    char *content;      /* NUL-terminated, never NULL ("" for an assistant turn of tool calls) */
    size_t len;         /* bytes of content */
    cJSON *tool_calls;  /* assistant: array of {id, type:"function", function:{name,
                           arguments}}, or NULL */
    char *tool_call_id; /* tool: the call this result answers; NULL otherwise */
    int interrupted;    /* assistant: cut by a barge-in; content is what the caller heard */
    size_t cap;         /* private: bytes allocated for content */
} prompt_msg;

typedef struct {
    prompt_msg *msgs; /* oldest first */
    size_t n;
    size_t bytes;     /* content and tool-call bytes held */
    size_t max_bytes; /* past this, the oldest turns are dropped */
    size_t cap;       /* private */
} prompt_history;

#define PROMPT_HISTORY_DEFAULT_MAX (64 * 1024)

/* max_bytes: 0 means PROMPT_HISTORY_DEFAULT_MAX. When an addition takes the history past it,
 * the oldest turns are dropped, then any turns before the first remaining user turn (so no
 * tool result loses its call); the newest turn is always kept. */
void prompt_history_init(prompt_history *h, size_t max_bytes);
void prompt_history_free(prompt_history *h);

/* "user", "assistant", "tool". */
const char *prompt_role_name(prompt_role r);

/* Appends a turn with a copy of text[0..len). PL_OK or PL_ERR_NOMEM. */
int prompt_history_add(prompt_history *h, prompt_role role, const char *text, size_t len);

/* Appends text to the newest turn (an assistant reply arriving token by token). PL_OK,
 * PL_ERR_INVALID (empty history) or PL_ERR_NOMEM. */
int prompt_history_append(prompt_history *h, const char *text, size_t len);

/* Records one tool call the model made, on the newest turn if it is an assistant turn, else on
 * a new empty assistant turn. args_json is the arguments' JSON text, kept as a string as the
 * API wants it. PL_OK or PL_ERR_NOMEM. */
int prompt_history_add_tool_call(prompt_history *h, const char *id, const char *name,
                                 const char *args_json);

/* Appends the result of tool call `id`. PL_OK or PL_ERR_NOMEM. */
int prompt_history_add_tool_result(prompt_history *h, const char *id, const char *content);

/* Barge-in: the caller heard only the first `heard` bytes of assistant turn idx. The text is
 * cut there (moved back to the start of a UTF-8 character, trailing spaces dropped) and the
 * turn marked interrupted. heard >= its length leaves it whole and unmarked (it was all
 * played). PL_OK, or PL_ERR_INVALID when idx is not an assistant turn. */
int prompt_history_cut(prompt_history *h, size_t idx, size_t heard);

#endif
