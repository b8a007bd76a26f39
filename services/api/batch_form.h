/* Request bodies of /batches: a multipart/form-data, urlencoded or JSON body read into named
 * fields, whatever kind a Bolna client sends. The body and everything parsed from it live in the
 * form until form_free.
 */
#ifndef API_BATCH_FORM_H
#define API_BATCH_FORM_H

#include <stddef.h>

#include "http.h"
#include "multipart.h"

typedef enum { FORM_NONE, FORM_MULTIPART, FORM_URLENCODED, FORM_JSON } form_kind;

/* A form body of any kind a Bolna client may send; fields are read by name. */
typedef struct {
    form_kind kind;
    char *body;
    size_t len;
    pl_multipart mp;
    cJSON *json;
} form;

/* Reads the body by its Content-Type: multipart/form-data always; with `others`, also JSON,
 * urlencoded, or nothing at all (no Content-Type and no body). 0, or the status replied.
 * Whatever it returns, the caller releases f with form_free. */
int form_read(pl_req *r, form *f, int others);

/* The idx-th value of field `name` as a new string in *out (the caller frees it). 1 present,
 * 0 absent, or -1 when the value is not UTF-8 text (or, in JSON, not a string or boolean): 422
 * sent. *out is NULL unless 1. */
int form_get(pl_req *r, const form *f, const char *name, int idx, char **out);

/* Releases everything form_read stored and zeroes f. */
void form_free(form *f);

/* Strips spaces, tabs, CR and LF from both ends of s in place; returns s past the leading ones. */
char *form_trim(char *s);

#endif
