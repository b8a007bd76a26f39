/* The upload of POST /batches: its form fields (agent_id, from_phone_numbers, retry_config) and
 * the CSV of contacts, every row validated. Valid rows become contacts; invalid ones are kept
 * with their row, line and reason. batches.c writes the result in one statement.
 */
#ifndef API_BATCH_UPLOAD_H
#define API_BATCH_UPLOAD_H

#include "batch_form.h"

typedef struct {
    char *agent_id;
    cJSON *from;     /* array of E.164 strings, or NULL */
    char *retry;     /* validated retry_config JSON text, or NULL */
    char *file_name; /* basename, or NULL */
    cJSON *contacts; /* [{r, n, v}] */
    cJSON *invalid;  /* [{row, line, reason}] */
    int total, valid;
} batch_upload;

/* Reads and validates every field of the upload. 0, or the status replied. u must be zeroed
 * before; whatever it returns, the caller releases u with upload_free. */
int parse_upload(pl_req *r, const form *f, batch_upload *u);

/* Frees every field of u (NULL ones included). */
void upload_free(batch_upload *u);

#endif
