#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

static int parse_bool(const char *s, int *out)
{
    if (strcmp(s, "1") == 0 || strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 ||
        strcasecmp(s, "on") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(s, "0") == 0 || strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0 ||
        strcasecmp(s, "off") == 0) {
        *out = 0;
        return 0;
    }
    return -1;
}

int pl_config_load(const pl_cfg_opt *opts, size_t n, void *target, char *err, size_t errlen)
{
    char *base = target;
    for (size_t i = 0; i < n; i++) {
        const pl_cfg_opt *o = &opts[i];
        const char *v = getenv(o->name);
        if (v == NULL || v[0] == '\0')
            v = o->def;
        switch (o->type) {
        case PL_CFG_STR:
            *(const char **)(void *)(base + o->offset) = v;
            break;
        case PL_CFG_INT: {
            char *end;
            errno = 0;
            long x = strtol(v != NULL ? v : "0", &end, 10);
            if (errno != 0 || end == v || *end != '\0') {
                snprintf(err, errlen, "%s: '%s' is not an integer", o->name, v);
                return -1;
            }
            if (x < o->min || x > o->max) {
                snprintf(err, errlen, "%s: %ld is outside %ld..%ld", o->name, x, o->min, o->max);
                return -1;
            }
            *(long *)(void *)(base + o->offset) = x;
            break;
        }
        case PL_CFG_BOOL: {
            int b;
            if (parse_bool(v != NULL ? v : "0", &b) != 0) {
                snprintf(err, errlen, "%s: '%s' is not a boolean (true/false)", o->name, v);
                return -1;
            }
            *(int *)(void *)(base + o->offset) = b;
            break;
        }
        }
    }
    return 0;
}

void pl_config_usage(const pl_cfg_opt *opts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("  %-28s %s (default: %s)\n", opts[i].name, opts[i].help,
               opts[i].def != NULL ? opts[i].def : "unset");
}

int pl_config_cli(int argc, char **argv, const char *name, const char *what, const pl_cfg_opt *opts,
                  size_t n, void *target)
{
    char err[256];
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("parley %s: %s. Settings (environment):\n", name, what);
        pl_config_usage(opts, n);
        return 1;
    }
    if (pl_config_load(opts, n, target, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", name, err);
        return 2;
    }
    return 0;
}
