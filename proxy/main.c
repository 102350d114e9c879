/*
 * main.c - the wiring: the command line (strata [-c FILE] [-b HOST:PORT] [--check]
 * [--version]) and the table of strategies handed to the server.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "config/config.h"
#include "core/server.h"
#include "st_build.h"
#include "strategies/strategies.h"

/* The strategies of this build, by kind: routes of a kind without one fail the config check. */
static const struct st_strategy_table strategies = {
    .kind =
        {
            [ST_STRATEGY_BYPASS] = &st_strategy_bypass,
            [ST_STRATEGY_CACHE_ASIDE] = &st_strategy_cache_aside,
        },
};

static const struct st_server_wiring wiring = {
    .strategies = &strategies,
    .admin_start = st_admin_start,
    .admin_stop = st_admin_stop,
};

static void usage(FILE *f)
{
    fprintf(f, "usage: strata [-c FILE] [-b HOST:PORT] [--check] [--version]\n"
               "  -c, --config FILE    config file (YAML)\n"
               "  -b, --backend ADDR   no config: proxy everything to ADDR, cache-aside, ttl 60s\n"
               "      --check          validate the config and exit (0 = ok)\n"
               "      --version        print the version and exit\n");
}

static void print_diags(const struct st_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "%s\n", d->lines[i]);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"backend", required_argument, NULL, 'b'},
        {"check", no_argument, NULL, 'k'},        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *file = NULL, *backend = NULL;
    int check = 0, opt;
    while ((opt = getopt_long(argc, argv, "c:b:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': file = optarg; break;
        case 'b': backend = optarg; break;
        case 'k': check = 1; break;
        case 'V': printf("strata %s\n", ST_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || (file && backend) || (!file && !backend)) {
        usage(stderr);
        return 2;
    }
    struct st_diag diag = {0};
    struct st_config *cfg = NULL;
    int rc = file ? st_config_load_file(file, &cfg, &diag)
                  : st_config_from_backend(backend, &cfg, &diag);
    if (rc == 0)
        rc = st_server_check_config(cfg, &strategies, &diag);
    if (rc < 0) {
        print_diags(&diag);
        st_diag_finish(&diag);
        st_config_destroy(cfg);
        return 1;
    }
    st_diag_finish(&diag);
    if (check) {
        printf("ok\n");
        st_config_destroy(cfg);
        return 0;
    }
    return st_server_run(cfg, &wiring);
}
