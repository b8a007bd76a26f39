/* config: environment tables, defaults, errors that name the variable. */
#include <stddef.h>

#include "check.h"
#include "config.h"

typedef struct {
    const char *name;
    long port;
    int flag;
} demo_cfg;

static const pl_cfg_opt demo_opts[] = {
    {"T_NAME", PL_CFG_STR, offsetof(demo_cfg, name), "dflt", 0, 0, "a name"},
    {"T_PORT", PL_CFG_INT, offsetof(demo_cfg, port), "8080", 1, 65535, "a port"},
    {"T_FLAG", PL_CFG_BOOL, offsetof(demo_cfg, flag), "false", 0, 0, "a flag"},
};

static void config_defaults_and_env(void)
{
    demo_cfg c;
    char err[256];
    unsetenv("T_NAME");
    unsetenv("T_PORT");
    unsetenv("T_FLAG");
    CHECK(pl_config_load(demo_opts, 3, &c, err, sizeof(err)) == 0);
    CHECK_STR(c.name, "dflt");
    CHECK(c.port == 8080);
    CHECK(c.flag == 0);
    setenv("T_NAME", "x", 1);
    setenv("T_PORT", "9000", 1);
    setenv("T_FLAG", "yes", 1);
    CHECK(pl_config_load(demo_opts, 3, &c, err, sizeof(err)) == 0);
    CHECK_STR(c.name, "x");
    CHECK(c.port == 9000);
    CHECK(c.flag == 1);
}

static void config_errors_name_the_variable(void)
{
    demo_cfg c;
    char err[256];
    setenv("T_PORT", "80x", 1);
    CHECK(pl_config_load(demo_opts, 3, &c, err, sizeof(err)) != 0);
    CHECK(strstr(err, "T_PORT") != NULL);
    setenv("T_PORT", "70000", 1);
    CHECK(pl_config_load(demo_opts, 3, &c, err, sizeof(err)) != 0);
    CHECK(strstr(err, "T_PORT") != NULL && strstr(err, "1..65535") != NULL);
    setenv("T_PORT", "80", 1);
    setenv("T_FLAG", "maybe", 1);
    CHECK(pl_config_load(demo_opts, 3, &c, err, sizeof(err)) != 0);
    CHECK(strstr(err, "T_FLAG") != NULL);
    unsetenv("T_FLAG");
}

int main(void)
{
    RUN(config_defaults_and_env);
    RUN(config_errors_name_the_variable);
    return check_summary();
}
