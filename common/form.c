#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "error.h"
#include "form.h"

void pl_form_init(pl_form *f)
{
    f->items = NULL;
    f->n = 0;
    f->cap = 0;
}

void pl_form_free(pl_form *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->items[i].key);
        free(f->items[i].val);
    }
    free(f->items);
    pl_form_init(f);
}

static int add_owned(pl_form *f, char *key, char *val)
{
    if (key == NULL || val == NULL)
        goto fail;
    if (f->n == f->cap) {
        int cap = f->cap > 0 ? f->cap * 2 : 16;
        pl_form_pair *items = realloc(f->items, (size_t)cap * sizeof(*items));
        if (items == NULL)
            goto fail;
        f->items = items;
        f->cap = cap;
    }
    f->items[f->n].key = key;
    f->items[f->n].val = val;
    f->n++;
    return PL_OK;
fail:
    free(key);
    free(val);
    return PL_ERR_NOMEM;
}

int pl_form_add(pl_form *f, const char *key, const char *val)
{
    return add_owned(f, strdup(key), strdup(val));
}

const char *pl_form_get(const pl_form *f, const char *key)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->items[i].key, key) == 0)
            return f->items[i].val;
    return NULL;
}

long pl_url_decode(const char *in, size_t n, char *out, size_t cap, int plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = pl_hex_digit(in[i + 1]), lo = pl_hex_digit(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            if (c == '\0')
                return -1;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (c == '\0') {
            return -1;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    if (o >= cap)
        return -1;
    out[o] = '\0';
    return (long)o;
}

int pl_form_parse(pl_form *f, const char *body, size_t len, int max_pairs)
{
    size_t i = 0;
    int pairs = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&')
            end++;
        if (end > i) {
            if (++pairs > max_pairs)
                return PL_ERR_TOOBIG;
            size_t eq = i;
            while (eq < end && body[eq] != '=')
                eq++;
            size_t klen = eq - i, vlen = eq < end ? end - eq - 1 : 0;
            char *k = malloc(klen + 1), *v = malloc(vlen + 1);
            if (k == NULL || v == NULL) {
                free(k);
                free(v);
                return PL_ERR_NOMEM;
            }
            if (pl_url_decode(body + i, klen, k, klen + 1, 1) < 0 ||
                pl_url_decode(body + eq + (eq < end), vlen, v, vlen + 1, 1) < 0) {
                free(k);
                free(v);
                return PL_ERR_INVALID;
            }
            int rc = add_owned(f, k, v);
            if (rc != PL_OK)
                return rc;
        }
        i = end + 1;
    }
    return PL_OK;
}

static int pair_cmp(const void *a_, const void *b_)
{
    const pl_form_pair *a = a_, *b = b_;
    int c = strcmp(a->key, b->key);
    return c != 0 ? c : strcmp(a->val, b->val);
}

void pl_form_sort(pl_form *f)
{
    if (f->n > 1)
        qsort(f->items, (size_t)f->n, sizeof(*f->items), pair_cmp);
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

long pl_url_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (unreserved(*p)) {
            if (o + 1 >= cap)
                return -1;
            out[o++] = (char)*p;
        } else {
            if (o + 3 >= cap)
                return -1;
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (o >= cap)
        return -1;
    out[o] = '\0';
    return (long)o;
}

char *pl_form_encode(const pl_form *f)
{
    size_t cap = 1;
    for (int i = 0; i < f->n; i++)
        cap += 3 * (strlen(f->items[i].key) + strlen(f->items[i].val)) + 2;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < f->n; i++) {
        if (i > 0)
            out[o++] = '&';
        o += (size_t)pl_url_encode(f->items[i].key, out + o, cap - o);
        out[o++] = '=';
        o += (size_t)pl_url_encode(f->items[i].val, out + o, cap - o);
    }
    out[o] = '\0';
    return out;
}
