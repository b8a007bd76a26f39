/* Request bodies: reads a multipart/form-data, urlencoded or JSON body into named fields
 * (contracts in batch_form.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "batch_form.h"
#include "error.h"
#include "validate.h"

void form_free(form *f)
{
    pl_multipart_free(&f->mp);
    free(f->body);
    cJSON_Delete(f->json);
    memset(f, 0, sizeof(*f));
}

/* Whether Content-Type `ctype` is the media type `type`, whatever parameters follow. */
static int media_is(const char *ctype, const char *type)
{
    size_t n = strlen(type);
    return ctype != NULL && strncasecmp(ctype, type, n) == 0 &&
           (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

int form_read(pl_req *r, form *f, int others)
{
    char boundary[PL_MULTIPART_MAX_BOUNDARY + 1], err[512];
    int status;
    memset(f, 0, sizeof(*f));
    const char *ctype = pl_http_header(r, "Content-Type");
    if (others && media_is(ctype, "application/json")) {
        f->json = pl_http_json_body(r, &status);
        f->kind = FORM_JSON;
        return f->json != NULL ? 0 : status;
    }
    if (!media_is(ctype, "multipart/form-data") &&
        !(others && (ctype == NULL || media_is(ctype, "application/x-www-form-urlencoded"))))
        return pl_http_error(r, 415, "Content-Type: %s %s takes multipart/form-data%s, not %s",
                             r->method, r->path, others ? " (or JSON)" : "",
                             ctype != NULL ? ctype : "no Content-Type");
    int rc = pl_http_body(r, &f->body, &f->len);
    if (rc == PL_ERR_TOOBIG)
        return 413;
    if (rc != PL_OK)
        return pl_http_error(r, 500, "cannot read request body");
    if (ctype == NULL) {
        if (f->len > 0)
            return pl_http_error(r, 415, "Content-Type: a body needs a Content-Type");
        f->kind = FORM_NONE;
        return 0;
    }
    if (media_is(ctype, "application/x-www-form-urlencoded")) {
        f->kind = FORM_URLENCODED;
        return 0;
    }
    f->kind = FORM_MULTIPART;
    if (pl_multipart_boundary(ctype, boundary, sizeof(boundary), err, sizeof(err)) != 0)
        return pl_http_error(r, 400, "%s", err);
    if (pl_multipart_parse(f->body, f->len, boundary, &f->mp, err, sizeof(err)) != 0)
        return pl_http_error(r, 400, "request body is not valid multipart/form-data: %s", err);
    return 0;
}

int form_get(pl_req *r, const form *f, const char *name, int idx, char **out)
{
    *out = NULL;
    if (f->kind == FORM_JSON) {
        const cJSON *v = idx == 0 ? cJSON_GetObjectItemCaseSensitive(f->json, name) : NULL;
        if (v == NULL || cJSON_IsNull(v))
            return 0;
        if (cJSON_IsBool(v))
            *out = strdup(cJSON_IsTrue(v) ? "true" : "false");
        else if (cJSON_IsString(v))
            *out = strdup(v->valuestring);
        else
            return pl_http_error(r, 422, "%s: must be a string", name), -1;
        return *out != NULL ? 1 : (pl_http_error(r, 500, "out of memory"), -1);
    }
    size_t n;
    if (f->kind == FORM_MULTIPART) {
        const pl_mpart *p = pl_multipart_get(&f->mp, name, idx);
        if (p == NULL)
            return 0;
        if ((*out = malloc(p->len + 1)) == NULL)
            return pl_http_error(r, 500, "out of memory"), -1;
        memcpy(*out, p->data, p->len);
        (*out)[p->len] = '\0';
        n = p->len;
    } else if (f->kind == FORM_URLENCODED) {
        if ((*out = malloc(f->len + 1)) == NULL)
            return pl_http_error(r, 500, "out of memory"), -1;
        int got = mg_get_var2(f->body, f->len, name, *out, f->len + 1, (size_t)idx);
        if (got < 0) {
            free(*out);
            *out = NULL;
            return 0;
        }
        n = (size_t)got;
    } else {
        return 0;
    }
    if (!pl_is_utf8(*out, n)) {
        free(*out);
        *out = NULL;
        return pl_http_error(r, 422, "%s: is not UTF-8 text", name), -1;
    }
    return 1;
}

char *form_trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}
